"""``python -m lab.dashboard.demo`` (what ``make demo`` runs): the dashboard within minutes,
the lab's four kinds of model appearing in it as they finish.

1. ``lab data fetch mnist``;
2. the standard SmallCNN (``configs/demo_smallcnn.toml``) trained here, in the foreground:
   the first model the dashboard needs;
3. the dashboard started (``python -m lab.dashboard.server``: ``streamlit run app.py`` with
   the Playground's imports loaded while the server starts) on localhost, its URL printed;
4. in the background, one after the other (two cores do one job at a time best), each as a
   dashboard job the Models page follows (:mod:`lab.dashboard.jobs`): the SmallCNN evaluated
   under attack, then the attention CNN, the PGD-trained FastNet and the denoiser (a DAE in
   front of the SmallCNN) each trained and evaluated. A line says when each is ready, and
   when the last is, how long after the start.

The recipes are ``configs/demo_*.toml``: the lab's recipes for these four models
(``configs/mnist_smallcnn.toml`` and its siblings), shortened (1 or 2 epochs; the attention
CNN on 30,000 images, the denoiser on 10,000) so that all four are ready within minutes on a
2-core CPU. Each run reports its own accuracy and robustness; the full recipes make better
models.

Running it again continues: a finished model is kept, an interrupted training resumes from
its last finished epoch, an evaluated model is not evaluated again. Ctrl-C stops the job that
runs (its finished epochs stay saved) and the dashboard; so does a SIGTERM. ``--no-serve`` runs steps 1, 2 and 4
without a dashboard and returns when the last model is evaluated (exit code 1 if one failed).
The clock starts at ``$LAB_DEMO_T0`` (seconds since the epoch; ``make demo`` sets it before
the installation) or else when this starts.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from lab.core.errors import LabError
from lab.core.text import pct
from lab.dashboard import jobs, serve
from lab.dashboard.job_record import Job, load_job
from lab.present import reports
from lab.training.checkpoint import MODEL_FILE, STATE_FILE

#: what every demo model is evaluated with: the quick suite (per-image worst case over its
#: attacks, with the gradient-masking checks on a probe of PROBE images) at five L-inf radii
#: on the first N test images (about 2.5 points of sampling error at 90%)
EPS = "0,0.05,0.1,0.2,0.3"
N = 300
PROBE = 100


def eval_args(n: int = N, eps: str = EPS, checks: bool = True) -> tuple[str, ...]:
    tail = ("--probe-n", str(min(PROBE, n))) if checks else ("--no-checks",)
    return ("--suite", "quick", "--eps", eps, "--n", str(n), *tail)


REPORT = Path("eval") / "quick-linf" / "report.json"
#: the background jobs' CPU priority below the dashboard's: a Playground click stays quick while they train
NICE = 10


@dataclass(frozen=True)
class Model:
    run: str  # folder under the runs folder, and the recipe's file name in the recipes folder
    what: str
    on: str = ""  # a denoiser's classifier: the run (of this demo) it is trained in front of

    def overrides(self, runs: Path, extra: Sequence[str] = ()) -> tuple[str, ...]:
        return (*extra, f"denoiser.classifier={runs / self.on}") if self.on else tuple(extra)


#: in the order they are made: the first in the foreground, the rest in the background, the
#: cheaper first (the denoiser needs the SmallCNN)
MODELS = (
    Model("demo_smallcnn", "the standard SmallCNN"),
    Model("demo_attention_cnn", "the attention CNN"),
    Model("demo_fastnet_pgd_at", "the PGD-trained FastNet"),
    Model("demo_dae", "the denoiser (a DAE in front of the SmallCNN)", on="demo_smallcnn"),
)


class Clock:
    def __init__(self) -> None:
        env = os.environ.get("LAB_DEMO_T0", "")
        try:
            self.t0 = float(env) if env else time.time()
        except ValueError:
            self.t0 = time.time()

    def minutes(self) -> float:
        return (time.time() - self.t0) / 60.0

    def say(self, text: str) -> None:
        s = int(time.time() - self.t0)
        print(f"[demo {s // 60:d}:{s % 60:02d}] {text}", flush=True)


def _status(run: Path) -> str | None:
    """The run's ``model.json`` status (running | complete | stopped_early), None without one."""
    try:
        status = json.loads((run / "model.json").read_text(encoding="utf-8")).get("status")
    except (OSError, json.JSONDecodeError, AttributeError):
        return None
    return str(status) if status else None


