"""Rendering a hand-built report: Markdown, the terminal table, the plot, and the JSON round trip."""

from __future__ import annotations

import io
import math
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lab.evaluation.report import AttackResult, EpsResult, MaskingCheck, RobustnessReport
from lab.present import figures, files, markdown, terminal, text

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _report(upper_bound: bool = True, model: dict | None = None, eps: tuple[float, float] = (0.1, 0.3)) -> RobustnessReport:
    def row(name: str, e: float, attacked: int, fooled: int, after: float, seconds: float) -> AttackResult:
        return AttackResult(attack=name, config={"name": name.split("-")[0], "eps": e}, eps=e, attacked=attacked,
                            fooled=fooled, robust_accuracy_after=after, success_rate=fooled / attacked,
                            mean_norm=e * 0.9, max_norm=e, seconds=seconds)  # fmt: skip

    e1, e2 = eps
    results = [
        EpsResult(eps=e1, clean_accuracy=0.8125, robust_accuracy=0.4375,
                  attacks=[row("fgsm", e1, 52, 20, 0.5, 0.12), row("pgd-20", e1, 32, 4, 0.4375, 1.5)],
                  robust_examples=list(range(28)), seconds=1.62),
        EpsResult(eps=e2, clean_accuracy=0.8125, robust_accuracy=0.0625,
                  attacks=[row("fgsm", e2, 52, 40, 0.1875, 0.11), row("pgd-20", e2, 12, 8, 0.0625, 0.7)],
                  robust_examples=[1, 2, 3, 4], seconds=0.81),
    ]  # fmt: skip
    checks = [
        MaskingCheck("large-eps", True, "PGD-20 at eps 1 leaves 0.0% accuracy (must be <= 2%)",
                     {"eps": 1.0, "accuracy": 0.0, "probe": 32}),
        MaskingCheck("more-steps-change-little", False, "at eps 0.3: PGD-20 6.2%, PGD-100x5 (margin) 0.0%",
                     {"eps": e2, "pgd20": 0.0625, "pgd100x5_margin": 0.0, "probe": 32}),
    ]  # fmt: skip
    return RobustnessReport(
        model=model or {"arch": "fastnet", "dataset": "fashion-mnist", "run": "runs/x", "input_shape": [1, 28, 28]},
        norm="linf", eps=[e1, e2], n=64, suite="quick",
        attacks=[{"name": "fgsm", "settings": {}, "label": "fgsm"}, {"name": "pgd", "settings": {"steps": 20},
                                                                   "label": "pgd-20"}],
        clean_accuracy=0.8125, results=results, checks=checks,
        headline={"eps": e2, "robust_accuracy": 0.0625, "attacks": ["fgsm", "pgd-20"], "upper_bound_only": upper_bound},
        warnings=["gradient-masking check failed: more-steps-change-little: at eps 0.3"],
        seconds=2.5, meta={"device": "cpu", "data": {"dataset": "fashion-mnist", "split": "test", "offset": 0,
                                                      "index_start": 0, "index_stop": 64}},
    )  # fmt: skip


def test_markdown_holds_every_number_and_the_failed_check() -> None:
    md = markdown.report_markdown(_report())
    for needle in ("fastnet", "fashion-mnist", "L-inf", "quick", "81.25%", "| fgsm |", "| pgd-20 |", "50.00%", "43.75%",
                 "18.75%", "6.25%", "38.46%", "**worst case**", "**43.75%**", "eps = 0.1", "eps = 0.3", "1.50",
                 "at most 6.25%", "upper bound", "test images 0..63", "PASS", "**FAIL**", "pgd100x5_margin=0",
                 "## Warnings"):  # fmt: skip
        assert needle in md, needle
    # attacks in run order within each epsilon
    assert md.index("| fgsm |") < md.index("| pgd-20 |")
    strong = markdown.report_markdown(_report(upper_bound=False))
    assert "at most" not in strong and "robust accuracy 6.25%" in strong and "upper bound" not in strong


def test_markdown_and_table_survive_missing_numbers() -> None:
    rep = _report()
    rep.results[0].attacks[1].mean_norm = float("nan")
    rep.results[0].attacks[1].max_norm = float("nan")
    assert "| 4 | 43.75% | 12.50% | - | - |" in markdown.report_markdown(rep)
    assert " - " in terminal.report_table(rep)


