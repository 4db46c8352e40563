"""``lab reproduce``: the published defenses of a benchmark, trained with the lab's recipes,
evaluated with the official AutoAttack, beside the published AutoAttack numbers.

A benchmark is one data file, ``configs/reproduce/<name>.toml``: the dataset, the norm and
radius, the source of the published numbers, a test-set size per budget, and per model a
recipe per budget (``cpu``: shortened for a 2-core machine; ``paper``: the papers'
schedules) and the published number with its own test-set size. It is a sweep underneath
(:func:`benchmark_spec`): the same store, so it resumes where it stopped.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomllib

from lab.core.errors import ConfigError, LabError
from lab.experiments.spec import SweepSpec, spec_from_dict
from lab.experiments.store import Store
from lab.experiments.tables import records

BUDGETS = ("cpu", "paper")
#: where the benchmark files are: the repository's configs/reproduce (a clone or an editable install)
BENCHMARK_DIR = Path(__file__).resolve().parents[2] / "configs" / "reproduce"


@dataclass
class Benchmark:
    """A benchmark file, read: what ``lab reproduce NAME`` trains, evaluates and compares with."""

    name: str
    title: str
    dataset: str
    norm: str
    eps: float
    source: str
    budgets: dict[str, dict[str, Any]]
    models: list[dict[str, Any]]
    path: Path = field(default_factory=Path)


def benchmark_names(folder: Path = BENCHMARK_DIR) -> list[str]:
    return sorted(p.stem for p in folder.glob("*.toml")) if folder.is_dir() else []


def load_benchmark(name: str, folder: Path = BENCHMARK_DIR) -> Benchmark:
    """``configs/reproduce/<name>.toml``, checked (LabError naming the benchmarks otherwise)."""
    path = folder / f"{name}.toml"
    if not path.is_file():
        known = benchmark_names(folder)
        hint = f"; choose one of: {', '.join(known)}" if known else f" (no benchmark files in {folder})"
        raise LabError(f"unknown benchmark {name!r}{hint}")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"benchmark file {str(path)!r} is not valid TOML ({exc})") from None
    models = raw.get("model") or []
    for m in models:
        for budget in BUDGETS:
            if not isinstance(m.get(budget), dict) or "recipe" not in m[budget]:
                raise ConfigError(f"benchmark {name!r}: model {m.get('name')!r} needs a {budget} = {{ recipe = ... }}")
    return Benchmark(name=str(raw.get("benchmark", name)), title=str(raw.get("title", name)),
                     dataset=str(raw["dataset"]), norm=str(raw.get("norm", "linf")), eps=float(raw["eps"]),
                     source=str(raw.get("source", "")), budgets=dict(raw.get("budget", {})), models=models,
                     path=path)  # fmt: skip


def benchmark_spec(bench: Benchmark, budget: str = "cpu", n: int | None = None, data_dir: str = "") -> SweepSpec:
    """The sweep behind ``lab reproduce``: each model's ``budget`` recipe, then AutoAttack
    (standard) at radii 0 and the benchmark's on the first ``n`` test images."""
    if budget not in BUDGETS:
        raise LabError(f"unknown budget {budget!r}; choose one of: {', '.join(BUDGETS)}")
    n = int(n if n is not None else bench.budgets.get(budget, {}).get("n", 1000))
    if n < 1:
        raise LabError(f"--n must be >= 1, got {n}")
    raw = {
        "name": f"reproduce-{bench.name}-{budget}",
        "seeds": [0],
        "data_dir": data_dir,
        "model": [{"name": m["name"], "recipe": m[budget]["recipe"], "set": dict(m[budget].get("set", {}))}
                  for m in bench.models],
        "evaluate": [{"suite": "autoattack", "norm": bench.norm, "eps": [0.0, bench.eps], "n": n}],
    }  # fmt: skip
    return spec_from_dict(raw, bench.path)


@dataclass
class ReproRow:
    """One model's line: the lab's numbers (None until its cells finished) and the published one."""

    name: str
    title: str
    clean: float | None
    autoattack: float | None
    n: int | None
    train_seconds: float | None
    eval_seconds: float | None
    test_acc: float | None
    masking_failed: int | None
    published: float | None
    published_n: int | None
    published_model: str
    #: what the catastrophic-overfitting guard did in training (a rollback, a stop), in words
    training_note: str = ""


def reproduce_rows(bench: Benchmark, folder: str | os.PathLike[str]) -> list[ReproRow]:
    """The comparison, read from the sweep's store in ``folder``."""
    recs = records(folder)
    with Store(Path(folder)) as store:
        results = {r.key: r.result for r in store.cells()}
    out = []
    for m in bench.models:
        mine = [r for r in recs if r.get("model") == m["name"]]

        def one(metric: str, eps: float | None = None, mine: list[dict[str, Any]] = mine) -> float | None:
            for r in mine:
                if r["metric"] == metric and (eps is None or (r["eps"] is not None and abs(r["eps"] - eps) < 1e-9)):
                    return r["value"]  # type: ignore[no-any-return]
            return None

        n_eval = next((r for r in mine if r["kind"] == "evaluate"), None)
        train_cell = next((r for r in mine if r["kind"] == "train"), None)
        pub = m.get("published") or {}
        out.append(ReproRow(
            name=m["name"], title=str(m.get("title", m["name"])), clean=one("clean_accuracy"),
            autoattack=one("robust_accuracy", bench.eps), n=_eval_n(results.get(n_eval["cell"], {})) if n_eval else None,
            train_seconds=one("train_seconds"), eval_seconds=one("eval_seconds"), test_acc=one("test_acc"),
            masking_failed=int(v) if (v := one("masking_failed")) is not None else None,
            published=pub.get("autoattack"), published_n=pub.get("n"), published_model=str(pub.get("model", "")),
            training_note=_guard_note(results.get(train_cell["cell"], {})) if train_cell else "",
        ))  # fmt: skip
    return out


def _eval_n(result: dict[str, Any]) -> int | None:
    n = result.get("n")
    return int(n) if n is not None else None


def _guard_note(result: dict[str, Any]) -> str:
    events = result.get("guard_events") or []
    return "; ".join(f"the catastrophic-overfitting guard {'stopped' if e.get('action') == 'stop' else 'rolled back'} "
                     f"training at epoch {e.get('epoch')} (PGD accuracy {100 * float(e.get('pgd_acc', 0)):.1f}%)"
                     for e in events)  # fmt: skip
