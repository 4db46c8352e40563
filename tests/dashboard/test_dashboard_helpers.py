"""The dashboard's plain-Python helpers: uploads, reports, the per-image computation with a
defense, and background training jobs."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from dash_helpers import DashRuns, png_bytes
from PIL import Image
from torch import nn

from lab.core.errors import LabError
from lab.dashboard import jobs
from lab.dashboard.uploads import MAX_UPLOAD_BYTES, read_upload
from lab.present import reports
from lab.present.explanations import quality_table
from lab.present.models import defense_label
from lab.present.plots import top_k
from lab.runs import playground
from lab.runs.samples import from_test_set
from lab.training.checkpoint import load_model

GRAY = (1, 28, 28)
RGB = (3, 32, 32)


# ---------------------------------------------------------------- uploads


def test_upload_of_the_right_shape_needs_no_conversion() -> None:
    up = read_upload(png_bytes((28, 28), "L", color=7), "digit.png", GRAY)
    assert up.x.shape == GRAY and up.x.dtype == np.uint8 and int(up.x.max()) == 7
    assert up.notices == []


@pytest.mark.parametrize(
    ("data", "shape", "words"),
    [
        (png_bytes((40, 40), "L"), RGB, ["grayscale to RGB", "resized from 40x40 to 32x32"]),
        (png_bytes((28, 28), "RGBA", color=(255, 0, 0, 0)), GRAY, ["transparency", "colour to grayscale"]),
        (png_bytes((100, 50), "L", fmt="JPEG"), GRAY, ["cropped around the centre from 100x50 to 50x50", "resized"]),
    ],
)
def test_upload_conversions_are_each_announced(data: bytes, shape: tuple[int, int, int], words: list[str]) -> None:
    up = read_upload(data, "pic", shape)
    assert up.x.shape == shape
    text = " ".join(up.notices)
    for w in words:
        assert w in text, up.notices


def test_upload_inversion_is_announced() -> None:
    up = read_upload(png_bytes((28, 28), "L", color=250), "light.png", GRAY, invert=True)
    assert int(up.x.max()) == 5 and "inverted the colours" in up.notices


def test_upload_refusals_are_one_sentence() -> None:
    good = png_bytes((28, 28))
    noise = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)).save(noise, format="PNG")
    cases = [
        (b"", "empty"),
        (b"x" * (MAX_UPLOAD_BYTES + 1), "limited to"),
        (b"GIF89a not really", "GIF image; expected a PNG or JPEG"),  # told by its first bytes
        (b"not really an image", "not an image"),
        (png_bytes((28, 28), fmt="BMP"), "BMP image; expected a PNG or JPEG"),
        (png_bytes((2100, 2100)), "pixels"),  # refused from the header, before decoding
        (noise.getvalue()[: len(noise.getvalue()) // 2], "damaged"),  # a truncated PNG
    ]
    for data, words in cases:
        with pytest.raises(LabError, match=words):
            read_upload(data, "f.png", GRAY)
    with pytest.raises(LabError, match="4-channel"):
        read_upload(good, "f.png", (4, 28, 28))


# ---------------------------------------------------------------- reports


def test_find_reports_lists_every_kind_flags_unreadable_and_ignores_foreign_json(dash_runs: DashRuns,
                                                                                 tmp_path: Path) -> None:  # fmt: skip
    entries = reports.find_reports(dash_runs.root)
    kinds = {(e.kind, e.path) for e in entries if not e.error}
    assert (reports.ROBUSTNESS, dash_runs.report) in kinds
    assert (reports.EXPLANATIONS, dash_runs.explanations) in kinds
    bad = [e for e in entries if e.error]
    assert len(bad) == 1 and "broken" in str(bad[0].path)
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "report.json").write_text(json.dumps({"hello": 1}))
    assert reports.find_reports(tmp_path) == []
    with pytest.raises(LabError, match="does not exist"):
        reports.find_reports(tmp_path / "missing")
    assert [e.path for e in reports.reports_for_run(entries, dash_runs.standard)] == [dash_runs.report]
    assert reports.reports_for_run(entries, dash_runs.hardened) == []


def test_threat_rows_are_tabulated_when_a_report_has_them(dash_runs: DashRuns) -> None:
    rep = reports.load_robustness(dash_runs.report)
    assert set(reports.threat_row_names(rep)) <= {"white-box"}  # an undefended model: at most the white-box row
    assert reports.shown_rows(rep) == [] and "worst case" in reports.summary_table(rep)[0]
    for r in rep.results:  # what a denoised model's report holds
        r.rows = {"white-box": 0.2, "eot": 0.25, "gray-box": 0.9, "bpda": 0.3}
        r.robust_accuracy = 0.15  # the per-image worst case over every row: below the lowest row
    assert reports.threat_row_names(rep) == ["gray-box", "white-box", "bpda", "eot"]
    table = reports.summary_table(rep)
    assert table[-1]["gray-box"] == "90.00%" and table[-1]["worst case, all rows"] == "15.00%"
    assert [c.label for c in reports.curves(rep) if c.kind == "row"] == ["gray-box", "white-box", "bpda", "eot"]
    assert [c.accuracy[-1] for c in reports.curves(rep) if c.kind == "worst"] == [0.15]
    checks = reports.check_table(rep)
    assert [c["result"] for c in checks] == ["FAIL"]


def test_quality_table_reads_a_metrics_json() -> None:
    data = {"images": ["test[0]"], "models": {"runs/m": {"saliency": {
        "deletion_auc": 0.2, "insertion_auc": 0.9, "random_deletion_auc": 0.5, "random_insertion_auc": 0.6,
        "infidelity": 0.1, "sensitivity": 0.2, "sanity": {"passed": True, "final_spearman": 0.1},
        "under_attack": {"spearman": 0.5}}}}}  # fmt: skip
    (row,) = quality_table(data)
    assert row["sanity check"].startswith("passed") and row["deletion AUC (lower is better)"].startswith("0.200")


# ---------------------------------------------------------------- compute


class FakeDenoised(nn.Module):
    """A denoiser (3x3 mean filter) in front of a classifier, with the denoised-model methods."""

    def __init__(self, classifier: nn.Module) -> None:
        super().__init__()
        self.classifier = classifier
        self.info = classifier.info  # type: ignore[assignment]

    def denoise(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)

    def detector_score(self, x: torch.Tensor) -> torch.Tensor:
        return (self.denoise(x) - x).flatten(1).pow(2).mean(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.denoise(x))


def test_playground_step_attacks_explains_and_is_exact_at_eps_zero(dash_runs: DashRuns) -> None:
    ck = load_model(dash_runs.standard)
    s = from_test_set(ck.info, 1, 0)
    res = playground.playground_step(ck, s.x[0], int(s.y[0]), attack="pgd", settings={"steps": 5}, eps=0.0, norm="linf",
                                  methods=["saliency", "gradcam"])  # fmt: skip
    assert np.array_equal(res.attack.adversarial, res.attack.clean)
    assert np.allclose(res.probs_clean, res.probs_adversarial) and abs(res.probs_clean.sum() - 1) < 1e-5
    assert res.explanations is not None and res.explanations.models[0].maps["gradcam"].shape == (2, 28, 28)
    assert set(res.map_cosines) == {"saliency", "gradcam"}  # eps 0: the two images, hence their maps, are equal
    assert all(c is None or c == pytest.approx(1.0) for c in res.map_cosines.values())
    strong = playground.playground_step(ck, s.x[0], int(s.y[0]), attack="pgd", settings={"steps": 20}, eps=0.5,
                                     norm="linf")  # fmt: skip
    assert strong.explanations is None and strong.outcome.fooled and strong.outcome.linf <= 0.5 + 1e-6
    assert top_k(np.array([0.1, 0.4, 0.4, 0.1]), 3) == [1, 2, 0]


def test_defense_view_of_a_denoiser_and_of_an_adversarially_trained_model(dash_runs: DashRuns) -> None:
    std = load_model(dash_runs.standard)
    s = from_test_set(std.info, 1, 0)
    base = playground.playground_step(std, s.x[0], int(s.y[0]), attack="pgd", settings={}, eps=0.3, norm="linf")
    fake = FakeDenoised(std.model).eval()
    record = {"defense": {"name": "median", "kind": "denoiser", "settings": {"kernel": 3}}}
    for mode in playground.DEFENSE_MODES:
        view = playground.defense_view(fake, record, base.attack.clean[0], base.attack.adversarial[0], int(s.y[0]),
                                    mode=mode, attack="pgd", settings={"steps": 5}, eps=0.3, norm="linf")  # fmt: skip
        assert view.kind == "denoiser" and defense_label(record) == "median (denoiser)"
        assert view.denoised_adversarial is not None and view.denoised_adversarial.shape == GRAY
        assert view.detector_adversarial is not None and view.detector_adversarial >= 0
        assert (view.attack is not None) == (mode == "white-box")
    assert np.array_equal(view.adversarial, view.attack.adversarial[0])  # white-box: its own adversarial image
    at = load_model(dash_runs.hardened)
    view = playground.defense_view(at, at.record, base.attack.clean[0], base.attack.adversarial[0], int(s.y[0]))
    assert view.kind == "adversarial training" and view.denoised_clean is None and view.detector_clean is None
    assert view.prediction_adversarial == int(np.argmax(view.probs_adversarial))
    assert defense_label(at.record) == "pgd_at (eps 0.3)" and view.probs_adversarial.shape == (10,)
    with pytest.raises(LabError, match="takes images"):
        playground.defense_view(at, at.record, np.zeros((3, 32, 32), np.float32), np.zeros((3, 32, 32), np.float32), 0)
    with pytest.raises(LabError, match="unknown defense mode"):
        playground.defense_view(at, at.record, base.attack.clean[0], base.attack.adversarial[0], 0, mode="magic")


# ---------------------------------------------------------------- jobs


def test_log_tail_keeps_the_last_state_of_progress_bars(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_bytes(b"start\nepoch 1:  10%|#  \repoch 1:  50%|#####  \repoch 1: 100%|##########\n\x1b[31mdone\x1b[0m\n")
    assert jobs.log_tail(log).splitlines() == ["start", "epoch 1: 100%|##########", "done"]
    assert jobs.log_tail(tmp_path / "missing.log") == ""


def test_start_training_refuses_bad_requests_before_starting_anything(tmp_path: Path) -> None:
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    (recipes / "r.toml").write_text('name = "r"\n[model]\narch = "fastnet"\n')
    outside = tmp_path / "outside.toml"
    outside.write_text('name = "o"\n')
    runs = tmp_path / "runs"
    with pytest.raises(LabError, match="not a recipe file"):
        jobs.start_training(outside, "x", runs, recipes)
    with pytest.raises(LabError, match="train.nope"):
        jobs.start_training(recipes / "r.toml", "x", runs, recipes, overrides=["train.nope=1"])
    with pytest.raises(LabError, match="no run to resume"):
        jobs.start_training(recipes / "r.toml", "x", runs, recipes, resume=True)
    assert jobs.list_jobs(runs) == []


def test_a_running_job_can_be_stopped_and_keeps_its_finished_epochs(tmp_path: Path) -> None:
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    (recipes / "slow.toml").write_text(
        'name = "slow"\n[data]\ndataset = "mnist"\ntrain_subset = 256\ntest_subset = 64\n[model]\narch = "fastnet"\n'
        '[train]\nepochs = 500\nbatch_size = 64\noptimizer = "adam"\nlr = 0.003\n[runtime]\ndevice = "cpu"\nprecision = "fp32"\n'
    )
    runs = tmp_path / "runs"
    job = jobs.start_training(recipes / "slow.toml", "slow", runs, recipes)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        (job,) = jobs.list_jobs(runs)
        if job.status == "running" and jobs.progress(job).epochs_done >= 1:
            break
        time.sleep(0.3)
    assert job.status == "running", jobs.log_tail(job.log)
    assert jobs.progress(job).epochs_total == 500
    assert jobs.stop_job(job)
    while time.monotonic() < deadline:
        (job,) = jobs.list_jobs(runs)
        if job.status != "running":
            break
        time.sleep(0.3)
    assert job.status == "stopped", jobs.log_tail(job.log)
    p = jobs.progress(job)
    assert 1 <= p.epochs_done < 500 and p.run_status == "running"  # resumable with --resume
    assert not jobs.stop_job(job)
