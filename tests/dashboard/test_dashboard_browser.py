"""The dashboard in a real browser: ``streamlit run app.py`` on localhost (a free port, a
tiny runs folder), Debian's chromium driven by Playwright; the epsilon slider is moved
with the keyboard and the adversarial prediction shown must change. Saves a screenshot.
And the Experiments page follows a sweep while it runs, and stops refreshing when it is done.

Skipped, saying why, when there is no chromium binary (``apt-get install chromium``, which
``make system-data`` does as root on Debian) or no Playwright (the ``dev`` extras).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from dash_helpers import DashRuns, threads_env

from lab.dashboard import serve
from lab.dashboard.sweep_folders import REFRESH_S
from lab.experiments.store import Store

CHROMIUM = serve.find_chromium()
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary found (apt-get install chromium, "
                                                          "or `make system-data` as root on Debian)")  # fmt: skip


@pytest.fixture
def dashboard(dash_runs: DashRuns, tmp_path: Path) -> Iterator[str]:
    """The app served on localhost at a free port; yields its URL; stops it afterwards."""
    log = open(tmp_path / "streamlit.log", "wb")  # noqa: SIM115 - closed below
    proc, url = serve.start(dash_runs.root, env=threads_env(), log=log)
    try:
        if not serve.wait_healthy(proc, url, timeout=60, poll=0.2):
            log.flush()
            pytest.fail("streamlit did not start:\n" + (tmp_path / "streamlit.log").read_text()[-3000:])
        yield url
    finally:
        serve.stop(proc)
        log.close()


@contextlib.contextmanager
def browser_page(url: str) -> Iterator[object]:
    """A headless chromium page (Playwright) opened on ``url``; closed afterwards."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (pip install -e .[dev])")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1600})
            page.goto(url)
            yield page
        finally:
            browser.close()


def metric_values(page: object) -> dict[str, str]:
    """Label -> value of every st.metric on the page."""
    out: dict[str, str] = {}
    for m in page.locator('[data-testid="stMetric"]').all():  # type: ignore[attr-defined]
        label = m.locator('[data-testid="stMetricLabel"]').inner_text().strip()
        out[label] = m.locator('[data-testid="stMetricValue"]').inner_text().strip()
    return out


def wait_for(page: object, predicate: object, what: str, timeout: float = 60.0) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    last: dict[str, str] = {}
    while time.monotonic() < deadline:
        try:
            last = metric_values(page)
        except Exception:  # noqa: BLE001 - elements are replaced while the app reruns
            last = {}
        if last and predicate(last):  # type: ignore[operator]
            return last
        page.wait_for_timeout(250)  # type: ignore[attr-defined]
    pytest.fail(f"timed out waiting for {what}; metrics shown: {last}")


def wait_idle(page: object, timeout: float = 30.0) -> None:
    """Until no element is stale (Streamlit greys out what a rerun has not redrawn yet)."""
    deadline = time.monotonic() + timeout
    while page.locator('[data-stale="true"]').count() and time.monotonic() < deadline:  # type: ignore[attr-defined]
        page.wait_for_timeout(200)  # type: ignore[attr-defined]


def test_moving_the_epsilon_slider_changes_the_adversarial_prediction(dashboard: str, tmp_path: Path) -> None:
    with browser_page(dashboard) as page:
        first = wait_for(page, lambda m: "Adversarial prediction" in m and "Prediction" in m, "the Playground")
        assert first["Perturbation L-inf"] == "0.300"
        slider = page.get_by_role("slider", name=re.compile(r"^Epsilon"))
        slider.focus()
        slider.press("Home")  # 0.30 -> 0.00
        at_zero = wait_for(page, lambda m: m.get("Perturbation L-inf") == "0.000", "epsilon 0")
        assert at_zero["Adversarial prediction"] == at_zero["Prediction"]
        slider.press("End")  # -> 0.50
        strong = wait_for(page, lambda m: m.get("Perturbation L-inf") == "0.500", "epsilon 0.5")
        assert strong["Adversarial prediction"].split(" (")[0] != at_zero["Adversarial prediction"].split(" (")[0]
        for _ in range(3):  # arrows move it one 0.01 step each
            slider.press("ArrowLeft")
        wait_for(page, lambda m: m.get("Perturbation L-inf") == "0.470", "epsilon 0.47")
        wait_idle(page)
        assert page.locator('[data-testid="stException"]').count() == 0
        shot = tmp_path / "playground.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000


