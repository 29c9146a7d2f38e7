import numpy as np
import pytest

from bastion.attacks.poisoning import BadNets, LabelFlip, PoisonResult
from bastion.data.demo import demo_breast_cancer


def _scaled() -> tuple[np.ndarray, np.ndarray]:
    train, _ = demo_breast_cancer(0)
    x = (train.x - train.x.min(axis=0)) / (np.ptp(train.x, axis=0) + 1e-12)
    assert train.y is not None
    return x, train.y


@pytest.fixture(scope="session")
def flipped() -> PoisonResult:
    """Breast cancer (426 rows) with 5 % random label flips."""
    x, y = _scaled()
    return LabelFlip(fraction=0.05)(x, y, generator=np.random.default_rng(0))


@pytest.fixture(scope="session")
def backdoored() -> PoisonResult:
    """Breast cancer with 5 % BadNets rows (3 features set to 1, relabelled 0)."""
    x, y = _scaled()
    return BadNets(target=0, fraction=0.05, image=False)(x, y, generator=np.random.default_rng(0))
