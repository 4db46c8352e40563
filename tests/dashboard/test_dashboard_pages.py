"""Every dashboard page through Streamlit's AppTest: it renders without an exception, its
widgets change what it shows, and user mistakes are one sentence, never a traceback."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from dash_helpers import APP, FP32, PAGES, TINY_DATA, DashRuns, png_bytes, tiny_train
from streamlit.testing.v1 import AppTest

from lab.dashboard import jobs

EPS = "pg_eps_linf_auto"  # the Playground's epsilon slider on gray data, L-inf


def open_app(page: str | None = None) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=120)
    at.run()
    if page is not None:
        at.switch_page(f"{PAGES}/{page}.py")
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def captions(at: AppTest) -> list[str]:
    return [c for i in at.image for c in i.captions]


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: str(m.value) for m in at.metric}


def texts(at: AppTest, kind: str) -> list[str]:
    return [str(e.value) for e in getattr(at, kind)]


def no_exception(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


# ---------------------------------------------------------------- Playground


def test_playground_renders_and_epsilon_moves_the_adversarial_prediction(app_env: DashRuns) -> None:
    at = open_app()
    m = metrics(at)
    assert {"Prediction", "Adversarial prediction", "Perturbation L-inf"} <= set(m)
    clean = m["Prediction"]
    assert m["Perturbation L-inf"] == "0.300"  # the conventional MNIST radius is the default

    at.slider(key=EPS).set_value(0.0).run()
    no_exception(at)
    m0 = metrics(at)
    assert m0["Adversarial prediction"] == clean and m0["Perturbation L-inf"] == "0.000"

    at.slider(key=EPS).set_value(0.5).run()
    no_exception(at)
    m5 = metrics(at)
    assert m5["Perturbation L-inf"] == "0.500"
    assert m5["Adversarial prediction"].split(" (")[0] != clean.split(" (")[0]  # PGD-20 at 0.5 fools it
    # images, perturbation, adversarial, top-k bars and two methods x (clean, adversarial)
    assert len(at.image) >= 3 + 1 + 4


def test_playground_attack_steps_image_and_methods_change_the_result(app_env: DashRuns) -> None:
    at = open_app()
    before = metrics(at)["Prediction"]
    at.selectbox(key="pg_class_mnist").set_value(3).run()
    no_exception(at)
    assert metrics(at)["Prediction"] != before  # another class's image
    at.selectbox(key="pg_attack").set_value("fgsm").run()
    no_exception(at)
    assert any(c.startswith("fgsm (L-inf, eps 0.3) in") for c in texts(at, "caption"))
    at.selectbox(key="pg_attack").set_value("pgd").run()
    at.number_input(key="pg_steps_pgd_False").set_value(3).run()
    no_exception(at)
    assert any("pgd-3 (L-inf, eps 0.3)" in c for c in texts(at, "caption"))
    at.multiselect(key="pg_methods_False").set_value(["saliency"]).run()
    no_exception(at)
    md = texts(at, "markdown")
    assert any(t.startswith("**saliency**") for t in md) and not any(t.startswith("**gradcam**") for t in md)


def test_playground_defense_toggle_shows_the_defended_prediction(app_env: DashRuns) -> None:
    at = open_app()
    at.toggle(key="pg_defense").set_value(True).run()
    no_exception(at)
    at.selectbox(key="pg_def_model").set_value(str(app_env.hardened)).run()
    no_exception(at)
    m = metrics(at)
    assert "Defended prediction (adversarial)" in m and "Defended prediction (clean)" in m
    transfer = m["Defended prediction (adversarial)"]
    at.radio(key="pg_def_mode").set_value("white-box").run()
    no_exception(at)
    assert "Defended prediction (adversarial)" in metrics(at)
    assert any("white-box in" in c for c in texts(at, "caption"))
    assert transfer  # both modes render a prediction


def test_playground_detector_gives_its_verdict_on_both_images(app_env: DashRuns) -> None:
    at = open_app()
    at.toggle(key="pg_detector").set_value(True).run()
    no_exception(at)
    at.selectbox(key="pg_det").set_value("magnet").run()
    no_exception(at)  # the tiny runs folder has no DAE: MagNet says what to train
    assert any("denoising autoencoder" in t for t in texts(at, "info"))
    at.selectbox(key="pg_det").set_value("squeeze").run()
    no_exception(at)
    at.selectbox(key="pg_det_fpr").set_value(0.1).run()
    no_exception(at)
    m = metrics(at)
    assert {"Detector on the clean image", "Detector on the adversarial image"} <= set(m)
    assert all(m[k] == "rejected" or m[k].startswith("passes: ") for k in m if k.startswith("Detector on"))
    deltas = [str(x.delta) for x in at.metric if x.label.startswith("Detector on")]
    assert all(d.startswith("score ") and " vs threshold " in d for d in deltas), deltas
    threshold = {d.split(" vs threshold ")[1] for d in deltas}
    assert len(threshold) == 1  # one threshold for both images
    at.selectbox(key="pg_det_fpr").set_value(0.01).run()
    no_exception(at)
    strict = {str(x.delta).split(" vs threshold ")[1] for x in at.metric if x.label.startswith("Detector on")}
    assert float(strict.pop()) >= float(threshold.pop())  # fewer false positives: a higher threshold


def test_playground_inside_the_network_overlays_the_robust_model(app_env: DashRuns) -> None:
    """The inside view: the drift curve of this model and (by default) the adversarially
    trained one, each attacked on its own; a layer's feature maps; the first layer's filters."""
    at = open_app()
    before = len(at.image)
    at.toggle(key="pg_inside").set_value(True).run()
    no_exception(at)
    assert len(at.image) >= before + 3  # the drift curve, the feature maps, the filters
    assert at.selectbox(key="pg_inside_other").value == str(app_env.hardened)  # the defended model by default
    drift = [c for c in texts(at, "caption") if "drift at the input" in c]
    assert len(drift) == 2, drift  # one line per model
    for line in drift:
        at_input = float(line.split("drift at the input ")[1].split(",")[0])
        assert 0 < at_input < 10
    layers = at.selectbox(key="pg_inside_layer")
    assert len(layers.options) >= 2 and layers.index == len(layers.options) - 1
    assert "ReLU" in layers.options[-1]  # FastNet's last spatial layer: its last ReLU
    layers.select_index(0).run()
    no_exception(at)
    picked = at.selectbox(key="pg_inside_layer")
    assert picked.index == 0 and "Conv2d" in picked.options[0]
    at.selectbox(key="pg_inside_other").set_value("(none)").run()
    no_exception(at)
    assert len([c for c in texts(at, "caption") if "drift at the input" in c]) == 1


def test_playground_denoiser_shows_the_denoised_image(app_env: DashRuns) -> None:
    if app_env.denoised is None:
        pytest.skip("the lab has no denoisers yet (defenses.denoisers)")
    at = open_app()
    at.toggle(key="pg_defense").set_value(True).run()
    at.selectbox(key="pg_def_model").set_value(str(app_env.denoised)).run()
    no_exception(at)
    assert any(c.startswith("denoised") for c in captions(at))
    assert "Defended prediction (adversarial)" in metrics(at)


def test_playground_uploads_bad_files_refused_odd_ones_converted_with_notices(app_env: DashRuns) -> None:
    at = open_app()
    at.radio(key="pg_source").set_value("Upload").run()
    no_exception(at)
    assert any("Upload an image" in t for t in texts(at, "info"))
    cases = [
        (("junk.png", b"definitely not an image", "image/png"), "not an image"),
        (("bomb.png", png_bytes((3000, 3000)), "image/png"), "pixels"),
        (("disguised.png", png_bytes((28, 28), fmt="GIF"), "image/png"), "GIF"),  # a GIF named .png
    ]
    for file, words in cases:
        at.file_uploader(key="pg_upload").set_value(file).run()
        no_exception(at)
        errors = texts(at, "error")
        assert errors and words in errors[0], (file[0], errors)
        assert "Adversarial prediction" not in metrics(at)
    at.file_uploader(key="pg_upload").set_value(("photo.png", png_bytes((60, 40), "RGB", color=(200, 30, 30)),
                                                 "image/png")).run()  # fmt: skip
    no_exception(at)
    notices = " ".join(texts(at, "info"))
    assert "grayscale" in notices and "cropped" in notices and "resized" in notices
    assert not texts(at, "error")
    assert "Adversarial prediction" in metrics(at)


def test_playground_attention_model_offers_its_attention_maps(app_env: DashRuns) -> None:
    at = open_app()
    assert at.sidebar.selectbox(key="pg_model").value != str(app_env.attention)  # a plain CNN comes first
    at.sidebar.selectbox(key="pg_model").set_value(str(app_env.attention)).run()
    at.slider(key=EPS).set_value(0.1).run()
    no_exception(at)
    assert "attention" in at.multiselect(key="pg_methods_True").value
    assert any(t.startswith("**attention**") for t in texts(at, "markdown"))


def test_playground_with_an_empty_runs_folder_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAB_RUNS_DIR", str(tmp_path / "nothing_here"))
    at = open_app()
    assert any("No readable model" in t for t in texts(at, "info"))


# ---------------------------------------------------------------- Compare models


def test_compare_page_attacks_each_model_and_plots_their_reports(app_env: DashRuns) -> None:
    at = open_app("compare")
    chosen = at.multiselect(key="cmp_models").value
    assert str(app_env.standard) in chosen and str(app_env.hardened) in chosen and str(app_env.attention) in chosen
    labels = [m.label for m in at.metric]
    assert labels.count("Adversarial prediction") == len(chosen)
    summary = at.dataframe[0].value
    assert "quick-linf" in " ".join(map(str, summary["report"]))
    assert "none: run `lab eval" in " ".join(map(str, summary["report"]))  # the attention model has no report
    if app_env.denoised is not None:  # a standard, a hardened, a denoised and an attention model by default
        assert str(app_env.denoised) in chosen
        assert "per image over every attack of all 3 threat rows" in " ".join(map(str, summary["headline"]))
    # every model's Grad-CAM of both images, and the attention model's own map beside its Grad-CAM
    maps = captions(at)
    assert sum(c.startswith("gradcam of the clean image") for c in maps) == len(chosen)
    assert sum(c.startswith("gradcam of the adversarial image") for c in maps) == len(chosen)
    assert sum(c.startswith("attention of the") for c in maps) == 2
    # each perturbation is inside the 0.3 ball and near its edge: PGD may stop at its random
    # start, whose largest pixel of 784 is 0.299 or 0.300 (not always 0.300)
    linf = [float(c.split("L-inf ")[1].split(",")[0]) for c in texts(at, "caption") if c.startswith("clean:")]
    assert len(linf) == len(chosen) and all(0.29 <= v <= 0.3 for v in linf), linf
    at.toggle(key="cmp_maps").set_value(False).run()
    no_exception(at)
    assert not any(c.startswith(("gradcam of", "attention of")) for c in captions(at))
    at.slider(key="cmp_eps_linf_auto").set_value(0.0).run()
    no_exception(at)
    norms = [c for c in texts(at, "caption") if c.startswith("clean:")]
    assert len(norms) == len(chosen) and all("L-inf 0.000" in c for c in norms)


def _detect_report(run: Path):  # type: ignore[no-untyped-def]
    """``lab detect``'s squeeze report of ``run`` (8 images, PGD-3), written where the dashboard looks."""
    from lab.present.detection import write_detection
    from lab.runs.detect import detect_checkpoint, detect_dir
    from lab.training.checkpoint import load_model

    rep = detect_checkpoint(load_model(run), "squeeze", eps=[0.1], n=8, steps=3, calib_n=200, fit_n=0, progress=False)
    write_detection(rep, detect_dir(run, "squeeze"))
    return rep