def test_the_experiments_page_follows_a_running_sweep_and_stops_when_it_is_complete(
    dash_sweeps: Path, tmp_path: Path
) -> None:
    """The refresh AppTest cannot see: a cell that a driver marks running, then finishes, shows
    on the open page within seconds; once the sweep is complete the page stops refreshing."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (pip install -e .[dev])")
    folder = tmp_path / "sweeps" / "tiny"
    shutil.copytree(dash_sweeps / "tiny", folder)
    with Store(folder) as store:  # what a driver does around one cell
        first, second = [c for c in store.cells() if c.kind == "evaluate"][:2]
        values = [(v.metric, v.eps, v.value) for v in store.values([first.key])]
        store.mark_running(first.key, "test")
    (folder / ".lock").write_text(str(os.getpid()))  # a live driver (this process): the page refreshes fast
    log = open(tmp_path / "streamlit.log", "wb")  # noqa: SIM115 - closed below
    proc, url = serve.start(tmp_path / "runs", env=dict(threads_env(), LAB_SWEEPS_DIR=str(folder.parent)), log=log)
    try:
        assert serve.wait_healthy(proc, url, timeout=60, poll=0.2), (tmp_path / "streamlit.log").read_text()[-3000:]
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1600})
                page.goto(f"{url}/experiments")
                wait_for(page, lambda m: m.get("Running") == "1" and m.get("Done") == "11/12", "the running cell")
                with Store(folder) as store:
                    store.finish(first.key, first.result, values, first.seconds or 1.0)
                wait_for(page, lambda m: m.get("Running") == "0" and m.get("Done") == "12/12", "the refresh",
                         timeout=4 * REFRESH_S + 10)  # fmt: skip
                page.get_by_text("The sweep is complete.").wait_for(timeout=10_000)
                with Store(folder) as store:  # the page no longer refreshes: it does not see this
                    store.mark_running(second.key, "test")
                page.wait_for_timeout(int(3 * REFRESH_S * 1000))
                assert metric_values(page).get("Running") == "0"
                assert page.locator('[data-testid="stException"]').count() == 0
            finally:
                browser.close()
    finally:
        serve.stop(proc)
        log.close()


def test_inside_the_network_draws_both_models_curves(dashboard: str, tmp_path: Path) -> None:
    """The Playground's inside view in a real browser: the toggle opens it, the drift of this
    model and of the adversarially trained one (the default overlay) are shown, with the figures."""
    with browser_page(dashboard) as page:
        wait_for(page, lambda m: "Adversarial prediction" in m, "the Playground")
        images_before = page.locator('[data-testid="stImage"]').count()
        page.get_by_text("Look inside: feature maps and drift layer by layer").click()
        drift = page.get_by_text(re.compile(r"drift at the input \d"))
        deadline = time.monotonic() + 90
        while drift.count() < 2 and time.monotonic() < deadline:
            page.wait_for_timeout(250)
        assert drift.count() == 2, "the drift captions of both models did not appear"
        images = page.locator('[data-testid="stImage"]')
        while images.count() < images_before + 3 and time.monotonic() < deadline:  # the figures follow
            page.wait_for_timeout(250)
        shot = tmp_path / "inside.png"
        wait_idle(page)
        assert page.locator('[data-testid="stException"]').count() == 0
        assert images.count() >= images_before + 3, (images_before, images.count())
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000


def test_compare_shows_each_models_grad_cam_and_the_attention_models_own_map(dashboard: str, tmp_path: Path) -> None:
    """The Compare page in a real browser: every default model (standard, hardened, denoised,
    attention) attacked, each with its Grad-CAM of both images, the attention model's own map beside it."""
    with browser_page(f"{dashboard}/compare") as page:
        deadline = time.monotonic() + 120
        maps = page.get_by_text(re.compile(r"^attention of the (clean|adversarial) image"))
        while maps.count() < 2 and time.monotonic() < deadline:
            page.wait_for_timeout(250)
        assert maps.count() == 2, "the attention model's maps did not appear"
        wait_idle(page)
        chosen = page.locator('[data-testid="stMetric"]').filter(has_text="Adversarial prediction").count()
        assert chosen >= 3
        assert page.get_by_text(re.compile(r"^gradcam of the clean image")).count() == chosen
        assert page.locator('[data-testid="stException"]').count() == 0
        shot = tmp_path / "compare.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000


#: where the README's picture goes: ``LAB_README_PICTURE=docs/dashboard.png pytest -k readme_picture``
#: after ``make demo`` (the picture is of the demo's models in runs/, or in $LAB_RUNS_DIR)
PICTURE_ENV = "LAB_README_PICTURE"


@pytest.mark.skipif(not os.environ.get(PICTURE_ENV), reason=f"set {PICTURE_ENV}=PATH to draw the README's picture")
def test_readme_picture_of_the_demo_models(tmp_path: Path) -> None:
    """The Playground on the demo's models (runs/ of a finished ``make demo``), as a new user
    first sees it (PGD-20 at L-inf 0.3 on the first test image, two explanation methods):
    the picture in the README."""
    from lab.dashboard.demo import MODELS, REPORT

    runs = Path(os.environ.get("LAB_RUNS_DIR") or "runs").resolve()
    missing = [m.run for m in MODELS if not (runs / m.run / REPORT).is_file()]
    if missing:
        pytest.fail(
            f"the demo's models are not all trained and evaluated in {runs} (missing: {missing}); run make demo"
        )
    log = open(tmp_path / "streamlit.log", "wb")  # noqa: SIM115 - closed below
    proc, url = serve.start(runs, env=threads_env(), log=log)
    try:
        assert serve.wait_healthy(proc, url, timeout=60, poll=0.2), (tmp_path / "streamlit.log").read_text()[-3000:]
        with browser_page(url) as page:
            page.set_viewport_size({"width": 1280, "height": 1500})
            wait_for(page, lambda m: "Adversarial prediction" in m, "the Playground", timeout=120)
            page.get_by_text("explanations in").wait_for(timeout=60_000)  # the maps are drawn
            wait_idle(page)
            page.wait_for_timeout(1500)  # the images' fade-in
            assert page.locator('[data-testid="stException"]').count() == 0
            out = Path(os.environ[PICTURE_ENV])
            out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(out), full_page=False)
            assert out.stat().st_size > 20_000
    finally:
        serve.stop(proc)
        log.close()
