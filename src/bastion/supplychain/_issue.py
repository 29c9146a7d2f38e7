"""One thing the artifact scanner noticed in one file, before it becomes a report Finding."""

from __future__ import annotations

from dataclasses import dataclass, replace

from bastion.report.finding import Severity

__all__ = ["Issue"]


@dataclass(frozen=True, slots=True)
class Issue:
    """A rule that fired at a place in a file.

    ``rule`` is a short kebab slug (``dangerous-global``); ``subject`` names what it is
    about (an imported name, an archive member, an op type); ``member`` is the place
    inside a container (``archive/data.pkl``) and ``offset`` the byte offset in it.
    """

    rule: str
    severity: Severity
    title: str
    detail: str
    subject: str = ""
    member: str = ""
    offset: int | None = None

    def inside(self, member: str) -> Issue:
        """The same issue seen from the container that holds ``member``."""
        return replace(self, member=f"{member}/{self.member}" if self.member else member)
