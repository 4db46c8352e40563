"""Detectors (defenses/detectors) and their evaluation (lab.evaluation.detection, lab detect):
invariants over every registered detector, the threshold's false-positive rate, the ROC AUC on
known cases, a null detector reducing to the plain robust accuracy, the adaptive row, the CLI."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_helpers import assert_user_error, run_lab

from attacks.pgd import PGD
from defenses.denoisers.base import Denoiser
from defenses.detectors import DETECTORS, REJECT, Detected, build_detector, calibrate, scores_of
from lab.evaluation.detection import adaptive_pgd, evaluate_detection, roc_auc, rows_for


class Identity(Denoiser):
    """An autoencoder that reconstructs perfectly: MagNet's score is 0 everywhere."""

    def transform(self, x: torch.Tensor, backward: str = "zero") -> torch.Tensor:
        return x


class Blur(Denoiser):
    def transform(self, x: torch.Tensor, backward: str = "zero") -> torch.Tensor:
        return torch.nn.functional.avg_pool2d(x, 3, 1, 1)


def _detector(name: str, model, x, y):  # type: ignore[no-untyped-def]
    parts = {"autoencoder": Blur((1, 28, 28))} if name == "magnet" else {}
    det = build_detector(name, {}, **parts)
    det.fit(model, x, y)
    return det


@pytest.mark.parametrize("name", DETECTORS.names())
def test_every_detector_scores_each_image_and_has_a_gradient(trained_fastnet, name: str) -> None:
    m, x, y = trained_fastnet.model, trained_fastnet.x, trained_fastnet.y
    det = _detector(name, m, x, y)
    s = scores_of(m, det, x)
    assert s.shape == (64,) and torch.isfinite(s).all()
    assert torch.equal(s, scores_of(m, det, x))  # deterministic
    torch.testing.assert_close(scores_of(m, det, x[:5]), s[:5])  # per image, whatever the batch
    xa = x[:4].clone().requires_grad_(True)
    (g,) = torch.autograd.grad(det.score(m, xa, bpda=True).sum(), xa)
    assert g.abs().sum() > 0, "the adaptive attack would see no gradient"
    assert not any(mod._forward_pre_hooks or mod._forward_hooks for mod in m.modules())  # hooks released
    views = det.views(xa, bpda=True)  # what the adaptive-views row makes one wrong class with the input
    assert all(v.shape == xa.shape and 0 <= float(v.detach().min()) and float(v.detach().max()) <= 1 for v in views)
    if views:
        (g,) = torch.autograd.grad(sum(m(v).sum() for v in views), xa)
        assert g.abs().sum() > 0, "the adaptive-views attack would see no gradient through the views"


def test_threshold_flags_the_chosen_share_of_clean_images(trained_fastnet) -> None:
    m, x, y = trained_fastnet.model, trained_fastnet.x, trained_fastnet.y
    det = _detector("squeeze", m, x, y)
    t = calibrate(m, det, x, fpr=0.25)
    flagged = float((scores_of(m, det, x) > t).float().mean())
    assert abs(flagged - 0.25) <= 2 / 64
    protected = Detected(m, det, t)
    pred = protected.predict(x)
    assert ((pred == REJECT) == protected.detect(x)).all()
    assert (pred[pred != REJECT] == m(x).argmax(1)[pred != REJECT]).all()


def test_roc_auc_known_values() -> None:
    a, b = np.array([0.0, 1.0, 2.0]), np.array([3.0, 4.0])
    assert roc_auc(a, b) == 1.0 and roc_auc(b, a) == 0.0
    assert roc_auc(np.array([1.0, 1.0]), np.array([1.0])) == 0.5
    assert roc_auc(np.array([0.0, 2.0]), np.array([1.0])) == 0.5
    assert np.isnan(roc_auc(a, np.array([])))


def test_a_detector_that_detects_nothing_leaves_the_plain_robust_accuracy(trained_fastnet) -> None:
    m, x, y = trained_fastnet.model, trained_fastnet.x, trained_fastnet.y
    det = build_detector("magnet", {}, autoencoder=Identity((1, 28, 28)))
    rep = evaluate_detection(m, det, x, y, [0.05], x_calib=x, steps=20, progress=False)
    with torch.no_grad():
        adv = PGD(eps=0.05, steps=20)(m, x, y)
        plain = float((m(adv).argmax(1) == y).float().mean())
    naive = rep.results[0].rows[0]
    assert rep.threshold == 0.0 and naive.detection_rate == 0.0
    assert naive.robust_with_rejection == pytest.approx(plain)
    assert rep.results[0].robust_with_rejection <= min(r.robust_with_rejection for r in rep.results[0].rows)


