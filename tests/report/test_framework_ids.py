"""Every id a registered check declares exists in the OWASP/ATLAS tables.

Checks other engineers add are covered automatically; the table-driven cases keep the
test meaningful when no check is registered.
"""

import pytest

from bastion.report import frameworks
from bastion.scan import CHECKS


@pytest.mark.parametrize(
    ("fid", "known"),
    [("ML01", True), ("ML10", True), ("AML.T0043", True), ("AML.T0024.000", True),
     ("AML.TA0001", True), ("ML11", False), ("ml01", False), ("AML.T0043.999", False),
     ("AML.T9999", False), ("", False)],
)
def test_known_and_unknown_ids(fid: str, known: bool) -> None:
    assert frameworks.is_known(fid) is known


def test_every_registered_check_declares_known_ids() -> None:
    unknown = {
        name: bad
        for name in CHECKS.names()
        if (bad := [i for i in (*CHECKS.get(name).owasp, *CHECKS.get(name).atlas)
                    if not frameworks.is_known(i)])
    }
    assert not unknown, f"checks declare unknown framework ids: {unknown}"
