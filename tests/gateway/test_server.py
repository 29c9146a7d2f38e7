"""``bastion serve``'s assembly: the safe loader, the previous version for rollback, and
the runtime monitor switched on by a ``[monitor]`` table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from bastion.errors import ConfigError, UnsafeArtifactError
from bastion.gateway.server import build_app, load_slot, running


def test_previous_model_is_kept_for_rollback(settings: Any, model_file: Path) -> None:
    slot = load_slot(settings.model_copy(update={"previous_model": str(model_file)}))
    assert slot.previous is not None and slot.rollback().name == "digits.skops"


def test_pickles_are_refused(settings: Any, tmp_path: Path) -> None:
    (tmp_path / "m.pkl").write_bytes(b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00cos\nsystem\n.")
    with pytest.raises((UnsafeArtifactError, ConfigError)):
        load_slot(settings.model_copy(update={"model": str(tmp_path / "m.pkl")}))


def test_monitor_table_switches_the_monitor_on(settings: Any, digits: Any, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BASTION_GATEWAY_PEPPER", "p")
    monkeypatch.delenv("BASTION_MONITOR_REFERENCE", raising=False)
    np.savez(tmp_path / "ref.npz", x=digits[0][-200:], y=digits[1][-200:])
    plain = tmp_path / "plain.toml"
    plain.write_text("[gateway]\n")
    assert not hasattr(build_app(settings, plain).state, "monitor")
    monitored = tmp_path / "monitored.toml"
    monitored.write_text(f'[gateway]\n[monitor]\nreference = "{tmp_path / "ref.npz"}"\n')
    app = build_app(settings, monitored)
    assert app.state.monitor in app.state.guards
    with running(app) as url:
        assert httpx.get(f"{url}/dashboard").status_code != 404
