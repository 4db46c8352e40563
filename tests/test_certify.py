"""Certification (lab.evaluation.certify, lab certify, lab eval --certify) on the trained FastNet:
certified images are correct and unfoolable, certified accuracy falls with the radius, CROWN
certifies at least what IBP does, the sandwich check catches a certified image an attack fooled,
and the CLI's bad input is one sentence and exit 2."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch
from cli_helpers import assert_user_error, run_lab

from attacks import ATTACKS
from lab.core.errors import LabError
from lab.evaluation.certify import CertificationReport, certify, sandwich_check
from lab.evaluation.report import RobustnessReport
from lab.runs.evaluate import add_certification, evaluate_checkpoint
from lab.training.checkpoint import load_model

EPS = [0.0, 0.002, 0.01, 0.05, 1.0]
CROWN_EPS = [0.0, 0.002, 0.01]  # full CROWN costs a backward pass per unstable neuron: small radii only


@pytest.fixture(scope="module")
def certs(trained_fastnet) -> dict[str, CertificationReport]:
    m, x, y = trained_fastnet.model, trained_fastnet.x, trained_fastnet.y
    return {method: certify(m, x, y, CROWN_EPS if method == "crown" else EPS, method=method, progress=False)
            for method in ("ibp", "crown-ibp", "crown")}  # fmt: skip


def test_certified_images_are_correct_and_the_accuracy_falls_with_the_radius(trained_fastnet, certs) -> None:
    m, x, y = trained_fastnet.model, trained_fastnet.x, trained_fastnet.y
    with torch.no_grad():
        correct = set((m(x).argmax(1) == y).nonzero().flatten().tolist())
    for method, cert in certs.items():
        accs = [r.certified_accuracy for r in cert.results]
        assert accs == sorted(accs, reverse=True)
        assert accs[0] == pytest.approx(len(correct) / 64)  # radius 0: certified = correct
        if method != "crown":
            assert accs[-1] == 0.0  # the whole pixel range: nothing
        for r in cert.results:
            assert set(r.certified_examples) <= correct
            assert r.certified_accuracy == len(r.certified_examples) / 64
    # measured on the FastNet fixture over its training seeds 0-4 (fp32), of 64 images: correct 46-50;
    # at 0.002 IBP 21-29, CROWN-IBP 46-50, CROWN 46-50; at 0.01 IBP 0-1, CROWN-IBP 16-27, CROWN 42-45
    crown, ibp = certs["crown"].result_at(0.01), certs["ibp"].result_at(0.01)
    assert 0 < crown.certified_accuracy < certs["crown"].result_at(0.0).certified_accuracy
    assert len(crown.certified_examples) >= len(ibp.certified_examples) + 20  # 41-45 more, measured


def test_tighter_methods_certify_a_superset(certs) -> None:
    for e in EPS:
        ibp, mixed = (set(certs[k].result_at(e).certified_examples) for k in ("ibp", "crown-ibp"))
        assert ibp <= mixed
        if e in CROWN_EPS:
            assert mixed <= set(certs["crown"].result_at(e).certified_examples)
    assert certs["crown"].result_at(0.01).by_method["ibp"] == len(certs["ibp"].result_at(0.01).certified_examples)


def test_no_attack_fools_a_certified_image(trained_fastnet, certs) -> None:
    m, x, y = trained_fastnet.model, trained_fastnet.x, trained_fastnet.y
    for e, method in ((0.01, "crown"), (0.05, "crown-ibp")):
        idx = certs[method].result_at(e).certified_examples
        if not idx:
            continue
        xs, ys = x[idx], y[idx]
        for name in ("pgd", "apgd"):
            adv = ATTACKS.get(name)(eps=e, norm="linf", steps=50)(m, xs, ys)
            with torch.no_grad():
                assert (m(adv).argmax(1) == ys).all(), f"{name} fooled a certified image at eps {e}"


def test_report_round_trip(certs, tmp_path: Path) -> None:
    cert = certs["crown"]
    back = CertificationReport.load(cert.save(tmp_path / "c.json"))
    assert back.to_dict() == cert.to_dict()
    with pytest.raises(LabError, match="not a lab certification report"):
        (tmp_path / "x.json").write_text(json.dumps({"format": "other"}))
        CertificationReport.load(tmp_path / "x.json")


@pytest.mark.parametrize(("kwargs", "fragment"), [
    ({"method": "exact"}, "unknown certification method 'exact'"),
    ({"eps": [2.0]}, "above the data range"),
    ({"eps": [-0.1]}, ">= 0"),
])  # fmt: skip
def test_bad_requests(trained_fastnet, kwargs: dict, fragment: str) -> None:
    args = {"eps": [0.1], "method": "ibp", **kwargs}
    with pytest.raises(LabError, match=fragment):
        certify(trained_fastnet.model, trained_fastnet.x, trained_fastnet.y, args.pop("eps"), progress=False, **args)


@pytest.fixture(scope="module")
def report_with_cert(trained_fastnet) -> RobustnessReport:
    ckpt = load_model(trained_fastnet.run)
    return evaluate_checkpoint(ckpt, suite="quick", eps=[0.01, 0.05], n=64, checks=False, progress=False,
                               certify="crown-ibp")  # fmt: skip


def test_eval_with_certify_adds_the_row_and_the_passing_sandwich(report_with_cert) -> None:
    rep = report_with_cert
    check = next(c for c in rep.checks if c.name == "certified <= attacked")
    assert check.passed is True, check.detail
    for r in rep.results:
        cert = next(c for c in rep.certification["results"] if c["eps"] == r.eps)
        assert set(cert["certified_examples"]) <= set(r.robust_examples)
        assert cert["certified_accuracy"] <= r.robust_accuracy


def test_the_sandwich_check_fails_loudly_when_a_certified_image_was_fooled(report_with_cert) -> None:
    rep = RobustnessReport.from_dict(report_with_cert.to_dict())
    cert = CertificationReport.from_dict(rep.certification)
    r = rep.result_at(0.05)
    fooled = sorted(set(range(64)) - set(r.robust_examples))
    assert fooled, "the quick suite fooled nothing at 0.05"
    cert.result_at(0.05).certified_examples.append(fooled[0])  # a broken certifier
    check = sandwich_check(cert, rep)
    assert check.passed is False and check.detail.startswith("BUG")
    rep.checks = [c for c in rep.checks if c.name != "certified <= attacked"]
    add_certification(rep, cert)
    assert rep.failed_checks and any(w.startswith("BUG") for w in rep.warnings)


def test_lab_certify_cli(trained_fastnet, tmp_path: Path) -> None:
    out = tmp_path / "cert"
    proc = run_lab("certify", "--model", str(trained_fastnet.run), "--eps", "0.002,0.01", "-n", "64",
                   "--method", "crown-ibp", "--no-progress", "--report", str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "certified by CROWN-IBP" in proc.stdout and "a lower bound" in proc.stdout
    data = json.loads((out / "certification.json").read_text())
    assert data["format"] == "lab-certification-report" and data["n"] == 64 and data["eps"] == [0.002, 0.01]
    assert (out / "certification.md").read_text().startswith("# Certification: fastnet")


CERTIFY_BAD = {
    "unknown method": (["--method", "exact"], "invalid choice: 'exact'"),
    "eps above range": (["--eps", "2"], "L-inf epsilon 2 is above the data range"),
    "eps not a number": (["--eps", "0.1,abc"], "epsilon 'abc' in '0.1,abc' is not a number"),
    "missing model": (["--model", "/nonexistent/run"], "does not exist"),
}


@pytest.fixture(scope="module")
def bad_certify_runs(trained_fastnet, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple]:
    tmp = tmp_path_factory.mktemp("bad_certify")

    def one(case: str) -> tuple:
        report = tmp / case.replace(" ", "_")
        argv = ["certify", "--model", str(trained_fastnet.run), "--no-progress", "--report", str(report)]
        return run_lab(*argv, *CERTIFY_BAD[case][0]), report

    with ThreadPoolExecutor(max_workers=3) as pool:
        return dict(zip(CERTIFY_BAD, pool.map(one, CERTIFY_BAD)))


@pytest.mark.parametrize("case", list(CERTIFY_BAD))
def test_lab_certify_bad_input(bad_certify_runs, case: str) -> None:
    proc, report = bad_certify_runs[case]
    fragment = CERTIFY_BAD[case][1]
    if fragment.startswith("invalid choice"):  # argparse's own sentence, exit 2
        assert proc.returncode == 2 and fragment in proc.stderr and "Traceback" not in proc.stderr
    else:
        assert_user_error(proc, fragment)
    assert not report.exists()


def test_the_certified_check_does_not_stand_in_for_the_masking_checks(report_with_cert) -> None:
    from lab.evaluation.gate import gate

    verdict = gate(report_with_cert, 0.0)  # made with checks=False: only the certified <= attacked check ran
    assert verdict is not None and not verdict.passed and "no gradient-masking check ran" in verdict.reason
