"""The before/after evaluation: per-sample worst case, adaptive attacks judged on the
deployed model, and a plain verdict when a defense gives nothing."""

from __future__ import annotations

import pytest
import torch

from bastion.data import Dataset
from bastion.defenses import HardenResult
from bastion.defenses.distillation import TemperatureScaled
from bastion.defenses.evaluate import Evaluation, evaluate, hardening_findings
from bastion.errors import ConfigError
from bastion.models.torch import TorchClassifier
from bastion.report.finding import Severity


class _Sharpen(torch.nn.Module):
    """Logits times 1000: same predictions, a saturated softmax with vanishing gradients."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.inner(x) * 1000.0
        return out


def test_a_defense_that_changes_nothing_is_called_useless(
    plain_cnn: TorchClassifier, digits: tuple[Dataset, Dataset],
) -> None:
    result = HardenResult(model=plain_cnn, method="noop")
    ev = evaluate(plain_cnn, result, digits[1], eps=0.15, profile="quick", n_samples=100)
    assert ev.robust_after == ev.robust_before and ev.clean_after == ev.clean_before
    assert ev.adaptive_after is None and ev.attacks == ("FGSM", "PGD")
    (finding,) = hardening_findings(result, ev)
    assert finding.title.startswith("noop gives no measurable robustness")
    assert finding.severity is Severity.HIGH and finding.owasp == ["ML01"]


def test_masked_gradients_are_caught_by_the_adaptive_view(
    plain_cnn: TorchClassifier, digits: tuple[Dataset, Dataset],
) -> None:
    sharp = TorchClassifier(_Sharpen(plain_cnn.module), input_shape=(1, 8, 8))
    result = HardenResult(model=sharp, method="sharpen", masks_gradients=True,
                          adaptive=(("logits / 1000", TemperatureScaled(sharp, 1000.0)),))
    ev = evaluate(plain_cnn, result, digits[1], eps=0.15, profile="quick", n_samples=100)
    assert ev.robust_after > ev.robust_before + 0.2  # plain attacks are fooled by masking
    assert ev.adaptive_after is not None
    assert ev.adaptive_after <= ev.robust_before + 0.02  # ... the adaptive ones are not
    assert any("logits / 1000" in a for a in ev.adaptive_attacks)
    assert any(a.startswith("Square") for a in ev.adaptive_attacks)
    (finding,) = hardening_findings(result, ev)
    assert "gives no robustness against adaptive attacks" in finding.title
    assert "overstate its robustness" in finding.description
    names = {m.name for m in finding.metrics}
    assert "adaptive_robust_accuracy_after" in names
    assert finding.charts[0].series[1].x == ["clean", "robust", "robust (adaptive)"]


def test_dp_results_report_the_privacy_budget() -> None:
    ev = Evaluation(eps=0.1, norm="linf", profile="quick", n_samples=10, clean_before=0.9,
                    clean_after=0.8, robust_before=0.1, robust_after=0.1, adaptive_after=None,
                    attacks=("PGD",), adaptive_attacks=())
    result = HardenResult(model=object(), method="dp-sgd",  # type: ignore[arg-type]
                          metrics={"epsilon": 2.5, "delta": 1e-5},
                          log=({"epoch": 1.0, "loss": 2.0, "clean_accuracy": 0.5},))
    (finding,) = hardening_findings(result, ev)
    assert "(2.5, 1e-05)-differentially private" in finding.title
    assert finding.owasp == ["ML03", "ML04"] and finding.severity is Severity.INFO
    assert "costs 10.0 percentage points of clean accuracy" in finding.description
    assert [s.name for s in finding.charts[1].series] == ["loss", "clean accuracy"]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"eps": 0.0}, "must be positive"),
    ({"eps": 0.1, "profile": "deep"}, "quick, standard or thorough"),
    ({"eps": 0.1, "n_samples": 0}, "at least one sample"),
])
def test_bad_evaluation_settings_are_config_errors(
    plain_cnn: TorchClassifier, digits: tuple[Dataset, Dataset], kwargs: dict[str, object],
    message: str,
) -> None:
    with pytest.raises(ConfigError, match=message):
        evaluate(plain_cnn, HardenResult(model=plain_cnn, method="noop"), digits[1],
                 **kwargs)  # type: ignore[arg-type]
