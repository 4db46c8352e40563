"""``lab train``: train a model from a TOML recipe, or continue a run with ``--resume``."""

from __future__ import annotations

import argparse
from pathlib import Path

from lab.core.errors import LabError
from lab.core.text import pct
from lab.training.config import load_config
from lab.training.loop import train


def run(args: argparse.Namespace) -> int:
    overrides = list(args.overrides)
    if args.device:
        overrides.append(f"runtime.device={args.device}")
    if args.data_dir:
        overrides.append(f"data.data_dir={args.data_dir}")
    if args.resume:
        if not args.out:
            raise LabError("--resume needs --out, the run folder to continue")
        cfg = load_config(args.config, overrides) if args.config else None
        result = train(cfg, args.out, resume=True, overrides=tuple(overrides), progress=not args.no_progress)
    else:
        if not args.config:
            raise LabError("lab train needs --config RECIPE.toml (see configs/)")
        cfg = load_config(args.config, overrides)
        out = args.out or str(Path("runs") / cfg.name)
        result = train(cfg, out, progress=not args.no_progress)
    m = result.metrics
    print(
        f"test accuracy {pct(m['test_acc'])}  ({result.model.info.arch} on {result.model.info.dataset}, "
        f"{len(result.history)} epochs, {result.wall_time_s:.1f} s)  -> {result.out_dir}"
    )
    return 0