def trained(run: Path) -> bool:
    return _status(run) in ("complete", "stopped_early") and (run / MODEL_FILE).is_file()


def evaluated(run: Path) -> bool:
    return (run / REPORT).is_file()


def _lab(*args: str) -> list[str]:
    return [sys.executable, "-m", "lab", *args]


def train_here(model: Model, runs: Path, recipes: Path, extra: Sequence[str] = ()) -> None:
    """``lab train`` in the foreground (resuming an interrupted run); LabError when it fails."""
    out = runs / model.run
    cmd = _lab("train", "--config", str(recipes / f"{model.run}.toml"), "--out", str(out))
    for o in model.overrides(runs, extra):
        cmd += ["--set", o]
    if (out / STATE_FILE).is_file():
        cmd.append("--resume")
    rc = subprocess.call(cmd)  # noqa: S603 - our own interpreter and module
    if rc != 0:
        raise LabError(f"training {model.what} failed (exit code {rc}); `make demo` again resumes it")


def summary(run: Path) -> str:
    """``test accuracy 99.3%; quick suite ...``: what the model's record and report say."""
    parts = []
    try:
        acc = json.loads((run / "model.json").read_text(encoding="utf-8")).get("metrics", {}).get("test_acc")
        if acc is not None:
            parts.append(f"test accuracy {pct(acc)}")
    except (OSError, json.JSONDecodeError, AttributeError):
        pass
    if evaluated(run):
        try:
            parts.append(reports.headline(reports.load_robustness(run / REPORT)).text)
        except LabError:
            parts.append(f"report {run / REPORT}")
    return "; ".join(parts)


def _wait(job: Job, poll: float = 1.0) -> Job:
    while True:
        job = load_job(job.record)
        if job.status not in ("starting", "running"):
            return job
        time.sleep(poll)


class Queue:
    """The background part: one dashboard job at a time."""

    def __init__(self, runs: Path, recipes: Path, clock: Clock, evaluate: Sequence[str] = eval_args(),
                 extra: Sequence[str] = ()) -> None:  # fmt: skip
        self.runs, self.recipes, self.clock = runs, recipes, clock
        self.evaluate, self.extra = tuple(evaluate), tuple(extra)
        self.current: Job | None = None
        self.failed: list[str] = []

    def _start(self, model: Model) -> Job | None:
        out = self.runs / model.run
        busy = jobs.running_job(self.runs, out)
        if busy is not None:  # a job of an earlier demo (or of the Models page) still works on it
            self.clock.say(f"{model.what}: waiting for job {busy.id}, which works on {out}")
            return busy
        if trained(out):
            return (
                None
                if evaluated(out)
                else jobs.start_evaluation(out, self.runs, self.evaluate, recipe=model.run, nice=NICE)
            )
        resume = (out / STATE_FILE).is_file()
        return jobs.start_training(self.recipes / f"{model.run}.toml", model.run, self.runs, self.recipes,
                                   overrides=model.overrides(self.runs, self.extra), resume=resume,
                                   evaluate=self.evaluate, nice=NICE)  # fmt: skip

    def run(self, models: Sequence[Model]) -> None:
        for model in models:
            out = self.runs / model.run
            for _ in range(3):  # at most: an earlier job's, then a training, then an evaluation
                try:
                    job = self._start(model)
                except LabError as exc:
                    self.clock.say(f"{model.what}: not started: {exc}")
                    self.failed.append(model.run)
                    break
                if job is None:  # trained and evaluated
                    self.clock.say(f"{model.what} ready in {out}: {summary(out)}")
                    break
                doing = "evaluating" if job.stage == "evaluate" else "training and evaluating"
                self.clock.say(f"{model.what}: {doing} in the background (log: {job.log})")
                self.current = job
                done = _wait(job)
                self.current = None
                if done.status != "complete":
                    self.clock.say(f"{model.what}: job {done.status} (exit code {done.returncode}); see {done.log}")
                    self.failed.append(model.run)
                    break
                # the next pass says it is ready, or starts what a job left (a Models-page training's evaluation)
            else:
                self.clock.say(f"{model.what}: still not trained and evaluated in {out} after three jobs")
                self.failed.append(model.run)

    def stop(self) -> None:
        if self.current is not None:
            job = load_job(self.current.record)
            if jobs.stop_job(job):
                self.clock.say(f"stopped job {job.id}; its finished epochs are saved, `make demo` again resumes it")


