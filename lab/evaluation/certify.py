"""Certified lower bounds: ``certify(model, x, y, eps, method) -> CertificationReport``.

An image is *certified* at radius ``eps`` when the model classifies it correctly and its
prediction provably stays the same for every input in the L-inf ball of radius ``eps`` (inside
[0, 1]): every lower bound of the logit margins ``z_y - z_j`` (:mod:`lab.models.bounds`) is
positive. The certified accuracy is a lower bound on the true robust accuracy, as an attacked
robust accuracy is an upper bound, so for the same images and radius

    certified accuracy <= true robust accuracy <= attacked robust accuracy,

and per image: a certified image is one no attack may fool. :func:`sandwich_check` compares a
certification with a robustness report and fails, loudly, when an attack fooled an image the
bounds certified (a bug in the bounds, the attack's verification or the model's determinism).

Methods (:data:`lab.models.bounds.METHODS`): ``ibp`` (interval bounds, Gowal et al. 2018: a
forward pass's cost), ``crown-ibp`` (CROWN from the margins over IBP intervals, Zhang et al.
2020: one backward pass more) and ``crown`` (CROWN for the unstable neurons inside too, Zhang et
al. 2018: tighter, and a backward pass per few thousand unstable neurons of each image). A
``crown`` certification first tries ``ibp`` and ``crown-ibp`` and runs the full method only on
the images they leave uncertified; the verdicts are the same as running it on all (its bounds are
never looser than theirs).

Reports are data (``format: lab-certification-report``), written atomically as JSON.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lab.core.epsilon import check_eps
from lab.core.errors import LabError
from lab.core.io import atomic_write_json
from lab.core.progress import progress as progress_bar
from lab.evaluation.report import SANDWICH_CHECK, MaskingCheck, RobustnessReport, jsonable
from lab.models.base import check_images, frozen_eval
from lab.models.bounds import METHODS, Bounder, certified

CERT_FORMAT = "lab-certification-report"
CERT_VERSION = 1
#: the methods a ``crown`` certification tries first, cheapest first
_CASCADE = {"ibp": ("ibp",), "crown-ibp": ("ibp", "crown-ibp"), "crown": ("ibp", "crown-ibp", "crown")}


@dataclass
class CertifiedResult:
    """One radius: clean and certified accuracy (fractions of ``n``), the certified images'
    indices into the evaluated set, the median lower bound of the worst margin over the clean-correct
    images, and the seconds it took."""

    eps: float
    clean_accuracy: float
    certified_accuracy: float
    certified_examples: list[int] = field(default_factory=list)
    median_margin: float = float("nan")
    seconds: float = 0.0
    #: how many images each method of the cascade certified first (``crown``: ibp, crown-ibp, crown)
    by_method: dict[str, int] = field(default_factory=dict)


@dataclass
class CertificationReport:
    model: dict[str, Any]
    method: str
    norm: str
    eps: list[float]
    n: int
    clean_accuracy: float
    results: list[CertifiedResult]
    seconds: float = 0.0
    meta: dict[str, Any] = field(default_factory=dict)

    def result_at(self, eps: float) -> CertifiedResult:
        for r in self.results:
            if abs(r.eps - eps) < 1e-12:
                return r
        raise KeyError(eps)

    def to_dict(self) -> dict[str, Any]:
        return jsonable({"format": CERT_FORMAT, "format_version": CERT_VERSION, **asdict(self)})

    def save(self, path: str | os.PathLike[str]) -> Path:
        p = Path(path)
        atomic_write_json(p, self.to_dict())
        return p

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CertificationReport:
        if d.get("format") != CERT_FORMAT:
            raise LabError(f"not a lab certification report (format {d.get('format')!r})")
        results = [CertifiedResult(**{**r, "median_margin": _num(r.get("median_margin"))}) for r in d["results"]]
        keys = ("model", "method", "norm", "eps", "n", "clean_accuracy", "seconds", "meta")
        return cls(results=results, **{k: d[k] for k in keys if k in d})

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> CertificationReport:
        p = Path(path)
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise LabError(f"certification report {str(p)!r} does not exist") from None
        except (OSError, json.JSONDecodeError) as exc:
            raise LabError(f"certification report {str(p)!r} is unreadable ({exc})") from None
        try:
            return cls.from_dict(data)
        except (KeyError, TypeError) as exc:
            raise LabError(f"certification report {str(p)!r} is incomplete ({exc})") from None


def _num(v: Any) -> float:
    return float("nan") if v is None else float(v)


def check_method(method: str) -> str:
    if method not in METHODS:
        raise LabError(f"unknown certification method {method!r}; choose one of {', '.join(METHODS)}")
    return method


def certify(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: Sequence[float], *, method: str = "ibp",
            batch_size: int = 100, max_rows: int = 4096, progress: bool = True,
            model_meta: dict[str, Any] | None = None) -> CertificationReport:  # fmt: skip
    """Certified accuracy of ``model`` (eval mode, fp32, as the lab's evaluator judges) on images
    ``x`` [N, C, H, W] in [0, 1] with labels ``y`` [N] at each L-inf radius of ``eps``.

    ``batch_size`` images are bounded at once; ``max_rows`` caps a CROWN backward pass (rows =
    images x specifications). Raises LabError for a bad radius or method, or a model whose
    operations the bounds do not support (named).
    """
    check_method(method)
    eps_list = check_eps(list(eps), "linf")
    x = check_images(x)
    if y.shape != (x.shape[0],):
        raise LabError(f"labels must be shaped [{x.shape[0]}], got {tuple(y.shape)}")
    if batch_size < 1:
        raise LabError(f"the certification batch size must be >= 1, got {batch_size}")
    t0 = time.perf_counter()
    n = x.shape[0]
    results: list[CertifiedResult] = []
    with frozen_eval(model), torch.no_grad():
        bounder = Bounder(model)
        correct = torch.cat([model(x[i:i + batch_size].float()).argmax(1) == y[i:i + batch_size]
                             for i in range(0, n, batch_size)])  # fmt: skip
        clean = float(correct.double().mean())
        bar = progress_bar(total=n * len(eps_list), desc=f"certify ({method})", unit="img", enabled=progress)
        try:
            for e in eps_list:
                t1 = time.perf_counter()
                bar.set_description(f"certify ({method}) eps={e:g}")
                ok = torch.zeros(n, dtype=torch.bool, device=x.device)
                worst = torch.full((n,), float("-inf"), device=x.device)
                by_method = dict.fromkeys(_CASCADE[method], 0)
                for i in range(0, n, batch_size):
                    xb, yb = x[i:i + batch_size].float(), y[i:i + batch_size]
                    cb = correct[i:i + batch_size]
                    okb = torch.zeros_like(cb)
                    wb = torch.full((xb.shape[0],), float("-inf"), device=x.device)
                    for m in _CASCADE[method]:
                        todo = (cb & ~okb).nonzero().flatten()
                        if todo.numel() == 0:
                            break
                        margins = bounder.margins(xb[todo], yb[todo], e, m, max_rows=max_rows)  # type: ignore[arg-type]
                        wb[todo] = torch.maximum(wb[todo], margins.min(1).values)
                        new = certified(margins)
                        okb[todo[new]] = True
                        by_method[m] += int(new.sum())
                    ok[i:i + batch_size], worst[i:i + batch_size] = okb, wb
                    bar.update(xb.shape[0])
                margin = worst[correct]
                results.append(CertifiedResult(
                    eps=e, clean_accuracy=clean, certified_accuracy=float(ok.double().mean()),
                    certified_examples=ok.nonzero().flatten().tolist(),
                    median_margin=float(margin.median()) if margin.numel() else float("nan"),
                    seconds=time.perf_counter() - t1, by_method=by_method,
                ))  # fmt: skip
        finally:
            bar.close()
    meta = {"created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), "torch": torch.__version__,
            "device": str(x.device), "batch_size": batch_size, "max_rows": max_rows}  # fmt: skip
    return CertificationReport(model=dict(model_meta or {}), method=method, norm="linf", eps=eps_list, n=n,
                               clean_accuracy=clean, results=results, seconds=time.perf_counter() - t0,
                               meta=meta)  # fmt: skip


def sandwich_check(cert: CertificationReport, report: RobustnessReport) -> MaskingCheck:
    """``certified <= attacked`` per image at every radius both evaluated, on the same images.

    FAIL (a bug, said loudly) when an image the bounds certified was fooled by an attack, or
    the certified accuracy exceeds the attacked one; not run when they share no radius or were
    made on different images.
    """
    if cert.n != report.n or cert.meta.get("data") != report.meta.get("data"):
        return MaskingCheck(SANDWICH_CHECK, None, "not run: the certification and the attacks saw "
                            "different images")  # fmt: skip
    bad: list[str] = []
    numbers: dict[str, Any] = {}
    shared = 0
    for c in cert.results:
        try:
            r = report.result_at(c.eps)
        except KeyError:
            continue
        shared += 1
        fooled = sorted(set(c.certified_examples) - set(r.robust_examples))
        numbers[f"{c.eps:g}"] = {"certified": c.certified_accuracy, "attacked": r.robust_accuracy,
                                 "certified_but_fooled": fooled[:20]}  # fmt: skip
        if fooled or c.certified_accuracy > r.robust_accuracy + 1e-12:
            bad.append(f"eps {c.eps:g}: {len(fooled)} certified image(s) fooled by an attack (first: "
                       f"{fooled[:5]}), certified {c.certified_accuracy:.2%} vs attacked {r.robust_accuracy:.2%}")
    if not shared:
        return MaskingCheck(SANDWICH_CHECK, None, "not run: no radius both certified and attacked")
    if bad:
        return MaskingCheck(SANDWICH_CHECK, False, "BUG: certified above attacked: " + "; ".join(bad)
                            + ". A certified image cannot be fooled: the bounds, the attack's verification or "
                            "the model's determinism is broken", numbers)  # fmt: skip
    return MaskingCheck(SANDWICH_CHECK, True, f"every certified image survived every attack at {shared} "
                        "radius(es)", numbers)  # fmt: skip
