"""Secrets from an environment variable, a file, or HashiCorp Vault (KV v2 via ``hvac``).

A secret is returned as :class:`pydantic.SecretStr`, whose ``repr`` and ``str`` hide the
value, so it cannot slip into a log line or an error message by accident. Messages name
where a secret was looked for, never what it holds.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import SecretStr

from bastion.errors import ConfigError, InputNotFoundError

__all__ = ["read_secret"]


def read_secret(
    what: str,
    *,
    env: str | None = None,
    file: Path | None = None,
    vault_addr: str | None = None,
    vault_path: str | None = None,
    vault_field: str | None = None,
    vault_token_env: str = "VAULT_TOKEN",
) -> SecretStr:
    """The first secret found: Vault (when configured), then the file, then ``env``."""
    if vault_addr and vault_path:
        return _from_vault(what, vault_addr, vault_path, vault_field or what, vault_token_env)
    if file is not None:
        return _from_file(what, file)
    value = os.environ.get(env) if env else None
    if value:
        return SecretStr(value)
    raise ConfigError(
        f"no {what} configured: set the {env} environment variable, a {what} file or Vault"
    )


def _from_file(what: str, file: Path) -> SecretStr:
    if not file.is_file():
        raise InputNotFoundError(f"{what} file {file} does not exist")
    value = file.read_text(encoding="utf-8").strip()
    if not value:
        raise ConfigError(f"{what} file {file} is empty")
    return SecretStr(value)


def _from_vault(what: str, addr: str, path: str, field: str, token_env: str) -> SecretStr:
    import hvac
    import hvac.exceptions
    import requests

    token = os.environ.get(token_env)
    if not token:
        raise ConfigError(f"Vault is configured for the {what} but {token_env} is not set")
    mount, _, secret_path = path.partition("/")
    if not secret_path:
        raise ConfigError(f"Vault path {path!r} must be <mount>/<path>, e.g. secret/bastion")
    client = hvac.Client(url=addr, token=token, timeout=5)
    try:
        answer = client.secrets.kv.v2.read_secret_version(
            path=secret_path, mount_point=mount, raise_on_deleted_version=True
        )
    except (hvac.exceptions.VaultError, requests.RequestException) as err:
        raise ConfigError(
            f"could not read the {what} from Vault at {addr} ({type(err).__name__})"
        ) from None
    value = answer.get("data", {}).get("data", {}).get(field)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"Vault secret {path} has no field {field!r} for the {what}")
    return SecretStr(value)
