"""Output hardening: each mode reveals what it says and nothing more; the label never
changes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from bastion.defenses.output import OutputPolicy, harden
from bastion.errors import ConfigError, InvalidDataError

P = np.array([[0.1, 0.7, 0.2], [0.4, 0.4, 0.2]])


def test_full() -> None:
    out = harden(P, OutputPolicy(mode="full"))
    assert out == [{"label": 1, "probabilities": [0.1, 0.7, 0.2]},
                   {"label": 0, "probabilities": [0.4, 0.4, 0.2]}]


def test_top_k_orders_by_probability_and_breaks_ties_by_class() -> None:
    out = harden(P, OutputPolicy(mode="top-k", k=2))
    assert out[0]["top_k"] == [{"label": 1, "probability": 0.7},
                               {"label": 2, "probability": 0.2}]
    assert [c["label"] for c in out[1]["top_k"]] == [0, 1]


def test_rounded_and_label() -> None:
    probs = np.array([[0.123456, 0.876544]])
    assert harden(probs, OutputPolicy(mode="rounded", digits=1))[0]["probabilities"] == [0.1, 0.9]
    assert harden(probs, OutputPolicy(mode="label")) == [{"label": 1}]


@pytest.mark.parametrize("kw", [{"mode": "all"}, {"k": 0}, {"digits": 9}])
def test_bad_policies(kw: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        OutputPolicy(**kw)  # type: ignore[arg-type]


def test_bad_probabilities() -> None:
    with pytest.raises(InvalidDataError):
        harden(np.ones(3), OutputPolicy())


@given(arrays(np.float64, st.tuples(st.integers(1, 5), st.integers(2, 6)),
              elements=st.floats(0, 1)), st.sampled_from(["full", "top-k", "rounded", "label"]),
       st.integers(1, 7))
def test_label_is_the_argmax_and_top_k_is_bounded(p: np.ndarray, mode: str, k: int) -> None:
    out = OutputPolicy(mode=mode, k=k)(p)  # type: ignore[arg-type]
    assert [o["label"] for o in out] == p.argmax(1).tolist()
    for o in out:
        if mode == "top-k":
            assert len(o["top_k"]) == min(k, p.shape[1])
            assert o["top_k"][0]["label"] == o["label"]
        if mode == "label":
            assert set(o) == {"label"}


def _value_by_value(proba: np.ndarray, policy: OutputPolicy) -> list[dict[str, object]]:
    """The obvious per-value version: the oracle for the vectorised one."""
    rows: list[dict[str, object]] = []
    for p in proba:
        label = int(np.argmax(p))
        if policy.mode == "label":
            rows.append({"label": label})
        elif policy.mode == "top-k":
            order = sorted(range(len(p)), key=lambda c: (-p[c], c))[:policy.k]
            rows.append({"label": label,
                         "top_k": [{"label": c, "probability": float(p[c])} for c in order]})
        else:
            shown = np.round(p, policy.digits) if policy.mode == "rounded" else p
            rows.append({"label": label, "probabilities": [float(v) for v in shown]})
    return rows


@given(arrays(st.sampled_from([np.float32, np.float64]),
              st.tuples(st.integers(1, 6), st.integers(1, 12)), elements=st.floats(0, 1, width=32)),
       st.sampled_from(["full", "top-k", "rounded", "label"]), st.integers(1, 13),
       st.integers(0, 8))
def test_same_answer_as_value_by_value(p: np.ndarray, mode: str, k: int, digits: int) -> None:
    policy = OutputPolicy(mode=mode, k=k, digits=digits)  # type: ignore[arg-type]
    out = harden(p, policy)
    assert out == _value_by_value(p, policy)
    assert all(type(v) is float for o in out for v in o.get("probabilities", []))
    assert all(type(o["label"]) is int for o in out)
