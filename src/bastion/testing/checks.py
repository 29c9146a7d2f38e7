"""``check_check``: the contract every scan check passes.

A check must describe itself (kebab name equal to its registry name, title, OWASP and
ATLAS ids of the right shape, ``needs`` from the known set), must not apply to an
empty target, and on a small target it applies to must return findings that name
it, stay within the ids it declares, and are the same for the same seed.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Callable

from bastion.report.finding import Finding
from bastion.scan.check import Check, Need, ScanContext, Target

__all__ = ["check_check"]

_OWASP = re.compile(r"^ML(0[1-9]|10)$")
_ATLAS = re.compile(r"^AML\.T\d{4}(\.\d{3})?$")
_NEEDS = set(typing.get_args(Need))


def _summary(findings: list[Finding]) -> list[tuple[str, str, str]]:
    return sorted((f.id, f.severity.value, f.title) for f in findings)


def check_check(name: str, cls: type[Check], make_target: Callable[[], Target]) -> None:
    """Raise AssertionError naming the broken rule; ``make_target`` builds a full target."""
    assert cls.name == name, f"{name}: class name attribute {cls.name!r} differs"
    assert re.fullmatch(r"[a-z][a-z0-9]*(-[a-z0-9]+)*", name), f"{name}: not kebab-case"
    assert isinstance(cls.title, str) and cls.title, f"{name}: needs a title"
    assert cls.owasp or cls.atlas, f"{name}: must map to OWASP or ATLAS"
    assert all(_OWASP.match(i) for i in cls.owasp), f"{name}: bad OWASP ids {cls.owasp}"
    assert all(_ATLAS.match(i) for i in cls.atlas), f"{name}: bad ATLAS ids {cls.atlas}"
    assert set(cls.needs) <= _NEEDS, f"{name}: unknown needs {set(cls.needs) - _NEEDS}"
    check = cls()
    assert not check.applies(Target()), f"{name}: must not apply to an empty target"
    target = make_target()
    if not check.applies(target):
        return  # needs something the generic target lacks (e.g. text data)
    first = check.run(target, ScanContext(seed=3))
    assert isinstance(first, list), f"{name}: run must return a list"
    for f in first:
        assert isinstance(f, Finding), f"{name}: run returned {type(f).__name__}"
        assert f.check == name, f"{name}: finding {f.id} names check {f.check!r}"
        assert f.id.startswith(f"{name}/"), f"{name}: finding id {f.id!r} must start {name}/"
        assert set(f.owasp) <= set(cls.owasp), f"{name}: {f.id} uses undeclared OWASP ids"
        assert set(f.atlas) <= set(cls.atlas), f"{name}: {f.id} uses undeclared ATLAS ids"
    again = check.run(make_target(), ScanContext(seed=3))
    assert _summary(first) == _summary(again), f"{name}: not deterministic for one seed"
