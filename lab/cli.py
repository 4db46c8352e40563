"""The ``lab`` command line. It parses arguments and renders what the Python API returns.

Exit codes: 0 success, 1 a threshold missed or an unverified number refused (``lab eval
--fail-under``), 2 a user mistake (one sentence on stderr, no traceback), 130 interrupted.
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


def _add_precision(p: argparse.ArgumentParser) -> None:
    p.add_argument("--precision", choices=["auto", "fp32", "bf16"],
                   help="the lab's gradient attacks steer in bf16 where the hardware has it (auto, the default) and "
                        "confirm every success in fp32; fp32 runs everything in fp32 (so does $LAB_PRECISION=fp32)")


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

    _add_eval_parser(sub)
    _add_attack_parser(sub)
    _add_explain_parser(sub)

    p = sub.add_parser("data", help="fetch datasets and show where they come from")
    dsub = p.add_subparsers(dest="data_command", required=True, parser_class=_Parser)
    names = ", ".join(DATASET_NAMES) + ", imagefolder:<path>"
    for verb, text in (("fetch", "find, verify and cache a dataset"), ("info", "source, sizes, checksums, classes")):
        q = dsub.add_parser(verb, help=text)
        q.add_argument("name", help=names)
        _add_data_dir(q)
        q.add_argument("--json", action="store_true", help="print JSON")
    return parser


_EPS_HELP = "epsilons: 0.3, 8/255, a list 0,0.1,0.2,0.3 or an inclusive range 0:0.3:0.05"


def _add_eval_parser(sub: Any) -> None:
    p = sub.add_parser("eval", help="robust accuracy of a model under a suite of attacks, with a report", description=(
        "Evaluate a trained model on the first --n test images of its dataset under a suite of attacks "
        "over one or more epsilons; print the table, write report.json / report.md / accuracy_vs_eps.png. "
        "Exit 1 when --fail-under is missed."))  # fmt: skip
    p.add_argument("--model", required=True, help="run folder or model.safetensors")
    p.add_argument("--suite", help="quick | standard | extended | autoattack (default: quick when no --attack is given)")
    p.add_argument("--attack", dest="attacks", action="append", default=[], metavar="NAME",
                   help="an attack to run besides the suite (repeatable)")  # fmt: skip
    p.add_argument("--eps", help=_EPS_HELP + " (default: 0.3 L-inf / 1.5 L2 on grayscale data, 8/255 / 0.5 on RGB)")
    p.add_argument("--norm", choices=["linf", "l2"], default="linf", help="threat model (default: linf)")
    p.add_argument("--n", type=int, default=1000, help="number of test images (default: 1000)")
    p.add_argument("--offset", type=int, default=0, help="index of the first test image (default: 0)")
    p.add_argument("--batch-size", type=int, default=500, help="attack batch size (default: 500)")
    p.add_argument("--no-checks", action="store_true", help="skip the gradient-masking checks")
    p.add_argument("--probe-n", type=int, default=200, help="examples the masking checks use (default: 200)")
    p.add_argument("--report", help="folder for the report files (default: RUN/eval/<suite or attacks>-<norm>)")
    p.add_argument("--fail-under", type=float, metavar="T",
                   help="exit 1 when the headline robust accuracy is below T, a fraction in [0, 1], or when it is "
                        "unverified: a gradient-masking check failed, none ran, or only weak attacks ran")  # fmt: skip
    p.add_argument("--accept-unverified", action="store_true",
                   help="let --fail-under pass an unverified number (failed or skipped checks, weak attacks only)")
    _add_precision(p)
    _add_data_dir(p)
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default: auto)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def _add_attack_parser(sub: Any) -> None:
    p = sub.add_parser("attack", help="run one attack on a few images and save them", description=(
        "Run one attack on the first --n test images of the model's dataset (or on --image files) and write "
        "clean / adversarial / amplified perturbation PNGs and attack.json to --out."))  # fmt: skip
    p.add_argument("--model", required=True, help="run folder or model.safetensors")
    p.add_argument("--attack", required=True, help="attack name, e.g. fgsm, pgd")
    p.add_argument("--eps", help="one epsilon, e.g. 0.3 or 8/255 (default: 0.3 L-inf / 1.5 L2 grayscale, "
                   "8/255 / 0.5 RGB)")  # fmt: skip
    p.add_argument("--norm", choices=["linf", "l2"], default="linf", help="threat model (default: linf)")
    p.add_argument("--steps", type=int, help="iterations (iterative attacks)")
    p.add_argument("--restarts", type=int, help="random restarts (PGD)")
    p.add_argument("--alpha", help="step size, e.g. 0.01 or 2/255")
    p.add_argument("--loss", help="ce | margin | dlr")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--target", metavar="CLASS", help="targeted attack towards this class (index or name)")
    g.add_argument("--targeted-random", action="store_true", help="targeted attack towards a random other class")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="any other setting of the attack, e.g. --param momentum=0.9 (repeatable)")  # fmt: skip
    p.add_argument("--n", type=int, help="number of test images (default: 16)")
    p.add_argument("--offset", type=int, default=0, help="index of the first test image (default: 0)")
    p.add_argument("--image", dest="images", action="extend", nargs="+", default=[], metavar="PATH",
                   help="attack these PNG/JPEG files instead of test images (their labels: the clean predictions)")  # fmt: skip
    _add_data_dir(p)
    p.add_argument("--out", help="output folder (default: RUN/attack/<attack>-<norm>-<eps>)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default: auto)")
    p.add_argument("--seed", type=int, help="the attack's random seed (default: 0)")
    _add_precision(p)


def _add_explain_parser(sub: Any) -> None:
    p = sub.add_parser("explain", help="explanation maps of a few images, clean and attacked", description=(
        "Explain test images of the model's dataset (or --image files) with one or more methods; with --attack "
        "also the adversarial images. --compare puts several models side by side on the same images. Writes "
        "explanations.png (the grid) and explanations.json to --out."))  # fmt: skip
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--model", help="run folder or model.safetensors")
    g.add_argument("--compare", nargs="+", metavar="RUN", help="several models on the same images (rows by model)")
    p.add_argument("--method", required=True, help="comma-separated methods, e.g. ig,gradcam,attention "
                   "(aliases: ig, sg, ixg, gbp, shap)")  # fmt: skip
    p.add_argument("--images", metavar="START:STOP", help="test-set indices, e.g. 0:16 (default: 0:8)")
    p.add_argument("--image", dest="image_files", action="extend", nargs="+", default=[], metavar="PATH",
                   help="explain these PNG/JPEG files instead of test images")  # fmt: skip
    p.add_argument("--attack", help="also explain adversarial images from this attack, e.g. pgd")
    p.add_argument("--eps", help="the attack's epsilon, e.g. 0.3 or 8/255 (default: 0.3 L-inf / 1.5 L2 "
                   "grayscale, 8/255 / 0.5 RGB)")  # fmt: skip
    p.add_argument("--norm", choices=["linf", "l2"], default="linf", help="the attack's threat model (default: linf)")
    p.add_argument("--target", metavar="CLASS", help="explain this class (index or name) instead of the prediction")
    p.add_argument("--quick", action="store_true", help="each method's cheap preview settings (fewer samples/steps)")
    p.add_argument("--metrics", action="store_true",
                   help="also measure each method: deletion/insertion AUC vs a random map, infidelity, "
                        "sensitivity, the model-randomization sanity check and, with --attack, map similarity "
                        "under attack (written to metrics.json)")  # fmt: skip
    _add_data_dir(p)
    p.add_argument("--out", help="output folder (default: RUN/explain)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default: auto)")


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


def cmd_eval(args: argparse.Namespace) -> int:
    from lab.checkpoint import load_model
    from lab.epsilon import parse_eps
    from lab.eval_run import check_threshold, default_report_dir, eval_specs, evaluate_checkpoint, gate
    from lab.evaluation import check_eps
    from lab.render import headline_text, report_table, use_color, write_report
    from lab.runtime import pick_device

    threshold = check_threshold(args.fail_under)
    eps = check_eps(parse_eps(args.eps), args.norm) if args.eps is not None else None
    eval_specs(args.suite, args.attacks)  # unknown suite / attack: fail before loading anything
    ckpt = load_model(args.model, pick_device(args.device))
    report = evaluate_checkpoint(
        ckpt, suite=args.suite, attacks=args.attacks, eps=eps, norm=args.norm, n=args.n, offset=args.offset,
        batch_size=args.batch_size, checks=not args.no_checks, probe_n=args.probe_n, data_dir=args.data_dir,
        progress=not args.no_progress, precision=args.precision,
    )  # fmt: skip
    out = Path(args.report) if args.report else default_report_dir(ckpt, args.suite, args.attacks, args.norm)
    paths = write_report(report, out)
    print(report_table(report, color=use_color(sys.stdout)))
    print()
    print(headline_text(report))
    for w in report.warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(f"report: {paths['json']} (+ {paths['markdown'].name}, {paths['plot'].name})")
    verdict = gate(report, threshold, accept_unverified=args.accept_unverified)
    if verdict is None:
        return 0
    print(f"{'passed' if verdict.passed else 'FAILED'}: {verdict.reason}")
    return 0 if verdict.passed else 1


def cmd_attack(args: argparse.Namespace) -> int:
    from lab.attack_run import (
        attack_setting_names,
        attack_settings,
        parse_params,
        resolve_target,
        run_attack,
    )
    from lab.checkpoint import load_model
    from lab.epsilon import default_eps, parse_eps
    from lab.evaluation import check_eps
    from lab.render import attack_summary, write_attack_run
    from lab.runtime import pick_device
    from lab.samples import from_files, from_test_set

    settings: dict[str, Any] = parse_params(args.param)
    for key in ("steps", "restarts", "alpha", "loss", "seed"):
        value = getattr(args, key)
        if value is None:
            continue
        if key in settings:
            raise LabError(f"{key} is given twice (--{key} and --param {key}=...)")
        settings[key] = value  # a flag the attack does not take is refused below, by name
    if "seed" not in settings and "seed" in attack_setting_names(args.attack):
        settings["seed"] = 0
    if args.precision is not None:
        if "precision" in settings:
            raise LabError("precision is given twice (--precision and --param precision=...)")
        if "precision" in attack_setting_names(args.attack):
            settings["precision"] = args.precision
        elif args.precision == "bf16":
            raise LabError(f"attack {args.attack!r} has no bf16 path (it always runs in fp32); drop --precision")
    settings = attack_settings(args.attack, settings)  # unknown keys: one sentence naming the valid ones
    if args.eps is not None:
        values = parse_eps(args.eps)
        if len(values) != 1:
            raise LabError(f"lab attack takes one epsilon, got {len(values)} ({args.eps}); use lab eval for a sweep")
        check_eps(values, args.norm)
    if args.images and (args.n is not None or args.offset):
        raise LabError("give either --image files or --n/--offset test images, not both")
    ckpt = load_model(args.model, pick_device(args.device))
    eps = values[0] if args.eps is not None else default_eps(ckpt.info, args.norm)
    target: int | str | None = "random" if args.targeted_random else None
    if args.target is not None:
        target = resolve_target(ckpt.info.class_names, args.target)  # before any data is loaded
    if args.images:
        samples = from_files(args.images, ckpt.info)
        for note in samples.notes:
            print(f"note: {note}", file=sys.stderr)
    else:
        samples = from_test_set(ckpt.info, args.n if args.n is not None else 16, args.offset, args.data_dir)
    result = run_attack(ckpt, args.attack, settings, eps, args.norm, samples.x, samples.y, target,
                        names=samples.names, test_indices=samples.test_indices, source=samples.source)  # fmt: skip
    out = Path(args.out) if args.out else ckpt.path.parent / "attack" / f"{args.attack}-{args.norm}-{eps:g}"
    paths = write_attack_run(result, out)
    print(attack_summary(result))
    print(f"images and {paths['json'].name} -> {out}")
    return 0


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


def cmd_explain(args: argparse.Namespace) -> int:
    from explain.run import explain_summary, resolve_methods, run_explain, write_explain_run
    from lab.attack_run import resolve_target
    from lab.checkpoint import load_model
    from lab.epsilon import parse_eps
    from lab.evaluation import check_eps
    from lab.runtime import pick_device
    from lab.samples import from_files, from_test_set

    methods = resolve_methods(args.method)  # unknown method: fail before loading anything
    if args.image_files and args.images:
        raise LabError("give either --image files or --images START:STOP test images, not both")
    eps = None
    if args.eps is not None:
        if args.attack is None:
            raise LabError("--eps needs --attack")
        values = parse_eps(args.eps)
        if len(values) != 1:
            raise LabError(f"lab explain takes one epsilon, got {len(values)} ({args.eps})")
        check_eps(values, args.norm)
        eps = values[0]
    if args.attack is not None:
        from attacks import ATTACKS

        ATTACKS.get(args.attack)
    device = pick_device(args.device)
    runs = [args.model] if args.model else list(args.compare)
    ckpts = [load_model(r, device) for r in runs]
    first = ckpts[0].info
    target = resolve_target(first.class_names, args.target) if args.target is not None else None
    if args.image_files:
        samples = from_files(args.image_files, first)
        for note in samples.notes:
            print(f"note: {note}", file=sys.stderr)
    else:
        start, stop = parse_index_range(args.images or "0:8")
        for c in ckpts[1:]:
            if c.info.dataset != first.dataset:
                raise LabError(f"test images of {first.dataset} cannot go to a model trained on {c.info.dataset}; "
                               "give --image files")  # fmt: skip
        samples = from_test_set(first, stop - start, start, args.data_dir)
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


def _explain_metrics(args: argparse.Namespace, ckpts: list[Any], methods: list[str], samples: Any,
                     eps: float | None, out: Path) -> None:  # fmt: skip
    """``lab explain --metrics``: the quality table per model, printed and written to metrics.json."""
    import torch

    from explain.quality import quality_table
    from lab.io import atomic_write_json
    from lab.report import jsonable

    if samples.y is None:
        raise LabError("--metrics needs labelled test images (--images), not --image files")
    tables: dict[str, Any] = {}
    for ck in ckpts:
        dev = next(ck.model.parameters()).device
        x = torch.as_tensor(samples.x).to(dev)
        x = x.float().div(255) if x.dtype == torch.uint8 else x.float()
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


COMMANDS = {"train": cmd_train, "eval": cmd_eval, "attack": cmd_attack, "explain": cmd_explain,
            "models": cmd_models, "data": cmd_data}  # fmt: skip


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
