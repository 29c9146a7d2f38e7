"""Request bodies to batches: orjson reads the common case and ``json`` everything
orjson refuses, so no body is answered differently from the ``json``-only parser."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bastion.gateway.validation import InputRejectedError, InputSpec, parse_batch

SPEC = InputSpec(input_shape=(4,), bounds=(0.0, 1.0), max_batch=8)


def _json_only(body: bytes) -> np.ndarray:
    """The parser before orjson: ``json.loads`` then the same array."""
    return np.asarray(json.loads(body)["inputs"], dtype=np.float64).astype(np.float32)


def test_the_batch_is_the_one_json_reads() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):  # shortest reprs, long mantissas, exponents, ints
        rows = rng.random((3, 4)) ** rng.integers(1, 30)
        values = [[int(v) if v in (0.0, 1.0) else float(v) for v in row] for row in rows]
        body = json.dumps({"inputs": values}).encode()
        np.testing.assert_array_equal(parse_batch(body, "application/json", SPEC),
                                      _json_only(body))


@pytest.mark.parametrize(("body", "status", "words"), [
    (b'{"inputs": [[NaN, 0.5, 0.5, 0.5]]}', 422, "NaN"),  # json reads NaN, orjson does not
    (b'{"inputs": [[Infinity, 0.5, 0.5, 0.5]]}', 422, "NaN or infinity"),
    (b'{"inputs": [[1e400, 0.5, 0.5, 0.5]]}', 422, "NaN or infinity"),
    (b'{"inputs": [[' + str(2**70).encode() + b', 0.5, 0.5, 0.5]]}', 422, "[0.0, 1.0]"),
    (b'{"inputs": [[0.1, 0.2', 400, "at character"),
    (b'\xff{"inputs": []}', 400, "not UTF-8"),
])
def test_what_orjson_refuses_is_answered_as_json_would(body: bytes, status: int,
                                                       words: str) -> None:
    with pytest.raises(InputRejectedError) as caught:
        parse_batch(body, "application/json", SPEC)
    assert caught.value.status == status and words in caught.value.message


def test_utf16_json_is_still_read() -> None:
    body = json.dumps({"inputs": [[0.25, 0.5, 0.75, 1.0]]}).encode("utf-16")
    np.testing.assert_array_equal(parse_batch(body, "application/json", SPEC),
                                  np.array([[0.25, 0.5, 0.75, 1.0]], dtype=np.float32))
