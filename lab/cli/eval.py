"""``lab eval``: robust accuracy under a suite of attacks; the table, the report files and,
with ``--fail-under``, exit code 1 for a missed or unverified number.

The request (threshold, epsilons, attacks) is checked once, before the model is loaded
(:func:`lab.runs.evaluate.plan_eval`).

Under ``torchrun --nproc_per_node N -m lab eval ...`` every rank loads the model and the
images, attacks its share of them and gets the whole report (:mod:`lab.evaluation.shards`);
rank 0 writes the files and prints, the other ranks print nothing. Every user mistake is
the same sentence on every rank (the checks run alike everywhere, and an error in one
rank's share reaches them all), so rank 0 alone prints it and every rank exits 2;
``torchrun`` itself then exits 1 and lists each rank's exit code.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import warnings
from pathlib import Path

from lab.cli.parser import EXIT_USER_ERROR
from lab.core.distributed import Dist, dist_from_env, join, leave
from lab.core.epsilon import parse_eps
from lab.core.errors import LabError
from lab.evaluation.gate import check_threshold, gate
from lab.present.files import write_report
from lab.present.terminal import report_table, use_color
from lab.present.text import headline_text
from lab.runs.evaluate import default_report_dir, evaluate_plan, plan_eval
from lab.training.checkpoint import load_model

#: how long a rank other than 0 waits before exiting on a user mistake (see :func:`run`)
NON_MAIN_ERROR_DELAY_S = 3.0


def run(args: argparse.Namespace) -> int:
    dd = dist_from_env()
    if not dd.main:  # rank 0 speaks for the job
        logging.getLogger().setLevel(logging.ERROR)
        warnings.simplefilter("ignore")
    try:
        return _run(args, dd)
    except LabError:
        if dd.main:
            raise  # printed as one sentence, exit 2
        # The same sentence rank 0 prints. torchrun stops every other rank with SIGTERM as soon as
        # one exits, so give rank 0 a moment to print it first (it met the same error at the same
        # point; a loaded machine can put it a few hundred milliseconds behind).
        time.sleep(NON_MAIN_ERROR_DELAY_S)
        return EXIT_USER_ERROR
    finally:
        leave(dd)


def _run(args: argparse.Namespace, dd: Dist) -> int:
    threshold = check_threshold(args.fail_under)
    eps = parse_eps(args.eps) if args.eps is not None else None
    plan = plan_eval(args.suite, args.attacks, eps, args.norm, args.certify)  # bad request: fail before loading
    ckpt = load_model(args.model, join(dd, args.device))
    report = evaluate_plan(
        ckpt, plan, n=args.n, offset=args.offset, batch_size=args.batch_size, checks=not args.no_checks,
        probe_n=args.probe_n, data_dir=args.data_dir, progress=not args.no_progress, precision=args.precision,
        ranks=dd,
    )  # fmt: skip
    verdict = gate(report, threshold, accept_unverified=args.accept_unverified)
    code = 0 if verdict is None or verdict.passed else 1
    if not dd.main:
        return code
    out = Path(args.report) if args.report else default_report_dir(ckpt, plan)
    paths = write_report(report, out)
    print(report_table(report, color=use_color(sys.stdout)))
    print()
    print(headline_text(report))
    for w in report.warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(f"report: {paths['json']} (+ {paths['markdown'].name}, {paths['plot'].name})")
    if verdict is not None:
        print(f"{'passed' if verdict.passed else 'FAILED'}: {verdict.reason}")
    return code