def test_playground_detector_offers_the_threshold_lab_detect_saved(app_env: DashRuns) -> None:
    rep = _detect_report(app_env.standard)
    at = open_app()
    at.toggle(key="pg_detector").set_value(True).run()
    at.selectbox(key="pg_det").set_value("squeeze").run()
    no_exception(at)
    assert at.selectbox(key="pg_det_fpr").value is None  # the saved guarded model comes first
    deltas = {str(x.delta).split(" vs threshold ")[1] for x in at.metric if x.label.startswith("Detector on")}
    assert deltas == {f"{rep.threshold:.4g}"}
    assert any("the threshold lab detect saved" in c for c in texts(at, "caption"))


def test_playground_detector_offers_a_detector_runs_saved_model(app_env: DashRuns) -> None:
    """A [detector] recipe's run guarding the picked classifier's weights is offered with its
    own threshold: the verdicts are the saved guarded model's, not a recalibrated one's."""
    from lab.training.checkpoint import load_model
    from lab.training.config import from_dict
    from lab.training.loop import train

    run = app_env.root / "std_squeeze_recipe"
    recipe = {"seed": 0, "data": dict(TINY_DATA),
              "detector": {"name": "squeeze", "classifier": str(app_env.standard), "fpr": 0.1, "calib_n": 200}}
    train(from_dict(recipe, FP32), run, progress=False)
    try:
        threshold = load_model(run, "cpu").model.threshold
        at = open_app()
        assert at.selectbox(key="pg_model").value != str(run)  # a guarded model is no classifier to attack
        at.toggle(key="pg_detector").set_value(True).run()
        at.selectbox(key="pg_det").set_value("squeeze").run()
        no_exception(at)
        assert any(o.startswith("std_squeeze_recipe: 10") for o in at.selectbox(key="pg_det_fpr").options)
        at.selectbox(key="pg_det_fpr").set_value(str(run)).run()
        no_exception(at)
        deltas = {str(x.delta).split(" vs threshold ")[1] for x in at.metric if x.label.startswith("Detector on")}
        assert deltas == {f"{threshold:.4g}"}
        assert any("its [detector] run std_squeeze_recipe saved (10" in c for c in texts(at, "caption"))
        at.selectbox(key="pg_det").set_value("mahalanobis").run()  # it guards with squeezing only
        no_exception(at)
        assert not any(o.startswith("std_squeeze_recipe") for o in at.selectbox(key="pg_det_fpr").options)
    finally:
        shutil.rmtree(run)


