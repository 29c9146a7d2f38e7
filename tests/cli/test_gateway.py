"""``bastion gateway token`` and ``bastion audit verify`` through the real CLI; ``bastion
serve`` refuses bad settings with exit 2 before binding anything."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import update


def _bastion(*args: str, env: dict[str, str] | None = None,
             cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "COLUMNS": "200", "BASTION_GATEWAY_PEPPER": "cli-pepper", **(env or {})}
    full.pop("BASTION_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "bastion.cli.main", *args], env=full, cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def test_token_lifecycle(tmp_path: Path) -> None:
    db = ["--database-url", f"sqlite:///{tmp_path}/gw.db"]
    made = _bastion("gateway", "token", "create", "--name", "ci-bot", "--role", "analyst",
                    "--expires-in", "7d", *db)
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert token.startswith("bst_") and "cannot be shown again" in made.stderr
    listed = _bastion("gateway", "token", "list", "--json", *db)
    (row,) = json.loads(listed.stdout)
    assert row["name"] == "ci-bot" and row["role"] == "analyst" and not row["revoked"]
    assert token not in listed.stdout and "digest" not in row
    assert _bastion("gateway", "token", "revoke", row["id"], *db).returncode == 0
    table = _bastion("gateway", "token", "list", *db).stdout
    assert "revoked" in table and token not in table


@pytest.mark.slow
@pytest.mark.parametrize(("args", "env", "words"), [
    (["gateway", "token", "create", "--name", "x", "--role", "root"], {}, "unknown role"),
    (["gateway", "token", "create", "--name", "x", "--expires-in", "soon"], {}, "duration"),
    (["gateway", "token", "revoke", "0123456789abcdef"], {}, "no token"),
    (["gateway", "token", "list"], {"BASTION_GATEWAY_PEPPER": ""}, "BASTION_GATEWAY_PEPPER"),
    (["serve"], {}, "no model"),
    (["serve", "--model", "absent.onnx"], {}, "does not exist"),
    (["audit", "verify", "--database-url", "sqlite:///nowhere.db"], {}, "does not exist"),
])
def test_user_errors_exit_2(tmp_path: Path, args: list[str], env: dict[str, str],
                            words: str) -> None:
    extra = [] if args[0] == "audit" else ["--database-url", f"sqlite:///{tmp_path}/gw.db"]
    run = _bastion(*args, *extra, env=env, cwd=tmp_path)
    assert run.returncode == 2, (run.stdout, run.stderr)
    assert words in run.stderr and "Traceback" not in run.stderr


@pytest.mark.slow
def test_config_file_sets_roles(tmp_path: Path) -> None:
    (tmp_path / "gateway.toml").write_text(
        f'[gateway]\ndatabase_url = "sqlite:///{tmp_path}/gw.db"\n'
        '[gateway.roles.partner]\nscopes = ["predict"]\noutput = "rounded"\ndigits = 1\n')
    made = _bastion("gateway", "token", "create", "--name", "p", "--role", "partner",
                    "--config", str(tmp_path / "gateway.toml"))
    assert made.returncode == 0, made.stderr


def test_audit_verify_exit_codes(tmp_path: Path) -> None:
    from bastion.gateway.audit import AuditEntry, AuditLog
    from bastion.gateway.db import audit_records, open_database

    url = f"sqlite:///{tmp_path}/gw.db"
    db = open_database(url)
    log = AuditLog(db)
    for i in range(5):
        log.write(AuditEntry(request_id=f"r{i}", time=float(i), token_id=None, role=None,
                             client="127.0.0.1", input_sha256="0" * 64, prediction="[1]",
                             latency_ms=1.0, decision="allow"))
    log.close()
    ok = _bastion("audit", "verify", "--database-url", url)
    assert ok.returncode == 0 and "5 records" in ok.stdout and "intact" in ok.stdout
    with db.writing() as conn:
        conn.execute(update(audit_records).where(audit_records.c.seq == 3)
                     .values(client="10.0.0.9"))
    bad = _bastion("audit", "verify", "--database-url", url)
    assert bad.returncode == 1 and "record 3" in bad.stdout and "NOT intact" in bad.stdout
