import numpy as np

from bastion.data.demo import demo_breast_cancer, demo_digits


def test_demo_splits_are_seeded_and_stratified() -> None:
    a_train, a_test = demo_digits(seed=1)
    b_train, _ = demo_digits(seed=1)
    np.testing.assert_array_equal(a_train.x, b_train.x)
    assert a_train.x.shape[1:] == (1, 8, 8) and a_train.x.min() >= 0 and a_train.x.max() <= 1
    assert len(a_train) + len(a_test) == 1797 and a_train.x.dtype == np.float32
    assert a_train.kind == "image" and a_train.class_names == tuple("0123456789")
    other, _ = demo_digits(seed=2)
    assert not np.array_equal(other.x, a_train.x)
    assert a_test.y is not None and set(a_test.y.tolist()) == set(range(10))
    train, test = demo_breast_cancer()
    assert train.feature_names[0] == "mean radius" and train.class_names == ("malignant", "benign")
    assert train.kind == "tabular" and train.x.dtype == np.float32 and train.x.shape[1] == 30
    assert train.y is not None and test.y is not None
    assert abs(train.y.mean() - test.y.mean()) < 0.02