def start_dashboard(runs: Path, port: int, clock: Clock) -> tuple[subprocess.Popen[bytes], str]:
    log_path = jobs.jobs_dir(runs) / "dashboard.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "ab")  # noqa: SIM115 - the server's, open while it runs
    proc, url = serve.start(runs, log=log, port=port)
    if not serve.wait_healthy(proc, url, timeout=180, poll=0.2):
        serve.stop(proc)
        raise LabError(f"the dashboard did not start; see {log_path}")
    clock.say(f"dashboard: {url}  (Playground, Compare, Models, Reports; server log {log_path})")
    return proc, url


def parse(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m lab.dashboard.demo", description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", default="runs", help="runs folder (default: runs)")
    p.add_argument("--recipes", default="configs", help="recipes folder (default: configs)")
    p.add_argument("--port", type=int, default=8501, help="dashboard port (default 8501; a free one if taken)")
    p.add_argument("--no-serve", action="store_true", help="no dashboard: train and evaluate all, then return")
    p.add_argument("--n", type=int, default=N, help=f"test images each model is evaluated on (default {N})")
    p.add_argument("--eps", default=EPS, help=f"L-inf radii of the evaluation (default {EPS})")
    p.add_argument("--no-checks", action="store_true", help="evaluate without the gradient-masking checks")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="a recipe override for every training, e.g. train.epochs=2 (repeatable)")  # fmt: skip
    return p.parse_args(list(argv))


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # a SIGTERM stops the demo as Ctrl-C does: its job too


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    signal.signal(signal.SIGTERM, _interrupt)
    clock = Clock()
    runs, recipes = Path(args.runs), Path(args.recipes)
    queue = Queue(runs, recipes, clock, eval_args(args.n, args.eps, not args.no_checks), args.overrides)
    proc: subprocess.Popen[bytes] | None = None
    try:
        if subprocess.call(_lab("data", "fetch", "mnist")) != 0:  # noqa: S603
            raise LabError("could not fetch MNIST (see above)")
        first, rest = MODELS[0], MODELS[1:]
        if not trained(runs / first.run):
            clock.say(f"training {first.what}, the dashboard's first model")
            train_here(first, runs, recipes, args.overrides)
        clock.say(f"{first.what} ready: {summary(runs / first.run)}")
        if not args.no_serve:
            proc, _ = start_dashboard(runs, args.port, clock)
            clock.say("the other models train in the background and appear on the dashboard as they finish "
                      "(Models page: their progress); Ctrl-C stops the demo, `make demo` again continues it")  # fmt: skip
        queue.run([first, *rest])
        done = [m for m in MODELS if m.run not in queue.failed]
        clock.say(f"{len(done)} of {len(MODELS)} models trained and evaluated, {clock.minutes():.1f} min after the "
                  "start"
                  + (f"; failed: {', '.join(queue.failed)}" if queue.failed else ""))  # fmt: skip
        if proc is not None:
            clock.say("the dashboard keeps running; Ctrl-C stops it")
            proc.wait()
        return 1 if queue.failed else 0
    except LabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        queue.stop()
        return 130
    finally:
        if proc is not None and proc.poll() is None:
            serve.stop(proc)


if __name__ == "__main__":
    raise SystemExit(main())
