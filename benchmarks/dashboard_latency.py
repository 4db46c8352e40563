"""Dashboard latency: what one Playground interaction costs, and how long the app takes to
come up.

1. Interaction: :func:`lab.runs.playground.playground_step`, the exact call the Playground
   makes when a widget moves (uncached): PGD-20 at L-inf eps 0.3 on one MNIST test image,
   the class probabilities before and after, and two explanation methods (default
   integrated gradients and Grad-CAM) on the clean and the adversarial image. Repeated on
   ``--n`` different test images after one warm-up call; prints p50 / p95 / max, with the
   Playground's preview settings for the methods (its default) and with their full settings.
   Goal: p95 <= 0.5 s on the 2-core CPU.
2. Cold start: the dashboard (``python -m lab.dashboard.server``, as ``make dashboard``) on a
   free localhost port, timed from launching the process until the server answers its
   health check, and until the Playground has rendered its first result ("Adversarial
   prediction") in a headless chromium (Playwright; skipped without chromium).
   Goal: <= 5 s once models exist.

    python benchmarks/dashboard_latency.py [--model runs/demo_smallcnn] [--n 30] [--runs-dir runs] [--cold 3]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import subprocess
import time
from pathlib import Path

import numpy as np
import torch

from lab.dashboard import serve
from lab.runs.playground import playground_step
from lab.runs.samples import from_test_set
from lab.training.checkpoint import load_model

ROOT = Path(__file__).resolve().parents[1]


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def interaction(model: str, n: int, methods: list[str], steps: int, eps: float, quick: bool) -> list[float]:
    """Seconds per uncached Playground step on test images 0..n-1 (after one warm-up call)."""
    ck = load_model(model)
    s = from_test_set(ck.info, n + 1, 0)
    assert s.y is not None

    def step(i: int) -> None:
        playground_step(ck, s.x[i], int(s.y[i]), attack="pgd", settings={"steps": steps}, eps=eps, norm="linf",
                        methods=methods, quick=quick, name=s.names[i])  # fmt: skip

    step(n)  # warm-up on an image not timed
    times = []
    for i in range(n):
        t0 = time.perf_counter()
        step(i)
        times.append(time.perf_counter() - t0)
    return times


def cold_start(runs_dir: str, chromium: str | None, timeout: float = 120.0) -> tuple[float, float | None]:
    """(seconds until the health check answers, seconds until the Playground shows a result or None).

    The browser is started first (a user's browser is already open); the clock starts when
    ``streamlit run`` is launched.
    """

    def healthy_after(t0: float) -> tuple[subprocess.Popen[bytes], str, float]:
        proc, url = serve.start(runs_dir)
        if not serve.wait_healthy(proc, url, timeout):
            serve.stop(proc)
            raise RuntimeError("streamlit did not start")
        return proc, url, time.perf_counter() - t0

    if chromium is None:
        proc, url, healthy = healthy_after(time.perf_counter())
        serve.stop(proc)
        return healthy, None
    from playwright.sync_api import sync_playwright  # optional (dev extra): only for the browser timing

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            t0 = time.perf_counter()
            proc, url, healthy = healthy_after(t0)
            try:
                page.goto(url)
                label = page.locator('[data-testid="stMetricLabel"]', has_text="Adversarial prediction")
                label.wait_for(timeout=timeout * 1000)
                return healthy, time.perf_counter() - t0
            finally:
                serve.stop(proc)
        finally:
            browser.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="runs/demo_smallcnn", help="an MNIST run folder (default: make demo's)")
    ap.add_argument("--n", type=int, default=30, help="images timed (different test images)")
    ap.add_argument("--methods", default="integrated_gradients,gradcam", help="two explanation methods")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--eps", type=float, default=0.3)
    ap.add_argument("--runs-dir", default="runs", help="the runs folder the app is started on")
    ap.add_argument("--cold", type=int, default=3, help="cold starts measured (0: skip)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs; model {args.model}")
    print(f"\ninteraction: PGD-{args.steps} (L-inf eps {args.eps:g}) + {' + '.join(methods)} on one image, "
          f"{args.n} images (lab.runs.playground.playground_step, uncached)")  # fmt: skip
    for quick, what in ((True, "preview settings (the page's default)"), (False, "full settings")):
        t = interaction(args.model, args.n, methods, args.steps, args.eps, quick)
        p95 = percentile(t, 95)
        print(f"  {what:40s} p50 {percentile(t, 50):.3f} s  p95 {p95:.3f} s  max {max(t):.3f} s  "
              f"[goal p95 <= 0.5 s: {'met' if p95 <= 0.5 else 'MISSED'}]")  # fmt: skip
    if args.cold > 0:
        chromium = serve.find_chromium()
        try:
            import playwright  # noqa: F401  # optional (dev extra): without it, the health check only
        except ImportError:
            chromium = None
        print(f"\ncold start: python -m lab.dashboard.server on {args.runs_dir!r}, {args.cold} times"
              + ("" if chromium else " (no chromium/Playwright: health check only)"))  # fmt: skip
        healthy, rendered = [], []
        for _ in range(args.cold):
            h, r = cold_start(args.runs_dir, chromium)
            healthy.append(h)
            if r is not None:
                rendered.append(r)
            print(f"  server healthy {h:.2f} s" + (f", Playground rendered {r:.2f} s" if r is not None else ""))
        line = f"  median: server healthy {statistics.median(healthy):.2f} s"
        if rendered:
            med = statistics.median(rendered)
            line += f", Playground rendered {med:.2f} s [goal <= 5 s: {'met' if med <= 5 else 'MISSED'}]"
        print(line)


if __name__ == "__main__":
    main()
