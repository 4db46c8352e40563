"""``lab certify``: the certified accuracy of a model at L-inf radii (bound propagation) or L2 radii
(randomized smoothing), a lower bound beside the attacked upper bound of ``lab eval``; the table,
certification.json and certification.md.

The request (radii, method) is checked before the model is loaded
(:func:`lab.runs.certify.check_request`); a model with an operation the bounds do not support
is one sentence naming it, exit 2. Randomized smoothing keeps its finished images in a journal in
the report's folder: interrupted, the same command continues where it stopped.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from lab.core.epsilon import parse_eps
from lab.present.certify import certification_table, write_certification
from lab.runs.certify import certify_checkpoint, check_request, default_cert_dir, finish
from lab.training.checkpoint import load_model


def run(args: argparse.Namespace) -> int:
    eps = parse_eps(args.eps) if args.eps is not None else None
    check_request(eps, args.method)
    ckpt = load_model(args.model, args.device)
    out = Path(args.report) if args.report else default_cert_dir(ckpt, args.method)
    cert = certify_checkpoint(ckpt, eps=eps, method=args.method, n=args.n, offset=args.offset,
                              batch_size=args.batch_size, max_rows=args.max_rows, sigma=args.sigma, n0=args.n0,
                              n_samples=args.n_samples, alpha=args.alpha, data_dir=args.data_dir,
                              progress=not args.no_progress, resume_dir=out)  # fmt: skip
    if cert.meta.get("resumed_images"):
        print(f"resumed: {cert.meta['resumed_images']} of {cert.n} images certified by the interrupted run")
    paths = write_certification(cert, out)
    finish(out)
    print(certification_table(cert))
    print(f"report: {paths['json']} (+ {paths['markdown'].name})")
    return 0
