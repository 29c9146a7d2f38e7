"""One generic registry for every kind of plug-in: attacks, checks, renderers, recognizers.

Plug-ins register under a short lowercase kebab name (``pgd``, ``cw-l2``) with a
decorator. A registry knows which modules define its plug-ins and imports them only on
the first lookup, so ``bastion --help`` stays fast and never imports torch.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
import re
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from bastion.errors import ConfigError, UnknownPluginError

__all__ = ["Registry"]

T = TypeVar("T")

_NAME = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")


class Registry(Generic[T]):
    """Name → plug-in mapping with lazy loading and helpful misses.

    ``modules`` are imported (once) before the first lookup, and so is every module
    of each package in ``packages``; each registers its plug-ins with
    :meth:`register` at import time. A plug-in module that fails to import is an
    error, never silently skipped.
    """

    def __init__(
        self, kind: str, *, modules: tuple[str, ...] = (), packages: tuple[str, ...] = ()
    ) -> None:
        self.kind = kind
        self._modules = list(modules)
        self._packages = list(packages)
        self._loaded = False
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator that registers its target under ``name`` and returns it unchanged."""
        if not _NAME.match(name):
            raise ConfigError(f"{self.kind} name {name!r} must be lowercase kebab-case")

        def decorate(obj: T) -> T:
            if name in self._items and self._items[name] is not obj:
                raise ConfigError(f"{self.kind} name {name!r} is already registered")
            self._items[name] = obj
            return obj

        return decorate

    def add_module(self, module: str) -> None:
        """Declare one more module to import before lookups (for extensions)."""
        self._modules.append(module)
        self._loaded = False

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        for module in self._modules:
            importlib.import_module(module)
        for package in self._packages:
            for module in _submodules(package):
                importlib.import_module(module)

    def get(self, name: str) -> T:
        """The plug-in registered as ``name``; unknown names suggest the closest ones."""
        self._load()
        try:
            return self._items[name]
        except KeyError:
            close = difflib.get_close_matches(name, self._items, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            known = ", ".join(sorted(self._items)) or "none"
            raise UnknownPluginError(
                f"unknown {self.kind} {name!r}{hint} (known: {known})"
            ) from None

    def names(self) -> list[str]:
        self._load()
        return sorted(self._items)

    def items(self) -> list[tuple[str, T]]:
        self._load()
        return sorted(self._items.items())

    def name_of(self, obj: object) -> str | None:
        """The name ``obj`` is registered under, or None."""
        self._load()
        return next((n for n, item in self._items.items() if item is obj), None)

    def accepting(self, model: object) -> list[str]:
        """Names of the plug-ins whose ``requires`` types ``model`` is an instance of all of
        (attacks and hardening methods declare what a model must offer them)."""
        return [n for n, item in self.items()
                if all(isinstance(model, r) for r in getattr(item, "requires", ()))]

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        self._load()
        return len(self._items)


def _submodules(package: str) -> list[str]:
    """Names of the modules directly inside ``package`` (private ones excluded)."""
    pkg = importlib.import_module(package)
    return sorted(
        f"{package}.{info.name}"
        for info in pkgutil.iter_modules(pkg.__path__)
        if not info.name.startswith("_")
    )
