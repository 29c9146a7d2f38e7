"""What the gateway can be told: one pydantic model, filled from flags over
``BASTION_GATEWAY_*`` over the ``[gateway]`` table of a TOML file (see
:func:`bastion.cli._settings.resolve`).

Secrets never live here in clear: the settings name *where* a secret is (an environment
variable, a file, a Vault path) and :mod:`bastion.gateway.secrets` reads it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bastion.defenses.output import OutputMode

__all__ = ["SCOPES", "GatewaySettings", "RoleSettings"]

SCOPES = ("predict", "audit:read", "admin")


class RoleSettings(BaseModel):
    """A role: the scopes a token of that role may hold and the output it gets."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    scopes: tuple[str, ...]
    output: OutputMode = "label"
    top_k: int = Field(3, ge=1)
    digits: int = Field(2, ge=0, le=8)

    @field_validator("scopes")
    @classmethod
    def _known_scopes(cls, scopes: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(scopes) - set(SCOPES))
        if unknown:
            raise ValueError(f"unknown scope(s) {', '.join(unknown)}; known: {', '.join(SCOPES)}")
        return scopes


def _default_roles() -> dict[str, RoleSettings]:
    # Least privilege by default: plain clients get labels only, which starves
    # extraction and membership attacks of the probabilities they feed on.
    return {
        "admin": RoleSettings(scopes=("predict", "audit:read", "admin"), output="full"),
        "analyst": RoleSettings(scopes=("predict", "audit:read"), output="top-k", top_k=3),
        "client": RoleSettings(scopes=("predict",), output="label"),
    }


class GatewaySettings(BaseModel):
    """Settings of ``bastion serve`` and ``bastion gateway``/``bastion audit``."""

    model_config = ConfigDict(extra="forbid")

    # model
    model: str | None = None
    previous_model: str | None = None
    input_shape: list[int] | None = None
    n_classes: int | None = None
    bounds: list[float] = Field(default_factory=lambda: [0.0, 1.0], min_length=2, max_length=2)
    factory: str | None = None
    # network
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    workers: int = Field(1, ge=1)
    # addresses of reverse proxies whose X-Forwarded-For is believed; nobody's by default,
    # or any local process could pick its own client address and dodge per-client limits
    trusted_proxies: list[str] = Field(default_factory=list)
    # storage
    database_url: str = "sqlite:///bastion-gateway.db"
    # FULL: a committed audit record survives power loss (with audit_ack = "commit" each
    # answer waits for its fsync; with "journal" the writer's batches are made durable
    # together, about once a second); NORMAL: it survives a crash or kill -9 of the
    # gateway, not a power cut.
    sqlite_synchronous: Literal["FULL", "NORMAL"] = "FULL"
    # what an answer waits for. "journal" (default): its audit record appended to a local
    # journal file, committed moments later and replayed after a crash (it survives kill -9
    # of the gateway, not a power cut; a fraction of a commit's cost and no fsync on the
    # answer's path). "commit": the record committed to the database (with
    # sqlite_synchronous=FULL or PostgreSQL it survives power loss too). The journal sits
    # beside a SQLite database file; other databases need audit_journal_dir.
    audit_ack: Literal["commit", "journal"] = "journal"
    audit_journal_dir: Path | None = None
    # with "journal": who commits the journal to the database. "process" (default): a
    # child process, which keeps the hashing and the driver's work off the server
    # process's GIL; "thread": a thread in the server process. An in-memory database
    # is always committed from a thread.
    audit_committer: Literal["process", "thread"] = "process"
    # secrets: where the token pepper is (env var name, file, or Vault KV v2)
    pepper_env: str = "BASTION_GATEWAY_PEPPER"
    pepper_file: Path | None = None
    vault_addr: str | None = None
    vault_path: str | None = None
    vault_field: str = "pepper"
    vault_token_env: str = "VAULT_TOKEN"
    # how long a token looked up in the database is trusted before it is read again:
    # revocations from another process (the CLI) take effect within this time
    token_cache_s: float = Field(2.0, ge=0)
    # JWT bearer tokens (optional): public key PEM or JWKS JSON file
    jwt_public_key_file: Path | None = None
    jwt_jwks_file: Path | None = None
    jwt_algorithms: list[str] = Field(default_factory=lambda: ["RS256", "ES256", "EdDSA"])
    jwt_audience: str | None = None
    jwt_issuer: str | None = None
    # rate limits (``limits`` notation) and their storage (memory:// or redis://...)
    rate_limit_token: str = "600/minute"
    rate_limit_client: str = "1200/minute"
    rate_limit_storage: str = "memory://"
    # input validation
    max_body_bytes: int = Field(1_000_000, ge=1)
    max_batch: int = Field(256, ge=1)
    dtype: Literal["float32", "float64"] = "float32"
    # output hardening per role
    roles: dict[str, RoleSettings] = Field(default_factory=_default_roles)
    metrics_public: bool = False

    @field_validator("jwt_algorithms")
    @classmethod
    def _asymmetric_only(cls, algorithms: list[str]) -> list[str]:
        # A shared-secret algorithm would let anyone holding the "public" key mint tokens.
        bad = [a for a in algorithms if a.upper().startswith("HS") or a.lower() == "none"]
        if bad:
            raise ValueError(f"JWT algorithm(s) {', '.join(bad)} are not allowed; use RS/ES/EdDSA")
        return algorithms

    @model_validator(mode="after")
    def _one_jwt_key(self) -> GatewaySettings:
        if self.jwt_public_key_file and self.jwt_jwks_file:
            raise ValueError("give jwt_public_key_file or jwt_jwks_file, not both")
        return self
