"""``lab explain``: explanation maps of a few images, clean and attacked, for one model or
several side by side; with ``--metrics`` the quality of each method too."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch

from attacks import ATTACKS
from explain.quality import quality_table
from lab.cli.common import one_eps, print_notes
from lab.core.epsilon import default_eps, format_eps
from lab.core.errors import LabError
from lab.core.io import atomic_write_json
from lab.core.runtime import pick_device
from lab.data.pixels import to_float
from lab.evaluation.report import jsonable
from lab.present.explanations import explain_summary, write_explain_run
from lab.present.inside import drift_lines, write_inside
from lab.runs.attack import resolve_target
from lab.runs.explain import resolve_methods, run_explain
from lab.runs.inside import inside_models
from lab.runs.samples import Samples, from_files, from_test_set
from lab.training.checkpoint import Checkpoint, load_model


def parse_index_range(text: str) -> tuple[int, int]:
    """``"0:16"`` -> (0, 16); ``"5"`` -> (5, 6). LabError otherwise."""
    start, sep, stop = text.strip().partition(":")
    try:
        a = int(start) if start.strip() else 0
        b = int(stop) if sep else a + 1
    except ValueError:
        raise LabError(f"--images {text!r} must be START:STOP test-set indices, e.g. 0:16") from None
    if a < 0 or b <= a:
        raise LabError(f"--images {text!r} must satisfy 0 <= START < STOP, e.g. 0:16")
    return a, b


def _samples(args: argparse.Namespace, ckpts: list[Checkpoint], default: str, one: bool = False) -> Samples:
    """The --image files, or the --images test images (``default`` without; ``one``: the first
    only), which every model must have been trained on."""
    first = ckpts[0].info
    if args.image_files:
        samples = from_files(args.image_files, first)
        print_notes(samples)
        return samples
    start, stop = parse_index_range(args.images or default)
    for c in ckpts[1:]:
        if c.info.dataset != first.dataset:
            raise LabError(f"test images of {first.dataset} cannot go to a model trained on {c.info.dataset}; "
                           "give --image files")  # fmt: skip
    return from_test_set(first, 1 if one else stop - start, start, args.data_dir)


def run(args: argparse.Namespace) -> int:
    if args.layers:
        return _inside(args)
    if not args.method:
        raise LabError("lab explain needs --method (e.g. --method ig,gradcam), or --layers to look inside the network")
    methods = resolve_methods(args.method)  # unknown method: fail before loading anything
    if args.image_files and args.images:
        raise LabError("give either --image files or --images START:STOP test images, not both")
    eps = None
    if args.eps is not None:
        if args.attack is None:
            raise LabError("--eps needs --attack")
        eps = one_eps(args.eps, args.norm, "explain")
    if args.attack is not None:
        ATTACKS.get(args.attack)
    device = pick_device(args.device)
    runs = [args.model] if args.model else list(args.compare)
    ckpts = [load_model(r, device) for r in runs]
    first = ckpts[0].info
    target = resolve_target(first.class_names, args.target) if args.target is not None else None
    samples = _samples(args, ckpts, "0:8")
    result = run_explain(ckpts, methods, samples.x, samples.y, attack=args.attack, eps=eps, norm=args.norm,
                         target=target, quick=args.quick, names=samples.names, source=samples.source)  # fmt: skip
    out = Path(args.out) if args.out else ckpts[0].path.parent / "explain"
    paths = write_explain_run(result, out)
    for line in explain_summary(result):
        print(line)
    w, h = paths["size"]
    print(f"{paths['png'].name} ({w}x{h}) and {paths['json'].name} -> {out}")
    if args.metrics:
        _explain_metrics(args, ckpts, methods, samples, eps, out)
    return 0


def _explain_metrics(args: argparse.Namespace, ckpts: list[Checkpoint], methods: list[str], samples: Samples,
                     eps: float | None, out: Path) -> None:  # fmt: skip
    """``lab explain --metrics``: the quality table per model, printed and written to metrics.json."""
    if samples.y is None:
        raise LabError("--metrics needs labelled test images (--images), not --image files")
    tables: dict[str, Any] = {}
    for ck in ckpts:
        dev = next(ck.model.parameters()).device
        x = to_float(samples.x, dev)
        y = torch.as_tensor(samples.y).to(dev, torch.int64)
        table = quality_table(ck.model, x, y, methods, quick=args.quick, attack=args.attack, eps=eps, norm=args.norm)
        tables[str(ck.path.parent)] = table
        print(f"\n{ck.path.parent}: deletion AUC (lower is better) / insertion AUC (higher), random map "
              f"{next(iter(table.values()))['random_deletion_auc']:.3f} / "
              f"{next(iter(table.values()))['random_insertion_auc']:.3f}")  # fmt: skip
        for name, row in table.items():
            ua = row.get("under_attack")
            extra = f"  clean-vs-adv Spearman {ua['spearman']:.2f}, top-10% IoU {ua['top_k_iou']:.2f}" if ua else ""
            print(f"  {name:22s} del {row['deletion_auc']:.3f}  ins {row['insertion_auc']:.3f}  "
                  f"infidelity {row['infidelity']:.3g}  sensitivity {row['sensitivity']:.3g}  sanity "
                  f"{'PASS' if row['sanity']['passed'] else 'FAIL'} (rho {row['sanity']['final_spearman']:.2f}){extra}")
    atomic_write_json(out / "metrics.json", jsonable({"images": samples.names, "models": tables}))
    print(f"metrics.json -> {out}")


def _inside(args: argparse.Namespace) -> int:
    """``lab explain --layers``: inside the network for one image, per model (see lab.runs.inside)."""
    if args.method or args.metrics:
        raise LabError("--layers looks inside the network; it takes no --method or --metrics (run those separately)")
    attack = args.attack or "pgd"
    ATTACKS.get(attack)
    if len(args.image_files) > 1:
        raise LabError(f"--layers looks at one image, got {len(args.image_files)} --image files")
    device = pick_device(args.device)
    runs = [args.model] if args.model else list(args.compare)
    ckpts = [load_model(r, device) for r in runs]
    first = ckpts[0].info
    for c in ckpts[1:]:
        if tuple(c.info.input_shape) != tuple(first.input_shape):
            raise LabError(f"{c.path.parent} takes images {tuple(c.info.input_shape)}, not {tuple(first.input_shape)}")
    eps = one_eps(args.eps, args.norm, "explain") if args.eps is not None else default_eps(first, args.norm)
    samples = _samples(args, ckpts, "0:1", one=True)
    label = None if samples.y is None else int(samples.y[0])
    names = [str(c.path.parent.name) for c in ckpts]
    result = inside_models(ckpts, samples.x[0], label, attack=attack, settings={}, eps=eps, norm=args.norm,
                           names=names)  # fmt: skip
    out = Path(args.out) if args.out else ckpts[0].path.parent / "inside"
    paths = write_inside(result, out)
    classes = list(first.class_names)
    print(f"image {samples.names[0]}; {attack} at eps {format_eps(eps)} ({args.norm}), each model attacked on its own")
    for r in result:
        o = r.attack.images[0]
        print(f"  {r.name}: {classes[o.prediction_before]} -> {classes[o.prediction_after]}"
              f"{' (fooled)' if o.prediction_after != o.prediction_before else ''}")  # fmt: skip
    print("relative L2 drift between the adversarial and the clean activations, layer by layer:")
    for line in drift_lines(result):
        print(f"  {line}")
    files = [paths["json"], paths["drift"], *paths["maps"], *paths["filters"]]
    print(f"{', '.join(p.name for p in files)} -> {out}")
    return 0