def test_compare_page_guards_each_classifier_with_a_detector(app_env: DashRuns) -> None:
    rep = _detect_report(app_env.standard)
    at = open_app("compare")
    chosen = at.multiselect(key="cmp_models").value
    assert not any(m.label.startswith("Guarded by") for m in at.metric)
    at.selectbox(key="cmp_det").set_value("squeeze").run()
    no_exception(at)
    guarded = [m for m in at.metric if m.label == "Guarded by squeeze"]
    plain = [p for p in chosen if p != str(app_env.denoised)]  # a denoiser is no classifier to guard
    assert len(guarded) == len(plain)
    assert all(str(m.value) == "rejected" or str(m.value).startswith("passes: ") for m in guarded)
    assert sum(c.startswith("squeeze score ") for c in texts(at, "caption")) == len(plain)
    summary = at.dataframe[0].value  # lab detect's report of the standard model joins the table
    row = [h for m, h in zip(summary["model"], summary["headline"]) if str(m).endswith(" + squeeze")]
    worst = rep.results[0].robust_with_rejection
    assert row == [f"robust accuracy with rejection, worst of every attack row: {100 * worst:.2f}% at 0.1"]


# ---------------------------------------------------------------- Reports


def test_reports_page_shows_checks_rows_and_explanations(app_env: DashRuns) -> None:
    at = open_app("reports")
    at.selectbox(key="rep_choice").set_value(str(app_env.report)).run()
    no_exception(at)
    errors = " ".join(texts(at, "error"))
    assert "more-steps-change-little" in errors  # the failed masking check is loud
    assert any("unreadable" in w for w in texts(at, "warning"))  # the corrupt report.json is listed
    assert len(at.dataframe) >= 2
    assert any("Threat rows" in t for t in texts(at, "markdown"))
    assert any("no threat rows" in c for c in texts(at, "caption"))  # the undefended model's report
    if app_env.denoised is not None:
        at.selectbox(key="rep_choice").set_value(str(app_env.denoised / "eval" / "quick-linf" / "report.json")).run()
        no_exception(at)
        frames = [f.value for f in at.dataframe]
        assert any({"gray-box", "white-box", "bpda", "every row (robust accuracy)"} <= set(f.columns) for f in frames)
        assert any(t.startswith("- **gray-box**: ") for t in texts(at, "markdown"))
        assert any("threat row" in f.columns for f in frames)
    at.selectbox(key="rep_choice").set_value(str(app_env.explanations)).run()
    no_exception(at)
    assert at.dataframe and "saliency cosine" in at.dataframe[0].value.columns
    assert len(at.image) >= 1


