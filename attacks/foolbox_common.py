"""Foolbox 3 attacks behind the lab's :class:`~attacks.base.Attack` contract.

An adapter subclasses :class:`FoolboxAttack`, validates its settings in ``__init__`` and
builds the foolbox attack in :meth:`FoolboxAttack.make`; :meth:`FoolboxAttack.perturb`
does the rest, once for all adapters:

* wraps the model as ``foolbox.PyTorchModel(model, bounds=(0, 1), device=x.device)`` (the
  lab's models take [0, 1] pixels and normalize inside, so no ``preprocessing``);
* attacks only the examples not already fooled (misclassified, or at the target);
* calls ``attack(fmodel, x, Misclassification(y) | TargetedMisclassification(t),
  epsilons=eps)``: foolbox clips minimal-norm results (DeepFool, CW, Boundary,
  HopSkipJump) to the ball, and the base projects anyway;
* keeps, per example, the clipped adversarial where foolbox reports success and ``x``
  otherwise, so an adapter never raises accuracy;
* seeds torch and NumPy from the attack's ``seed`` around the call (:func:`lab.core.rng.seeded`).

Decision-based attacks (``needs_start = True``) need an adversarial starting point. It is
found here first: foolbox's default (``init="noise"``: uniform noise blended in by
``LinearSearchBlendedUniformNoiseAttack``), or ``init="batch"``: the nearest image of the
batch that the model puts in another class, bisected towards ``x`` (about half as far on
Fashion-MNIST, so far fewer queries are needed), with the noise as fallback. Examples with
no starting point are kept unattacked instead of making foolbox raise for the whole batch.

Workarounds for foolbox 3.3.4 (numpy 2.x, torch 2.13 and scipy 1.17 work otherwise):

* ``PyTorchModel`` moves the model to ``device`` (``model.to(device)``): a model on another
  device than the images would be moved silently, so that is refused with a LabError;
* DeepFool, Boundary and HopSkipJump log with the *root* ``logging.info``, which calls
  ``logging.basicConfig()`` when the root logger has no handler and so reconfigures the
  application's logging; their module-level ``logging`` is pointed at the ``"foolbox"`` logger;
* ``foolbox.attacks.blur`` imports ``scipy.ndimage.filters`` (deprecated, removed in
  SciPy 2): the warning is silenced and, where the module is gone, an alias is installed.
"""

from __future__ import annotations

import importlib
import itertools
import logging
import sys
import warnings
from abc import abstractmethod
from types import ModuleType
from typing import Any, ClassVar

import torch
from torch import nn

from attacks.base import Attack
from attacks.gradient import is_success
from lab.core.errors import LabError
from lab.core.rng import seeded
from lab.core.settings import choice, whole

log = logging.getLogger(__name__)

#: foolbox modules that call the root ``logging.info``
_ROOT_LOGGING_MODULES = ("deepfool", "boundary_attack", "hop_skip_jump")
_foolbox: ModuleType | None = None


def import_foolbox() -> ModuleType:
    """``import foolbox`` once, with the workarounds in the module docstring applied."""
    global _foolbox
    if _foolbox is not None:
        return _foolbox
    try:
        # imported here, not at the top: only the foolbox attacks need foolbox (and this scipy patch for it)
        import scipy.ndimage

        try:
            importlib.import_module("scipy.ndimage.filters")
        except ImportError:  # SciPy >= 2: foolbox.attacks.blur would fail to import
            sys.modules["scipy.ndimage.filters"] = scipy.ndimage
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*scipy\.ndimage\.filters", category=DeprecationWarning)
            import foolbox  # on first use: a heavy import that only the foolbox attacks need
    except ImportError as e:
        raise LabError(f"the foolbox attacks need the 'foolbox' package (pip install foolbox): {e}") from None
    fb_logger = logging.getLogger("foolbox")
    for name in _ROOT_LOGGING_MODULES:
        mod = importlib.import_module(f"foolbox.attacks.{name}")
        if getattr(mod, "logging", None) is logging:
            mod.logging = fb_logger  # type: ignore[attr-defined]  # only .info() is used there
    _foolbox = foolbox
    return foolbox


def check_same_device(model: nn.Module, x: torch.Tensor) -> None:
    """LabError when the model's weights are not on the images' device."""
    p = next(itertools.chain(model.parameters(), model.buffers()), None)
    if p is not None and p.device != x.device:
        raise LabError(f"the model is on {p.device} but the images are on {x.device}; put both on one device")


