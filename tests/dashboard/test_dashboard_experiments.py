"""The Experiments page through Streamlit's AppTest, on a real tiny sweep (two Fashion-MNIST
models, two seeds, the quick suite, one explanation method; fp32): the status and the table
are what the API says, the table follows its pickers, a table the API refuses is its one
sentence, a grown grid shows its pending cells and refreshes, an empty folder says how to
start and a corrupt store is one error. And the page's plain helpers."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from dash_helpers import APP, PAGES, ROOT, small_sweep
from streamlit.testing.v1 import AppTest

from lab.core.errors import LabError
from lab.dashboard import sweep_folders
from lab.dashboard.pages.experiments import LIVE, START
from lab.experiments.spec import load_spec
from lab.experiments.store import Store
from lab.experiments.sweep import run_sweep, sweep_status
from lab.experiments.tables import sweep_table
from lab.present.sweeps import stat_text

OpenPage = Callable[[Path], AppTest]


@pytest.fixture
def page_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> OpenPage:
    """Point the dashboard at a sweeps folder; returns a function that opens the page there."""
    monkeypatch.setenv("LAB_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.chdir(ROOT)

    def open_page(root: Path) -> AppTest:
        monkeypatch.setenv("LAB_SWEEPS_DIR", str(root))
        at = AppTest.from_file(str(APP), default_timeout=120)
        at.run()
        at.switch_page(f"{PAGES}/experiments.py")
        at.run()
        no_exception(at)
        return at

    return open_page


def no_exception(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: str(m.value) for m in at.metric}


def texts(at: AppTest, kind: str) -> list[str]:
    return [str(e.value) for e in getattr(at, kind)]


def shown_table(at: AppTest) -> dict[tuple[str, str], str]:
    """The Markdown table on the page: (row label, column label) -> cell text."""
    (md,) = [t for t in texts(at, "markdown") if "\n|---" in t]
    lines = [ln for ln in md.splitlines() if ln.startswith("|") and not ln.startswith("|---")]
    head = [c.strip() for c in lines[0].strip("|").split("|")]
    out = {}
    for ln in lines[1:]:
        cells = [c.strip() for c in ln.strip("|").split("|")]
        out.update({(cells[0], head[j]): cells[j] for j in range(1, len(head))})
    return out


def label(v: object) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def assert_same_table(at: AppTest, folder: Path, metric: str, rows: str, cols: str,
                      where: dict[str, str] | None = None) -> None:  # fmt: skip
    t = sweep_table(folder, metric, rows=rows, cols=cols, where=where)
    shown = shown_table(at)
    want = {(label(r), label(c)): s for (r, c), s in t.cells.items()}
    assert set(shown) == set(want), (shown, t.cells)
    for k, s in want.items():
        assert shown[k] == stat_text(s, metric)
        assert s.mean is not None
        mean = float(shown[k].split(" ± ")[0])
        assert mean == pytest.approx(100 * s.mean if "accuracy" in metric else s.mean, abs=0.006, rel=1e-3)


def test_a_finished_sweep_shows_its_counts_table_figures_and_cells(dash_sweeps: Path, page_env: OpenPage) -> None:
    folder = dash_sweeps / "tiny"
    st_ = sweep_status(folder)
    at = page_env(dash_sweeps)
    total = sum(st_.counts.values())
    assert st_.counts["done"] == total == 12
    m = metrics(at)
    assert m["Done"] == f"{total}/{total}" and m["Running"] == m["Failed"] == m["Pending"] == "0"
    assert m["Time so far"] == sweep_folders.duration(st_.seconds_done)
    assert not at.error and "The sweep is complete." in texts(at, "caption")
    assert at.session_state[LIVE] is False  # no refresh
    assert_same_table(at, folder, "robust_accuracy", "model", "eps")
    assert len(at.image) == 4  # robust vs eps, clean vs robust, explanations, time per cell
    assert not at.warning, texts(at, "warning")
    cells = at.dataframe[0].value
    assert len(cells) == total and set(cells["status"]) == {"done"}
    assert set(cells["kind"]) == {"train", "evaluate", "explain"}

    at.selectbox(key="exp_metric").set_value("clean_accuracy").run()
    at.selectbox(key="exp_cols").set_value("seed").run()
    no_exception(at)
    assert_same_table(at, folder, "clean_accuracy", "model", "seed")

    # seeds x models of robust accuracy would average over the radii: the API's one sentence
    at.selectbox(key="exp_metric").set_value("robust_accuracy").run()
    at.selectbox(key="exp_rows").set_value("seed").run()
    at.selectbox(key="exp_cols").set_value("model").run()
    no_exception(at)
    with pytest.raises(LabError) as refused:
        sweep_table(folder, "robust_accuracy", rows="seed", cols="model")
    assert texts(at, "error") == [str(refused.value)] and "eps" in str(refused.value)
    at.selectbox(key="exp_where_eps").set_value("0.1").run()
    no_exception(at)
    assert not at.error
    assert_same_table(at, folder, "robust_accuracy", "seed", "model", {"eps": "0.1"})

    train = next(c for c in st_.cells if c.kind == "train")
    at.selectbox(key="exp_cell").set_value(train.key).run()
    no_exception(at)
    assert any("model.safetensors" in t for t in texts(at, "markdown"))


def test_a_grown_grid_shows_its_pending_cells_and_refreshes(
    dash_sweeps: Path, tmp_path: Path, page_env: OpenPage
) -> None:
    root = tmp_path / "sweeps"
    shutil.copytree(dash_sweeps / "tiny", root / "tiny")
    grown = root / "grown"
    shutil.copytree(dash_sweeps / "tiny", grown)
    spec = small_sweep(tmp_path, seeds=(0, 1, 2))
    run_sweep(load_spec(spec), grown, progress=False, max_cells=0)  # plans seed 2, runs nothing
    st_ = sweep_status(grown)
    assert st_.counts["pending"] == 6 and st_.counts["done"] == 12
    at = page_env(root)
    assert at.selectbox(key="exp_sweep").value == str(grown)  # the one written last
    m = metrics(at)
    assert m["Pending"] == "6" and m["Done"] == "12/18" and m["Running"] == "0"
    assert m["Estimate left"] == sweep_folders.duration(st_.estimate_left) != "unknown"
    assert any(t.startswith("Refreshing every") for t in texts(at, "caption"))
    assert any("No `lab sweep run` works on this folder now" in t for t in texts(at, "info"))
    assert at.session_state[LIVE] is True
    assert_same_table(at, grown, "robust_accuracy", "model", "eps")  # the finished cells' numbers
    at.selectbox(key="exp_sweep").set_value(str(root / "tiny")).run()
    no_exception(at)
    assert metrics(at)["Pending"] == "0" and at.session_state[LIVE] is False


def test_a_cell_that_runs_then_finishes_starts_then_stops_the_refresh(
    dash_sweeps: Path, tmp_path: Path, page_env: OpenPage
) -> None:
    folder = tmp_path / "sweeps" / "tiny"
    shutil.copytree(dash_sweeps / "tiny", folder)
    with Store(folder) as store:  # what a driver does around one cell
        cell = next(c for c in store.cells() if c.kind == "evaluate")
        values = [(v.metric, v.eps, v.value) for v in store.values([cell.key])]
        store.mark_running(cell.key, "test")
    at = page_env(folder.parent)
    assert metrics(at)["Running"] == "1" and at.session_state[LIVE] is True
    with Store(folder) as store:
        store.finish(cell.key, cell.result, values, cell.seconds or 1.0)
    at.run()
    no_exception(at)
    assert metrics(at)["Running"] == "0" and at.session_state[LIVE] is False
    assert "The sweep is complete." in texts(at, "caption")


def test_a_failed_cell_is_shown_with_its_error_and_traceback(dash_sweeps: Path, tmp_path: Path,
                                                             page_env: OpenPage) -> None:  # fmt: skip
    folder = tmp_path / "sweeps" / "tiny"
    shutil.copytree(dash_sweeps / "tiny", folder)
    with Store(folder) as store:
        cell = next(c for c in store.cells() if c.kind == "train")
        store.fail(cell.key, "RuntimeError: out of memory", 2.0)
        waiting = [c for c in store.cells() if cell.key in c.deps]
        for c in waiting:  # what a driver leaves behind a failed training: its evaluation and explanation
            store.mark_running(c.key, "test")
        store.reset_interrupted()  # -> pending
    partial = folder / "cells" / f"{cell.key}.partial"
    partial.mkdir()
    (partial / "error.txt").write_text("Traceback (most recent call last):\n  ...\nRuntimeError: out of memory\n")
    at = page_env(folder.parent)
    m = metrics(at)
    assert m["Failed"] == "1" and m["Pending"] == str(len(waiting)) == "2"
    assert at.session_state[LIVE] is False  # nothing can run before --retry-failed: no refresh
    assert f"{len(waiting)} pending cell(s) wait on a failed one." in texts(at, "caption")
    assert texts(at, "error") == [f"{cell.label} [{cell.key}] failed: RuntimeError: out of memory"]
    at.selectbox(key="exp_cell").set_value(cell.key).run()
    no_exception(at)
    assert any(t.startswith("Traceback") for t in texts(at, "code"))


@pytest.mark.parametrize("make", [False, True])
def test_an_empty_sweeps_folder_says_how_to_start_a_sweep(tmp_path: Path, page_env: OpenPage, make: bool) -> None:
    root = tmp_path / "sweeps"
    if make:
        (root / "not_a_sweep").mkdir(parents=True)
    at = page_env(root)
    (hint,) = texts(at, "info")
    assert START in hint and hint.count(". ") == 0 and hint.endswith(".")
    assert not at.error


def test_a_corrupt_store_is_one_error_sentence(tmp_path: Path, page_env: OpenPage) -> None:
    bad = tmp_path / "sweeps" / "bad"
    bad.mkdir(parents=True)
    (bad / "store.sqlite").write_bytes(b"this is not an SQLite database" * 40)
    at = page_env(bad.parent)
    (err,) = texts(at, "error")
    assert "not a readable sweep store" in err and "\n" not in err and "Traceback" not in err
    assert not at.metric


# ---------------------------------------------------------------- plain helpers


def test_the_sweep_folders_under_a_root_and_the_store_key(tmp_path: Path) -> None:
    assert sweep_folders.find_sweeps(tmp_path / "nowhere") == []
    for name in ("b", "a"):
        with Store(tmp_path / name, create=True):
            pass
    (tmp_path / "c").mkdir()
    assert sweep_folders.find_sweeps(tmp_path) == [tmp_path / "a", tmp_path / "b"]
    assert sweep_folders.find_sweeps(tmp_path / "a") == [tmp_path / "a"]
    key = sweep_folders.store_key(tmp_path / "a")
    later = os.stat(tmp_path / "b" / "store.sqlite").st_mtime_ns + 10**9
    os.utime(tmp_path / "a" / "store.sqlite", ns=(later, later))
    assert sweep_folders.latest(sweep_folders.find_sweeps(tmp_path)) == 0
    assert sweep_folders.store_key(tmp_path / "a") != key


def test_where_choices_are_the_axes_a_metric_varies_in() -> None:
    recs = [{"metric": "robust_accuracy", "model": m, "seed": s, "eps": e, "eval": "quick-linf"}
            for m in ("a", "b") for s in (1, 0) for e in (0.1, 0.0)]  # fmt: skip
    recs.append({"metric": "deletion_auc", "model": "a", "method": "saliency", "eps": None})
    got = sweep_folders.where_choices(recs, "robust_accuracy", ["seed", "eps", "eval", "method"])
    assert got == {"seed": ["0", "1"], "eps": ["0.0", "0.1"]}
    assert sweep_folders.pinned({"seed": sweep_folders.ANY, "eps": "0.1"}) == {"eps": "0.1"}
    assert [sweep_folders.duration(s) for s in (None, 42, 600, 9000)] == ["unknown", "42 s", "10.0 min", "2.5 h"]
    assert re.fullmatch(r"\d+ s", sweep_folders.duration(0.4))
