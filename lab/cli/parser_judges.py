"""The arguments of ``lab certify`` and ``lab detect``: the two commands that judge a model's
defenses from the other side (certified lower bounds; detectors under naive and adaptive attacks)."""

from __future__ import annotations

from typing import Any

from defenses.detectors import DETECTORS
from lab.cli.args import EPS_HELP, add_data_dir
from lab.models.bounds import METHODS as BOUND_METHODS


def add_certify_parser(sub: Any) -> None:
    p = sub.add_parser("certify", help="certified accuracy at L-inf or L2 radii (a lower bound), with a report",
                       description=(
        "Certify a trained model on the first --n test images of its dataset: an image counts when it is "
        "classified correctly and provably keeps its class for every input in the ball: L-inf by interval or "
        "CROWN bound propagation, L2 by randomized smoothing (with probability 1 - alpha). Print the table; "
        "write certification.json / certification.md."))  # fmt: skip
    p.add_argument("--model", required=True, help="run folder or model.safetensors")
    p.add_argument("--eps", help=EPS_HELP + " (L2 radii for smoothing; default: 0.3 L-inf / 1.5 L2 on grayscale "
                   "data, 8/255 / 0.5 on RGB)")  # fmt: skip
    p.add_argument("--method", choices=[*BOUND_METHODS, "smoothing"], default="ibp",
                   help="ibp: interval bounds (a forward pass); crown-ibp: CROWN from the margins over interval "
                        "bounds; crown: CROWN for the unstable neurons inside too (tightest, slowest); smoothing: "
                        "randomized smoothing, L2 (default: ibp)")  # fmt: skip
    p.add_argument("-n", "--n", type=int, default=1000, help="number of test images (default: 1000)")
    p.add_argument("--offset", type=int, default=0, help="index of the first test image (default: 0)")
    p.add_argument("--batch-size", type=int, default=100,
                   help="images bounded at once, or noisy copies per forward pass for smoothing (default: 100)")
    p.add_argument("--max-rows", type=int, default=4096,
                   help="rows (images x bounds) of one CROWN backward pass: memory against speed (default: 4096)")
    p.add_argument("--sigma", type=float, help="smoothing: the noise (default: the sigma the model was trained with)")
    p.add_argument("--n0", type=int, default=100, help="smoothing: noisy copies that choose the class (default: 100)")
    p.add_argument("--n-samples", type=int, default=10_000,
                   help="smoothing: noisy copies that estimate its probability (default: 10000)")
    p.add_argument("--alpha", type=float, default=0.001,
                   help="smoothing: the probability that a certificate is wrong (default: 0.001)")
    p.add_argument("--report", help="folder for the report files (default: RUN/certify/<method>-<norm>)")
    add_data_dir(p)
    p.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N (default: cpu)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def add_detect_parser(sub: Any) -> None:
    p = sub.add_parser("detect", help="a detector in front of a model, judged by naive and adaptive attacks",
                       description=(
        "Put a detector (" + ", ".join(DETECTORS.names()) + ") in front of a trained model, set its threshold "
        "for --fpr false positives on the last --calib-n test images, attack the first --n test images with "
        "PGD on the classifier alone (naive), on the classifier and the detector together (adaptive) and, for "
        "a detector that compares views of the input (squeeze), on the input and every view as one wrong "
        "class (adaptive-views), and "
        "print ROC AUC, the detection rate and the robust accuracy with rejection; write detection.json / "
        "detection.md."))  # fmt: skip
    p.add_argument("--model", required=True,
                   help="run folder or model.safetensors: a plain classifier, or a [detector] recipe's run "
                        "(its detector, settings and threshold saved; no --detector then)")  # fmt: skip
    p.add_argument("--detector", help=" | ".join(DETECTORS.names()) + " (required for a plain classifier)")
    p.add_argument("--autoencoder", help="magnet: the DAE run whose autoencoder reconstructs (e.g. runs/demo_dae)")
    p.add_argument("--param", dest="params", action="append", default=[], metavar="KEY=VALUE",
                   help="a setting of the detector, e.g. --param bits=1 (repeatable)")  # fmt: skip
    p.add_argument("--eps", help=EPS_HELP + " (L-inf; default: 0.3 on grayscale data, 8/255 on RGB)")
    p.add_argument("-n", "--n", type=int, default=500, help="number of test images attacked (default: 500)")
    p.add_argument("--offset", type=int, default=0, help="index of the first test image (default: 0)")
    p.add_argument("--calib-n", type=int, default=1000,
                   help="the last test images, held out, that set the threshold (default: 1000)")
    p.add_argument("--fit-n", type=int, default=10_000,
                   help="training images a learning detector is fitted on (default: 10000)")
    p.add_argument("--fpr", type=float, default=0.05, help="false-positive rate of the threshold (default: 0.05)")
    p.add_argument("--steps", type=int, default=100, help="PGD steps of every attack row (default: 100)")
    p.add_argument("--restarts", type=int, default=1,
                   help="PGD restarts of every attack row; adaptive-views takes the next target class each (default: 1)")
    p.add_argument("--batch-size", type=int, default=250, help="attack batch size (default: 250)")
    p.add_argument("--report", help="folder for the report files (default: RUN/detect/<detector>)")
    add_data_dir(p)
    p.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N (default: cpu)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
