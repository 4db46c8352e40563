"""The ``lab`` command line. It parses arguments and renders what the Python API returns.

Exit codes: 0 success, 1 a threshold missed (later: ``--fail-under``), 2 a user mistake
(one sentence on stderr, no traceback), 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lab.errors import LabError

log = logging.getLogger("lab")

EXIT_USER_ERROR = 2


class _Parser(argparse.ArgumentParser):
    """argparse with our one-sentence error style (still exit code 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_USER_ERROR, f"error: {message}\n")


def _add_data_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", help="folder with your own copy of the dataset files (default: $LAB_DATA_DIR)")


def build_parser() -> argparse.ArgumentParser:
    from lab.data import DATASET_NAMES
    from lab.models import MODELS

    parser = _Parser(prog="lab", description="Train, attack, defend and explain image classifiers.")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and results")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("train", help="train a model from a TOML recipe", description=(
        "Train a model from a recipe. Architectures: " + ", ".join(MODELS.names()) + "."))  # fmt: skip
    p.add_argument("--config", help="recipe file, e.g. configs/mnist_smallcnn.toml")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a recipe value, e.g. --set train.epochs=3 (repeatable)")  # fmt: skip
    p.add_argument("--out", help="run folder (default: runs/<recipe name>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last finished epoch")
    p.add_argument("--device", choices=None, help="auto | cpu | cuda | cuda:N (default: the recipe's, auto)")
    _add_data_dir(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bars")

    p = sub.add_parser("models", help="list checkpoints under a folder with their metrics")
    p.add_argument("dir", nargs="?", default="runs", help="folder to search (default: runs)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")

    p = sub.add_parser("data", help="fetch datasets and show where they come from")
    dsub = p.add_subparsers(dest="data_command", required=True, parser_class=_Parser)
    names = ", ".join(DATASET_NAMES) + ", imagefolder:<path>"
    for verb, text in (("fetch", "find, verify and cache a dataset"), ("info", "source, sizes, checksums, classes")):
        q = dsub.add_parser(verb, help=text)
        q.add_argument("name", help=names)
        _add_data_dir(q)
        q.add_argument("--json", action="store_true", help="print JSON")
    return parser


# ---------------------------------------------------------------- commands


def cmd_train(args: argparse.Namespace) -> int:
    from lab.config import load_config
    from lab.train import train

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
        f"test accuracy {100 * m['test_acc']:.2f}%  ({result.model.info.arch} on {result.model.info.dataset}, "
        f"{len(result.history)} epochs, {result.wall_time_s:.1f} s)  -> {result.out_dir}"
    )
    return 0


def _fmt_pct(v: Any) -> str:
    return f"{100 * v:.2f}%" if isinstance(v, (int, float)) else "-"


def cmd_models(args: argparse.Namespace) -> int:
    from lab.checkpoint import list_checkpoints

    rows = list_checkpoints(args.dir)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print(f"no checkpoints under {args.dir}")
        return 0
    table = [("run", "arch", "dataset", "status", "epochs", "test acc", "defense")]
    for r in rows:
        if "error" in r:
            table.append((r["path"], "-", "-", r["error"], "-", "-", "-"))
            continue
        defense = r.get("defense") or "-"
        if isinstance(defense, dict):
            defense = defense.get("name", "?")
        table.append((r["path"], r["arch"], r["dataset"], r["status"], str(r.get("epochs") or "-"),
                      _fmt_pct(r["metrics"].get("test_acc")), str(defense)))  # fmt: skip
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    from lab.data import dataset_info, load_dataset

    if args.data_command == "fetch":
        ds = load_dataset(args.name, args.data_dir)
        info = dataset_info(args.name, args.data_dir)
        if args.json:
            print(json.dumps(info, indent=2))
        else:
            print(f"{ds.name}: {len(ds.train_y)} train + {len(ds.test_y)} test images {ds.input_shape}, "
                  f"from {ds.source}; fingerprint {ds.fingerprint[:16]}…")  # fmt: skip
        return 0
    info = dataset_info(args.name, args.data_dir)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    for key, value in info.items():
        if key == "files":
            print("files:")
            for f in value:
                sums = " ".join(f"{k} {f[k]}" for k in ("sha256", "md5") if k in f)
                print(f"  {f['path']}  {f.get('bytes', '?')} bytes  {sums}")
        elif isinstance(value, (list, tuple)):
            print(f"{key}: {', '.join(map(str, value))}")
        else:
            print(f"{key}: {value}")
    return 0


COMMANDS = {"train": cmd_train, "models": cmd_models, "data": cmd_data}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="%(message)s", stream=sys.stderr)
    try:
        return COMMANDS[args.command](args)
    except LabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # pragma: no cover - `lab models | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
