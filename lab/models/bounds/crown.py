"""CROWN (Zhang et al. 2018, "Efficient Neural Network Robustness Certification with General
Activation Functions"): linear lower bounds of ``spec . node`` pulled back through the tape to the
input box, through the affine maps' transposes and the linear relaxations of ReLU and max pooling;
and the tightening of the intervals inside the network with them.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from lab.core.errors import LabError
from lab.models.bounds.tape import Entry, origin, reforward


def backward(tape: list[Entry], start: int, spec: torch.Tensor, max_rows: int) -> torch.Tensor:
    """CROWN lower bounds [B, S] of ``spec`` [B, S, *shape of node start] . node ``start``,
    S split in pieces of at most ``max_rows`` rows (images x specifications) per pass."""
    b, s = spec.shape[:2]
    step = max(1, max_rows // max(b, 1))
    if s > step:
        return torch.cat([backward(tape, start, spec[:, i:i + step], max_rows) for i in range(0, s, step)], 1)
    coeffs: dict[int, torch.Tensor] = {start: spec}
    const = torch.zeros(b, s, dtype=spec.dtype, device=spec.device)
    for i in range(start, -1, -1):
        a = coeffs.pop(i, None)
        if a is None:
            continue
        e = tape[i]
        if e.kind == "input":
            lo, up = e.lower.unsqueeze(1), e.upper.unsqueeze(1)
            return const + (a.clamp(min=0) * lo + a.clamp(max=0) * up).flatten(2).sum(-1)
        src = e.src[0]
        if e.kind == "affine":
            a_in, c = _vjp(e.fn, a, tape[src].lower.shape[1:])  # type: ignore[arg-type]
            const = const + c
        elif e.kind == "reshape":
            a_in = a.reshape(b, s, *tape[src].lower.shape[1:])
        elif e.kind == "relu":
            a_in, c = _relu_back(a, tape[src].lower, tape[src].upper)
            const = const + c
        elif e.kind == "maxpool":
            a_in, c = _maxpool_back(a, tape[src].lower, tape[src].upper, **e.pool)
            const = const + c
        elif e.kind in ("add", "sub"):
            other = e.src[1]
            a_other = a if e.kind == "add" else -a
            coeffs[other] = coeffs[other] + a_other if other in coeffs else a_other
            a_in = a
        else:  # pragma: no cover - the tape has no other kinds
            raise AssertionError(e.kind)
        coeffs[src] = coeffs[src] + a_in if src in coeffs else a_in
    raise AssertionError("the backward pass never reached the input")  # pragma: no cover


def tighten(tape: list[Entry], max_rows: int) -> None:
    """Tighten the interval of every node feeding a ReLU or a max pool with CROWN (its unstable
    neurons only, for ReLU), then re-derive the IBP intervals downstream of it."""
    feeders = sorted({e.src[0] for e in tape if e.kind in ("relu", "maxpool")})
    nonlinear_before = [False] * len(tape)
    seen = False
    for i, e in enumerate(tape):
        nonlinear_before[i] = seen
        seen = seen or e.kind in ("relu", "maxpool")
    for k in feeders:
        if not nonlinear_before[k]:
            continue  # affine in the input box: its interval is exact already
        e = tape[k]
        if origin(tape, k).kind in ("relu", "maxpool"):
            continue  # a ReLU's or pool's output (maybe reshaped): its interval follows from its input's

        lo, up = e.lower.flatten(1), e.upper.flatten(1)
        consumers = {t.kind for t in tape if t.src and t.src[0] == k}
        if consumers == {"relu"}:
            cols = ((lo < 0) & (up > 0)).any(0).nonzero().flatten()
        else:
            cols = torch.arange(lo.shape[1], device=lo.device)
        if cols.numel() == 0:
            continue
        b, n = lo.shape
        new_lo, new_up = lo.clone(), up.clone()
        rows = max(1, max_rows // max(b, 1) // 2)
        for start in range(0, cols.numel(), rows):
            sel = cols[start:start + rows]
            eye = torch.zeros(b, 2 * sel.numel(), n, dtype=lo.dtype, device=lo.device)
            idx = torch.arange(sel.numel(), device=lo.device)
            eye[:, idx, sel] = 1.0
            eye[:, idx + sel.numel(), sel] = -1.0
            bound = backward(tape, k, eye.view(b, 2 * sel.numel(), *e.lower.shape[1:]), max_rows)
            new_lo[:, sel] = torch.maximum(lo[:, sel], bound[:, : sel.numel()])
            new_up[:, sel] = torch.minimum(up[:, sel], -bound[:, sel.numel():])
        e.lower, e.upper = new_lo.view_as(e.lower), new_up.view_as(e.upper)
        reforward(tape, k)


def _vjp(fn: Callable[[torch.Tensor], torch.Tensor], a: torch.Tensor,
         in_shape: torch.Size) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """``a`` [B, S, *out] pulled back through the affine ``fn``: (``a . J`` [B, S, *in], ``a . fn(0)`` [B, S]).

    Conv2d and Linear by their transposes; any other affine map by autograd's vector-Jacobian product.
    """
    b, s = a.shape[:2]
    flat = a.reshape(b * s, *a.shape[2:])
    if isinstance(fn, nn.Linear):
        g = flat @ fn.weight
        const = flat @ fn.bias if fn.bias is not None else flat.new_zeros(b * s)
        return g.view(b, s, *in_shape), const.view(b, s)
    if isinstance(fn, nn.Conv2d) and fn.padding_mode == "zeros" and isinstance(fn.padding, tuple):
        out_hw = flat.shape[-2:]
        extra = [in_shape[1 + d] - ((out_hw[d] - 1) * fn.stride[d] - 2 * fn.padding[d]
                                    + fn.dilation[d] * (fn.kernel_size[d] - 1) + 1) for d in range(2)]  # fmt: skip
        g = F.conv_transpose2d(flat, fn.weight, None, fn.stride, fn.padding, tuple(extra), fn.groups, fn.dilation)
        const = flat.sum((2, 3)) @ fn.bias if fn.bias is not None else flat.new_zeros(b * s)
        return g.view(b, s, *in_shape), const.view(b, s)
    keep_graph = torch.is_grad_enabled()  # bounds that training differentiates
    z = torch.zeros((b * s, *in_shape), dtype=a.dtype, device=a.device, requires_grad=True)
    with torch.enable_grad():
        out = fn(z)
        (g,) = torch.autograd.grad(out, z, flat, create_graph=keep_graph)
    const = (flat * out).flatten(1).sum(1).view(b, s)
    return g.view(b, s, *in_shape), const


def _relu_back(a: torch.Tensor, lo: torch.Tensor, up: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``a`` [B, S, *shape] through ReLU with pre-activation bounds [lo, up] [B, *shape], for a lower bound.

    Upper face (unstable): ``u (z - l) / (u - l)``; lower face: ``z`` where ``u >= -l`` else 0
    (the adaptive choice of CROWN); stable neurons are exact.
    """
    lo, up = lo.unsqueeze(1), up.unsqueeze(1)
    active, inactive = lo >= 0, up <= 0
    unstable = ~(active | inactive)
    denom = torch.where(unstable, up - lo, torch.ones_like(up))
    slope_up = torch.where(unstable, up / denom, active.to(a.dtype))
    bias_up = torch.where(unstable, -slope_up * lo, torch.zeros_like(lo))
    slope_lo = torch.where(unstable, (up >= -lo).to(a.dtype), active.to(a.dtype))
    pos, neg = a.clamp(min=0), a.clamp(max=0)
    a_in = pos * slope_lo + neg * slope_up
    const = (neg * bias_up).flatten(2).sum(-1)
    return a_in, const


