"""The ``lab`` command line's arguments: one sub-parser per command, every flag and its help.

Errors in the arguments are one sentence on stderr and exit code 2 (:class:`Parser`).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from defenses import DEFENSES
from defenses.denoisers import DENOISERS
from lab.cli.args import EPS_HELP, add_data_dir
from lab.cli.parser_judges import add_certify_parser, add_detect_parser
from lab.data import DATASET_NAMES
from lab.models import MODELS
from lab.models.bounds import METHODS as BOUND_METHODS

EXIT_USER_ERROR = 2



class Parser(argparse.ArgumentParser):
    """argparse with our one-sentence error style (still exit code 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_USER_ERROR, f"error: {message}\n")


def _add_precision(p: argparse.ArgumentParser) -> None:
    p.add_argument("--precision", choices=["auto", "fp32", "bf16"],
                   help="the lab's gradient attacks steer in bf16 where the hardware has it (auto, the default) and "
                        "confirm every success in fp32; fp32 runs everything in fp32 (so does $LAB_PRECISION=fp32)")


def build_parser() -> argparse.ArgumentParser:
    """The ``lab`` parser: train, models, eval, attack, explain, data (fetch | info), sweep
    (run | status | table | plot), reproduce."""
    parser = Parser(prog="lab", description="Train, attack, defend and explain image classifiers.")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and results")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    _add_train_parser(sub)
    p = sub.add_parser("models", help="list checkpoints under a folder with their metrics")
    p.add_argument("dir", nargs="?", default="runs", help="folder to search (default: runs)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    _add_eval_parser(sub)
    add_certify_parser(sub)
    add_detect_parser(sub)
    _add_attack_parser(sub)
    _add_explain_parser(sub)
    _add_data_parser(sub)
    _add_sweep_parser(sub)
    _add_reproduce_parser(sub)
    return parser


def _add_train_parser(sub: Any) -> None:
    p = sub.add_parser("train", help="train a model from a TOML recipe", description=(
        "Train a model from a recipe. Architectures ([model] arch): " + ", ".join(MODELS.names())
        + ". Training defenses ([defense] name): " + ", ".join(DEFENSES.names())
        + ". Denoisers and input transforms ([denoiser] name): " + ", ".join(DENOISERS.names()) + "."))  # fmt: skip
    p.add_argument("--config", help="recipe file, e.g. configs/mnist_smallcnn.toml")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a recipe value, e.g. --set train.epochs=3 (repeatable)")  # fmt: skip
    p.add_argument("--out", help="run folder (default: runs/<recipe name>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last finished epoch")
    p.add_argument("--device", choices=None, help="auto | cpu | cuda | cuda:N (default: the recipe's, auto)")
    add_data_dir(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def _add_data_parser(sub: Any) -> None:
    p = sub.add_parser("data", help="fetch datasets and show where they come from")
    dsub = p.add_subparsers(dest="data_command", required=True, parser_class=Parser)
    names = ", ".join(DATASET_NAMES) + ", imagefolder:<path>"
    for verb, text in (("fetch", "find, verify and cache a dataset"), ("info", "source, sizes, checksums, classes")):
        q = dsub.add_parser(verb, help=text)
        q.add_argument("name", help=names)
        add_data_dir(q)
        q.add_argument("--json", action="store_true", help="print JSON")


def _add_eval_parser(sub: Any) -> None:
    p = sub.add_parser("eval", help="robust accuracy of a model under a suite of attacks, with a report", description=(
        "Evaluate a trained model on the first --n test images of its dataset under a suite of attacks "
        "over one or more epsilons; print the table, write report.json / report.md / accuracy_vs_eps.png. "
        "Exit 1 when --fail-under is missed. Under torchrun --nproc_per_node N -m lab eval ... the images are "
        "split across the N processes and rank 0 writes the one report, with a single process's numbers."))  # fmt: skip
    p.add_argument("--model", required=True, help="run folder or model.safetensors")
    p.add_argument("--suite", help="quick | standard | extended | autoattack | autoattack-fast (default: quick when no --attack is given)")
    p.add_argument("--attack", dest="attacks", action="append", default=[], metavar="NAME",
                   help="an attack to run besides the suite (repeatable)")  # fmt: skip
    p.add_argument("--eps", help=EPS_HELP + " (default: 0.3 L-inf / 1.5 L2 on grayscale data, 8/255 / 0.5 on RGB)")
    p.add_argument("--norm", choices=["linf", "l2"], default="linf", help="threat model (default: linf)")
    p.add_argument("-n", "--n", type=int, default=1000,
                   help="number of test images (default: 1000; write -n under torchrun, which takes --n for "
                        "an abbreviation of its own options)")  # fmt: skip
    p.add_argument("--offset", type=int, default=0, help="index of the first test image (default: 0)")
    p.add_argument("--batch-size", type=int, default=500, help="attack batch size (default: 500)")
    p.add_argument("--no-checks", action="store_true", help="skip the gradient-masking checks")
    p.add_argument("--probe-n", type=int, default=200, help="examples the masking checks use (default: 200)")
    p.add_argument("--report", help="folder for the report files (default: RUN/eval/<suite or attacks>-<norm>)")
    p.add_argument("--fail-under", type=float, metavar="T",
                   help="exit 1 when the headline robust accuracy is below T, a fraction in [0, 1], or when it is "
                        "unverified: a gradient-masking check failed, none ran, or only weak attacks ran")  # fmt: skip
    p.add_argument("--accept-unverified", action="store_true",
                   help="let --fail-under pass an unverified number (failed or skipped checks, weak attacks only)")
    p.add_argument("--certify", choices=[*BOUND_METHODS, "smoothing"], metavar="METHOD",
                   help="also certify the same images at the same radii (ibp | crown-ibp | crown, L-inf) and "
                        "check per image that certified <= attacked")  # fmt: skip
    _add_precision(p)
    add_data_dir(p)
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default: auto)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def _add_attack_parser(sub: Any) -> None:
    p = sub.add_parser("attack", help="run one attack on a few images and save them", description=(
        "Run one attack on the first --n test images of the model's dataset (or on --image files) and write "
        "clean / adversarial / amplified perturbation PNGs and attack.json to --out."))  # fmt: skip
    p.add_argument("--model", required=True, help="run folder or model.safetensors")
    p.add_argument("--attack", required=True, help="attack name, e.g. fgsm, pgd")
    p.add_argument("--eps", help="one epsilon, e.g. 0.3 or 8/255 (default: 0.3 L-inf / 1.5 L2 grayscale, "
                   "8/255 / 0.5 RGB)")  # fmt: skip
    p.add_argument("--norm", choices=["linf", "l2"], default="linf", help="threat model (default: linf)")
    p.add_argument("--steps", type=int, help="iterations (iterative attacks)")
    p.add_argument("--restarts", type=int, help="random restarts (PGD)")
    p.add_argument("--alpha", help="step size, e.g. 0.01 or 2/255")
    p.add_argument("--loss", help="ce | margin | dlr")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--target", metavar="CLASS", help="targeted attack towards this class (index or name)")
    g.add_argument("--targeted-random", action="store_true", help="targeted attack towards a random other class")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="any other setting of the attack, e.g. --param momentum=0.9 (repeatable)")  # fmt: skip
    p.add_argument("--n", type=int, help="number of test images (default: 16)")
    p.add_argument("--offset", type=int, default=0, help="index of the first test image (default: 0)")
    p.add_argument("--image", dest="images", action="extend", nargs="+", default=[], metavar="PATH",
                   help="attack these PNG/JPEG files instead of test images (their labels: the clean predictions)")  # fmt: skip
    add_data_dir(p)
    p.add_argument("--out", help="output folder (default: RUN/attack/<attack>-<norm>-<eps>)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default: auto)")
    p.add_argument("--seed", type=int, help="the attack's random seed (default: 0)")
    _add_precision(p)


