"""Tiny sweeps for the tests: Fashion-MNIST subsets (the Debian package), fp32, seconds per cell."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.cli_helpers import ROOT

#: a recipe on 1,024 training and 256 test images, one epoch, fp32 on the CPU
TINY_SET = {"data.dataset": "fashion-mnist", "data.train_subset": 1024, "data.test_subset": 256,
            "data.augment": "none", "train.epochs": 1, "train.batch_size": 64, "train.optimizer": "adam",
            "train.lr": 0.002, "train.schedule": "constant", "runtime.precision": "fp32",
            "runtime.channels_last": False}  # fmt: skip


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f'"{k}" = {_toml_value(x)}' for k, x in v.items()) + " }"
    return repr(v)


def tiny_sweep(folder: Path, *, seeds: tuple[int, ...] = (0,), models: tuple[str, ...] = ("standard", "fgsm"),
               eps: tuple[float, ...] = (0.0, 0.05, 0.1), n: int = 64, explain: tuple[str, ...] = (),
               extra: str = "", name: str = "tiny") -> Path:  # fmt: skip
    """Write a sweep file: the standard SmallCNN and an FGSM-RS-trained one (guard off) on the
    tiny recipe, the quick suite at ``eps`` on ``n`` test images (no masking checks), and
    ``explain`` methods."""
    recipe = str(ROOT / "configs" / "fashion_smallcnn.toml")
    tables = {
        "standard": {},
        "fgsm": {"defense.name": "fgsm_rs", "defense.eps": 0.1, "defense.alpha": 0.125, "defense.guard": "off"},
        "lenet": {"model.arch": "lenet5"},
    }
    lines = [f'name = "{name}"', f"seeds = {_toml_value(list(seeds))}", ""]
    for m in models:
        lines += ["[[model]]", f'name = "{m}"', f'recipe = "{recipe}"', f"set = {_toml_value({**TINY_SET, **tables[m]})}", ""]
    # the masking checks are the evaluator's (tested there); here they would take most of the time
    lines += ["[[evaluate]]", 'suite = "quick"', f"eps = {_toml_value(list(eps))}", f"n = {n}", "checks = false",
              "batch_size = 64", ""]  # fmt: skip
    if explain:
        lines += ["[[explain]]", f"methods = {_toml_value(list(explain))}", "n = 4", 'attack = "fgsm"', "eps = 0.1",
                  ""]  # fmt: skip
    path = folder / f"{name}.toml"
    path.write_text("\n".join(lines) + extra, encoding="utf-8")
    return path
