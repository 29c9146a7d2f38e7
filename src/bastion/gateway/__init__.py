"""The bastion gateway: a security-first model server.

auth → rate limit → validate → model → harden output, with every request written to a
hash-chained audit log before it is acknowledged. Heavy imports (FastAPI, SQLAlchemy)
live in the submodules; this package imports nothing heavy.
"""

from __future__ import annotations

from bastion.gateway.hooks import Guard, RequestEvent, Verdict

__all__ = ["Guard", "RequestEvent", "Verdict"]
