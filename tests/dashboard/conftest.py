"""A tiny runs folder for the dashboard's tests: real models trained for seconds on MNIST,
a corrupt checkpoint, a robustness report and an explanation report; and a tiny finished
sweep for the Experiments page."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from dash_helpers import ROOT, DashRuns, tiny_denoiser, tiny_train

from lab.evaluation.report import MaskingCheck
from lab.present.explanations import write_explain_run
from lab.present.files import write_report
from lab.runs.evaluate import evaluate_checkpoint
from lab.runs.explain import run_explain
from lab.runs.samples import from_test_set
from lab.training.checkpoint import load_model


@pytest.fixture(scope="session")
def dash_runs(tmp_path_factory: pytest.TempPathFactory) -> DashRuns:
    """``mnist_std`` (FastNet, 2 epochs on 2,048 images, ~90%), ``mnist_at`` (the same with
    PGD-3 adversarial training, 1 epoch), ``broken`` (garbage where the weights should be),
    a quick ``lab eval`` report of ``mnist_std`` with one failed masking check, and an
    explanation report with an attack; and, once the lab has denoisers, ``mnist_bit_depth``
    (1-bit depth reduction in front of ``mnist_std``) with its threat-row report; and
    ``mnist_attention`` (attention_cnn, 1 epoch on 512 images, no report)."""
    root = tmp_path_factory.mktemp("dash_runs")
    std = tiny_train(root / "mnist_std")
    at = tiny_train(root / "mnist_at", epochs=1, subset=1024,
                    defense={"name": "pgd_at", "eps": 0.3, "steps": 3, "alpha": 0.15})  # fmt: skip
    broken = root / "broken"
    broken.mkdir()
    (broken / "model.safetensors").write_bytes(b"\x00" * 8 + b"this is not a checkpoint")
    (broken / "eval" / "quick-linf").mkdir(parents=True)
    (broken / "eval" / "quick-linf" / "report.json").write_text("{ not json")

    ck = load_model(std)
    rep = evaluate_checkpoint(ck, suite="quick", eps=[0.0, 0.1, 0.3], n=64, checks=False, progress=False)
    rep.checks.append(MaskingCheck("more-steps-change-little", False, "PGD-100 beat PGD-20 by 12 points",
                                   {"pgd20": 0.3, "pgd100": 0.18}))  # fmt: skip
    report_dir = std / "eval" / "quick-linf"
    write_report(rep, report_dir)

    s = from_test_set(ck.info, 2, 0)
    run = run_explain([ck], ["saliency", "gradcam"], s.x, s.y, attack="pgd", eps=0.3, quick=True, names=s.names)
    expl_dir = root / "explain_demo"
    write_explain_run(run, expl_dir)
    denoised = tiny_denoiser(root / "mnist_bit_depth", std)
    if denoised is not None:  # its report has threat rows (gray-box, white-box, bpda)
        rep = evaluate_checkpoint(load_model(denoised), suite="quick", eps=[0.0, 0.1, 0.3], n=64, checks=False,
                                  progress=False)  # fmt: skip
        write_report(rep, denoised / "eval" / "quick-linf")
    attention = tiny_train(root / "mnist_attention", epochs=1, subset=512, arch="attention_cnn")
    return DashRuns(root=root, standard=std, hardened=at, broken=broken, report=report_dir / "report.json",
                    explanations=expl_dir / "explanations.json", denoised=denoised, attention=attention)  # fmt: skip


@pytest.fixture
def app_env(dash_runs: DashRuns, monkeypatch: pytest.MonkeyPatch) -> DashRuns:
    """The dashboard pointed at the tiny runs folder (LAB_RUNS_DIR)."""
    monkeypatch.setenv("LAB_RUNS_DIR", str(dash_runs.root))
    monkeypatch.chdir(ROOT)
    return dash_runs


@pytest.fixture(scope="session")
def dash_sweeps(finished_sweep: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sweeps folder holding ``tiny``: a copy of the session's finished sweep (two Fashion-MNIST
    models, standard and FGSM-RS, x two seeds, each evaluated with the quick suite and
    explained with saliency: 12 cells; tests/conftest.py)."""
    base = tmp_path_factory.mktemp("dash_sweeps")
    shutil.copytree(finished_sweep[1], base / "sweeps" / "tiny")
    return base / "sweeps"
