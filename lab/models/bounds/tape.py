"""The tape of a model over a box of inputs: every input-dependent node of its ``torch.fx``
graph, in order, with its interval (interval bound propagation) and what CROWN needs of it.

What it understands, and what it refuses, is listed in :mod:`lab.models.bounds`. Nodes that do not
depend on the input (weights, the normalization's mean and std, shapes) are computed as constants.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn

from lab.core.errors import LabError

_IDENTITY_MODULES = (nn.Dropout, nn.Dropout2d, nn.Identity, nn.Flatten)
_RESHAPE_METHODS = ("view", "reshape", "flatten", "contiguous")



@dataclass
class Entry:
    """One input-dependent node of the tape: its kind, its interval and what CROWN needs of it."""

    kind: str  # input | affine | reshape | relu | maxpool | add | sub
    name: str
    lower: torch.Tensor
    upper: torch.Tensor
    src: tuple[int, ...] = ()
    fn: Callable[[torch.Tensor], torch.Tensor] | None = None  # affine: the map itself (with its bias)
    pool: dict[str, Any] = field(default_factory=dict)  # maxpool: kernel_size, stride


class _Bounded:
    """The value of an input-dependent node during tracing: its index on the tape."""

    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index


def _pair(v: Any) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


class Tape:
    """``model`` (images [B, C, H, W] -> logits [B, K]) traced once; :meth:`run` records the tape of
    one box. The model's own modules and tensors are read at each run (its current device and weights)."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        try:
            self.graph = fx.symbolic_trace(model).graph
        except Exception as e:  # noqa: BLE001 - fx raises many types for untraceable code
            raise LabError(f"bounds: {type(model).__name__} cannot be traced into a graph of operations ({e})") from e

    def run(self, lower: torch.Tensor, upper: torch.Tensor) -> list[Entry]:
        """Interval bounds of every input-dependent node for inputs in [lower, upper] (same shape)."""
        if lower.shape != upper.shape:
            raise LabError(f"bounds: lower {tuple(lower.shape)} and upper {tuple(upper.shape)} differ in shape")
        return self._record(lower, upper)

    def _record(self, lower: torch.Tensor, upper: torch.Tensor) -> list[Entry]:
        tape: list[Entry] = []
        env: dict[str, Any] = {}
        modules = dict(self.model.named_modules())  # the model's own (current device and weights)

        def val(a: Any) -> Any:
            return fx.node.map_arg(a, lambda n: env[n.name])

        def bounded_args(args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[int]:
            found: list[int] = []
            fx.node.map_aggregate((args, kwargs), lambda v: found.append(v.index) if isinstance(v, _Bounded) else v)
            return found

        def push(entry: Entry) -> _Bounded:
            tape.append(entry)
            return _Bounded(len(tape) - 1)

        for node in self.graph.nodes:
            if node.op == "placeholder":
                if tape:
                    raise LabError("bounds: the model takes more than one input")
                env[node.name] = push(Entry("input", node.name, lower, upper))
                continue
            if node.op == "get_attr":
                obj: Any = self.model
                for part in str(node.target).split("."):
                    obj = getattr(obj, part)
                env[node.name] = obj
                continue
            if node.op == "output":
                out = val(node.args[0])
                if not isinstance(out, _Bounded):
                    raise LabError("bounds: the model's output does not depend on its input")
                env["__output__"] = out
                continue
            args, kwargs = val(node.args), val(node.kwargs)
            srcs = bounded_args(args, kwargs)
            if not srcs or _is_shape_query(node, args):  # a constant (a shape is one too): compute it
                env[node.name] = self._call(node, modules, _concrete(args, tape), kwargs)
                continue
            env[node.name] = push(self._bound(node, modules, args, kwargs, srcs, tape))
        return tape

    def _call(self, node: fx.Node, modules: dict[str, nn.Module], args: Any, kwargs: Any) -> Any:
        if node.op == "call_module":
            return modules[str(node.target)](*args, **kwargs)
        if node.op == "call_function":
            return node.target(*args, **kwargs)  # type: ignore[operator]
        self_, *rest = args
        return getattr(self_, str(node.target))(*rest, **kwargs)

    def _bound(self, node: fx.Node, modules: dict[str, nn.Module], args: Any, kwargs: Any, srcs: list[int],
               tape: list[Entry]) -> Entry:  # fmt: skip
        """The tape entry of an input-dependent node (its interval from its inputs' intervals)."""
        what = self._describe(node, modules)
        if len(srcs) == 2 and node.op == "call_function" and node.target in (operator.add, torch.add, operator.sub,
                                                                              torch.sub) and not kwargs:  # fmt: skip
            a, b = (tape[i] for i in srcs)
            if node.target in (operator.add, torch.add):
                return Entry("add", node.name, a.lower + b.lower, a.upper + b.upper, tuple(srcs))
            return Entry("sub", node.name, a.lower - b.upper, a.upper - b.lower, tuple(srcs))
        if len(srcs) != 1:
            raise LabError(f"bounds: {what} combines several input-dependent tensors, which interval and CROWN "
                           "bounds here do not support (only sums and differences)")  # fmt: skip
        src = tape[srcs[0]]
        pos = [i for i, a in enumerate(args) if isinstance(a, _Bounded)]
        if node.op == "call_module":
            mod = modules[str(node.target)]
            if pos != [0] or len(args) != 1 or kwargs:
                raise LabError(f"bounds: {what} is called in a way the bounds do not support")
            return self._module_entry(node.name, what, mod, src, srcs[0])
        if node.op == "call_function":
            return self._function_entry(node, what, args, kwargs, src, srcs[0], pos)
        if node.op == "call_method" and pos == [0]:
            name = str(node.target)
            if name in _RESHAPE_METHODS:
                rest = args[1:]
                lo = getattr(src.lower, name)(*rest, **kwargs)
                up = getattr(src.upper, name)(*rest, **kwargs)
                return Entry("reshape", node.name, lo, up, (srcs[0],))
            if name == "relu":
                return Entry("relu", node.name, src.lower.relu(), src.upper.relu(), (srcs[0],))
        raise LabError(f"bounds: {what} is not an operation the interval and CROWN bounds support")

    @staticmethod
    def _describe(node: fx.Node, modules: dict[str, nn.Module]) -> str:
        if node.op == "call_module":
            return f"{type(modules[str(node.target)]).__name__} at {node.target!s}"
        target = getattr(node.target, "__name__", str(node.target))
        return f"{target} ({node.name})"

    def _module_entry(self, name: str, what: str, mod: nn.Module, src: Entry, i: int) -> Entry:
        lo, up = src.lower, src.upper
        if isinstance(mod, _IDENTITY_MODULES):
            if isinstance(mod, nn.Flatten):
                return Entry("reshape", name, mod(lo), mod(up), (i,))
            return Entry("reshape", name, lo, up, (i,))
        if isinstance(mod, nn.ReLU):
            return Entry("relu", name, lo.relu(), up.relu(), (i,))
        if isinstance(mod, nn.MaxPool2d):
            if mod.padding not in (0, (0, 0)) or mod.dilation not in (1, (1, 1)) or mod.ceil_mode:
                raise LabError(f"bounds: {what} has padding, dilation or ceil_mode, which the bounds do not support")
            k, s = _pair(mod.kernel_size), _pair(mod.stride if mod.stride is not None else mod.kernel_size)
            return Entry("maxpool", name, F.max_pool2d(lo, k, s), F.max_pool2d(up, k, s), (i,),
                          pool={"kernel_size": k, "stride": s})  # fmt: skip
        if isinstance(mod, nn.Conv2d) and mod.padding_mode != "zeros":
            raise LabError(f"bounds: {what} pads with {mod.padding_mode!r}; the bounds support zero padding")
        if isinstance(mod, nn.modules.batchnorm._BatchNorm) and (mod.training or mod.running_var is None):
            raise LabError(f"bounds: {what} is in training mode (batch statistics); bound the model in eval mode")
        if not isinstance(mod, (nn.Conv2d, nn.Linear, nn.modules.batchnorm._BatchNorm, nn.AvgPool2d,
                                nn.AdaptiveAvgPool2d)):  # fmt: skip
            raise LabError(f"bounds: {what} is not an operation the interval and CROWN bounds support")
        lo2, up2 = affine_interval(mod, lo, up)
        return Entry("affine", name, lo2, up2, (i,), fn=mod)

    def _function_entry(self, node: fx.Node, what: str, args: Any, kwargs: Any, src: Entry, i: int,
                        pos: list[int]) -> Entry:  # fmt: skip
        f = node.target
        lo, up = src.lower, src.upper
        if f in (F.relu, torch.relu) and pos == [0]:
            return Entry("relu", node.name, lo.relu(), up.relu(), (i,))
        if f is torch.flatten and pos == [0]:
            return Entry("reshape", node.name, torch.flatten(lo, *args[1:], **kwargs),
                          torch.flatten(up, *args[1:], **kwargs), (i,))  # fmt: skip
        if f in (F.dropout, F.dropout2d):
            return Entry("reshape", node.name, lo, up, (i,))
        if f in (operator.neg, torch.neg):
            return Entry("affine", node.name, -up, -lo, (i,), fn=torch.neg)
        if f in (operator.add, torch.add, operator.sub, torch.sub, operator.mul, torch.mul, operator.truediv,
                 torch.div) and len(args) == 2 and not kwargs:  # fmt: skip
            other = args[1 - pos[0]]
            if not (isinstance(other, (int, float)) or torch.is_tensor(other)):
                raise LabError(f"bounds: {what} has an operand the bounds do not support")
            if f in (operator.truediv, torch.div) and pos != [0]:
                raise LabError(f"bounds: {what} divides by an input-dependent tensor, which the bounds do not support")
            fn = _with_constant(f, other, input_first=pos == [0])
            a, b = fn(lo), fn(up)
            return Entry("affine", node.name, torch.minimum(a, b), torch.maximum(a, b), (i,), fn=fn)
        if f in (F.avg_pool2d, F.adaptive_avg_pool2d) and pos == [0]:
            fn = _with_constant(f, args[1:], input_first=True, kwargs=kwargs)
            return Entry("affine", node.name, fn(lo), fn(up), (i,), fn=fn)
        raise LabError(f"bounds: {what} is not an operation the interval and CROWN bounds support")


def _with_constant(f: Any, other: Any, *, input_first: bool,
                   kwargs: dict[str, Any] | None = None) -> Callable[[torch.Tensor], torch.Tensor]:  # fmt: skip
    """``z -> f(z, other)`` (``input_first``) or ``z -> f(other, z)``; a tuple ``other`` is spread."""
    rest = other if isinstance(other, tuple) else (other,)
    kw = kwargs or {}

    def fn(z: torch.Tensor) -> torch.Tensor:
        return f(z, *rest, **kw) if input_first else f(*rest, z, **kw)

    return fn


def origin(tape: list[Entry], k: int) -> Entry:
    """The entry ``k`` is a reshape of (itself when it is no reshape)."""
    while tape[k].kind == "reshape":
        k = tape[k].src[0]
    return tape[k]


def _is_shape_query(node: fx.Node, args: Any) -> bool:
    """``x.size(...)``, ``x.dim()`` or ``x.shape`` of an input-dependent ``x``: a constant."""
    if node.op == "call_method" and str(node.target) in ("size", "dim"):
        return True
    return node.op == "call_function" and node.target is getattr and len(args) == 2 and args[1] in ("shape", "ndim")


def _concrete(args: Any, tape: list[Entry]) -> Any:
    """``args`` with each input-dependent value replaced by its lower bound (for shape queries)."""
    return fx.node.map_aggregate(args, lambda v: tape[v.index].lower if isinstance(v, _Bounded) else v)


def affine_interval(fn: Callable[[torch.Tensor], torch.Tensor], lo: torch.Tensor,
                     up: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """The interval of an affine map over [lo, up] (exact per output): centre mapped, radius through |J|."""
    if isinstance(fn, nn.Conv2d):
        c, r = (up + lo) / 2, (up - lo) / 2
        rr = F.conv2d(r, fn.weight.abs(), None, fn.stride, fn.padding, fn.dilation, fn.groups)
        cc = fn(c)
        return cc - rr, cc + rr
    if isinstance(fn, nn.Linear):
        c, r = (up + lo) / 2, (up - lo) / 2
        cc, rr = fn(c), F.linear(r, fn.weight.abs())
        return cc - rr, cc + rr
    if isinstance(fn, nn.modules.batchnorm._BatchNorm):
        scale = torch.rsqrt(fn.running_var + fn.eps)  # type: ignore[operator, arg-type]
        if fn.weight is not None:
            scale = scale * fn.weight
        c, r = (up + lo) / 2, (up - lo) / 2
        cc, rr = fn(c), r * scale.abs().view(1, -1, *([1] * (r.ndim - 2)))
        return cc - rr, cc + rr
    a, b = fn(lo), fn(up)  # element-wise monotone maps and averages: the ends map to the ends
    return torch.minimum(a, b), torch.maximum(a, b)


def reforward(tape: list[Entry], k: int) -> None:
    """Recompute the IBP intervals of the nodes after ``k`` from their inputs' (tightened) intervals."""
    for e in tape[k + 1:]:
        srcs = [tape[i] for i in e.src]
        if e.kind == "relu":
            e.lower, e.upper = srcs[0].lower.relu(), srcs[0].upper.relu()
        elif e.kind == "maxpool":
            k_, s_ = e.pool["kernel_size"], e.pool["stride"]
            e.lower, e.upper = F.max_pool2d(srcs[0].lower, k_, s_), F.max_pool2d(srcs[0].upper, k_, s_)
        elif e.kind == "add":
            e.lower, e.upper = srcs[0].lower + srcs[1].lower, srcs[0].upper + srcs[1].upper
        elif e.kind == "sub":
            e.lower, e.upper = srcs[0].lower - srcs[1].upper, srcs[0].upper - srcs[1].lower
        elif e.kind == "reshape":
            e.lower, e.upper = srcs[0].lower.reshape(e.lower.shape), srcs[0].upper.reshape(e.upper.shape)
        elif e.kind == "affine":
            e.lower, e.upper = affine_interval(e.fn, srcs[0].lower, srcs[0].upper)  # type: ignore[arg-type]
