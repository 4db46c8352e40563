"""``lab attack``: one attack on a few test images (or image files); PNGs and attack.json."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from lab.cli.common import one_eps, print_notes
from lab.core.epsilon import default_eps
from lab.core.errors import LabError
from lab.core.runtime import pick_device
from lab.present.files import write_attack_run
from lab.present.terminal import attack_summary
from lab.runs.attack import attack_setting_names, attack_settings, parse_params, resolve_target, run_attack
from lab.runs.samples import from_files, from_test_set
from lab.training.checkpoint import load_model

#: flags that are attack settings, as ``--param KEY=VALUE`` would give them
SETTING_FLAGS = ("steps", "restarts", "alpha", "loss", "seed")


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    """The attack's settings from ``--param`` and the setting flags, checked against the attack."""
    settings: dict[str, Any] = parse_params(args.param)
    for key in SETTING_FLAGS:
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
    return attack_settings(args.attack, settings)  # unknown keys: one sentence naming the valid ones


def run(args: argparse.Namespace) -> int:
    settings = _settings(args)
    eps_given = one_eps(args.eps, args.norm, "attack", "; use lab eval for a sweep") if args.eps is not None else None
    if args.images and (args.n is not None or args.offset):
        raise LabError("give either --image files or --n/--offset test images, not both")
    ckpt = load_model(args.model, pick_device(args.device))
    eps = eps_given if eps_given is not None else default_eps(ckpt.info, args.norm)
    target: int | str | None = "random" if args.targeted_random else None
    if args.target is not None:
        target = resolve_target(ckpt.info.class_names, args.target)  # before any data is loaded
    if args.images:
        samples = from_files(args.images, ckpt.info)
        print_notes(samples)
    else:
        samples = from_test_set(ckpt.info, args.n if args.n is not None else 16, args.offset, args.data_dir)
    result = run_attack(ckpt, args.attack, settings, eps, args.norm, samples.x, samples.y, target,
                        names=samples.names, test_indices=samples.test_indices, source=samples.source)  # fmt: skip
    out = Path(args.out) if args.out else ckpt.path.parent / "attack" / f"{args.attack}-{args.norm}-{eps:g}"
    paths = write_attack_run(result, out)
    print(attack_summary(result))
    print(f"images and {paths['json'].name} -> {out}")
    return 0
