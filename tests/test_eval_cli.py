"""``lab eval`` and ``lab attack`` end to end through the real console script, on a FastNet
trained for real (the ``trained_fastnet`` fixture), plus every bad input as exit 2."""

from __future__ import annotations

import json
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import assert_user_error, run_lab
from PIL import Image

from lab.cli import main
from lab.core.errors import LabError
from lab.evaluation.report import RobustnessReport
from lab.runs.attack import attack_settings, parse_params, resolve_target, run_attack

QUICK = ["--suite", "quick", "--n", "64", "--probe-n", "32", "--no-progress"]








@pytest.fixture(scope="module")
def evaluated(trained_fastnet, tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    out = tmp_path_factory.mktemp("eval") / "report"
    proc = run_lab("eval", "--model", str(trained_fastnet.run), *QUICK, "--eps", "0,0.1", "--report", str(out))
    return proc, out


def test_eval_writes_the_report_and_prints_the_table(evaluated) -> None:
    proc, out = evaluated
    assert proc.returncode == 0, proc.stderr
    assert {p.name for p in out.iterdir()} == {"report.json", "report.md", "accuracy_vs_eps.png"}
    rep = RobustnessReport.load(out / "report.json")
    assert rep.eps == [0.0, 0.1] and rep.n == 64 and rep.suite == "quick" and rep.norm == "linf"
    assert [a.attack for a in rep.results[1].attacks] == ["fgsm", "pgd-20"]
    assert rep.meta["data"]["offset"] == 0 and rep.meta["data"]["index_stop"] == 64
    assert rep.meta["data"]["dataset"] == "fashion-mnist" and rep.model["arch"] == "fastnet"
    assert len(rep.checks) >= 4 and rep.headline["upper_bound_only"] is True
    # the terminal shows the report's own numbers (not a recomputation) and no colour when piped
    assert "worst case" in proc.stdout and "\x1b" not in proc.stdout
    assert f"{100 * rep.results[1].robust_accuracy:.2f}%" in proc.stdout
    assert "robust accuracy at most" in proc.stdout and "upper bound" in proc.stdout
    assert ("FAIL" in (out / "report.md").read_text()) == bool(rep.failed_checks)
    with Image.open(out / "accuracy_vs_eps.png") as img:
        assert img.format == "PNG"


def test_fail_under_exits_1(trained_fastnet, tmp_path: Path, evaluated) -> None:
    _, out = evaluated
    acc = RobustnessReport.load(out / "report.json").headline["robust_accuracy"]
    assert acc < 0.99
    base = ["eval", "--model", str(trained_fastnet.run), *QUICK, "--eps", "0,0.1", "--no-checks"]
    proc = run_lab(*base, "--fail-under", "0.99", "--accept-unverified", "--report", str(tmp_path / "r"))
    assert proc.returncode == 1, proc.stderr
    assert "below --fail-under 99.00%" in proc.stdout
    assert (tmp_path / "r" / "report.json").is_file()  # the report is written either way
    passed = run_lab(*base, "--fail-under", "0", "--accept-unverified", "--report", str(tmp_path / "r0"))
    assert passed.returncode == 0, passed.stderr
    assert "passed: robust accuracy" in passed.stdout


def test_fail_under_refuses_an_unverified_number(trained_fastnet, tmp_path: Path) -> None:
    """Weak attacks only, and no masking check: refused (exit 1) even against a threshold of 0."""
    proc = run_lab("eval", "--model", str(trained_fastnet.run), *QUICK, "--eps", "0,0.1", "--no-checks",
                   "--fail-under", "0", "--precision", "fp32", "--report", str(tmp_path / "r"))  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("FAILED")]
    assert len(line) == 1 and "is not accepted: no gradient-masking check ran" in line[0]
    assert "--accept-unverified" in line[0]
    rep = RobustnessReport.load(tmp_path / "r" / "report.json")  # --precision reaches every gradient attack
    assert rep.meta["precision"] == "fp32"
    assert {a.config["precision"] for r in rep.results for a in r.attacks} == {"fp32"}


def test_default_report_folder_and_default_eps(trained_fastnet) -> None:
    """No --eps: 0.3 for L-inf on grayscale data; no --report: RUN/eval/<suite>-<norm>."""
    code = main(["eval", "--model", str(trained_fastnet.run), "--attack", "fgsm", "--n", "16", "--no-checks",
                 "--no-progress"])  # fmt: skip
    assert code == 0
    rep = RobustnessReport.load(trained_fastnet.run / "eval" / "fgsm-linf" / "report.json")
    assert rep.eps == [0.3] and rep.suite is None and [a["name"] for a in rep.attacks] == ["fgsm"]


