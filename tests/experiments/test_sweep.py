"""Sweeps end to end on tiny Fashion-MNIST models: the plan's keys, the store, resuming,
growing, failures, the lock, tables and plots, and `lab sweep` through its real entry point."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from sweep_helpers import tiny_sweep

import lab
from lab.core.errors import ConfigError, LabError
from lab.experiments import cells as cells_module
from lab.experiments.graph import plan
from lab.experiments.spec import load_spec, spec_from_dict
from lab.experiments.store import SCHEMA_VERSION, Store
from lab.experiments.sweep import run_sweep, sweep_lock, sweep_status
from lab.experiments.tables import records, stat, sweep_table
from lab.present.sweeps import save_plot, table_csv, table_markdown
from tests.cli_helpers import ROOT, assert_user_error, run_lab


@pytest.fixture
def done_sweep(finished_sweep: tuple[Path, Path]) -> tuple[Path, Path]:
    """The session's finished sweep (two models x two seeds, saliency): (sweep file, folder)."""
    return finished_sweep


# ---------------------------------------------------------------- the plan
def test_plan_orders_cells_after_their_dependencies_and_keys_are_stable(tmp_path: Path) -> None:
    spec = load_spec(tiny_sweep(tmp_path, seeds=(0, 1), explain=("saliency", "gradcam")))
    cells = plan(spec)
    kinds = [c.kind for c in cells]
    assert kinds.count("train") == 4 and kinds.count("evaluate") == 4 and kinds.count("explain") == 8
    seen: set[str] = set()
    for c in cells:
        assert set(c.deps) <= seen, f"{c.label} comes before what it needs"
        seen.add(c.key)
    assert len(seen) == len(cells), "two cells share a key"
    assert [c.key for c in plan(load_spec(tiny_sweep(tmp_path, seeds=(0, 1), explain=("saliency", "gradcam"))))] == [
        c.key for c in cells]


def test_a_key_changes_with_the_settings_the_seed_and_the_lab_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                                      ) -> None:  # fmt: skip
    base = {c.label: c.key for c in plan(load_spec(tiny_sweep(tmp_path)))}
    more_eps = {c.label: c.key for c in plan(load_spec(tiny_sweep(tmp_path, eps=(0.0, 0.1))))}
    train = "train standard seed=0"
    assert more_eps[train] == base[train]  # the model does not depend on the evaluation
    assert more_eps["eval standard seed=0 quick-linf"] != base["eval standard seed=0 quick-linf"]
    seed1 = {c.label: c.key for c in plan(load_spec(tiny_sweep(tmp_path, seeds=(1,))))}
    assert seed1["train standard seed=1"] != base[train]
    monkeypatch.setattr(lab, "__version__", "99.0")
    assert {c.label: c.key for c in plan(load_spec(tiny_sweep(tmp_path)))}[train] != base[train]


