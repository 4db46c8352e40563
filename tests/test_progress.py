"""Progress that suits where it goes: tqdm's bar on a terminal, whole lines in a log file,
and the real ``lab`` script writing lines (no carriage returns) when its output is a pipe."""

from __future__ import annotations

import io

import pytest
from cli_helpers import run_lab
from tqdm.auto import tqdm

from lab.core.progress import LineProgress, progress, progress_mode


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("env", "tty", "mode"), [
    (None, True, "bar"), (None, False, "lines"), ("auto", False, "lines"), ("bar", False, "bar"),
    ("lines", True, "lines"), ("off", True, "off"), ("nonsense", True, "bar"),
])  # fmt: skip
def test_mode_follows_the_stream_unless_lab_progress_says(env, tty, mode, monkeypatch) -> None:
    if env is None:
        monkeypatch.delenv("LAB_PROGRESS", raising=False)
    else:
        monkeypatch.setenv("LAB_PROGRESS", env)
    assert progress_mode(FakeTty() if tty else io.StringIO()) == mode


def test_a_terminal_gets_tqdm_and_a_file_gets_lines(monkeypatch) -> None:
    monkeypatch.delenv("LAB_PROGRESS", raising=False)
    bar = progress(total=3, desc="x", file=FakeTty())
    assert isinstance(bar, tqdm)
    bar.close()
    assert isinstance(progress(total=3, desc="x", file=io.StringIO()), LineProgress)
    silent = progress(total=3, desc="x", enabled=False, file=io.StringIO())
    assert isinstance(silent, tqdm) and silent.disable


def test_stage_lines_one_per_description_with_counts() -> None:
    out = io.StringIO()
    bar = LineProgress(total=30, desc="attacking", unit="img", lines="stage", file=out)
    bar.set_description("eps 0.1 FGSM")  # nothing done yet: no line
    bar.update(10)
    bar.update(5)
    bar.set_description("eps 0.1 PGD-40")
    bar.set_postfix(step=40)
    bar.update(15)
    bar.close()
    bar.close()  # idempotent
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and "\r" not in out.getvalue()
    assert lines[0].startswith("eps 0.1 FGSM: 15 img in ") and "(total 15/30)" in lines[0]
    assert lines[1].startswith("eps 0.1 PGD-40: 15 img in ") and "(total 30/30); step=40" in lines[1]


def test_update_lines_count_and_estimate() -> None:
    out = io.StringIO()
    with LineProgress(total=4, desc="sweep", unit="cell", lines="update", initial=1, file=out) as bar:
        bar.set_postfix_str("done train standard seed=0")
        bar.update(1)
        bar.update(1)
        bar.update(1)
    lines = out.getvalue().splitlines()
    assert [line.split(",")[0] for line in lines] == ["sweep: 2/4 cells", "sweep: 3/4 cells", "sweep: 4/4 cells"]
    assert "left" in lines[0] and "left" not in lines[-1]
    assert lines[0].endswith("(last: done train standard seed=0)")


def test_none_lines_stay_silent() -> None:
    out = io.StringIO()
    with LineProgress(total=5, desc="epoch 1/2", unit="batch", lines="none", file=out) as bar:
        bar.update(5)
        bar.set_postfix(loss="0.1")
    assert out.getvalue() == ""


def test_the_lab_script_writes_lines_into_a_pipe(tmp_path) -> None:
    """``lab train`` then ``lab eval`` with their default progress, output captured (not a
    terminal): one line per epoch and per attack stage, not a single carriage-return stream."""
    out = tmp_path / "run"
    proc = run_lab("train", "--config", "configs/mnist_smallcnn.toml", "--set", "data.dataset=fashion-mnist",
                   "--set", "data.train_subset=512", "--set", "data.test_subset=128", "--set", "train.epochs=2",
                   "--set", "runtime.precision=fp32", "--out", str(out), timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "\r" not in proc.stderr
    assert sum("epoch " in line and "/2" in line for line in proc.stderr.splitlines()) == 2, proc.stderr
    proc = run_lab("eval", "--model", str(out), "--eps", "0.1", "-n", "32", "--probe-n", "16", timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "\r" not in proc.stderr
    stages = [line for line in proc.stderr.splitlines() if line.startswith("eps 0.1 ")]
    assert stages and all(" img in " in line for line in stages), proc.stderr
    assert any(line.startswith("masking checks: ") for line in proc.stderr.splitlines()), proc.stderr