EVAL_BAD = {
    "unknown suite": (["--suite", "nope"], "unknown suite 'nope'"),
    "unknown attack": (["--attack", "nope"], "unknown attack 'nope'"),
    "negative eps": (["--eps", "-0.1"], "epsilon must be a number >= 0, got -0.1"),
    "eps above range": (["--eps", "2"], "L-inf epsilon 2 is above the data range"),
    "eps not a number": (["--eps", "abc"], "epsilon 'abc' is not a number"),
    "n too large": (["--n", "100000"], "fashion-mnist has 10000 test images"),
    "fail-under above 1": (["--fail-under", "1.5"], "--fail-under 1.5 is not a fraction in [0, 1]"),
    "missing model": (["--model", "{tmp}/missing"], "does not exist"),
    "corrupt checkpoint": (["--model", "{tmp}/corrupt"], "corrupt"),
}


@pytest.fixture(scope="module")
def bad_eval_runs(trained_fastnet, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple]:
    """Every bad ``lab eval`` invocation, run through the console script three at a time."""
    tmp = tmp_path_factory.mktemp("bad")
    (tmp / "corrupt").mkdir()
    blob = (trained_fastnet.run / "model.safetensors").read_bytes()
    (tmp / "corrupt" / "model.safetensors").write_bytes(blob[: len(blob) // 2])

    def one(case: str) -> tuple[subprocess.CompletedProcess[str], Path]:
        args, _ = EVAL_BAD[case]
        report = tmp / case.replace(" ", "_")
        argv = ["eval", "--model", str(trained_fastnet.run), "--no-progress", "--report", str(report)]
        proc = run_lab(*argv, *[a.replace("{tmp}", str(tmp)) for a in args])
        return proc, report

    with ThreadPoolExecutor(max_workers=3) as pool:
        return dict(zip(EVAL_BAD, pool.map(one, EVAL_BAD)))


@pytest.mark.parametrize("case", list(EVAL_BAD))
def test_eval_bad_input_is_one_sentence_and_exit_2(bad_eval_runs, case: str) -> None:
    proc, report = bad_eval_runs[case]
    assert_user_error(proc, EVAL_BAD[case][1])
    assert not report.exists()


def test_attack_writes_images_and_consistent_json(trained_fastnet, tmp_path: Path) -> None:
    out = tmp_path / "atk"
    proc = run_lab("attack", "--model", str(trained_fastnet.run), "--attack", "pgd", "--eps", "0.1", "--steps", "10",
                   "--n", "4", "--precision", "fp32", "--out", str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "pgd (L-inf, eps 0.1)" in proc.stdout and "success rate" in proc.stdout
    for kind in ("clean", "adv", "perturbation"):
        files = sorted(out.glob(f"{kind}_*.png"))
        assert [f.name for f in files] == [f"{kind}_{i:04d}.png" for i in range(4)]
        with Image.open(files[0]) as img:
            assert img.size == (28, 28) and img.mode == "L"
    data = json.loads((out / "attack.json").read_text())
    assert data["attack"]["name"] == "pgd" and data["attack"]["steps"] == 10 and data["eps"] == 0.1
    assert data["attack"]["precision"] == "fp32"  # --precision fp32 below
    assert "amplified" in data["perturbation_images"]
    rows = data["images"]
    assert [r["test_index"] for r in rows] == [0, 1, 2, 3]
    assert [r["label"] for r in rows] == trained_fastnet.y[:4].tolist()
    for r in rows:
        assert r["fooled"] == (r["prediction_after"] != r["label"])
        assert r["success"] == (r["fooled"] and r["prediction_before"] == r["label"])
        assert r["linf"] <= 0.1 + 1e-6 and r["l2"] >= r["linf"]
        assert 0 < r["confidence_before"] <= 1 and 0 < r["confidence_after"] <= 1
    s = data["summary"]
    assert s["n"] == 4 and s["fooled"] == sum(r["fooled"] for r in rows)
    assert s["accuracy_before"] == np.mean([r["prediction_before"] == r["label"] for r in rows])
    assert s["accuracy_after"] == np.mean([r["prediction_after"] == r["label"] for r in rows])
    correct = [r for r in rows if r["prediction_before"] == r["label"]]
    assert s["success_rate"] == pytest.approx(sum(r["success"] for r in correct) / len(correct))
    # the adversarial PNG differs from the clean one by at most eps (plus 8-bit rounding)
    clean = np.asarray(Image.open(out / "clean_0001.png"), dtype=np.float64) / 255
    adv = np.asarray(Image.open(out / "adv_0001.png"), dtype=np.float64) / 255
    assert np.abs(adv - clean).max() <= 0.1 + 1 / 255


def test_attack_on_image_files(trained_fastnet, tmp_path: Path, capsys) -> None:
    x = (trained_fastnet.x[:2, 0].numpy() * 255).round().astype(np.uint8)
    files = []
    for i, img in enumerate(x):
        Image.fromarray(img).save(tmp_path / f"img{i}.png")
        files.append(str(tmp_path / f"img{i}.png"))
    Image.fromarray(np.zeros((32, 30, 3), np.uint8)).save(tmp_path / "big.png")
    out = tmp_path / "files"
    code = main(["attack", "--model", str(trained_fastnet.run), "--attack", "fgsm", "--eps", "0.2",
                 "--image", *files, "--out", str(out)])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    data = json.loads((out / "attack.json").read_text())
    assert data["label_source"] == "prediction" and data["summary"]["accuracy_before"] is None
    assert [r["name"] for r in data["images"]] == files
    assert all(r["label"] == r["prediction_before"] for r in data["images"])
    code = main(["attack", "--model", str(trained_fastnet.run), "--attack", "fgsm", "--image",
                 str(tmp_path / "big.png"), "--out", str(tmp_path / "x")])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 2 and "big.png" in err and "30x32" in err and "28x28" in err


def test_attack_unknown_param_exits_2(trained_fastnet, tmp_path: Path) -> None:
    proc = run_lab("attack", "--model", str(trained_fastnet.run), "--attack", "pgd", "--param", "nope=1",
                   "--n", "4", "--out", str(tmp_path / "a"))  # fmt: skip
    assert_user_error(proc, "attack 'pgd' has no setting 'nope'; its settings are: steps")
    assert not (tmp_path / "a").exists()


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--attack", "fgsm", "--steps", "3"], "attack 'fgsm' has no setting 'steps'"),
        (["--attack", "pgd", "--param", "steps=many"], "must be a whole number"),
        (["--attack", "pgd", "--param", "steps"], "must be KEY=VALUE"),
        (["--attack", "pgd", "--steps", "3", "--param", "steps=4"], "given twice"),
        (["--attack", "pgd", "--eps", "0,0.1"], "takes one epsilon"),
        (["--attack", "pgd", "--target", "Unicorn"], "unknown target class 'Unicorn'"),
        (["--attack", "pgd", "--n", "100000"], "fashion-mnist has 10000 test images"),
        (["--attack", "deepfool", "--precision", "bf16"], "attack 'deepfool' has no bf16 path"),
        (["--attack", "pgd", "--precision", "fp32", "--param", "precision=bf16"], "precision is given twice"),
    ],
)
def test_attack_bad_input(trained_fastnet, tmp_path: Path, capsys, args: list[str], fragment: str) -> None:
    code = main(["attack", "--model", str(trained_fastnet.run), "--out", str(tmp_path / "a"), *args])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert fragment in err.strip().splitlines()[-1]


def test_run_attack_api_targeted(trained_fastnet) -> None:
    """The dashboard's path: one image, a named target class."""
    settings = attack_settings("pgd", parse_params(["steps=30", "alpha=1/255", "random_start=false"]))
    assert settings == {"steps": 30, "alpha": 1 / 255, "random_start": False}
    target = resolve_target(trained_fastnet.model.info.class_names, "bag")
    res = run_attack(trained_fastnet.model, "pgd", settings, 0.3, "linf", trained_fastnet.x[:1], trained_fastnet.y[:1],
                     target)  # fmt: skip
    row = res.images[0]
    assert res.targeted == "class" and row.target == target == 8
    assert row.success == (row.prediction_after == 8)
    assert res.adversarial.shape == (1, 1, 28, 28) and res.clean.dtype == np.float32
    with pytest.raises(LabError, match="settings are"):
        attack_settings("fgsm", {"momentum": 1})
