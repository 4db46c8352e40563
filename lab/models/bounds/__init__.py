"""Bounds on a model's outputs over a box of inputs: interval bound propagation (IBP, Gowal et
al. 2018, "On the Effectiveness of Interval Bound Propagation for Training Verifiably Robust
Models") and CROWN linear bounds (Zhang et al. 2018, "Efficient Neural Network Robustness
Certification with General Activation Functions").

The model is traced once with ``torch.fx`` into its graph of operations. Evaluating the graph on a
box ``[lower, upper]`` records a tape: every node that depends on the input, in order, with its
interval and what bounds need of it. Nodes that do not depend on the input (weights, the
normalization's mean and std) are plain constants. What the tape understands:

* affine operations: ``Conv2d``, ``Linear``, ``BatchNorm`` in eval mode, average pooling,
  adding, subtracting, multiplying or dividing by a constant (the in-model normalization),
  negation, ``flatten`` / ``view`` / ``reshape``; ``Dropout`` and ``Identity`` are the identity
  (the bounds are those of the network at evaluation time);
* ``ReLU`` and max pooling (IBP: monotone; CROWN: the adaptive ReLU relaxation of the paper, and
  for non-overlapping max pooling the argmax-of-lower-bounds lower face with the exact upper face
  where one input dominates its window, the largest upper bound otherwise);
* sums and differences of two input-dependent tensors (residual connections).

Anything else (a sigmoid, a product of two input-dependent tensors, attention) stops with one
:class:`~lab.core.errors.LabError` naming the node. IBP propagates the centre and radius of the
box through each affine map (``W c + b``, ``|W| r``); the logit margins ``z_y - z_j`` are bounded
through the last linear layer folded with the margin (Gowal et al.'s elision), which is exact for
that layer. CROWN goes backwards from the margins (``crown-ibp``, Zhang et al. 2020, "Towards
Stable and Efficient Training of Verifiably Robust Neural Networks": IBP intervals inside) and,
for ``crown``, from every neuron inside that feeds a ReLU or a max pool and whose interval leaves
it unstable, through linear relaxations to the input box; the vector-Jacobian products of the affine maps come from autograd, so any affine
operation above needs no backward rule of its own. An intermediate interval is the intersection
of IBP's and CROWN's, so ``crown`` is never looser than ``ibp`` on a neuron it bounds.

Bounds are computed in the model's floating-point type (fp32 for the lab's models; a float64
copy of a model gives float64 bounds). Rounding of that arithmetic is not accounted for, as in
the published tools (auto_LiRPA, IBP's reference code). Bounds are differentiable with respect
to the parameters (IBP training back-propagates through :meth:`Bounder.margins`).
"""


from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from lab.core.errors import LabError
from lab.models.bounds.crown import backward, tighten
from lab.models.bounds.tape import Entry, Tape

Method = Literal["ibp", "crown-ibp", "crown"]
METHODS: tuple[str, ...] = ("ibp", "crown-ibp", "crown")


class Bounder:
    """Bounds of ``model``'s logits over L-inf boxes; see the module docstring.

    ``model`` maps images [B, C, H, W] to logits [B, K]; it is traced once here. Call it in eval
    mode for certification (BatchNorm in training mode has no per-image bounds and is refused).
    """

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.tape = Tape(model)

    # ------------------------------------------------------------ the public bounds

    @staticmethod
    def box(x: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
        """The L-inf ball of radius ``eps`` around ``x`` intersected with the pixel range [0, 1]."""
        return (x - eps).clamp(0, 1), (x + eps).clamp(0, 1)

    def interval(self, lower: torch.Tensor, upper: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """IBP bounds ``(lower, upper)`` [B, K] of the logits for inputs in [lower, upper] [B, C, H, W]."""
        tape = self.tape.run(lower, upper)
        return tape[-1].lower, tape[-1].upper

    def margins(self, x: torch.Tensor, y: torch.Tensor, eps: float, method: Method = "ibp", *,
                max_rows: int = 4096) -> torch.Tensor:  # fmt: skip
        """Lower bounds [B, K] of ``z_y - z_j`` over the L-inf ball of radius ``eps`` around ``x``
        (in [0, 1]); column ``y`` is +inf (no constraint). The prediction is certified constant where every other
        column is positive. ``method``: ``ibp``, ``crown-ibp`` (IBP intervals inside, CROWN from the
        margins: Zhang et al. 2020) or ``crown`` (CROWN for the unstable neurons inside too; its
        cost grows with their number: per image, a backward pass per ~``max_rows / 2`` of them);
        ``max_rows`` caps the rows (images x specifications) of one CROWN backward pass.
        """
        if method not in METHODS:
            raise LabError(f"unknown bound method {method!r}; choose one of {', '.join(METHODS)}")
        lower, upper = self.box(x, eps)
        tape = self.tape.run(lower, upper)
        spec = margin_spec(y, tape[-1].lower.shape[1], tape[-1].lower.dtype)
        m = self._ibp_margins(tape, spec)
        if method == "crown":
            tighten(tape, max_rows)
            m = torch.maximum(m, self._ibp_margins(tape, spec))
        if method in ("crown", "crown-ibp"):
            m = torch.maximum(m, backward(tape, len(tape) - 1, spec, max_rows))
        return m.masked_fill(F.one_hot(y, spec.shape[1]).bool(), math.inf)

    @staticmethod
    def _ibp_margins(tape: list[Entry], spec: torch.Tensor) -> torch.Tensor:
        """IBP bounds of ``spec @ logits`` [B, S]: through the last layer folded with the spec when
        that layer is a Linear (exact for it), from the logits' interval otherwise."""
        last = tape[-1]
        if last.kind == "affine" and isinstance(last.fn, nn.Linear):
            src = tape[last.src[0]]
            w = torch.einsum("bsk,kn->bsn", spec, last.fn.weight)
            c, r = (src.upper + src.lower) / 2, (src.upper - src.lower) / 2
            out = torch.einsum("bsn,bn->bs", w, c) - torch.einsum("bsn,bn->bs", w.abs(), r)
            if last.fn.bias is not None:
                out = out + spec @ last.fn.bias
            return out
        lo, up = last.lower, last.upper
        return (spec.clamp(min=0) @ lo.unsqueeze(-1) + spec.clamp(max=0) @ up.unsqueeze(-1)).squeeze(-1)


def margin_spec(y: torch.Tensor, k: int, dtype: torch.dtype) -> torch.Tensor:
    """[B, K, K]: row j is e_y - e_j (row y is zero)."""
    eye = torch.eye(k, dtype=dtype, device=y.device)
    return eye[y].unsqueeze(1) - eye.unsqueeze(0)


def certified(margins: torch.Tensor) -> torch.Tensor:
    """[B] bool from :meth:`Bounder.margins`: every margin lower bound is positive."""
    return (margins > 0).all(1)


__all__ = ["METHODS", "Bounder", "Method", "certified", "margin_spec"]