def _add_explain_parser(sub: Any) -> None:
    p = sub.add_parser("explain", help="explanation maps of a few images, clean and attacked", description=(
        "Explain test images of the model's dataset (or --image files) with one or more methods; with --attack "
        "also the adversarial images. --compare puts several models side by side on the same images. Writes "
        "explanations.png (the grid) and explanations.json to --out."))  # fmt: skip
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--model", help="run folder or model.safetensors")
    g.add_argument("--compare", nargs="+", metavar="RUN", help="several models on the same images (rows by model)")
    p.add_argument("--method", help="comma-separated methods, e.g. ig,gradcam,attention "
                   "(aliases: ig, sg, ixg, gbp, shap); required unless --layers")  # fmt: skip
    p.add_argument("--layers", action="store_true",
                   help="inside the network instead: for one image (the first of --images, or one --image) and "
                        "its adversarial version (--attack, default pgd), every layer's feature maps side by side, "
                        "the relative L2 drift between them layer by layer (one curve per model with --compare) "
                        "and the first layer's filters; writes layers.json and layers_*.png")  # fmt: skip
    p.add_argument("--images", metavar="START:STOP", help="test-set indices, e.g. 0:16 (default: 0:8)")
    p.add_argument("--image", dest="image_files", action="extend", nargs="+", default=[], metavar="PATH",
                   help="explain these PNG/JPEG files instead of test images")  # fmt: skip
    p.add_argument("--attack", help="also explain adversarial images from this attack, e.g. pgd")
    p.add_argument("--eps", help="the attack's epsilon, e.g. 0.3 or 8/255 (default: 0.3 L-inf / 1.5 L2 "
                   "grayscale, 8/255 / 0.5 RGB)")  # fmt: skip
    p.add_argument("--norm", choices=["linf", "l2"], default="linf", help="the attack's threat model (default: linf)")
    p.add_argument("--target", metavar="CLASS", help="explain this class (index or name) instead of the prediction")
    p.add_argument("--quick", action="store_true", help="each method's cheap preview settings (fewer samples/steps)")
    p.add_argument("--metrics", action="store_true",
                   help="also measure each method: deletion/insertion AUC vs a random map, infidelity, "
                        "sensitivity, the model-randomization sanity check and, with --attack, map similarity "
                        "under attack (written to metrics.json)")  # fmt: skip
    add_data_dir(p)
    p.add_argument("--out", help="output folder (default: RUN/explain)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default: auto)")


