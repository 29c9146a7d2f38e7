"""``bastion harden METHOD``: train or wrap a model with a defense, save it, report before/after.

The output folder receives the hardened model in a safe format (``model.safetensors``
for the architecture named by ``--factory``, else ``model.onnx``; a wrapper defense
keeps a copy of the original file), ``hardening.json`` (method, parameters, metrics,
what rebuilds the deployed model) and the report. Everything is written to a temporary
folder beside ``--out`` and renamed into place at the end, so a failure leaves nothing
half-written.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    import torch

    from bastion.defenses import Hardener, HardenResult
    from bastion.typing import Classifier


def register(app: typer.Typer) -> None:
    @app.command("harden")
    def harden_cmd(
        method: str | None = typer.Argument(None, help="pgd-at, trades, fast-at, dp-sgd, "
                                            "distillation, or a wrapper (see --list)."),
        model: str | None = typer.Option(None, "--model", "-m",
                                         help="The model file to harden."),
        data: Path | None = typer.Option(None, "--data", "-d", help="Labelled training data."),
        out: Path | None = typer.Option(None, "--out", "-o", help="New folder for the "
                                        "hardened model, hardening.json and the report."),
        test: Path | None = typer.Option(None, help="Held-out data for the before/after "
                                         "evaluation (default: 20% split off --data)."),
        factory: str | None = typer.Option(
            None, help="module:callable building the architecture of a safetensors/state "
            "dict model; the result is saved as safetensors for it (else as ONNX)."),
        input_shape: str | None = typer.Option(None, help="Sample shape, e.g. 1,8,8."),
        label: str | None = typer.Option(None, help="Label column for CSV/Parquet data."),
        params: list[str] = typer.Option(
            [], "--set", "-s", help="A method parameter as key=value (repeatable), e.g. "
            "--set beta=6 --set target-epsilon=3."),
        eps: str | None = typer.Option(
            None, help="Perturbation budget (e.g. 8/255): the training budget of methods "
            "that have one and the evaluation budget."),
        epochs: int | None = typer.Option(None, help="Training epochs (methods that train)."),
        norm: str = typer.Option("linf", help="Evaluation norm: linf or l2."),
        profile: str = typer.Option("thorough", help="Evaluation attacks: quick, standard "
                                    "or thorough (AutoAttack)."),
        n_eval: int = typer.Option(500, help="Held-out samples to attack before and after."),
        fmt: str = typer.Option("html", "--format", "-f", help="Report format: html, json, "
                                "md or sarif."),
        fail_on: str = typer.Option("high", help="Exit 1 when the verdict is at this "
                                    "severity or above (no robustness gained is high)."),
        seed: int = typer.Option(0, help="Seed for every random choice."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress or summary."),
        list_: bool = typer.Option(False, "--list", help="List the methods and their "
                                   "parameters."),
    ) -> None:
        """Harden a model with METHOD; write it, its manifest and a before/after report."""
        from bastion.errors import ConfigError

        if list_:
            _list()
            return
        if method is None or model is None or data is None or out is None:
            raise ConfigError("give a METHOD, --model, --data and --out (or --list)")
        raise typer.Exit(_harden(
            method, model=model, data=data, out=out, test=test, factory=factory,
            input_shape=input_shape, label=label, params=params, eps=eps, epochs=epochs,
            norm=norm, profile=profile, n_eval=n_eval, fmt=fmt, fail_on=fail_on, seed=seed,
            quiet=quiet))


def _list() -> None:
    """A table of the registered methods: what they need, whether they mask gradients."""
    import dataclasses

    from rich.console import Console
    from rich.table import Table

    from bastion.defenses import HARDENERS

    table = Table(title="Hardening methods", title_justify="left")
    for col in ("name", "needs", "masks gradients", "parameters (--set key=value)",
                "what it does"):
        table.add_column(col, overflow="fold")
    for name, cls in HARDENERS.items():
        params = ", ".join(f.name.replace("_", "-") for f in dataclasses.fields(cls)
                           if f.init) if dataclasses.is_dataclass(cls) else ""
        doc = " ".join((cls.__doc__ or "").strip().split("\n\n")[0].split()).replace("``", "")
        table.add_row(name, ", ".join(r.__name__ for r in cls.requires),
                      "yes" if cls.masks_gradients else "no", params, doc)
    Console().print(table)


def _parse_params(items: list[str], eps: str | None, epochs: int | None,
                  fields: set[str]) -> dict[str, Any]:
    """``--set key=value`` pairs plus the ``--eps``/``--epochs`` shortcuts."""
    from bastion.errors import ConfigError

    params: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: write key=value, e.g. --set epochs=5")
        params[key.strip()] = value.strip()
    if eps is not None and "eps" in fields:
        params.setdefault("eps", eps)
    if epochs is not None:
        if "epochs" not in fields:
            raise ConfigError("--epochs: this method does not train; leave it out")
        params.setdefault("epochs", str(epochs))
    return params


def _harden(method: str, *, model: str, data: Path, out: Path, test: Path | None,
            factory: str | None, input_shape: str | None, label: str | None,
            params: list[str], eps: str | None, epochs: int | None, norm: str, profile: str,
            n_eval: int, fmt: str, fail_on: str, seed: int, quiet: bool) -> int:
    import dataclasses
    import platform
    import time
    from datetime import UTC, datetime

    from rich.markup import escape

    from bastion import __version__
    from bastion.cli._ui import err_console, print_summary, progress_bars
    from bastion.defenses import HARDENERS, build_hardener, check_applicable
    from bastion.defenses.evaluate import evaluate, hardening_findings
    from bastion.errors import ConfigError
    from bastion.report.finding import Report, RunMetadata, Severity
    from bastion.report.write import render
    from bastion.scan.inputs import load_targets
    from bastion.scan.runner import exit_code

    try:
        level = Severity(fail_on)
    except ValueError:
        raise ConfigError(f"--fail-on {fail_on!r}: use info, low, medium, high or "
                          "critical") from None
    if fmt not in ("html", "json", "md", "sarif"):
        raise ConfigError(f"--format {fmt!r}: use html, json, md or sarif")
    if norm not in ("linf", "l2"):
        raise ConfigError(f"--norm {norm!r}: use linf or l2")
    _check_out(out)
    cls = HARDENERS.get(method)  # unknown names fail before any loading
    fields: set[str] = {f.name for f in dataclasses.fields(cls)} \
        if dataclasses.is_dataclass(cls) else set()
    hardener = build_hardener(method, _parse_params(params, eps, epochs, fields))
    started, clock = datetime.now(UTC), time.perf_counter()
    targets, artifacts = load_targets(model=model, data=data, test=test, label=label,
                                      input_shape=input_shape, factory=factory)
    target = targets[0].target
    assert target.model is not None and target.train is not None  # both were given
    check_applicable(hardener, target.model)
    train, held_out = target.train, target.test
    if held_out is None:
        from bastion.data import split_dataset

        train, held_out = split_dataset(train, test_fraction=0.2, seed=seed)
    budget = _budget(hardener, eps, norm, target.model)
    with progress_bars(quiet=quiet) as sink:
        result = hardener.apply(target.model, train, seed=seed, progress=sink)
        trained_s = time.perf_counter() - clock
        evaluation = evaluate(target.model, result, held_out, eps=budget,
                              norm=norm,  # type: ignore[arg-type]  # checked above
                              profile=profile, n_samples=n_eval,  # type: ignore[arg-type]
                              seed=seed, progress=sink)
    config = {"method": method, "params": _jsonable(dataclasses.asdict(hardener))
              if dataclasses.is_dataclass(hardener) else {}, "seed": seed, "eps": budget,
              "norm": norm, "profile": profile, "n_eval": n_eval, "out": str(out)}
    report = Report(
        metadata=RunMetadata(
            tool_version=__version__, command=f"harden {method}", started_at=started,
            finished_at=datetime.now(UTC), config=config, artifacts=list(artifacts),
            checks_run=["hardening"],
            timings_s={"training": round(trained_s, 3),
                       "evaluation": round(time.perf_counter() - clock - trained_s, 3)},
            python=platform.python_version(), platform=platform.platform(),
        ),
        findings=hardening_findings(result, evaluation),
    )
    manifest = _manifest(result, hardener, config, target.model, model, factory)
    _write_folder(out, result, target.model, Path(model), factory, manifest,
                  {f"report.{fmt}": render(report, fmt)})
    if not quiet:
        print_summary(report)
        err_console.print(f"Hardened model, hardening.json and report.{fmt} written to "
                          f"[bold]{escape(str(out))}[/]")
    return exit_code(report, level)


def _check_out(out: Path) -> None:
    from bastion.errors import ConfigError, InputNotFoundError

    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"--out {out} already exists and is not an empty folder; choose a "
                          "new folder (nothing is overwritten)")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise InputNotFoundError(f"folder {parent} does not exist: create it or choose --out")


def _budget(hardener: Hardener, eps: str | None, norm: str, model: Classifier) -> float:
    """The evaluation budget: ``--eps``, else the method's own, else 8/255 of the range."""
    import math

    from bastion.defenses._base import parse_fraction
    from bastion.errors import ConfigError
    from bastion.scan.checks.robustness import REFERENCE_FRACTION

    if eps is not None:
        try:
            value = parse_fraction(eps)
        except (ValueError, ZeroDivisionError):
            raise ConfigError(f"--eps {eps!r} must be a number such as 0.03 or 8/255") \
                from None
        return value
    own = getattr(hardener, "eps", None)
    if isinstance(own, float) and getattr(hardener, "norm", norm) == norm:
        return own
    lo, hi = model.bounds
    scale = 1.0 if norm == "linf" else math.sqrt(math.prod(model.input_shape))
    return REFERENCE_FRACTION * (hi - lo) * scale


