"""A CycloneDX 1.6 ML-BOM: the model files (hash, format, framework, scan verdict) and the
Python packages of the environment, built with cyclonedx-python-lib.

Model files are found and identified by the same content-based scan as ``artifact
scan`` (nothing is loaded); each becomes a ``machine-learning-model`` component whose
properties carry bastion's verdict, so a BOM also records whether the file was clear.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bastion.errors import ConfigError
from bastion.report.finding import Severity
from bastion.supplychain.scanner import ScanResult, scan_path

__all__ = ["build_bom"]

_FRAMEWORK = {
    "torch-zip": "pytorch", "torch-legacy": "pytorch", "torchscript": "pytorch",
    "pickle": "python-pickle", "gzip": "joblib", "bz2": "joblib", "xz": "joblib",
    "joblib-zlib": "joblib", "npy": "numpy", "npz": "numpy", "safetensors": "safetensors",
    "onnx": "onnx", "hdf5": "keras", "keras": "keras", "savedmodel": "tensorflow",
    "gguf": "gguf", "zip": "archive", "tar": "archive",
}


def build_bom(
    paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *, environment: bool = True,
) -> str:
    """The ML-BOM of the model files under ``paths`` as CycloneDX 1.6 JSON."""
    try:
        from cyclonedx.model import HashAlgorithm, HashType, Property
        from cyclonedx.model.bom import Bom
        from cyclonedx.model.component import Component, ComponentType
        from cyclonedx.output.json import JsonV1Dot6
    except ImportError:
        raise ConfigError(
            "the ML-BOM needs cyclonedx-python-lib: pip install 'bastion-ml[supplychain]'"
        ) from None
    from bastion import __version__

    result = scan_path(paths, hashes=True)
    bom = Bom()
    bom.metadata.tools.components.add(
        Component(name="bastion", version=__version__, type=ComponentType.APPLICATION))
    for scanned in (f for f in result.files if f.format != "text"):  # configs are no models
        worst = _worst(result, scanned.path)
        properties = [
            Property(name="bastion:format", value=scanned.format),
            Property(name="bastion:framework", value=_FRAMEWORK.get(scanned.format, "unknown")),
            Property(name="bastion:size_bytes", value=str(scanned.size_bytes)),
            Property(name="bastion:scan", value="clear" if worst is None else worst.value),
        ]
        bom.components.add(Component(
            name=Path(scanned.path).name, type=ComponentType.MACHINE_LEARNING_MODEL,
            bom_ref=f"model:{scanned.path}", description=scanned.path,
            hashes=[HashType(alg=HashAlgorithm.SHA_256, content=scanned.sha256)],
            properties=properties,
        ))
    if environment:
        for component in _packages(Component, ComponentType):
            bom.components.add(component)
    return str(JsonV1Dot6(bom).output_as_string(indent=2))


def _worst(result: ScanResult, path: str) -> Severity | None:
    mine = [f.severity for f in result.findings
            if f.location is not None and f.location.split("!", 1)[0] == path]
    return max(mine, key=lambda s: s.rank, default=None)


def _packages(component: Any, kind: Any) -> list[Any]:
    """One library component per installed distribution, with its package URL."""
    from importlib.metadata import distributions

    from packageurl import PackageURL

    seen: dict[str, Any] = {}
    for dist in distributions():
        name = dist.metadata["Name"]
        if not name or name.lower() in seen:
            continue
        purl = PackageURL(type="pypi", name=name.lower(), version=dist.version)
        seen[name.lower()] = component(
            name=name, version=dist.version, type=kind.LIBRARY, purl=purl,
            bom_ref=str(purl),
        )
    return [seen[k] for k in sorted(seen)]
