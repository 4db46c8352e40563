"""Registries by name: adding a model, attack or explainer is adding one file.

``Registry("model")`` holds factories under names; the CLI's choices, the config loader
and the dashboard's drop-downs read :meth:`Registry.names`.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Generic, TypeVar

from lab.errors import LabError

T = TypeVar("T")


class Registry(Generic[T]):
    """A name -> object map with a clear error for unknown names."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: ``@MODELS.register("smallcnn")``."""

        def deco(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = obj
            return obj

        return deco

    def get(self, name: str) -> T:
        """The object registered as ``name``; LabError naming the valid choices otherwise."""
        try:
            return self._items[name]
        except KeyError:
            close = difflib.get_close_matches(str(name), self._items, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise LabError(
                f"unknown {self.kind} {name!r}{hint}; choose one of: {', '.join(self.names())}"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items
