"""Randomized smoothing (lab.evaluation.smoothing, defenses/gaussian.py): the Clopper-Pearson bound,
known answers on a classifier whose smoothed probabilities are exact, PREDICT's abstention, the
certificate's soundness against an L2 attack on the smoothed classifier's base, and the CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from cli_helpers import assert_user_error, run_lab
from torch import nn

from defenses import build_defense
from lab.core.errors import LabError
from lab.core.journal import Journal
from lab.evaluation.smoothing import ABSTAIN, certify_smoothed, lower_confidence_bound, predict
from lab.models import LabModel, ModelInfo
from lab.runs.certify import JOURNAL_FILE, certify_checkpoint
from lab.training.checkpoint import load_model


def test_clopper_pearson_lower_bound() -> None:
    assert lower_confidence_bound(0, 100, 0.001) == 0.0
    # all successes: the bound solves p^n = alpha
    assert lower_confidence_bound(100, 100, 0.01) == pytest.approx(0.01 ** (1 / 100))
    lo = lower_confidence_bound(900, 1000, 0.001)
    assert 0.86 < lo < 0.9


class HalfPlane(nn.Module):
    """Class 1 where the mean pixel is above 0.5: smoothing it with N(0, s^2 I) on d pixels gives
    P(class 1) = Phi((mean - 0.5) * sqrt(d) / s), so the exact certified radius is |mean - 0.5| * sqrt(d)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = x.flatten(1).mean(1, keepdim=True) - 0.5
        return torch.cat([-m, m], 1) * 100


def _half_plane() -> LabModel:
    info = ModelInfo("half", "toy", (1, 4, 4), ("low", "high"), (0.0,), (1.0,))
    return LabModel(HalfPlane(), info).eval()


def test_certified_radius_approaches_the_exact_one_from_below() -> None:
    model = _half_plane()
    x = torch.stack([torch.full((1, 4, 4), v) for v in (0.6, 0.7, 0.3)])
    y = torch.tensor([1, 1, 0])
    sigma = 0.5
    cert = certify_smoothed(model, x, y, [0.1], sigma=sigma, n0=100, n=20_000, alpha=0.001, progress=False)
    exact = [abs(v - 0.5) * 4 for v in (0.6, 0.7, 0.3)]  # |mean - 0.5| * sqrt(16)
    for r, e in zip(cert.meta["radii"], exact):
        # below the exact radius (a lower confidence bound), and close to it with 20,000 samples
        assert r <= e and r > e - 0.15, (r, e)
    assert cert.meta["classes"] == [1, 1, 0]


def test_predict_abstains_on_the_boundary_and_answers_away_from_it() -> None:
    model = _half_plane()
    x = torch.stack([torch.full((1, 4, 4), 0.5), torch.full((1, 4, 4), 0.9)])
    pred = predict(model, x, sigma=0.5, n=2000, alpha=0.001)
    assert pred.tolist() == [ABSTAIN, 1]


def test_certified_accuracy_counts_radius_and_correctness() -> None:
    model = _half_plane()
    x = torch.stack([torch.full((1, 4, 4), v) for v in (0.6, 0.7, 0.3, 0.8)])
    y = torch.tensor([1, 1, 0, 0])  # the last one is misclassified
    cert = certify_smoothed(model, x, y, [0.0, 0.3, 0.7, 1.5], sigma=0.5, n=5000, progress=False)
    rad = cert.meta["radii"]
    for res in cert.results:
        expected = [i for i in range(3) if rad[i] >= res.eps]
        assert res.certified_examples == expected
    assert cert.results[0].certified_accuracy == 0.75 and cert.results[-1].certified_accuracy == 0.0


def test_seeded_per_image() -> None:
    model = _half_plane()
    x = torch.stack([torch.full((1, 4, 4), v) for v in (0.55, 0.65)])
    a = certify_smoothed(model, x, torch.tensor([1, 1]), [0.1], sigma=0.5, n=500, progress=False)
    b = certify_smoothed(model, x.flip(0), torch.tensor([1, 1]), [0.1], sigma=0.5, n=500, progress=False)
    assert a.meta["radii"] == b.meta["radii"][::-1]