@pytest.mark.parametrize("name", ["squeeze", "mahalanobis"])
def test_adaptive_row_and_worst_case(trained_fastnet, name: str) -> None:
    m, x, y = trained_fastnet.model, trained_fastnet.x, trained_fastnet.y
    det = _detector(name, m, x, y)
    rep = evaluate_detection(m, det, x[:32], y[:32], [0.05], x_calib=x[32:], steps=20, progress=False)
    res = rep.results[0]
    names = [r.row for r in res.rows]
    assert names == (["naive", "adaptive", "adaptive-views"] if name == "squeeze" else ["naive", "adaptive"])
    assert names == list(rows_for(det, x[:1]))
    assert set(res.robust_examples) == set.intersection(*(set(r.robust_examples) for r in res.rows))
    assert 0 <= rep.clean_accuracy_with_rejection <= rep.clean_accuracy
    assert all(0 <= r.robust_with_rejection <= rep.clean_accuracy_with_rejection for r in res.rows)
    data = rep.to_dict()
    assert data["format"] == "lab-detection-report" and data["detector"]["name"] == name


def test_adaptive_views_attack_stays_in_the_ball_and_wins_only_undetected(trained_fastnet) -> None:
    """The targeted attack on the input and every squeezed view: L-inf within eps, valid pixels,
    deterministic; each restart targets the next most likely wrong class and only adds images won
    (misclassified and passing the detector, judged with its true score)."""
    m, x, y = trained_fastnet.model, trained_fastnet.x[:16], trained_fastnet.y[:16]
    det = _detector("squeeze", m, x, y)
    thr = calibrate(m, det, trained_fastnet.x[16:], fpr=0.1)
    kw = {"eps": 0.2, "threshold": thr, "scale_margin": 1.0, "scale_score": 0.1, "steps": 10, "restarts": 2}
    adv = adaptive_pgd(m, det, x, y, views=True, **kw)
    assert float((adv - x).abs().max()) <= 0.2 + 1e-6 and 0 <= float(adv.min()) and float(adv.max()) <= 1
    assert torch.equal(adv, adaptive_pgd(m, det, x, y, views=True, **kw))

    def won(a: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return (m(a).argmax(1) != y) & (scores_of(m, det, a) <= thr)

    one = adaptive_pgd(m, det, x, y, views=True, **{**kw, "restarts": 1})  # the runner-up class only
    assert bool((won(adv) | ~won(one)).all())  # a second restart (the next class) only adds images
    assert torch.equal(adv[won(one)], one[won(one)])  # ... and keeps the first restart's wins as they were


def test_lab_detect_cli(trained_fastnet, tmp_path: Path) -> None:
    out = tmp_path / "d"
    proc = run_lab("detect", "--model", str(trained_fastnet.run), "--detector", "squeeze", "--eps", "0.05", "-n",
                   "16", "--steps", "5", "--calib-n", "200", "--fit-n", "0", "--no-progress", "--report", str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    data = json.loads((out / "detection.json").read_text())
    assert data["n"] == 16 and [r["row"] for r in data["results"][0]["rows"]] == ["naive", "adaptive", "adaptive-views"]
    assert "worst case" in proc.stdout and (out / "detection.md").exists()


DETECT_BAD = {
    "unknown detector": (["--detector", "oracle"], "unknown detector 'oracle'"),
    "magnet without autoencoder": (["--detector", "magnet"], "needs --autoencoder"),
    "fpr above 1": (["--detector", "squeeze", "--fpr", "1.5"], "false-positive rate must be in (0, 1)"),
    "images reach the calibration set": (["--detector", "squeeze", "-n", "9500"], "must not reach"),
    "setting out of range": (["--detector", "squeeze", "--param", "bits=20"], "bits"),
    "unknown setting": (["--detector", "squeeze", "--param", "colour=2"], "has no setting 'colour'"),
}


@pytest.fixture(scope="module")
def bad_detect_runs(trained_fastnet, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple]:
    """Every bad ``lab detect`` invocation, through the console script three at a time."""
    tmp = tmp_path_factory.mktemp("bad_detect")

    def one(case: str) -> tuple:
        report = tmp / case.replace(" ", "_")
        argv = ["detect", "--model", str(trained_fastnet.run), "--no-progress", "--report", str(report)]
        return run_lab(*argv, *DETECT_BAD[case][0]), report

    with ThreadPoolExecutor(max_workers=3) as pool:
        return dict(zip(DETECT_BAD, pool.map(one, DETECT_BAD)))


@pytest.mark.parametrize("case", list(DETECT_BAD))
def test_lab_detect_bad_input(bad_detect_runs, case: str) -> None:
    proc, report = bad_detect_runs[case]
    assert_user_error(proc, DETECT_BAD[case][1])
    assert not report.exists()


def test_guard_calibrates_its_threshold_on_held_out_images_and_verdicts_follow_it(trained_fastnet) -> None:
    """lab.runs.detect.guard: the threshold flags at most the chosen share of the last test
    images (a quantile: 19 or 20 of 200 at 10%); each verdict is the score against it."""
    from lab.runs.detect import calibration_images, guard, verdicts
    from lab.training.checkpoint import load_model

    ck = load_model(trained_fastnet.run, "cpu")
    detected = guard(ck, "squeeze", fpr=0.1, calib_n=200, fit_n=0)
    x_calib, start = calibration_images(ck, 200)
    assert start == 10_000 - 200 and x_calib.shape[0] == 200
    assert 0.09 <= float(detected.detect(x_calib).double().mean()) <= 0.1
    x = trained_fastnet.x[:16]
    vs = verdicts(detected, x)
    scores = scores_of(ck.model, detected.detector, x)
    assert [v.rejected for v in vs] == (scores > detected.threshold).tolist()
    assert [v.score for v in vs] == pytest.approx(scores.tolist())
    with torch.no_grad():
        assert [v.prediction for v in vs] == ck.model(x).argmax(1).tolist()
    assert detected.predict(x).tolist() == [REJECT if v.rejected else v.prediction for v in vs]
    strict = guard(ck, "squeeze", fpr=0.01, calib_n=200, fit_n=0)
    assert strict.threshold >= detected.threshold  # fewer false positives: a higher threshold


def test_only_a_denoiser_with_a_reconstruction_error_lends_magnet_its_autoencoder() -> None:
    from lab.runs.detect import holds_autoencoder

    assert holds_autoencoder({"name": "dae", "kind": "denoiser"})
    assert not holds_autoencoder({"name": "bit_depth", "kind": "denoiser"})  # a transform: nothing to reconstruct
    assert not holds_autoencoder({"name": "pgd_at", "kind": "training"})
    assert not holds_autoencoder(None)


def test_a_detection_report_saves_the_guarded_model_it_judged(trained_fastnet, tmp_path: Path) -> None:
    """lab.runs.detect.guard_from_report rebuilds the detector with the report's settings and its
    saved threshold, and refuses a report of other weights."""
    import shutil

    from lab.core.errors import LabError
    from lab.runs.detect import detect_checkpoint, guard_from_report
    from lab.training.checkpoint import load_model, save_model

    ck = load_model(trained_fastnet.run, "cpu")
    rep = detect_checkpoint(ck, "squeeze", settings={"bits": 2}, eps=[0.05], n=8, steps=3, calib_n=200, fit_n=0,
                            fpr=0.1, progress=False)  # fmt: skip
    data = json.loads(json.dumps(rep.to_dict()))  # as read back from detection.json
    detected = guard_from_report(ck, data)
    assert detected.threshold == rep.threshold and detected.detector.settings()["bits"] == 2
    x = trained_fastnet.x[:8]
    assert torch.equal(scores_of(ck.model, detected.detector, x),
                       scores_of(ck.model, build_detector("squeeze", {"bits": 2}), x))  # fmt: skip
    other = tmp_path / "other"  # the same run, its weights changed since the report (retrained)
    shutil.copytree(trained_fastnet.run, other)
    retrained = load_model(other, "cpu")
    with torch.no_grad():
        next(retrained.model.parameters()).add_(0.01)
    save_model(other, retrained.model, metrics=retrained.metrics)
    with pytest.raises(LabError, match="other weights"):
        guard_from_report(load_model(other, "cpu"), data)
