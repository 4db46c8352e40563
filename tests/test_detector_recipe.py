"""A detector as a recipe (``[detector]``, defenses/detectors/saved.py): ``lab train`` fits it in
front of a trained classifier, sets its threshold and saves the guarded model; the checkpoint
loads back as the same detector (fitted statistics, threshold); ``lab detect`` judges the saved
model without refitting; commands that judge a model that always answers refuse it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from cli_helpers import assert_user_error, run_lab

from defenses.detectors import REJECT, scores_of
from defenses.detectors.saved import GuardedModel
from lab.core.errors import ConfigError
from lab.runs.detect import guard
from lab.training.checkpoint import load_model
from lab.training.config import from_dict
from lab.training.loop import train

FIT_N, CALIB_N, FPR = 512, 200, 0.1


def _recipe(classifier: Path, name: str, **settings: object) -> dict:
    return {"seed": 0, "data": {"dataset": "fashion-mnist"},
            "detector": {"name": name, "classifier": str(classifier), "fpr": FPR, "fit_n": FIT_N, "calib_n": CALIB_N,
                         **settings}}  # fmt: skip


@pytest.fixture(scope="module")
def detector_runs(trained_fastnet, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The fixture's FastNet guarded by a Mahalanobis and a squeezing detector, trained as recipes."""
    out = {}
    for name, settings in (("mahalanobis", {"shrinkage": 0.05}), ("squeeze", {"bits": 2})):
        run = tmp_path_factory.mktemp(name)
        cfg = from_dict(_recipe(trained_fastnet.run, name, **settings), ["runtime.device=cpu", "runtime.precision=fp32"])
        train(cfg, run, progress=False)
        out[name] = run
    return out


@pytest.mark.parametrize("name", ["mahalanobis", "squeeze"])
def test_the_saved_detector_is_the_one_lab_detect_would_build(trained_fastnet, detector_runs, name: str) -> None:
    """Loaded back, the guarded model has the settings, the fitted statistics and the threshold of
    the detector lab.runs.detect.guard builds on the spot from the same images."""
    ck = load_model(detector_runs[name], "cpu")
    saved = ck.model
    assert isinstance(saved, GuardedModel) and ck.record["defense"]["kind"] == "detector"
    assert saved.info.arch == f"{name}+fastnet" and not any(p.requires_grad for p in saved.parameters())
    settings = saved.detector.settings()
    fresh = guard(load_model(trained_fastnet.run, "cpu"), name, settings=settings, fpr=FPR, calib_n=CALIB_N,
                  fit_n=FIT_N)  # fmt: skip
    assert saved.threshold == pytest.approx(fresh.threshold, rel=1e-6)
    x = trained_fastnet.x
    assert torch.allclose(scores_of(saved.model, saved.detector, x), scores_of(fresh.model, fresh.detector, x),
                          rtol=1e-5, atol=1e-6)  # fmt: skip
    with torch.no_grad():  # forward: the classifier's logits (channels_last where the recipe placed it so)
        assert torch.allclose(saved(x), trained_fastnet.model(x), atol=1e-5)
    pred = saved.predict(x)
    rejected = scores_of(saved.model, saved.detector, x) > saved.threshold
    assert torch.equal(pred == REJECT, rejected) and 0 < int(rejected.sum()) < len(x)


def test_lab_detect_judges_the_saved_detector_with_its_threshold(detector_runs, tmp_path: Path) -> None:
    run = detector_runs["mahalanobis"]
    out = tmp_path / "d"
    proc = run_lab("detect", "--model", str(run), "--eps", "0.05", "-n", "16", "--steps", "3", "--no-progress",
                   "--report", str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    data = json.loads((out / "detection.json").read_text())
    saved = json.loads((run / "model.json").read_text())["defense"]
    assert data["detector"]["name"] == "mahalanobis" and data["threshold"] == pytest.approx(saved["threshold"])
    assert data["meta"]["calibration"]["index_stop"] - data["meta"]["calibration"]["index_start"] == CALIB_N


BAD = {
    "another detector for a saved one": (["detect", "--detector", "squeeze", "-n", "4"], "holds a mahalanobis detector"),
    "lab eval of a guarded model": (["eval", "--attack", "fgsm", "-n", "4"], "lab detect --model"),
    "lab certify of a guarded model": (["certify", "-n", "4"], "judges the classifier alone"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_commands_that_judge_a_model_that_always_answers_refuse_a_guarded_one(detector_runs, case: str) -> None:
    args, fragment = BAD[case]
    assert_user_error(run_lab(args[0], "--model", str(detector_runs["mahalanobis"]), *args[1:]), fragment)


def test_a_plain_classifier_needs_a_detector_named(trained_fastnet) -> None:
    assert_user_error(run_lab("detect", "--model", str(trained_fastnet.run), "-n", "4"), "choose a detector")


@pytest.mark.parametrize(("change", "fragment"), [
    ({"classifier": ""}, "detector.classifier is required"),
    ({"fpr": 1.5}, "detector.fpr must be in (0, 1)"),
    ({"bits": 12}, "detector.bits"),
    ({"colour": 1}, "detector.colour"),
])  # fmt: skip
def test_a_bad_detector_recipe_is_one_sentence(trained_fastnet, change: dict, fragment: str) -> None:
    recipe = _recipe(trained_fastnet.run, "squeeze")
    recipe["detector"].update(change)
    with pytest.raises(ConfigError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        from_dict(recipe)


def test_a_detector_recipe_trains_nothing_else(trained_fastnet) -> None:
    recipe = _recipe(trained_fastnet.run, "squeeze")
    recipe["defense"] = {"name": "pgd_at", "eps": 0.1}
    with pytest.raises(ConfigError, match="trains nothing else"):
        from_dict(recipe)


def test_a_guarded_run_is_not_a_classifier_to_guard_again(trained_fastnet, detector_runs, tmp_path: Path) -> None:
    cfg = from_dict(_recipe(detector_runs["squeeze"], "squeeze"), ["runtime.device=cpu"])
    with pytest.raises(Exception, match="a detector's run"):
        train(cfg, tmp_path / "again", progress=False)