def _jsonable(value: Any) -> Any:
    """Hyper-parameters as JSON values (tuples become lists)."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _manifest(result: HardenResult, hardener: Hardener, config: dict[str, Any],
              model: Classifier, source: str, factory: str | None) -> dict[str, Any]:
    """What ``hardening.json`` records: enough to rebuild and audit the deployed model."""
    from bastion import __version__

    networks = _network_files(result, Path(source), factory)
    return {
        "bastion_version": __version__, "method": result.method, "params": config["params"],
        "seed": config["seed"], "masks_gradients": result.masks_gradients,
        "model_file": networks.get("model"),
        "member_files": [v for k, v in networks.items() if k != "model"],
        "factory": factory, "source_model": source, "input_shape": list(model.input_shape),
        "n_classes": model.n_classes, "bounds": list(model.bounds),
        "wrapper": _jsonable(dict(result.wrapper)),
        "metrics": {k: float(v) for k, v in result.metrics.items()},
        "notes": list(result.notes),
    }


def _network_files(result: HardenResult, source: Path, factory: str | None) -> dict[str, str]:
    """File name per saved network: ``model`` and ``member-1``...; a copy when untrained."""
    if result.module is None and not result.members:
        return {"model": f"model{source.suffix}"}
    ext = ".safetensors" if result.export == "safetensors" and factory else ".onnx"
    names = {"model": f"model{ext}"} if result.module is not None else {}
    names.update({f"member-{i}": f"member-{i}{ext}" for i in range(1, len(result.members) + 1)})
    return names


def _write_folder(out: Path, result: HardenResult, model: Classifier, source: Path,
                  factory: str | None, manifest: dict[str, Any], texts: dict[str, str]) -> None:
    """Write everything into a temporary sibling folder, then rename it to ``out``."""
    import json
    import shutil
    import tempfile

    parent = out.parent if str(out.parent) else Path(".")
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=parent))
    try:
        networks = [result.module] if result.module is not None else []
        networks += list(result.members)
        files = ([manifest["model_file"]] if result.module is not None else []) + \
            manifest["member_files"]
        if not networks:
            shutil.copyfile(source, tmp / manifest["model_file"])
        for network, name in zip(networks, files, strict=True):
            if name.endswith(".safetensors"):
                _save_safetensors(network, tmp / name, model, factory)
            else:
                _save_onnx(network, tmp / name, model)
        (tmp / "hardening.json").write_text(json.dumps(manifest, indent=2) + "\n",
                                            encoding="utf-8")
        for name, text in texts.items():
            (tmp / name).write_text(text, encoding="utf-8")
        for written in tmp.iterdir():
            written.chmod(0o644)
        tmp.chmod(0o755)
        if out.exists():
            out.rmdir()  # empty (checked before training); rename needs it gone
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _behind_adapter(network: torch.nn.Module, model: Classifier) -> Any:
    """``model``'s input adapter (normalisation, shape checks) in front of ``network``.

    Training defenses deep-copy the user's adapter, so its settings are the hardened
    network's too; only the network is swapped in a shallow copy.
    """
    import copy

    from bastion.errors import UnsupportedModelError
    from bastion.models.torch import TorchClassifier

    if not isinstance(model, TorchClassifier):
        raise UnsupportedModelError(f"cannot save a network trained from a "
                                    f"{type(model).__name__}; give a torch model")
    adapter = copy.copy(model)
    adapter.module = network.eval()
    return adapter


def _save_safetensors(network: torch.nn.Module, path: Path, model: Classifier,
                      factory: str | None) -> None:
    """The state dict as safetensors, then read back through the loader as a check."""
    import numpy as np
    from safetensors.torch import save_file

    from bastion.errors import ConfigError
    from bastion.models import load_model

    save_file({k: v.detach().cpu().contiguous() for k, v in network.state_dict().items()},
              str(path))
    loaded = load_model(path, input_shape=model.input_shape, factory=factory,
                        bounds=model.bounds)
    probe = np.full((1, *model.input_shape), model.bounds[0], dtype=np.float32)
    expected = _behind_adapter(network, model).predict_proba(probe)
    if not np.allclose(loaded.predict_proba(probe), expected, atol=1e-5):
        raise ConfigError(f"--factory {factory} builds a network that does not reproduce "
                          "the hardened model (normalisation outside the module?); leave "
                          "--factory out to save ONNX")


def _save_onnx(network: torch.nn.Module, path: Path, model: Classifier) -> None:
    """The network behind the input adapter's normalisation, as ONNX with a dynamic batch."""
    import warnings

    import torch

    from bastion.errors import UnsupportedModelError

    if isinstance(network, torch.jit.ScriptModule):
        # torch's ONNX tracer cannot step into a TorchScript module held by a wrapper.
        raise UnsupportedModelError(
            "a retrained TorchScript model cannot be exported to ONNX; give its "
            "architecture instead: a state dict or safetensors file with --factory")
    adapter = _behind_adapter(network, model)

    class _Logits(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = network  # registers the weights as the graph's initialisers

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            logits: torch.Tensor = adapter.logits(x)
            return logits

    example = torch.zeros((1, *model.input_shape), device=adapter.device)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter is deprecated, not wrong
        torch.onnx.export(_Logits().eval(), (example,), str(path), dynamo=False,
                          input_names=["x"], output_names=["logits"],
                          dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}})