@pytest.mark.parametrize("raw, fragment", [
    ({"model": []}, "names no model"),
    ({"model": [{"name": "a", "recipe": "configs/fashion_smallcnn.toml"}], "sedes": [0]}, "did you mean 'seeds'"),
    ({"model": [{"name": "a"}]}, "exactly one of recipe"),
    ({"model": [{"name": "a", "recipe": "nowhere.toml"}]}, "does not exist"),
    ({"model": [{"name": "a", "recipe": "configs/fashion_smallcnn.toml", "classifier": "b"}]}, "not a model of"),
    ({"model": [{"name": "a", "recipe": "configs/fashion_smallcnn.toml"}], "evaluate": [{"suite": "nope"}]},
     "unknown suite"),
    ({"model": [{"name": "a", "recipe": "configs/fashion_smallcnn.toml"}], "evaluate": [{"eps": [-1]}]}, "epsilon"),
    ({"model": [{"name": "a", "recipe": "configs/fashion_smallcnn.toml"}], "explain": [{"methods": ["nope"]}]},
     "nope"),
    ({"model": [{"name": "a", "recipe": "configs/fashion_smallcnn.toml"}], "seeds": [-1]}, "seeds"),
])  # fmt: skip
def test_a_bad_sweep_file_is_one_sentence(raw: dict, fragment: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    with pytest.raises(LabError, match=None) as err:
        spec_from_dict(raw)
    assert fragment in str(err.value)


def test_vary_makes_one_model_per_value(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    spec = spec_from_dict({"model": [{"name": "m", "recipe": "configs/fashion_smallcnn.toml",
                                      "vary": {"model.arch": ["smallcnn", "lenet5"], "train.epochs": [1, 2]}}]})
    names = [m["name"] for m in spec.models]
    assert names == ["m[arch=smallcnn,epochs=1]", "m[arch=smallcnn,epochs=2]", "m[arch=lenet5,epochs=1]",
                     "m[arch=lenet5,epochs=2]"]  # fmt: skip
    with pytest.raises(ConfigError, match="vary must map"):
        spec_from_dict({"model": [{"name": "m", "recipe": "configs/fashion_smallcnn.toml", "vary": {"seed": []}}]})


# ---------------------------------------------------------------- the store
def test_the_store_is_wal_versioned_and_refuses_foreign_files(tmp_path: Path) -> None:
    with Store(tmp_path / "s", create=True) as store:
        assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store.meta("schema_version") == str(SCHEMA_VERSION)
    with pytest.raises(LabError, match="holds no sweep"):
        Store(tmp_path / "elsewhere")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "store.sqlite").write_bytes(b"not a database at all" * 100)
    with pytest.raises(LabError, match="not a readable sweep store"):
        Store(bad)
    newer = tmp_path / "newer"
    with Store(newer, create=True) as store:
        store.set_meta({"schema_version": str(SCHEMA_VERSION + 1)})
    with pytest.raises(LabError, match="upgrade the lab"):
        Store(newer)


def test_a_finished_cell_is_one_transaction(tmp_path: Path) -> None:
    cell = {"key": "k1", "kind": "evaluate", "label": "x", "axes": {"model": "a"}, "settings": {}, "deps": []}
    with Store(tmp_path, create=True) as store:
        store.add_cells([cell])
        store.mark_running("k1", "test")
        with pytest.raises(sqlite3.IntegrityError):  # a value that breaks the schema rolls back everything
            store.finish("k1", {"ok": True}, [("robust_accuracy", 0.1, 0.5), (None, None, None)], 1.0)  # type: ignore[list-item]
        assert store.cell("k1").status == "running" and store.values() == []  # type: ignore[union-attr]
        store.finish("k1", {"ok": True}, [("robust_accuracy", 0.1, 0.5)], 1.0)
        assert store.cell("k1").status == "done" and len(store.values()) == 1  # type: ignore[union-attr]


# ---------------------------------------------------------------- running
def test_a_finished_sweep_has_every_cell_and_its_files(done_sweep: tuple[Path, Path]) -> None:
    _, out = done_sweep
    st = sweep_status(out)
    assert st.counts == {"done": 12, "running": 0, "failed": 0, "pending": 0}
    for row in st.cells:
        folder = out / "cells" / row.key
        assert folder.is_dir() and not folder.with_name(row.key + ".partial").exists()
        expected = {"train": "model.safetensors", "evaluate": "report.json", "explain": "maps.npy"}[row.kind]
        assert (folder / expected).is_file(), f"{row.label}: no {expected}"
    report = json.loads((out / "cells" / next(r.key for r in st.cells if r.kind == "evaluate") / "report.json").read_text())
    assert report["format"] == "lab-robustness-report" and report["n"] == 64


def test_running_again_skips_what_is_done(done_sweep: tuple[Path, Path]) -> None:
    spec, out = done_sweep
    res = run_sweep(load_spec(spec), out, progress=False)
    assert res.ran == [] and len(res.skipped) == 12


def test_a_grown_grid_keeps_its_old_cells(done_sweep: tuple[Path, Path], tmp_path: Path) -> None:
    _, original = done_sweep
    out = tmp_path / "copy"
    shutil.copytree(original, out)  # the session's sweep stays as it is
    before = {r.key: r.finished for r in sweep_status(out).cells}
    grown = tiny_sweep(tmp_path, seeds=(0, 1), explain=("saliency",), eps=(0.0, 0.05, 0.1, 0.2))
    res = run_sweep(load_spec(grown), out, progress=False, max_cells=0)  # plan only
    assert res.ran == []
    with Store(out) as store:
        rows = {r.key: r for r in store.cells()}
    assert all(rows[k].finished == t for k, t in before.items()), "a finished cell changed"
    new_evals = [r for k, r in rows.items() if k not in before]
    assert len(new_evals) == 4 and {r.kind for r in new_evals} == {"evaluate"}
    assert sweep_status(out).others == 4  # the old evaluations: kept, not part of the new grid


def test_a_failed_cell_is_recorded_and_retried_only_when_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                               ) -> None:  # fmt: skip
    spec = load_spec(tiny_sweep(tmp_path, models=("standard",), explain=("saliency",)))
    out = tmp_path / "out"
    real = cells_module._evaluate

    def broken(cell: dict, where: object) -> object:
        raise RuntimeError("the evaluation broke")

    monkeypatch.setattr(cells_module, "_evaluate", broken)
    res = run_sweep(spec, out, progress=False)
    assert list(res.failed.values()) == ["RuntimeError: the evaluation broke"]
    st = sweep_status(out)
    assert st.counts["failed"] == 1 and st.counts["done"] == 2
    (failed,) = [r for r in st.cells if r.status == "failed"]
    assert "the evaluation broke" in (out / "cells" / f"{failed.key}.partial" / "error.txt").read_text()
    monkeypatch.setattr(cells_module, "_evaluate", real)
    assert run_sweep(spec, out, progress=False).ran == []  # not retried
    res = run_sweep(spec, out, progress=False, retry_failed=True)
    assert res.ran == [failed.key] and sweep_status(out).counts["done"] == 3


