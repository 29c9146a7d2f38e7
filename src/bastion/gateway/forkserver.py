"""The fork server the gateway's child processes (the monitor's scoring process, the
audit committer) are forked from: a clean single-threaded process started once per
server process, with their modules already imported. Forking the server itself, with
its event loop, database pools and model runtimes' thread pools, is not safe."""

from __future__ import annotations

import multiprocessing
from multiprocessing.context import ForkServerContext

__all__ = ["forkserver"]

_PRELOAD = ["bastion.gateway.scoring_process", "bastion.gateway.audit_committer"]


def forkserver() -> ForkServerContext:
    """The context to start children from; the first call sets what the server preloads."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(_PRELOAD)
    return ctx
