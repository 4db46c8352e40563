"""Inside the network for one image: each model attacks it, then shows every layer's output
on the clean and the adversarial version and how far they drift apart
(:func:`explain.inside.inside_network`). ``lab explain --layers`` and the Playground's
"Inside the network" section call :func:`inside_models`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from explain.inside import InsideView, inside_network
from lab.core.errors import LabError
from lab.models.base import model_of
from lab.runs.attack import AttackRunResult, run_attack
from lab.runs.playground import as_float_batch


@dataclass
class InsideRun:
    """One model's view of one image: its own attack on it and the layer-by-layer drift."""

    name: str
    attack: AttackRunResult
    view: InsideView
    seconds: float

    def drift_rows(self) -> list[dict[str, Any]]:
        """``[{layer, kind, shape, drift}]`` for the first image, the input first."""
        v = self.view
        rows = [{"layer": "input", "kind": "image", "shape": list(self.attack.clean.shape[1:]),
                 "drift": float(v.input_drift[0])}]  # fmt: skip
        rows += [{"layer": n, "kind": k, "shape": list(s), "drift": float(d)}
                 for n, k, s, d in zip(v.layers, v.kinds, v.shapes, v.drift[:, 0])]  # fmt: skip
        return rows

    def to_dict(self) -> dict[str, Any]:
        out = self.attack.images[0]
        return {
            "model": self.name,
            "attack": self.attack.attack,
            "eps": self.attack.eps,
            "norm": self.attack.norm,
            "prediction_clean": out.prediction_before,
            "prediction_adversarial": out.prediction_after,
            "layers": self.drift_rows(),
            "first_conv": self.view.first_conv,
            "seconds": round(self.seconds, 3),
        }


def inside_models(checkpoints: Sequence[Any], image: np.ndarray, label: int | None, *, attack: str,
                  settings: Mapping[str, Any] | None, eps: float, norm: str,
                  names: Sequence[str] | None = None) -> list[InsideRun]:  # fmt: skip
    """For each checkpoint (or LabModel): attack ``image`` (uint8 or float [C, H, W] / [1, C, H, W])
    with ``attack`` at ``eps``, then :func:`~explain.inside.inside_network` on the pair.

    Every model is attacked on its own, so a robust model's curve shows what the attack could
    do to it, not what an attack made for another model does."""
    x = as_float_batch(image)
    if x.shape[0] != 1:
        raise LabError(f"inside the network takes one image, got {x.shape[0]}")
    labels = None if label is None else [int(label)]
    shape = tuple(x.shape[1:])
    runs: list[InsideRun] = []
    for i, ck in enumerate(checkpoints):
        model = model_of(ck)
        want = tuple(model.info.input_shape)
        if want != shape:
            raise LabError(f"a model takes images {want}, but this image is {shape}")
        t0 = time.perf_counter()
        res = run_attack(ck, attack, dict(settings or {}), float(eps), norm, x, labels)
        view = inside_network(model, torch.from_numpy(res.clean), torch.from_numpy(res.adversarial))
        name = names[i] if names is not None and i < len(names) else getattr(model.info, "arch", f"model {i + 1}")
        runs.append(InsideRun(name=name, attack=res, view=view, seconds=time.perf_counter() - t0))
    return runs