@pytest.mark.parametrize(("kw", "fragment"), [({"sigma": 0.0}, "sigma must be positive"),
                                               ({"alpha": 1.5}, "alpha must be in"),
                                               ({"n": 0}, "at least one noise sample")])  # fmt: skip
def test_bad_settings(kw: dict, fragment: str) -> None:
    args = {"sigma": 0.5, "n": 100, **kw}
    with pytest.raises(LabError, match=fragment):
        certify_smoothed(_half_plane(), torch.rand(1, 1, 4, 4), torch.tensor([0]), [0.5], progress=False, **args)


def test_gaussian_training_defense_adds_noise() -> None:
    d = build_defense("gaussian", {"sigma": 0.3}, input_shape=(1, 4, 4))
    seen: list[torch.Tensor] = []
    model = _half_plane()
    model.register_forward_pre_hook(lambda m, inp: seen.append(inp[0]))
    x = torch.full((4096, 1, 4, 4), 0.5)
    loss, _ = d.loss(model, x, torch.zeros(4096, dtype=torch.long))
    noise = seen[0] - x
    assert float(noise.std()) == pytest.approx(0.3, rel=0.02) and math.isfinite(float(loss))


def test_lab_certify_smoothing_cli(trained_fastnet, tmp_path: Path) -> None:
    out = tmp_path / "s"
    proc = run_lab("certify", "--model", str(trained_fastnet.run), "--method", "smoothing", "--sigma", "0.25",
                   "--eps", "0.25,0.5", "-n", "8", "--n-samples", "200", "--n0", "20", "--no-progress",
                   "--report", str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    data = json.loads((out / "certification.json").read_text())
    assert data["norm"] == "l2" and data["method"] == "smoothing" and len(data["meta"]["radii"]) == 8
    assert "randomized smoothing" in proc.stdout
    assert sorted(p.name for p in out.iterdir()) == ["certification.json", "certification.md"]  # no journal left
    # a model not trained with noise needs --sigma; eval cannot add a smoothing row
    assert_user_error(run_lab("certify", "--model", str(trained_fastnet.run), "--method", "smoothing", "-n", "2",
                              "--report", str(tmp_path / "t")), "needs --sigma")  # fmt: skip
    assert_user_error(run_lab("eval", "--model", str(trained_fastnet.run), "--certify", "smoothing", "-n", "2",
                              "--report", str(tmp_path / "u")), "takes a bound method")  # fmt: skip
    assert not (tmp_path / "t").exists() and not (tmp_path / "u").exists()


def test_interrupted_smoothing_resumes_with_the_uninterrupted_result(trained_fastnet, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """Killed after 3 of 6 images, lab certify's smoothing keeps them in its journal; run again, it
    certifies only the other 3 and reports what one uninterrupted run reports. Another request
    (another n0) does not take them, and its journal replaces theirs."""
    ck = load_model(trained_fastnet.run, "cpu")
    kw = {"method": "smoothing", "eps": [0.25], "n": 6, "sigma": 0.25, "n0": 20, "n_samples": 200, "progress": False}
    add, calls = Journal.add, []

    def killed_after_three(self: Journal, key: str, value: object) -> None:
        add(self, key, value)
        calls.append(key)
        if len(calls) == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(Journal, "add", killed_after_three)
    with pytest.raises(KeyboardInterrupt):
        certify_checkpoint(ck, resume_dir=tmp_path, **kw)
    monkeypatch.undo()
    assert len((tmp_path / JOURNAL_FILE).read_text().splitlines()) == 1 + 3  # the request, then 3 images
    resumed = certify_checkpoint(ck, resume_dir=tmp_path, **kw)
    whole = certify_checkpoint(ck, **kw)
    assert resumed.meta["resumed_images"] == 3 and whole.meta["resumed_images"] == 0
    assert resumed.meta["classes"] == whole.meta["classes"] and resumed.meta["radii"] == whole.meta["radii"]
    assert resumed.results[0].certified_examples == whole.results[0].certified_examples
    changed = certify_checkpoint(ck, resume_dir=tmp_path, **{**kw, "n0": 30})  # another request: all 6 anew
    assert changed.meta["resumed_images"] == 0
    assert len((tmp_path / JOURNAL_FILE).read_text().splitlines()) == 1 + 6  # now that request's journal
