"""``lab detect``: a detector in front of a model, judged by naive and adaptive attacks; the table,
detection.json and detection.md. The request (detector, radii, false-positive rate, settings) is
checked before the model is loaded."""

from __future__ import annotations

import argparse
from pathlib import Path

from defenses.detectors import DETECTORS
from lab.core.epsilon import parse_eps
from lab.core.settings import coerce_settings
from lab.present.detection import detection_table, write_detection
from lab.runs.attack import parse_params
from lab.runs.detect import check_request, default_detect_dir, detect_checkpoint, saved_detector
from lab.training.checkpoint import load_model


def run(args: argparse.Namespace) -> int:
    eps = parse_eps(args.eps) if args.eps is not None else None
    settings = None
    if args.detector is not None:
        check_request(args.detector, eps, args.fpr)
        settings = coerce_settings("detector", DETECTORS.get(args.detector), parse_params(args.params), from_text=True)
    ckpt = load_model(args.model, args.device)
    detector = saved_detector(ckpt, args.detector, settings, args.autoencoder)
    rep = detect_checkpoint(ckpt, detector, settings=settings, autoencoder=args.autoencoder, eps=eps, n=args.n,
                            offset=args.offset, calib_n=args.calib_n, fit_n=args.fit_n, fpr=args.fpr, steps=args.steps,
                            restarts=args.restarts, batch_size=args.batch_size, data_dir=args.data_dir,
                            progress=not args.no_progress)  # fmt: skip
    out = Path(args.report) if args.report else default_detect_dir(ckpt, detector)
    paths = write_detection(rep, out)
    print(detection_table(rep))
    print(f"report: {paths['json']} (+ {paths['markdown'].name})")
    return 0