AXES_HELP = "model, seed, arch, dataset, defense, denoiser, eval, norm, method, eps, kind"


def _add_sweep_parser(sub: Any) -> None:
    p = sub.add_parser("sweep", help="grids of trainings, evaluations and explanations in a crash-safe store",
                       description=(
        "Run a sweep file (configs/sweeps/*.toml): models to train (or existing runs) x seeds x evaluations "
        "(suites, norms, radii) x explanation methods. Every finished cell is kept in the sweep folder's SQLite "
        "store; running the same command again continues where it stopped."))  # fmt: skip
    ssub = p.add_subparsers(dest="sweep_command", required=True, parser_class=Parser)
    q = ssub.add_parser("run", help="run the cells not done yet")
    q.add_argument("spec", help="sweep file, e.g. configs/sweeps/mnist_tradeoff.toml")
    q.add_argument("--out", help="sweep folder (default: sweeps/<sweep name>)")
    q.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="local: this machine (default); ray: each cell a Ray task (pip install 'the-lab[cluster]')")
    q.add_argument("--workers", type=int, default=1,
                   help="--engine local: cells at once, in worker processes that share the cores (default: 1, "
                        "in this process)")  # fmt: skip
    q.add_argument("--address", help="--engine ray: the cluster to join, e.g. ray://head:10001 or auto "
                   "(default: a local Ray on this machine)")  # fmt: skip
    q.add_argument("--cpus-per-cell", type=int, default=1, help="--engine ray: CPUs each cell asks for (default: 1)")
    q.add_argument("--retry-failed", action="store_true", help="run the cells that failed before again")
    q.add_argument("--max-cells", type=int, help="stop after this many cells ran")
    q.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default: auto)")
    add_data_dir(q)
    q.add_argument("--no-progress", action="store_true", help="no progress bars")
    for verb, text in (("status", "done / running / failed / pending cells, time so far, time left"),
                       ("table", "one metric, two axes as rows and columns, mean ± std over seeds"),
                       ("plot", "robust accuracy vs radius, clean vs robust, explanation quality, time per cell")):
        q = ssub.add_parser(verb, help=text)
        q.add_argument("folder", help="sweep folder, e.g. sweeps/mnist_tradeoff")
        if verb == "status":
            q.add_argument("--cells", action="store_true", help="one line per cell")
            q.add_argument("--json", action="store_true", help="print JSON")
            continue
        q.add_argument("--where", action="append", default=[], metavar="AXIS=VALUE",
                       help="only values with this axis value, e.g. eval=quick-linf (repeatable); axes: " + AXES_HELP)
        q.add_argument("--metric", default="robust_accuracy" if verb == "table" else None,
                       help="robust_accuracy (default), clean_accuracy, test_acc, deletion_auc, ... "
                            "(`lab sweep table --metric x` lists what was measured)")  # fmt: skip
        if verb == "table":
            q.add_argument("--rows", default="model", help="axis of the rows (default: model); " + AXES_HELP)
            q.add_argument("--cols", default="eps", help="axis of the columns (default: eps)")
            q.add_argument("--format", choices=["markdown", "csv", "json"], default="markdown")
            q.add_argument("--output", help="write the table to this file instead of printing it")
        else:
            q.add_argument("--kind", choices=["all", "robust-vs-eps", "tradeoff", "explain", "time"], default="all")
            q.add_argument("--by", default="model", help="one line / point / bar per value of this axis (default: model)")
            q.add_argument("--out", help="folder for the PNGs (default: FOLDER/plots)")


def _add_reproduce_parser(sub: Any) -> None:
    p = sub.add_parser("reproduce", help="train the published defenses and compare with their papers' numbers",
                       description=(
        "Train the lab's recipes for a published benchmark's defenses and a standard model, evaluate each with the "
        "official AutoAttack and print them beside the published numbers. A sweep underneath: it resumes."))  # fmt: skip
    p.add_argument("benchmark", help="mnist-linf | fashion-mnist-linf")
    p.add_argument("--budget", choices=["cpu", "paper"], default="cpu",
                   help="cpu: shortened recipes for a 2-core machine (default); paper: the papers' schedules (GPU)")
    p.add_argument("--n", type=int, help="test images AutoAttack runs on (default: the budget's)")
    p.add_argument("--out", help="sweep folder (default: sweeps/reproduce-<benchmark>-<budget>)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default: auto)")
    add_data_dir(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
