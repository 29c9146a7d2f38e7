"""``HttpClassifier``: a model behind an HTTP JSON endpoint, as a black box.

Wire format (what ``bastion serve`` answers, and what a user's endpoint must speak)::

    POST <url>
    Content-Type: application/json
    Authorization: Bearer <token>            (when a token is given)

    {"inputs": [x_1, x_2, ...]}              each x_i a nested list of shape input_shape

    200 OK
    {"probabilities": [p_1, p_2, ...]}       each p_i a list of n_classes numbers >= 0
                                             summing to 1 (within 1e-3), one per input
  or, as ``bastion serve`` answers with output hardening (``bastion.defenses.output``):
    {"outputs": [o_1, o_2, ...]}             each o_i {"label": k} plus "probabilities"
                                             (full or rounded) or "top_k" [{"label",
                                             "probability"}]

A hardened answer is turned into the distribution an attacker would assume: rounded
rows renormalised, the mass a top-k answer leaves out spread evenly over the other
classes, and a bare label as a one-hot row.

Batches of at most ``batch_size`` inputs go in one request. Connection failures,
timeouts, 429 and 5xx answers are retried ``retries`` times with exponential backoff
(a numeric ``Retry-After`` is honoured, capped at ``max_backoff_s``); any other 4xx, a
redirect, or a body that breaks the format above raises ``RemoteModelError`` at once.
Every input in a request answered with valid probabilities counts as one query. Inputs are
never logged or put in error messages, nor is the token.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any

import httpx
import numpy as np

from bastion.errors import ConfigError, InvalidDataError, RemoteModelError
from bastion.models._base import AdapterBase
from bastion.models._checks import check_batch, check_batch_size, check_bounds, check_input_shape

__all__ = ["HttpClassifier"]

_RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
_SUM_TOLERANCE = 1e-3


class HttpClassifier(AdapterBase):
    """A remote classifier speaking the JSON wire format in this module's docstring."""

    def __init__(
        self,
        url: str,
        *,
        n_classes: int,
        input_shape: Sequence[int],
        bounds: Sequence[float] = (0.0, 1.0),
        timeout_s: float = 10.0,
        retries: int = 3,
        backoff_s: float = 0.5,
        max_backoff_s: float = 10.0,
        headers: Mapping[str, str] | None = None,
        token: str | None = None,
        batch_size: int = 64,
        verify_tls: bool = True,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        parsed = httpx.URL(url)
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise ConfigError(f"model URL {url!r} must start with http:// or https://")
        if isinstance(n_classes, bool) or not isinstance(n_classes, int) or n_classes < 2:
            raise ConfigError(f"n_classes {n_classes!r} must be an integer >= 2")
        if timeout_s <= 0 or retries < 0 or backoff_s < 0 or max_backoff_s < 0:
            raise ConfigError("timeout_s must be positive; retries and backoffs not negative")
        self.url = str(parsed)
        self._n_classes = n_classes
        self._input_shape = check_input_shape(input_shape, who=f"the HTTP model at {self.url}")
        self._bounds = check_bounds(bounds)
        self._batch_size = check_batch_size(batch_size)
        self._retries = retries
        self._backoff_s = backoff_s
        self._max_backoff_s = max_backoff_s
        self._sleep = sleep
        all_headers = {"Accept": "application/json", **(headers or {})}
        if token:
            all_headers["Authorization"] = f"Bearer {token}"
        self._client = httpx.Client(
            timeout=timeout_s, headers=all_headers, verify=verify_tls, follow_redirects=False
        )

    def __repr__(self) -> str:
        return f"HttpClassifier({self.url!r}, n_classes={self._n_classes})"

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        arr = check_batch(x, self._input_shape)
        out = np.empty((len(arr), self._n_classes), dtype=np.float64)
        for start in range(0, len(arr), self._batch_size):
            chunk = arr[start : start + self._batch_size]
            out[start : start + len(chunk)] = self._request(chunk)
            self._n_queries += len(chunk)
        return out

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> HttpClassifier:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _request(self, chunk: np.ndarray) -> np.ndarray:
        try:
            body = json.dumps({"inputs": chunk.tolist()}, allow_nan=False)
        except ValueError:
            raise InvalidDataError("inputs contain NaN or inf; clean the data first") from None
        headers = {"Content-Type": "application/json"}
        reason, retry_after = "", None
        for attempt in range(self._retries + 1):
            if attempt:
                self._sleep(self._delay(attempt - 1, retry_after))
            retry_after = None
            try:
                response = self._client.post(self.url, content=body, headers=headers)
            except httpx.TimeoutException:
                reason = "timed out"
                continue
            except httpx.TransportError as e:
                reason = f"could not be reached ({type(e).__name__})"
                continue
            if response.status_code in _RETRY_STATUS and attempt < self._retries:
                retry_after = response.headers.get("Retry-After")
                continue
            return self._parse(response, len(chunk))
        tries = self._retries + 1
        raise RemoteModelError(
            f"{self.url} {reason} after {tries} attempt{'s' * (tries > 1)}; "
            "check that the server is up and the URL is right"
        )

    def _parse(self, response: httpx.Response, n: int) -> np.ndarray:
        status = response.status_code
        if 300 <= status < 400:
            raise RemoteModelError(
                f"{self.url} redirects ({status}) to {response.headers.get('Location', '?')};"
                " give the final URL"
            )
        if status != 200:
            raise RemoteModelError(
                f"{self.url} answered HTTP {status}{_detail(response)}; "
                + ("check the token" if status in (401, 403) else "check the URL and the server"),
                status=status,
            )
        try:
            payload: Any = response.json()
        except ValueError:
            raise RemoteModelError(f"{self.url} answered with invalid JSON") from None
        if isinstance(payload, dict) and "outputs" in payload and "probabilities" not in payload:
            return self._from_outputs(payload["outputs"], n)
        rows = payload.get("probabilities") if isinstance(payload, dict) else None
        try:
            probs = np.asarray(rows, dtype=np.float64)
        except (TypeError, ValueError):
            probs = np.empty(0)
        if probs.shape != (n, self._n_classes):
            raise RemoteModelError(
                f"{self.url} must answer {{\"probabilities\": [...]}} with {n} rows of "
                f"{self._n_classes} numbers; got {_describe(rows)}"
            )
        sums = probs.sum(axis=1)
        if not (np.isfinite(probs).all() and (probs >= 0).all()
                and np.allclose(sums, 1.0, atol=_SUM_TOLERANCE)):
            raise RemoteModelError(
                f"{self.url} answered probabilities that are negative, not finite, or whose "
                "rows do not sum to 1; is it returning logits?"
            )
        return np.asarray(probs / sums[:, None])

    def _from_outputs(self, outputs: object, n: int) -> np.ndarray:
        """Rows from a hardened answer; anything off the format is a one-line error."""
        if not isinstance(outputs, list) or len(outputs) != n:
            raise RemoteModelError(
                f"{self.url} must answer {{\"outputs\": [...]}} with {n} rows; got "
                f"{len(outputs) if isinstance(outputs, list) else type(outputs).__name__}"
            )
        try:
            probs = np.stack([_hardened_row(o, self._n_classes) for o in outputs])
        except (TypeError, ValueError, KeyError, IndexError):
            raise RemoteModelError(
                f"{self.url} answered outputs that are not {{\"label\": k, ...}} rows for "
                f"{self._n_classes} classes"
            ) from None
        return probs

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        delay = self._backoff_s * 2.0**attempt
        if retry_after is not None:
            with contextlib.suppress(ValueError):  # an HTTP date: the exponential delay stands
                delay = max(delay, float(retry_after))
        return min(delay, self._max_backoff_s) if math.isfinite(delay) else self._max_backoff_s


def _hardened_row(row: Mapping[str, Any], n_classes: int) -> np.ndarray:
    """One hardened output as a probability row (raises on anything malformed)."""
    label = int(row["label"])
    if not 0 <= label < n_classes:
        raise IndexError(label)
    probs = np.zeros(n_classes)
    if "probabilities" in row:
        probs[:] = np.asarray(row["probabilities"], dtype=np.float64)
    elif "top_k" in row:
        shown = {int(e["label"]): float(e["probability"]) for e in row["top_k"]}
        rest = n_classes - len(shown)
        probs[:] = max(0.0, 1.0 - sum(shown.values())) / rest if rest else 0.0
        for cls, p in shown.items():
            probs[cls] = p
    if not (np.isfinite(probs).all() and (probs >= 0).all()) or probs.sum() <= 0:
        if "probabilities" in row or "top_k" in row:
            raise ValueError("scores must be finite, non-negative and not all zero")
        probs[label] = 1.0  # label only
    return np.asarray(probs / probs.sum())


def _detail(response: httpx.Response) -> str:
    """A short, single-line reason from an error body (``detail`` or ``error``), if any."""
    try:
        payload = response.json()
    except ValueError:
        return ""
    reason = payload.get("detail") or payload.get("error") if isinstance(payload, dict) else None
    if not isinstance(reason, str):
        return ""
    return f" ({' '.join(reason.split())[:120]})"


def _describe(rows: object) -> str:
    if rows is None:
        return "no 'probabilities' key"
    try:
        return f"shape {np.asarray(rows, dtype=np.float64).shape}"
    except (TypeError, ValueError):
        return "ragged or non-numeric rows"
