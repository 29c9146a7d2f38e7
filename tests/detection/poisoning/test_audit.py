import numpy as np
import pytest

from bastion.attacks.poisoning import PoisonResult
from bastion.data.dataset import Dataset
from bastion.detection.poisoning.audit import audit
from bastion.errors import ShapeMismatchError
from bastion.models import as_classifier
from bastion.models.torch import TorchClassifier


def test_backdoor_rows_are_suspect_and_clean_rows_mostly_kept(backdoored: PoisonResult) -> None:
    result = audit(Dataset(x=backdoored.x, y=backdoored.y, kind="tabular"))
    assert result.suspect[backdoored.mask].mean() >= 0.95
    assert result.suspect[~backdoored.mask].mean() <= 0.03
    assert set(result.detections) == {"spectral-signatures", "activation-clustering",
                                      "knn-label-consistency", "confident-learning",
                                      "isolation-forest"}


def test_label_flips_are_suspect(flipped: PoisonResult) -> None:
    result = audit(Dataset(x=flipped.x, y=flipped.y, kind="tabular"))
    assert result.suspect[flipped.mask].mean() >= 0.6
    assert result.suspect[~flipped.mask].mean() <= 0.03
    assert (result.votes[result.suspect] >= 1).all()


def test_cleaned_copy_drops_suspects_and_leaves_the_input(flipped: PoisonResult) -> None:
    data = Dataset(x=flipped.x, y=flipped.y, kind="tabular", feature_names=("a",) * 30)
    before = data.x.copy()
    result = audit(data)
    clean = result.cleaned(data)
    assert len(clean) == len(data) - int(result.suspect.sum())
    assert clean.feature_names == data.feature_names
    np.testing.assert_array_equal(data.x, before)


def test_model_with_other_classes_is_refused(flipped: PoisonResult) -> None:
    from sklearn.linear_model import LogisticRegression

    y3 = flipped.y.copy()
    y3[:5] = 2
    model = as_classifier(LogisticRegression(max_iter=200).fit(flipped.x, flipped.y))
    with pytest.raises(ShapeMismatchError):
        audit(Dataset(x=flipped.x, y=y3, kind="tabular"), model=model)


def test_with_a_model_runs_on_its_outputs(backdoored: PoisonResult) -> None:
    from sklearn.linear_model import LogisticRegression

    model = as_classifier(LogisticRegression(max_iter=500).fit(backdoored.x, backdoored.y))
    result = audit(Dataset(x=backdoored.x, y=backdoored.y, kind="tabular"), model=model)
    assert result.detections["spectral-signatures"].scores.shape == (len(backdoored.y),)


def test_a_model_on_clean_data_raises_no_backdoor_flags() -> None:
    from sklearn.linear_model import LogisticRegression

    from bastion.data.demo import demo_breast_cancer

    train, _ = demo_breast_cancer(0)
    fit = LogisticRegression(max_iter=2000).fit(train.x, train.y)
    result = audit(train, model=as_classifier(fit))
    assert not result.detections["activation-clustering"].flagged.any()
    assert result.suspect.mean() <= 0.02


def test_a_label_error_needs_both_label_checks_or_one_and_two_more(
        flipped: PoisonResult) -> None:
    result = audit(Dataset(x=flipped.x, y=flipped.y, kind="tabular"))
    flags = {name: d.flagged for name, d in result.detections.items()}
    knn, confident = flags["knn-label-consistency"], flags["confident-learning"]
    others = result.votes - knn.astype(int) - confident.astype(int)
    one_label_check = knn ^ confident
    expected = flags["activation-clustering"] | (knn & confident) \
        | (one_label_check & (others >= 2))
    np.testing.assert_array_equal(result.suspect, expected)
    # The rows this rule leaves out: one label check and a single outlier detector.
    assert (one_label_check & (others == 1) & ~result.suspect).any()


def test_clean_digits_with_a_model_keep_almost_every_row(
        digits: tuple[TorchClassifier, np.ndarray, np.ndarray, np.ndarray, np.ndarray]) -> None:
    model, x, y, _, _ = digits
    result = audit(Dataset(x=x, y=y, kind="image"), model=model, neural_cleanse_steps=0)
    assert not result.detections["attribution-clustering"].flagged.any()
    assert result.suspect.mean() <= 0.015
