"""``lab eval``: robust accuracy under a suite of attacks; the table, the report files and,
with ``--fail-under``, exit code 1 for a missed or unverified number.

The request (threshold, epsilons, attacks) is checked once, before the model is loaded
(:func:`lab.runs.evaluate.plan_eval`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lab.core.epsilon import parse_eps
from lab.core.runtime import pick_device
from lab.evaluation.gate import check_threshold, gate
from lab.present.files import write_report
from lab.present.terminal import report_table, use_color
from lab.present.text import headline_text
from lab.runs.evaluate import default_report_dir, evaluate_plan, plan_eval
from lab.training.checkpoint import load_model


def run(args: argparse.Namespace) -> int:
    threshold = check_threshold(args.fail_under)
    eps = parse_eps(args.eps) if args.eps is not None else None
    plan = plan_eval(args.suite, args.attacks, eps, args.norm)  # bad epsilon, suite or attack: fail before loading
    ckpt = load_model(args.model, pick_device(args.device))
    report = evaluate_plan(
        ckpt, plan, n=args.n, offset=args.offset, batch_size=args.batch_size, checks=not args.no_checks,
        probe_n=args.probe_n, data_dir=args.data_dir, progress=not args.no_progress, precision=args.precision,
    )  # fmt: skip
    out = Path(args.report) if args.report else default_report_dir(ckpt, plan)
    paths = write_report(report, out)
    print(report_table(report, color=use_color(sys.stdout)))
    print()
    print(headline_text(report))
    for w in report.warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(f"report: {paths['json']} (+ {paths['markdown'].name}, {paths['plot'].name})")
    verdict = gate(report, threshold, accept_unverified=args.accept_unverified)
    if verdict is None:
        return 0
    print(f"{'passed' if verdict.passed else 'FAILED'}: {verdict.reason}")
    return 0 if verdict.passed else 1
