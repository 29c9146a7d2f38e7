"""The bookkeeping every adapter shares: the Classifier Protocol's properties and the
query counter, written once so the adapters differ only in how they load and predict.
"""

from __future__ import annotations

from bastion.typing import Bounds, Classifier

__all__ = ["AdapterBase", "Wrapper"]


class AdapterBase:
    """Read-only ``n_classes``, ``input_shape``, ``bounds`` and a query counter.

    Subclasses set ``_n_classes``, ``_input_shape`` and ``_bounds`` in ``__init__`` and
    add to ``_n_queries`` for every sample they send to the model.
    """

    _n_classes: int
    _input_shape: tuple[int, ...]
    _bounds: Bounds
    _n_queries: int = 0

    @property
    def n_classes(self) -> int:
        return self._n_classes

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self._input_shape

    @property
    def bounds(self) -> Bounds:
        return self._bounds

    @property
    def n_queries(self) -> int:
        """Samples sent to the model since creation or the last :meth:`reset_queries`."""
        return self._n_queries

    def reset_queries(self) -> None:
        self._n_queries = 0


class Wrapper:
    """A ``Classifier`` built around another one, ``self.wrapped``: classes, input shape,
    bounds and the query count are the wrapped model's, so every query a wrapper makes is
    counted where the model is.

    Wrappers that count queries themselves (a smoothed classifier counts its own noisy
    draws) override ``n_queries`` and ``reset_queries``.
    """

    wrapped: Classifier

    @property
    def n_classes(self) -> int:
        return self.wrapped.n_classes

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.wrapped.input_shape)

    @property
    def bounds(self) -> Bounds:
        return self.wrapped.bounds

    @property
    def n_queries(self) -> int:
        return self.wrapped.n_queries

    def reset_queries(self) -> None:
        self.wrapped.reset_queries()
