"""The allowlist: every allowance says why, the denylist always wins, patterns stay narrow."""

from __future__ import annotations

import pytest

from bastion.supplychain.allowlist import ALLOWED, ALLOWED_PATTERNS, DANGEROUS, judge, normalise


def test_every_allowance_and_danger_says_why() -> None:
    for name, reason in ALLOWED.items():
        assert len(reason.split()) >= 3, name
    for name, reason in DANGEROUS.items():
        assert len(reason.split()) >= 2, name
    for pattern, reason in ALLOWED_PATTERNS:
        assert len(reason.split()) >= 3, pattern.pattern


def test_no_name_is_both_allowed_and_dangerous() -> None:
    assert all(judge(name).kind == "allowed" for name in ALLOWED), [
        n for n in ALLOWED if judge(n).kind != "allowed"]


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("collections.OrderedDict", "allowed"),
        ("torch._utils._rebuild_tensor_v2", "allowed"),
        ("torch.nn.modules.linear.Linear", "allowed"),
        ("sklearn.linear_model._logistic.LogisticRegression", "allowed"),
        # near misses of the patterns
        ("sklearn.utils._testing.SkipTest", "unknown"),
        ("sklearn.datasets._base.load_iris", "unknown"),
        ("sklearn.linear_model._logistic.lower_case_function", "unknown"),
        ("torch.nn.modules.module.register_module_forward_hook", "unknown"),
        ("torch.nn.functional.Linear", "unknown"),
        # the denylist wins over any allowance, at every depth
        ("os.path.join", "dangerous"),
        ("posix.system", "dangerous"),
        ("torch.hub.load", "dangerous"),
        ("numpy.testing._private.utils.runstring", "dangerous"),
        ("collections.OrderedDict.__init__.__globals__", "dangerous"),
        ("builtins.getattr", "dangerous"),
        ("builtins.print", "unknown"),
        ("mylib.Net", "unknown"),
    ],
)
def test_judge(name: str, kind: str) -> None:
    assert judge(name).kind == kind


def test_normalise_maps_python2_modules_and_keeps_dotted_names() -> None:
    assert normalise("__builtin__", "eval") == "builtins.eval"
    assert normalise("copy_reg", "_reconstructor") == "copyreg._reconstructor"
    assert normalise("torch", "_utils._rebuild_tensor_v2") == "torch._utils._rebuild_tensor_v2"