# ---------------------------------------------------------------- Models


def test_models_page_lists_the_zoo_and_the_corrupt_checkpoint_as_unreadable(app_env: DashRuns) -> None:
    at = open_app("models")
    zoo = at.dataframe[0].value
    assert {"mnist_std", "mnist_at"} <= set(zoo["run"])
    assert "pgd_at (eps 0.3)" in set(zoo["defense"])
    assert any("broken" in e and "unreadable" in e for e in texts(at, "error"))
    at.selectbox(key="models_detail").set_value(str(app_env.hardened)).run()
    no_exception(at)
    assert any("pgd_at" in t for t in texts(at, "markdown"))


RECIPE = """name = "tiny"
seed = 0
[data]
dataset = "mnist"
train_subset = 512
test_subset = 128
[model]
arch = "fastnet"
[train]
epochs = 2
batch_size = 64
optimizer = "adam"
lr = 0.003
schedule = "constant"
[runtime]
device = "cpu"
precision = "fp32"
"""


def test_models_page_trains_in_the_background_and_survives_a_reload(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    runs, recipes = tmp_path / "runs", tmp_path / "recipes"
    recipes.mkdir()
    (recipes / "tiny.toml").write_text(RECIPE)
    tiny_train(runs / "taken", epochs=1, subset=256)
    monkeypatch.setenv("LAB_RUNS_DIR", str(runs))
    monkeypatch.setenv("LAB_CONFIGS_DIR", str(recipes))
    at = open_app("models")
    for name, words in (("../escape", "run name"), ("taken", "already holds a run")):
        at.text_input(key="models_run_tiny.toml").set_value(name).run()
        at.button(key="models_start").click().run()
        no_exception(at)
        assert any(words in e for e in texts(at, "error")), texts(at, "error")
    assert not jobs.list_jobs(runs)
    at.text_input(key="models_run_tiny.toml").set_value("tiny_run").run()
    at.button(key="models_start").click().run()
    no_exception(at)
    assert any("Started job" in s for s in texts(at, "success"))

    deadline = time.monotonic() + 150
    while time.monotonic() < deadline:
        (job,) = jobs.list_jobs(runs)
        if job.status not in ("starting", "running"):
            break
        time.sleep(0.5)
    assert job.status == "complete", (job, jobs.log_tail(job.log)[-2000:])

    reloaded = open_app("models")  # a new session: what a page reload sees
    assert "tiny_run" in set(reloaded.dataframe[0].value["run"])
    assert any("tiny_run" in t and "complete" in t for t in texts(reloaded, "markdown"))
    assert any("epoch 2/2" in str(p.proto.text) for p in reloaded.get("progress"))


def test_epsilon_slider_speaks_the_units_of_the_data() -> None:
    def script() -> None:
        from types import SimpleNamespace

        import streamlit as st

        from lab.dashboard.widgets import eps_slider

        rgb, gray = SimpleNamespace(input_shape=(3, 32, 32)), SimpleNamespace(input_shape=(1, 28, 28))
        st.markdown(f"rgb linf {eps_slider(rgb, 'linf', key='a'):.6f}")
        st.markdown(f"rgb l2 {eps_slider(rgb, 'l2', key='b'):.2f}")
        st.markdown(f"gray l2 {eps_slider(gray, 'l2', key='c'):.2f}")

    at = AppTest.from_function(script).run()
    no_exception(at)
    cifar = at.select_slider(key="a_eps_linf_255")
    assert "8/255" in cifar.options and "32/255" in cifar.options
    assert texts(at, "markdown") == [f"rgb linf {8 / 255:.6f}", "rgb l2 0.50", "gray l2 1.50"]
    cifar.set_value(2 / 255).run()
    assert texts(at, "markdown")[0] == f"rgb linf {2 / 255:.6f}"
