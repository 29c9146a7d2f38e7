import numpy as np
import pytest

from bastion.attacks.poisoning import PoisonResult
from bastion.data.dataset import Dataset
from bastion.detection.poisoning.audit import audit
from bastion.errors import ShapeMismatchError
from bastion.models import as_classifier


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
