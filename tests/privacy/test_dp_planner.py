"""DP planner: round trips through Opacus' accountants, warnings, refusals."""

from __future__ import annotations

import pytest

pytest.importorskip("opacus")

from bastion.errors import ConfigError
from bastion.privacy.dp_planner import epsilon_for, plan_noise

SETUP = {"n_samples": 60000, "batch_size": 256, "epochs": 10, "delta": 1e-5}


@pytest.mark.parametrize("target", [1.0, 8.0])
def test_planned_noise_meets_the_target_epsilon(target: float) -> None:
    for plan in plan_noise(**SETUP, target_epsilon=target, accountants=("rdp",)):
        assert plan.epsilon <= target * 1.01
        assert plan.epsilon >= target * 0.9  # and is not needlessly large
        assert plan.steps == int(10 / (256 / 60000))
        assert plan.notes == ()


def test_both_accountants_side_by_side_prv_tighter() -> None:
    rdp, prv = epsilon_for(**SETUP, noise_multiplier=1.0)
    assert (rdp.accountant, prv.accountant) == ("rdp", "prv")
    assert 0 < prv.epsilon <= rdp.epsilon


@pytest.mark.slow
def test_prv_plan_needs_no_more_noise_than_rdp() -> None:
    rdp, prv = plan_noise(**SETUP, target_epsilon=8.0)
    assert (rdp.accountant, prv.accountant) == ("rdp", "prv")
    assert prv.noise_multiplier <= rdp.noise_multiplier
    assert prv.epsilon <= 8.0 * 1.01


def test_more_noise_means_smaller_epsilon() -> None:
    eps = [epsilon_for(**SETUP, noise_multiplier=s, accountants=("rdp",))[0].epsilon
           for s in (0.8, 1.0, 2.0)]
    assert eps[0] > eps[1] > eps[2] > 0


def test_reverse_agrees_with_forward() -> None:
    (plan,) = plan_noise(**SETUP, target_epsilon=3.0, accountants=("rdp",))
    (back,) = epsilon_for(**SETUP, noise_multiplier=plan.noise_multiplier,
                          accountants=("rdp",))
    assert back.epsilon == pytest.approx(plan.epsilon)


def test_delta_at_or_above_one_over_n_is_flagged() -> None:
    (plan,) = epsilon_for(n_samples=1000, batch_size=100, epochs=1, delta=1e-3,
                          noise_multiplier=1.0, accountants=("rdp",))
    assert plan.notes and "1/n" in plan.notes[0]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"n_samples": 0}, "n_samples"),
    ({"batch_size": 70000}, "batch_size"),
    ({"epochs": 0}, "epochs"),
    ({"delta": 1.5}, "delta"),
    ({"noise_multiplier": -1.0}, "noise_multiplier"),
])
def test_bad_requests_are_refused(kwargs: dict[str, float], message: str) -> None:
    args = {**SETUP, "noise_multiplier": 1.0, **kwargs}
    with pytest.raises(ConfigError, match=message):
        epsilon_for(**args)  # type: ignore[arg-type]


def test_unknown_accountant_is_refused() -> None:
    with pytest.raises(ConfigError, match="unknown accountant"):
        epsilon_for(**SETUP, noise_multiplier=1.0, accountants=("gdp",))  # type: ignore[arg-type]
