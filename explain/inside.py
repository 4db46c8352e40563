"""Inside the network: every layer's output for an image and its adversarial version, and
how far the two drift apart layer by layer.

``view = inside_network(model, x_clean, x_adv)`` runs both images through the model once
with ``captum.attr.LayerActivation`` hooked on every layer (the leaf modules the forward
pass runs, in the order it runs them; dropout, flatten and identity left out) and returns:

- ``layers``, ``kinds`` (the module classes) and ``shapes`` (one image's output shape);
- ``clean`` and ``adversarial``: each layer's output, [B, C, h, w] for a spatial layer,
  [B, F] for a dense one;
- ``drift`` [L, B]: the relative L2 distance ``||a(x_adv) - a(x)|| / ||a(x)||`` per layer
  and image (the adversarial perturbation is small at the input; a network that is not
  robust amplifies it on its way to the logits, an adversarially trained one keeps it small);
- ``input_drift`` [B]: the same ratio for the input itself, the curve's starting point;
- ``filters``: the first convolution's weights [O, I, k, k] (what the first layer looks for).

Modules used more than once in a forward pass (one ReLU object applied twice) are kept at
their first use: captum's hooks see one output per module.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from captum.attr import LayerActivation
from torch import nn

from lab.core.errors import LabError
from lab.models.base import check_images, frozen_eval, model_device

#: leaf modules that change nothing worth a row: they are left out of the layer list
SKIPPED = (nn.Dropout, nn.Dropout2d, nn.Flatten, nn.Identity)


@dataclass
class InsideView:
    layers: list[str]
    kinds: list[str]
    shapes: list[tuple[int, ...]]
    clean: list[torch.Tensor]
    adversarial: list[torch.Tensor]
    drift: torch.Tensor  # [L, B]
    input_drift: torch.Tensor  # [B]
    filters: torch.Tensor | None  # [O, I, k, k]
    first_conv: str | None

    def spatial(self) -> list[int]:
        """Indices of the layers whose output is a stack of feature maps [C, h, w]."""
        return [i for i, s in enumerate(self.shapes) if len(s) == 3]


def forward_layers(model: nn.Module, x: torch.Tensor) -> list[str]:
    """Module paths of the leaf modules a forward pass on ``x`` runs, in running order (first use)."""
    order: list[str] = []
    seen: set[int] = set()
    handles = []

    def hook(name: str, module: nn.Module):  # type: ignore[no-untyped-def]
        def record(mod: nn.Module, inp: object, out: object) -> None:
            if id(mod) not in seen and isinstance(out, torch.Tensor):
                seen.add(id(mod))
                order.append(name)

        return record

    for name, m in model.named_modules():
        if name and not list(m.children()) and not isinstance(m, SKIPPED):
            handles.append(m.register_forward_hook(hook(name, m)))
    try:
        with torch.no_grad():
            model(x[:1])
    finally:
        for h in handles:
            h.remove()
    return order


def relative_l2(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``||b - a|| / ||a||`` per image (rows of [B, ...]); 0 where both are zero."""
    a, b = a.flatten(1).double(), b.flatten(1).double()
    num = (b - a).norm(dim=1)
    den = a.norm(dim=1)
    return torch.where(den > 0, num / den.clamp_min(1e-300), torch.where(num > 0, torch.inf, 0.0)).float()


def inside_network(model: nn.Module, x_clean: torch.Tensor, x_adv: torch.Tensor,
                   layers: list[str] | None = None) -> InsideView:  # fmt: skip
    """Every layer's output on ``x_clean`` and ``x_adv`` (float [B, C, H, W] in [0, 1], the
    same shape) and their drift; ``layers``: module paths (default: :func:`forward_layers`)."""
    check_images(x_clean)
    check_images(x_adv)
    if x_clean.shape != x_adv.shape:
        raise LabError(f"the clean and adversarial images differ in shape: {tuple(x_clean.shape)} vs "
                       f"{tuple(x_adv.shape)}")  # fmt: skip
    dev = model_device(model)
    x = torch.cat([x_clean, x_adv]).to(dev)
    b = len(x_clean)
    with frozen_eval(model):
        names = forward_layers(model, x) if layers is None else list(layers)
        modules = dict(model.named_modules())
        missing = [n for n in names if n not in modules]
        if missing:
            raise LabError(f"the model has no layer {missing[0]!r}")
        if not names:
            raise LabError("the model has no layer to look inside")
        hooked = [modules[n] for n in names]
        with torch.no_grad():
            acts = LayerActivation(model, hooked).attribute(x)
    if isinstance(acts, torch.Tensor):
        acts = [acts]
    acts = [a.detach().float().cpu() for a in acts]
    clean = [a[:b] for a in acts]
    adv = [a[b:] for a in acts]
    drift = torch.stack([relative_l2(c, a) for c, a in zip(clean, adv)])
    convs = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    first = convs[0] if convs else None
    return InsideView(
        layers=names,
        kinds=[type(modules[n]).__name__ for n in names],
        shapes=[tuple(c.shape[1:]) for c in clean],
        clean=clean,
        adversarial=adv,
        drift=drift,
        input_drift=relative_l2(x_clean.cpu(), x_adv.cpu()),
        filters=first[1].weight.detach().float().cpu() if first else None,
        first_conv=first[0] if first else None,
    )
