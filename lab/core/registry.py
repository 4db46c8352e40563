"""Registries by name: adding a model, attack, defense, denoiser or explainer is adding one file.

``ATTACKS = Registry("attack", package="attacks", entry_points="lab.attacks")`` holds the
classes registered with ``@ATTACKS.register("pgd")``. The decorator is the one place a
method's name is written: it sets the class's ``name`` attribute. On first use the
registry imports every module of its ``package`` (so a new file is found without editing
any list) and then loads the plug-ins other distributions declare under its entry-point
group, the way pytest finds its plug-ins::

    # a plug-in's pyproject.toml
    [project.entry-points."lab.attacks"]
    my_attack = "my_package.my_attack"      # a module whose import registers the method

An entry point may also name the class itself (``"my_package.my_attack:MyAttack"``); it is
registered under the entry point's name unless its module already registered it. The CLI's
choices, the recipe loader and the dashboard's drop-downs read :meth:`Registry.names`.
"""

from __future__ import annotations

import difflib
import importlib
import logging
import pkgutil
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from typing import Generic, TypeVar

from lab.core.errors import LabError

T = TypeVar("T")
log = logging.getLogger(__name__)


class Registry(Generic[T]):
    """A name -> object map that finds its package's modules and plug-ins on first use."""

    def __init__(self, kind: str, *, package: str | None = None, entry_points: str | None = None) -> None:
        self.kind = kind
        self.package = package
        self.group = entry_points
        self._items: dict[str, T] = {}
        self._origin: dict[str, str] = {}
        self._loaded = package is None and entry_points is None
        self._loading = False

    # ------------------------------------------------------------ registration

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: ``@MODELS.register("smallcnn")``; a registered class gets ``name`` set."""

        def deco(obj: T) -> T:
            self._add(name, obj, getattr(obj, "__module__", "?"))
            return obj

        return deco

    def _add(self, name: str, obj: T, origin: str) -> None:
        if name in self._items and self._items[name] is not obj:
            raise LabError(
                f"{self.kind} {name!r} is registered twice (by {self._origin[name]} and by {origin}); "
                "rename one of them"
            )
        self._items[name] = obj
        self._origin[name] = origin
        if isinstance(obj, type):
            obj.name = name  # type: ignore[attr-defined]

    # ------------------------------------------------------------ discovery

    def _load(self) -> None:
        """Import the package's modules, then the plug-ins of the entry-point group (once)."""
        if self._loaded or self._loading:
            return
        self._loading = True
        try:
            if self.package:
                pkg = importlib.import_module(self.package)
                for mod in pkgutil.iter_modules(pkg.__path__):
                    if not mod.name.startswith("_"):
                        importlib.import_module(f"{self.package}.{mod.name}")
            if self.group:
                for ep in entry_points(group=self.group):
                    self._load_plugin(ep)
            self._loaded = True
        finally:
            self._loading = False

    def _load_plugin(self, ep: object) -> None:
        name, value = getattr(ep, "name", "?"), getattr(ep, "value", "?")
        try:
            obj = ep.load()  # type: ignore[attr-defined]
        except Exception as exc:  # a broken plug-in must not take the lab down with it
            log.warning("the %s plug-in %r (%s) could not be loaded and is skipped: %s", self.kind, name, value, exc)
            return
        if isinstance(obj, type(importlib)) or any(v is obj for v in self._items.values()):
            return  # a module (its import registered its methods) or an already registered object
        self._add(str(name), obj, f"the plug-in {value}")

    # ------------------------------------------------------------ lookup

    def get(self, name: str) -> T:
        """The object registered as ``name``; LabError naming the valid choices otherwise."""
        self._load()
        try:
            return self._items[name]
        except (KeyError, TypeError):
            close = difflib.get_close_matches(str(name), list(self._items), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise LabError(
                f"unknown {self.kind} {name!r}{hint}; choose one of: {', '.join(self.names())}"
            ) from None

    def names(self) -> list[str]:
        self._load()
        return sorted(self._items)

    def items(self) -> Iterator[tuple[str, T]]:
        """``(name, object)`` pairs in name order."""
        return ((n, self._items[n]) for n in self.names())

    def origin(self, name: str) -> str:
        """The module (or plug-in) that registered ``name``."""
        self.get(name)
        return self._origin[name]

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
