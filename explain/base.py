"""The explainer contract and the shared work every explainer needs.

``explainer = EXPLAINERS.get("integrated_gradients")(n_steps=64)``, then
``maps = explainer(model, x)`` or ``explainer(model, x, target)``. :meth:`Explainer.__call__`
does, once for all methods:

* checks the inputs: float images [B, C, H, W] in [0, 1] without NaN; ``target`` None means
  the model's predicted class, otherwise an int or int tensor [B] of class indices in range
  (LabError with one sentence otherwise);
* runs on the model's device with the model in eval mode and its parameters frozen, and
  restores the mode and every parameter's ``requires_grad`` afterwards (no ``.grad`` left);
* guarantees that no hook is left on any module (captum's included): hook tables are
  snapshotted before and anything new is removed in a ``finally``;
* reduces channels (``reduce="sum"``: signed sum, ``"abs_sum"``: sum of absolute values,
  ``"none"``: keep [B, C, H, W]) and returns a detached float32 tensor on ``x``'s device.

Subclasses implement :meth:`Explainer.attribute` only, returning [B, C, H, W] or [B, 1, H, W].
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

import torch
from torch import nn
from torch.nn.modules import module as _module

from lab.core.errors import LabError
from lab.core.registry import Registry
from lab.models.base import check_images, frozen_eval, model_device  # noqa: F401 - re-exported for explain.*

log = logging.getLogger(__name__)

REDUCTIONS = ("sum", "abs_sum", "none")
TargetLike = int | Sequence[int] | torch.Tensor | None

# per-module hook tables (names vary a little across torch versions; missing ones are skipped)
_MODULE_HOOK_TABLES = (
    "_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks",
    "_forward_hooks_with_kwargs", "_forward_pre_hooks_with_kwargs", "_forward_hooks_always_called",
)  # fmt: skip
_GLOBAL_HOOK_TABLES = (
    "_global_forward_hooks", "_global_forward_pre_hooks", "_global_backward_hooks",
    "_global_backward_pre_hooks", "_global_forward_hooks_always_called",
)  # fmt: skip

_CAPTUM_NOTICES = (
    r"Input Tensor \d+ did not already require gradients",
    r"Setting forward, backward hooks and attributes on non-linear",
    r"Setting backward hooks on ReLU activations",
)


def hook_snapshot(model: nn.Module) -> dict[tuple[int, str], set[Any]]:
    """The hook ids of every module of ``model`` and of the global tables, per table."""
    snap: dict[tuple[int, str], set[Any]] = {}
    for m in model.modules():
        for table in _MODULE_HOOK_TABLES:
            d = getattr(m, table, None)
            if isinstance(d, dict):
                snap[(id(m), table)] = set(d)
    for table in _GLOBAL_HOOK_TABLES:
        d = getattr(_module, table, None)
        if isinstance(d, dict):
            snap[(0, table)] = set(d)
    return snap


@contextlib.contextmanager
def no_hooks_left(model: nn.Module) -> Iterator[None]:
    """Remove, on exit, every hook added to ``model``'s modules (or globally) inside the block."""
    before = hook_snapshot(model)
    full_bw = {id(m): getattr(m, "_is_full_backward_hook", None) for m in model.modules()}
    try:
        yield
    finally:
        leaked = 0
        tables: list[tuple[object, int, str]] = [(m, id(m), t) for m in model.modules() for t in _MODULE_HOOK_TABLES]
        tables += [(_module, 0, t) for t in _GLOBAL_HOOK_TABLES]
        for owner, key, table in tables:
            d = getattr(owner, table, None)
            if not isinstance(d, dict):
                continue
            for hid in [h for h in d if h not in before.get((key, table), set())]:
                del d[hid]
                leaked += 1
        for m in model.modules():
            if id(m) in full_bw and hasattr(m, "_is_full_backward_hook"):
                m._is_full_backward_hook = full_bw[id(m)]
        if leaked:
            log.warning("removed %d hook(s) an attribution method left on the model", leaked)