def _maxpool_back(a: torch.Tensor, lo: torch.Tensor, up: torch.Tensor, *, kernel_size: tuple[int, int],
                  stride: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """``a`` [B, S, C, h, w] through max pooling of inputs with bounds [lo, up] [B, C, H, W], for a lower bound.

    Lower face: the window's input with the largest lower bound. Upper face: that same input where
    its lower bound is at least every other input's upper bound (then it is the max), else the
    window's largest upper bound (a constant). Overlapping windows are refused.
    """
    if stride[0] < kernel_size[0] or stride[1] < kernel_size[1]:
        raise LabError("bounds: CROWN needs max pooling with non-overlapping windows (stride >= kernel); "
                       "use the ibp method for this model")  # fmt: skip
    b, s = a.shape[:2]
    best_lo, idx = F.max_pool2d(lo, kernel_size, stride, return_indices=True)
    max_up = F.max_pool2d(up, kernel_size, stride)
    # the largest upper bound among the window's other inputs: mask the argmax out
    flat_up = up.flatten(2)
    others = flat_up.scatter(2, idx.flatten(2), float("-inf")).view_as(up)
    other_up = F.max_pool2d(others, kernel_size, stride)
    dominant = (best_lo >= other_up).unsqueeze(1)
    pos, neg = a.clamp(min=0), a.clamp(max=0)
    coef = pos + torch.where(dominant, neg, torch.zeros_like(neg))
    const = torch.where(dominant, torch.zeros_like(neg), neg * max_up.unsqueeze(1)).flatten(2).sum(-1)
    c, h_in, w_in = lo.shape[1:]
    idx_rows = idx.unsqueeze(1).expand(b, s, *idx.shape[1:]).reshape(b * s, *idx.shape[1:])
    a_in = F.max_unpool2d(coef.reshape(b * s, *coef.shape[2:]), idx_rows, kernel_size, stride,
                          output_size=(h_in, w_in))  # fmt: skip
    return a_in.view(b, s, c, h_in, w_in), const