class FoolboxAttack(Attack):
    """Base of the foolbox adapters; subclasses implement :meth:`make`."""

    #: decision-based: find an adversarial starting point first (``init``: "noise" or "batch")
    needs_start: ClassVar[bool] = False

    def __init__(self, *, eps: float, norm: str = "linf", seed: int = 0, init: str = "noise",
                 init_directions: int = 1000, init_steps: int = 50) -> None:  # fmt: skip
        super().__init__(eps=eps, norm=norm, seed=seed)
        self.init = choice("starting-point init", init, ("noise", "batch"))
        self.init_directions = whole("init_directions", init_directions)
        self.init_steps = whole("init_steps", init_steps)

    @abstractmethod
    def make(self, fb: ModuleType) -> Any:
        """The configured foolbox attack (``fb`` is the ``foolbox`` module)."""

    def config(self) -> dict[str, Any]:
        cfg = super().config()
        if self.needs_start:
            cfg.update(init=self.init, init_directions=self.init_directions, init_steps=self.init_steps)
        return cfg

    def chunk_size(self, x: torch.Tensor) -> int:
        """How many examples one foolbox call may take (attacks with large buffers override this)."""
        return max(1, len(x))

    def perturb(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                target: torch.Tensor | None) -> torch.Tensor:  # fmt: skip
        check_same_device(model, x)
        with torch.no_grad():
            todo = (~is_success(model(x), y, target)).nonzero().squeeze(1)
        out = x.clone()
        if todo.numel() == 0:
            return out
        fb = import_foolbox()
        fmodel = fb.PyTorchModel(model, bounds=(0, 1), device=x.device)
        step = self.chunk_size(x)
        with seeded(self.seed, x.device):
            for i in range(0, todo.numel(), step):
                idx = todo[i : i + step]
                t = target[idx] if target is not None else None
                ok, x_adv = self._attack(fb, fmodel, model, x[idx].contiguous(), y[idx], t, pool=x)
                out[idx[ok]] = x_adv[ok].to(x.dtype)
        return out

    def _attack(self, fb: ModuleType, fmodel: Any, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                target: torch.Tensor | None, pool: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
        """One foolbox call: (success flags, clipped adversarials), aligned with ``x``; ``pool``:
        the whole batch, where ``init="batch"`` looks for starting points."""
        if target is not None:
            criterion = fb.criteria.TargetedMisclassification(target)
        else:
            criterion = fb.criteria.Misclassification(y)
        kwargs: dict[str, Any] = {}
        ok = torch.ones(len(x), dtype=torch.bool, device=x.device)
        if self.needs_start:
            start, ok = self._starting_points(fb, fmodel, model, x, y, pool)
            if not ok.all():
                log.info("%s: no adversarial starting point for %d of %d examples; they are kept as they are",
                         self.name, int((~ok).sum()), len(ok))  # fmt: skip
            if not ok.any():
                return ok, x
            criterion = fb.criteria.Misclassification(y[ok])
            kwargs["starting_points"] = start[ok]
        _, clipped, success = self.make(fb)(fmodel, x[ok], criterion, epsilons=self.eps, **kwargs)
        flags = torch.zeros_like(ok)
        flags[ok] = success.to(torch.bool)
        x_adv = x.clone()
        x_adv[ok] = clipped
        return flags, x_adv

    def _starting_points(self, fb: ModuleType, fmodel: Any, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                         pool: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
        """Adversarial starting points for a decision-based attack: (points, which are adversarial).

        ``init="noise"``: foolbox's default, uniform noise blended into ``x`` by a linear search.
        ``init="batch"``: the nearest (L2) image of ``pool`` that the model puts in another
        class, blended into ``x`` by a binary search on the decision; examples with no such
        image fall back to the noise.
        """
        start = x.clone()
        ok = torch.zeros(len(x), dtype=torch.bool, device=x.device)
        if self.init == "batch":
            start, ok = batch_starting_points(model, x, y, pool)
        if not ok.all():
            rest = (~ok).nonzero().squeeze(1)
            init = fb.attacks.LinearSearchBlendedUniformNoiseAttack(directions=self.init_directions,
                                                                   steps=self.init_steps)  # fmt: skip
            with warnings.catch_warnings():  # "failed to draw sufficient random inputs": handled by the caller
                warnings.filterwarnings("ignore", message=".*failed to draw sufficient random inputs")
                start[rest] = init.run(fmodel, x[rest], fb.criteria.Misclassification(y[rest]))
            with torch.no_grad():
                ok[rest] = model(start[rest]).argmax(1) != y[rest]
        return start, ok


@torch.no_grad()
def batch_starting_points(model: nn.Module, x: torch.Tensor, y: torch.Tensor, pool: torch.Tensor | None = None,
                          steps: int = 10) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """Per example of ``x`` [B, ...], the nearest image of ``pool`` [P, ...] (default ``x``)
    that the model does not put in class ``y``, moved towards ``x`` by ``steps`` bisections
    while it stays misclassified: (points [B, ...], found [B])."""
    pool = x if pool is None else pool
    pred = model(pool).argmax(1)
    dist = torch.cdist(x.flatten(1).float(), pool.flatten(1).float())
    dist[pred.view(1, -1) == y.view(-1, 1)] = float("inf")  # candidates must not be predicted as y
    best, j = dist.min(dim=1)
    found = torch.isfinite(best)
    other = pool[j]
    lo = torch.zeros(len(x), device=x.device, dtype=x.dtype)  # blend weights of ``other``: lo fails, hi fools
    hi = torch.ones(len(x), device=x.device, dtype=x.dtype)
    shape = (-1,) + (1,) * (x.ndim - 1)
    for _ in range(steps):
        mid = (lo + hi) / 2
        fooled = model(x + mid.view(shape) * (other - x)).argmax(1) != y
        hi = torch.where(fooled, mid, hi)
        lo = torch.where(fooled, lo, mid)
    start = x + hi.view(shape) * (other - x)
    found &= model(start).argmax(1) != y
    return start, found