def resolve_target(logits: torch.Tensor, target: TargetLike) -> torch.Tensor:
    """Class indices [B] (int64, on ``logits``' device): the prediction when ``target`` is None."""
    b, n = logits.shape[0], logits.shape[1]
    if target is None:
        return logits.argmax(1)
    if isinstance(target, bool):
        raise LabError(f"target must be a class index or one index per image, got {target!r}")
    if isinstance(target, int):
        t = torch.full((b,), target, dtype=torch.int64)
    else:
        t = torch.as_tensor(target)
        if t.is_floating_point() or t.dtype == torch.bool or t.is_complex():
            raise LabError(f"target must hold integer class indices, got {t.dtype}")
        t = t.to(torch.int64).reshape(-1)
        if t.numel() == 1:
            t = t.expand(b)
        if t.shape != (b,):
            raise LabError(f"target must be one class index or {b} of them (one per image), got {t.numel()}")
    lo, hi = int(t.min()), int(t.max())
    if lo < 0 or hi >= n:
        bad = lo if lo < 0 else hi
        raise LabError(f"target {bad} is out of range; the model has classes 0..{n - 1}")
    return t.to(logits.device)


class Explainer(ABC):
    """Base of every explainer. Settings are keyword-only ``__init__`` arguments."""

    name: ClassVar[str] = ""
    #: the method's paper, for reports and the dashboard
    paper: ClassVar[str] = ""
    #: True when the result depends on random draws (then ``seed`` makes it deterministic)
    randomized: ClassVar[bool] = False
    #: settings for a cheap run (tests, previews); real use keeps the defaults
    quick_settings: ClassVar[dict[str, Any]] = {}
    #: True when the maps keep their sign with the default settings (evidence for and against the
    #: class: a diverging colormap); False for magnitudes. :meth:`signed_for` adds the settings.
    signed: ClassVar[bool] = False
    #: the column heading in grids, where the name is too long ("": the name)
    short_name: ClassVar[str] = ""
    #: other names the CLI accepts for the method (``ig`` for integrated_gradients)
    aliases: ClassVar[tuple[str, ...]] = ()
    #: True when the method reads an attention model's own maps (``model.forward_with_attention``)
    needs_attention: ClassVar[bool] = False

    @classmethod
    def signed_for(cls, settings: Mapping[str, Any]) -> bool:
        """Whether the maps made with ``settings`` (a :meth:`config` or ``__init__`` keywords) are signed.

        ``reduce="abs_sum"`` maps are magnitudes whatever the method.
        """
        return cls.signed and settings.get("reduce") != "abs_sum"

    @classmethod
    def heading(cls) -> str:
        """What a grid's column calls the method: :attr:`short_name`, else the name."""
        return cls.short_name or cls.name

    def __init__(self, *, reduce: str = "sum") -> None:
        if reduce not in REDUCTIONS:
            raise LabError(f"reduce must be one of {', '.join(REDUCTIONS)}, got {reduce!r}")
        self.reduce = reduce

    def config(self) -> dict[str, Any]:
        """The settings that define this explainer (for reports)."""
        return {"name": self.name, **{k: v for k, v in vars(self).items() if not k.startswith(("_", "last_"))}}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k != "name")
        return f"{self.name}({args})"

    def __call__(self, model: nn.Module, x: torch.Tensor, target: TargetLike = None) -> torch.Tensor:
        """Attribution maps [B, 1, H, W] (or [B, C, H, W] with ``reduce="none"``) for ``x``."""
        check_images(x)
        device = model_device(model)
        xin = x.detach().to(device=device, dtype=torch.float32)
        with frozen_eval(model), no_hooks_left(model):
            n_classes = getattr(getattr(model, "info", None), "num_classes", None)
            if target is None or n_classes is None:  # a forward pass only when the prediction is needed
                with torch.no_grad():
                    logits = model(xin)
            else:
                logits = torch.empty(xin.shape[0], n_classes, device=device)
            t = resolve_target(logits, target)
            with torch.enable_grad(), warnings.catch_warnings():
                for message in _CAPTUM_NOTICES:  # captum's notes about what this class already handles
                    warnings.filterwarnings("ignore", message=message, category=UserWarning)
                attr = self.attribute(model, xin, t)
        attr = attr.detach().float()
        if self.reduce == "abs_sum":
            attr = attr.abs().sum(1, keepdim=True)
        elif self.reduce == "sum":
            attr = attr.sum(1, keepdim=True)
        return attr.to(x.device)

    @abstractmethod
    def attribute(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Attributions [B, C, H, W] or [B, 1, H, W] for ``x`` (on the model's device) and ``target`` [B]."""


EXPLAINERS: Registry[type[Explainer]] = Registry("explainer", package="explain", entry_points="lab.explainers")
