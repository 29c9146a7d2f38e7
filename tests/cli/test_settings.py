from pathlib import Path

import pytest
from pydantic import BaseModel

from bastion.cli._settings import resolve
from bastion.errors import ConfigError, InputNotFoundError


class _S(BaseModel):
    seed: int = 0
    fail_on: str = "high"
    checks: list[str] | None = None


def test_flags_override_env_override_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "b.toml"
    cfg.write_text('[scan]\nseed = 1\nfail-on = "low"\nchecks = ["a"]\n')
    assert resolve(_S, "scan", {}, cfg) == _S(seed=1, fail_on="low", checks=["a"])
    monkeypatch.setenv("BASTION_SCAN_SEED", "2")
    monkeypatch.setenv("BASTION_SCAN_CHECKS", "b,c")
    assert resolve(_S, "scan", {}, cfg) == _S(seed=2, fail_on="low", checks=["b", "c"])
    assert resolve(_S, "scan", {"seed": 3, "fail_on": None}, cfg).seed == 3
    assert resolve(_S, "scan", {"seed": 3, "fail_on": None}, cfg).fail_on == "low"


@pytest.mark.parametrize(
    ("text", "error", "needle"),
    [
        ("[scan]\nseed = 'x'\n", ConfigError, "invalid scan setting seed"),
        ("[scan]\nsede = 1\n", ConfigError, "unknown scan setting(s): sede"),
        ("[scan\n", ConfigError, "not valid TOML"),
        ("scan = 3\n", ConfigError, "must be a table"),
    ],
)
def test_bad_config_is_one_line(tmp_path: Path, text: str, error: type, needle: str) -> None:
    cfg = tmp_path / "b.toml"
    cfg.write_text(text)
    with pytest.raises(error) as info:
        resolve(_S, "scan", {}, cfg)
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(InputNotFoundError):
        resolve(_S, "scan", {}, tmp_path / "nope.toml")
