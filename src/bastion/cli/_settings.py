"""Settings for a command group: CLI flags over ``BASTION_<GROUP>_<FIELD>`` over a TOML file.

Each command group declares one pydantic model; :func:`resolve` fills it from the
three sources in that order of precedence and turns validation problems into a
one-line ``ConfigError``.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from bastion.errors import ConfigError, InputNotFoundError

__all__ = ["resolve"]

M = TypeVar("M", bound=BaseModel)


def _from_file(path: Path | None, section: str) -> dict[str, Any]:
    if path is None:
        return {}
    if not path.is_file():
        raise InputNotFoundError(f"config file {path} does not exist: check the --config path")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"config file {path} is not valid TOML: {err}") from None
    table = data.get(section, {})
    if not isinstance(table, dict):
        raise ConfigError(f"config file {path}: [{section}] must be a table")
    return {k.replace("-", "_"): v for k, v in table.items()}


def _from_env(model: type[BaseModel], section: str) -> dict[str, Any]:
    prefix = f"BASTION_{section.upper()}_"
    found: dict[str, Any] = {}
    for field in model.model_fields:
        raw = os.environ.get(prefix + field.upper())
        if raw is not None:
            found[field] = raw.split(",") if _is_list(model, field) else raw
    return found


def _is_list(model: type[BaseModel], field: str) -> bool:
    return "list" in str(model.model_fields[field].annotation)


def resolve(
    model: type[M], section: str, flags: dict[str, Any], config: Path | None = None
) -> M:
    """Merge file < environment < flags (flags that are None count as not given)."""
    merged = _from_file(config, section)
    merged.update(_from_env(model, section))
    merged.update({k: v for k, v in flags.items() if v is not None})
    unknown = sorted(set(merged) - set(model.model_fields))
    if unknown:
        raise ConfigError(f"unknown {section} setting(s): {', '.join(unknown)}")
    try:
        return model.model_validate(merged)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or section
        raise ConfigError(f"invalid {section} setting {where}: {first['msg']}") from None