def test_cells_that_need_a_failed_cell_wait(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = load_spec(tiny_sweep(tmp_path, models=("standard",)))

    def broken(cell: dict, where: object) -> object:
        raise RuntimeError("no model today")

    monkeypatch.setattr(cells_module, "_train", broken)
    res = run_sweep(spec, tmp_path / "out", progress=False)
    assert len(res.failed) == 1 and len(res.blocked) == 1
    assert sweep_status(tmp_path / "out").counts == {"done": 0, "running": 0, "failed": 1, "pending": 1}


def test_one_driver_at_a_time(tmp_path: Path) -> None:
    spec = load_spec(tiny_sweep(tmp_path, models=("standard",)))
    with sweep_lock(tmp_path / "out"):
        with pytest.raises(LabError, match="another `lab sweep run`"):
            run_sweep(spec, tmp_path / "out", progress=False)


# ---------------------------------------------------------------- tables and plots
def test_the_table_is_the_mean_and_std_over_seeds(done_sweep: tuple[Path, Path]) -> None:
    _, out = done_sweep
    t = sweep_table(out, "robust_accuracy", rows="model", cols="eps")
    assert t.row_labels == ["standard", "fgsm"] and t.col_labels == [0.0, 0.05, 0.1]
    recs = [r for r in records(out) if r["metric"] == "robust_accuracy"]
    for (model, eps), s in t.cells.items():
        values = sorted(r["value"] for r in recs if r["model"] == model and r["eps"] == eps)
        assert s.n == 2 and sorted(s.values) == values
        assert s.mean == pytest.approx(sum(values) / 2)
        assert s.std == pytest.approx(abs(values[0] - values[1]) / 2 ** 0.5)
    md = table_markdown(t)
    assert "| model \\ eps | 0 | 0.05 | 0.1 |" in md and "±" in md
    # the quick suite is weak attacks only: the table says its numbers are upper bounds
    assert len(t.warnings) == 1 and "4 evaluation(s) ran weak attacks only" in t.warnings[0]
    assert "warning: 4 evaluation(s) ran weak attacks only" in md
    assert table_csv(t).splitlines()[0] == "model,eps,metric,mean,std,n"
    by_seed = sweep_table(out, "test_acc", rows="model", cols="seed")
    assert all(s.n == 1 for s in by_seed.cells.values()) and by_seed.col_labels == [0, 1]
    quality = sweep_table(out, "deletion_auc", rows="method", cols="model")
    assert quality.row_labels == ["saliency"]


def test_a_table_that_would_mix_axes_says_which_to_pin(done_sweep: tuple[Path, Path]) -> None:
    _, out = done_sweep
    with pytest.raises(LabError, match="differ in model"):  # both models are SmallCNNs
        sweep_table(out, "robust_accuracy", rows="arch", cols="eps")
    with pytest.raises(LabError, match="unknown axis 'colour'"):
        sweep_table(out, rows="colour")
    with pytest.raises(LabError, match="no finished cell measured 'speed'"):
        sweep_table(out, "speed")


def test_stat_of_known_values() -> None:
    s = stat([0.5, 0.7, None, float("nan")])
    assert (s.n, s.mean) == (2, pytest.approx(0.6)) and s.std == pytest.approx(0.1414213562)
    assert stat([]).mean is None and stat([0.3]).std == 0.0


def test_every_plot_draws_a_png(done_sweep: tuple[Path, Path], tmp_path: Path) -> None:
    _, out = done_sweep
    st = sweep_status(out)
    for kind in ("robust-vs-eps", "tradeoff", "explain", "time"):
        path = save_plot(kind, out, tmp_path / f"{kind}.png", st)
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000


# ---------------------------------------------------------------- the CLI
def test_lab_sweep_through_its_entry_point(done_sweep: tuple[Path, Path], tmp_path: Path) -> None:
    spec, out = done_sweep
    proc = run_lab("sweep", "run", str(spec), "--out", str(out), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert "0 cell(s) ran, 12 were done before" in proc.stdout
    proc = run_lab("sweep", "status", str(out))
    assert proc.returncode == 0 and "12/12 done" in proc.stdout
    proc = run_lab("sweep", "table", str(out), "--format", "json")
    assert proc.returncode == 0 and json.loads(proc.stdout)["metric"] == "robust_accuracy"
    proc = run_lab("sweep", "plot", str(out), "--kind", "time", "--out", str(tmp_path))
    assert proc.returncode == 0 and (tmp_path / "time.png").is_file()


@pytest.mark.parametrize("args, fragment", [
    (("sweep", "run", "nowhere.toml"), "does not exist"),
    (("sweep", "status", "/nonexistent/sweep"), "holds no sweep"),
    (("sweep", "table", "SWEEP", "--rows", "colour"), "unknown axis"),
    (("sweep", "table", "SWEEP", "--where", "model"), "AXIS=VALUE"),
    (("sweep", "run", "SPEC", "--workers", "0"), "--workers"),
    (("sweep", "run", "SPEC", "--address", "x"), "--engine ray"),
    (("reproduce", "mnist-lnf"), "unknown benchmark"),
])  # fmt: skip
def test_bad_sweep_input_is_one_sentence_and_exit_2(args: tuple[str, ...], fragment: str,
                                                    done_sweep: tuple[Path, Path]) -> None:  # fmt: skip
    spec, out = done_sweep
    before = (out / "store.sqlite").read_bytes()
    args = tuple(str(out) if a == "SWEEP" else str(spec) if a == "SPEC" else a for a in args)
    assert_user_error(run_lab(*args), fragment)
    assert sweep_status(out).counts["done"] == 12 and (out / "store.sqlite").stat().st_size >= len(before) // 2


def test_a_denoiser_is_trained_after_its_classifier_and_evaluated_as_one_model(tmp_path: Path) -> None:
    extra = ('\n[[model]]\nname = "squeezed"\nrecipe = "' + str(ROOT / "configs" / "mnist_bit_depth.toml") + '"\n'
             'set = { "data.dataset" = "fashion-mnist", "denoiser.bits" = 2, "runtime.precision" = "fp32" }\n'
             'classifier = "standard"\n')  # fmt: skip
    spec = load_spec(tiny_sweep(tmp_path, models=("standard",), eps=(0.0, 0.1), extra=extra))
    cells = plan(spec)
    by_label = {c.label: c for c in cells}
    squeezed = by_label["train squeezed seed=0"]
    assert squeezed.deps == (by_label["train standard seed=0"].key,)
    assert squeezed.settings["recipe"]["denoiser"]["classifier"] == "@" + squeezed.deps[0]
    res = run_sweep(spec, tmp_path / "out", progress=False)
    assert not res.failed and len(res.ran) == 4
    t = sweep_table(tmp_path / "out", "robust_accuracy", rows="model", cols="eps")
    assert t.row_labels == ["standard", "squeezed"]
    rows = sweep_table(tmp_path / "out", "robust_accuracy[white-box]", rows="model", cols="eps")
    assert rows.row_labels == ["squeezed"]  # a defended model's threat rows are kept beside the worst case
    for (model, eps), s in rows.cells.items():
        assert s.mean is not None and s.mean >= t.cells[(model, eps)].mean  # type: ignore[operator]
