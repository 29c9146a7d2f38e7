"""Secrets from env, file and Vault (KV v2, over real HTTP to a stand-in server that
answers as Vault does); values never appear in reprs or messages."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from bastion.errors import ConfigError, InputNotFoundError
from bastion.gateway.secrets import read_secret


class _Vault(BaseHTTPRequestHandler):
    """Answers GET /v1/<mount>/data/<path> like Vault's KV v2 engine, for one token."""

    def do_GET(self) -> None:
        if self.headers.get("X-Vault-Token") != "root-token":
            self._send(403, {"errors": ["permission denied"]})
        elif self.path == "/v1/secret/data/bastion":
            self._send(200, {"data": {"data": {"pepper": "vault-pepper"},
                                      "metadata": {"version": 1, "deletion_time": "",
                                                   "destroyed": False}}})
        else:
            self._send(404, {"errors": []})

    def _send(self, status: int, doc: object) -> None:
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def vault() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _Vault)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_vault(vault: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAULT_TOKEN", "root-token")
    secret = read_secret("pepper", vault_addr=vault, vault_path="secret/bastion")
    assert secret.get_secret_value() == "vault-pepper"
    assert "vault-pepper" not in repr(secret) and "vault-pepper" not in str(secret)


@pytest.mark.parametrize(("token", "path", "words"), [
    ("wrong", "secret/bastion", "could not read"),
    ("root-token", "secret/missing", "could not read"),
    (None, "secret/bastion", "VAULT_TOKEN is not set"),
    ("root-token", "bastion", "<mount>/<path>"),
])
def test_vault_failures(vault: str, monkeypatch: pytest.MonkeyPatch, token: str | None,
                        path: str, words: str) -> None:
    if token is None:
        monkeypatch.delenv("VAULT_TOKEN", raising=False)
    else:
        monkeypatch.setenv("VAULT_TOKEN", token)
    with pytest.raises(ConfigError, match=words) as err:
        read_secret("pepper", vault_addr=vault, vault_path=path)
    assert "root-token" not in str(err.value)


def test_file_then_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_PEPPER", "from-env")
    (tmp_path / "p").write_text("from-file\n")
    assert read_secret("pepper", env="MY_PEPPER", file=tmp_path / "p").get_secret_value() \
        == "from-file"
    assert read_secret("pepper", env="MY_PEPPER").get_secret_value() == "from-env"
    with pytest.raises(InputNotFoundError):
        read_secret("pepper", file=tmp_path / "absent")
    monkeypatch.delenv("MY_PEPPER")
    with pytest.raises(ConfigError, match="MY_PEPPER"):
        read_secret("pepper", env="MY_PEPPER")