def test_cifar_style_eps_labels() -> None:
    rep = _report(model={"arch": "preact", "dataset": "cifar10", "input_shape": [3, 32, 32]}, eps=(2 / 255, 8 / 255))
    md = markdown.report_markdown(rep)
    assert "eps = 8/255" in md and "eps = 2/255" in md
    assert "8/255" in terminal.report_table(rep) and "8/255" in text.headline_text(rep)


def test_table_colors_only_the_failed_check_red() -> None:
    rep = _report()
    colored = terminal.report_table(rep, color=True)
    red_lines = [line for line in colored.splitlines() if terminal.RED in line]
    assert len(red_lines) == 1 and "more-steps-change-little" in red_lines[0] and "FAIL" in red_lines[0]
    assert colored.count(terminal.RED) == 1
    plain = terminal.report_table(rep, color=False)
    assert "\x1b" not in plain
    assert ANSI.sub("", colored) == plain
    # aligned: the header and every attack row have the 'robust acc' column ending at the same place
    lines = plain.splitlines()
    head = next(line for line in lines if line.startswith("eps"))
    end = head.index("robust acc") + len("robust acc")
    for line in lines:
        if "fgsm" in line or "pgd-20" in line or "worst case" in line:
            assert line[end - 1] == "%", line
    assert "FAIL  more-steps-change-little" in plain and "PASS  large-eps" in plain


def test_use_color(monkeypatch: pytest.MonkeyPatch) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    assert terminal.use_color(Tty()) is True
    assert terminal.use_color(io.StringIO()) is False
    monkeypatch.setenv("NO_COLOR", "1")
    assert terminal.use_color(Tty()) is False


def test_plot_is_a_png_of_the_expected_size(tmp_path: Path) -> None:
    path = figures.plot_accuracy_vs_eps(_report(), tmp_path / "sub" / "acc.png")
    with Image.open(path) as img:
        assert img.format == "PNG" and img.size == figures.PLOT_SIZE_PX
        assert np.asarray(img.convert("L")).std() > 5  # something was drawn
    assert not list(path.parent.glob(".*.tmp"))


def test_series_are_read_from_the_report() -> None:
    eps, lines, worst = figures._series(_report())
    assert eps == [0.1, 0.3]
    assert lines == {"fgsm": [0.5, 0.1875], "pgd-20": [0.4375, 0.0625]}
    assert worst == [0.4375, 0.0625]


def test_write_report_and_json_round_trip(tmp_path: Path) -> None:
    rep = _report()
    paths = files.write_report(rep, tmp_path / "out")
    assert {p.name for p in paths.values()} == {"report.json", "report.md", "accuracy_vs_eps.png"}
    assert all(p.is_file() for p in paths.values())
    assert not list((tmp_path / "out").glob(".*"))
    loaded = RobustnessReport.load(paths["json"])
    assert loaded == rep
    assert [c.name for c in loaded.failed_checks] == ["more-steps-change-little"]
    assert paths["markdown"].read_text() == markdown.report_markdown(loaded)


def test_nan_norms_come_back_as_none_and_still_render(tmp_path: Path) -> None:
    rep = _report()
    rep.results[1].attacks[1].mean_norm = math.nan
    loaded = RobustnessReport.load(rep.save(tmp_path / "r.json"))
    assert loaded.results[1].attacks[1].mean_norm is None
    assert markdown.report_markdown(loaded) == markdown.report_markdown(rep)
    figures.plot_accuracy_vs_eps(loaded, tmp_path / "p.png")


def test_perturbation_image_is_gray_where_unchanged() -> None:
    delta = np.zeros((1, 4, 4), dtype=np.float32)
    delta[0, 0, 0] = 0.1
    delta[0, 1, 1] = -0.1
    img = figures.to_uint8_image(figures.perturbation_image(delta, 0.5 / 0.1))
    assert img.shape == (4, 4) and img[0, 0] == 255 and img[1, 1] == 0 and img[2, 2] == 128
    rgb = figures.to_uint8_image(np.full((3, 2, 5), 0.5))
    assert rgb.shape == (2, 5, 3) and rgb.dtype == np.uint8
