"""Playground: one model, one image, one attack; drag epsilon and watch the prediction,
the perturbation, the probabilities and the explanations change; switch a defense on.

Everything drawn comes from :func:`lab.runs.playground.playground_step` and
:func:`lab.runs.playground.defense_view` (cached in :mod:`lab.dashboard.cache`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import streamlit as st

from defenses.detectors import DETECTORS
from lab.core.epsilon import format_eps
from lab.core.text import pct
from lab.dashboard import cache, settings, widgets
from lab.dashboard.images import overlay_picture, perturbation_picture, picture
from lab.dashboard.ui import run_name, show, user_errors
from lab.present.detection import load_detection
from lab.present.inside import drift_figure, feature_maps_figure, filters_figure, short_layer
from lab.present.models import defense_label
from lab.present.plots import probability_bars
from lab.present.text import norm_name
from lab.runs.detect import holds_autoencoder
from lab.runs.playground import DEFENSE_MODES, PlaygroundResult, defense_kind

KEY = "pg"


def _prediction(names: list[str], k: int, p: float) -> str:
    return f"{names[k]} ({pct(p)})"


def _images(res: PlaygroundResult, names: list[str], label: int | None, title: str) -> None:
    out = res.outcome
    run = res.attack
    delta = run.perturbation[0]
    fooled = out.prediction_after != out.prediction_before
    c1, c2, c3 = st.columns(3)
    with c1:
        show(st, picture(run.clean[0]), caption="the image")
        st.metric("Prediction", _prediction(names, out.prediction_before, out.confidence_before),
                  delta=None if label is None else ("correct" if out.prediction_before == label else "wrong"),
                  delta_color="normal" if label is None or out.prediction_before == label else "inverse",
                  delta_arrow="off")  # fmt: skip
        st.caption(f"label: {names[label]}" if label is not None else "uploaded: no label (the attack moves the "
                   "prediction away from itself)")  # fmt: skip
    with c2:
        show(st, perturbation_picture(delta, out.perturbation_scale),
                 caption=f"+ perturbation, amplified x{out.perturbation_scale:.1f} (mid-gray: unchanged)")  # fmt: skip
        st.metric(f"Perturbation {norm_name(run.norm)}", f"{out.linf:.3f}" if run.norm == "linf" else f"{out.l2:.3f}",
                  delta=f"eps {format_eps(run.eps)}", delta_color="off", delta_arrow="off")  # fmt: skip
        st.caption(f"L-inf {out.linf:.4f} ({out.linf * 255:.1f}/255), L2 {out.l2:.3f}")
    with c3:
        show(st, picture(run.adversarial[0]), caption="= the adversarial image")
        st.metric("Adversarial prediction", _prediction(names, out.prediction_after, out.confidence_after),
                  delta="fooled" if fooled else "unchanged", delta_color="inverse" if fooled else "normal",
                  delta_arrow="off")  # fmt: skip
        st.caption(f"{title} in {res.seconds_attack:.2f} s")


def _story(res: PlaygroundResult, names: list[str], label: int | None) -> str:
    """What just happened, in words, for someone seeing it for the first time."""
    out = res.outcome
    truth = names[label] if label is not None else names[out.prediction_before]
    before, after = names[out.prediction_before], names[out.prediction_after]
    if res.attack.eps == 0:
        return "Epsilon is 0: no pixel may change, so the prediction cannot. Drag epsilon up."
    if out.prediction_after != out.prediction_before:
        return (f"To a person the adversarial image is still a **{truth}**, yet the model now says **{after}** with "
                f"{pct(out.confidence_after)} confidence (it said {before} with {pct(out.confidence_before)}). "
                f"No pixel moved by more than {out.linf:.3f} ({out.linf * 255:.0f} of 255 grey levels).")  # fmt: skip
    return (f"The model still says **{after}** ({pct(out.confidence_after)}) at this epsilon: the attack found no "
            "change of at most epsilon per pixel that flips it. Drag epsilon up, or give the attack more steps.")  # fmt: skip


def _explanations(res: PlaygroundResult, names: list[str]) -> None:
    ex = res.explanations
    if ex is None:
        st.caption("No explanation method chosen.")
        return
    m = ex.models[0]
    st.caption("Each map explains the class the model predicts for that image; signed maps are red for the "
               "class and blue against it, magnitude maps bright where the evidence is; each map is scaled on its own.")  # fmt: skip
    for method in ex.methods:
        cos = res.map_cosines.get(method)
        st.markdown(f"**{method}**" + ("" if cos is None else f": clean vs adversarial map cosine {cos:.2f}"))
        c1, c2, _ = st.columns(3)
        show(c1, overlay_picture(ex.images[0], m.maps[method][0], ex.signed[method]),
                 caption=f"clean, explains {names[int(m.targets[method][0])]}")  # fmt: skip
        show(c2, overlay_picture(ex.images[1], m.maps[method][1], ex.signed[method]),
                 caption=f"adversarial, explains {names[int(m.targets[method][1])]}")  # fmt: skip
    st.caption(f"explanations in {res.seconds_explain:.2f} s")


def _defense(rows: list[dict[str, Any]], row: dict[str, Any], res: PlaygroundResult, choice: widgets.AttackChoice,
             label: int | None, info: Any, root: Any) -> None:  # fmt: skip
    shape = list(info.input_shape)
    candidates = [r for r in widgets.classifiers(rows) if widgets.is_defended(r) and r["path"] != row["path"]]
    candidates = [r for r in candidates if r.get("dataset") == row.get("dataset")]
    if not candidates:
        st.info(f"No defended {row.get('dataset')} model in {root}: train one on the Models page (for example "
                "configs/mnist_pgd_at.toml for adversarial training) and it appears here.")  # fmt: skip
        return
    c1, c2 = st.columns([3, 2])
    by_path = {r["path"]: r for r in candidates}
    path = c1.selectbox("Defended model", list(by_path), key=f"{KEY}_def_model",
                        format_func=lambda p: widgets.model_label(by_path[p], root))  # fmt: skip
    mode = c2.radio("Adversarial image", DEFENSE_MODES, key=f"{KEY}_def_mode", horizontal=True,
                    format_func=lambda m: {"transfer": "the one above (gray-box)",
                                           "white-box": "attack the defense itself"}[m],
                    help="Gray-box: the attacker did not know the defense. White-box: the attack runs through "
                         "the whole defended model, the honest test.")  # fmt: skip
    ck = cache.checkpoint(path)
    if list(ck.info.input_shape) != shape:
        st.warning(f"{run_name(path, root)} takes images {tuple(ck.info.input_shape)}, not {tuple(shape)}.")
        return
    view = cache.defense(path, res.attack.clean[0], res.attack.adversarial[0], label, mode=mode, attack=choice.name,
                         settings=choice.settings, eps=choice.eps, norm=choice.norm)  # fmt: skip
    names = list(ck.info.class_names)
    pc, pa = view.prediction_clean, view.prediction_adversarial
    kind = defense_kind(ck.record, ck) or "none"
    st.markdown(f"**{run_name(path, root)}**: {defense_label(ck.record)}, {kind}")
    cols = st.columns(3)
    if view.denoised_clean is not None and view.denoised_adversarial is not None:
        show(cols[0], picture(view.adversarial), caption="adversarial image in")
        show(cols[1], picture(view.denoised_adversarial), caption="denoised: what the classifier sees")
        show(cols[2], picture(view.denoised_clean), caption="the clean image, denoised")
    else:
        show(cols[0], picture(view.adversarial), caption="adversarial image in")
    m1, m2, m3 = st.columns(3)
    m1.metric("Defended prediction (clean)", f"{names[pc]} ({pct(view.probs_clean[pc])})")
    held = (pa == label) if label is not None else (pa == pc)
    m2.metric("Defended prediction (adversarial)", f"{names[pa]} ({pct(view.probs_adversarial[pa])})",
              delta="holds" if held else "fooled", delta_color="normal" if held else "inverse", delta_arrow="off")  # fmt: skip
    if view.detector_adversarial is not None:
        m3.metric("Detector score (reconstruction error)", f"{view.detector_adversarial:.4g}",
                  delta=f"clean {view.detector_clean:.4g}", delta_color="off", delta_arrow="off")  # fmt: skip
    left, _ = st.columns([3, 2])
    left.pyplot(probability_bars([("clean", view.probs_clean), ("adversarial", view.probs_adversarial)], names,
                                 label=label, title="defended model: top classes"))  # fmt: skip
    st.caption(f"{view.mode} in {view.seconds:.2f} s")


def _detector(rows: list[dict[str, Any]], row: dict[str, Any], res: PlaygroundResult, info: Any, root: Any) -> None:
    """The model guarded by a detector: its verdict and score on the clean and the adversarial image."""
    if defense_kind({"defense": row.get("defense")}) == "denoiser":
        st.info("A detector guards a plain classifier; pick the classifier this denoiser protects.")
        return
    c1, c2, c3 = st.columns([2, 3, 1])
    name = c1.selectbox("Detector", DETECTORS.names(), key=f"{KEY}_det",
                        format_func=lambda n: f"{n}: {DETECTORS.get(n).title}")  # fmt: skip
    saved = load_detection(row["path"], name)
    runs = {r["path"]: r for r in widgets.detector_runs(rows, row, name)}  # [detector] recipes' runs
    autoencoder = None if saved is None else (saved.get("meta") or {}).get("autoencoder")
    fixed: list[float | str | None] = [*([None] if saved else []), *runs]  # thresholds saved with a guarded model
    fresh: list[float | str | None] = [0.01, 0.05, 0.1]
    if name == "magnet" and saved is None:
        daes = {r["path"]: r for r in widgets.readable(rows)
                if r.get("dataset") == row.get("dataset") and holds_autoencoder(r.get("defense"))}  # fmt: skip
        if not daes and not fixed:
            st.info(f"MagNet scores the reconstruction error of a denoising autoencoder: train one (configs/"
                    f"mnist_dae.toml, or make demo's runs/demo_dae) into {root} and it appears here.")  # fmt: skip
            return
        if daes:
            autoencoder = c2.selectbox("Its autoencoder", list(daes), key=f"{KEY}_det_ae",
                                       format_func=lambda p: widgets.model_label(daes[p], root))  # fmt: skip
        else:
            fresh = []

    def threshold_label(f: float | str | None) -> str:
        if f is None and saved:
            return f"saved: {pct(saved['fpr_target'])}"
        if isinstance(f, str):
            return f"{run_name(f, root)}: {pct((runs[f].get('defense') or {}).get('fpr'))}"
        return pct(f) if isinstance(f, float) else str(f)

    fpr = c3.selectbox("False positives", [*fixed, *fresh], index=0 if fixed else 1, key=f"{KEY}_det_fpr",
                       format_func=threshold_label,
                       help="The threshold flags this fraction of held-out clean test images (the last 1,000); "
                            "'saved': the guarded model lab detect judged, its threshold as its report saved it; "
                            "a run's name: the guarded model a [detector] recipe saved.")  # fmt: skip
    pair = np.stack([res.attack.clean[0], res.attack.adversarial[0]])
    if isinstance(fpr, str):
        clean, adv = cache.saved_detector_verdicts(fpr, pair)
    else:
        clean, adv = cache.detector_verdicts(row["path"], name, pair, autoencoder=autoencoder, fpr=fpr)
    names = list(info.class_names)
    m1, m2 = st.columns(2)
    for col, v, what in ((m1, clean, "clean"), (m2, adv, "adversarial")):
        col.metric(f"Detector on the {what} image", "rejected" if v.rejected else f"passes: {names[v.prediction]}",
                   delta=f"score {v.score:.4g} vs threshold {v.threshold:.4g}",
                   delta_color="off" if v.rejected == (what == "adversarial") else "inverse", delta_arrow="off")  # fmt: skip
    fooled = res.outcome.prediction_after != res.outcome.prediction_before
    if fooled and adv.rejected:
        st.markdown("The attack fooled the classifier, but the detector **rejects** the adversarial image.")
    elif fooled:
        st.markdown("The attack fooled the classifier **and** slipped past the detector.")
    how = (f"threshold set for {pct(fpr)} false positives on the last 1,000 test images" if isinstance(fpr, float)
           else f"the threshold {'lab detect' if fpr is None else 'its [detector] run ' + run_name(fpr, root)} saved "
                f"({threshold_label(fpr).split(': ')[-1]} false positives)")  # fmt: skip
    st.caption(f"{run_name(row['path'], root)} guarded by {name}, {how}. This adversarial image was made against the "
               "classifier alone (the naive attacker); `lab detect` also attacks the detector itself (the adaptive "
               "row), the honest test.")  # fmt: skip


def _inside(rows: list[dict[str, Any]], row: dict[str, Any], picked: Any, choice: widgets.AttackChoice,
            info: Any, root: Any) -> None:  # fmt: skip
    """Each layer's feature maps for the image and its adversarial version, the drift curve
    (overlaid with another model's, each attacked on its own) and the first layer's filters."""
    st.caption("The same attack as above, run through the network layer by layer: the relative L2 distance "
               "between the adversarial and the clean image's activations at every layer. A model that is not "
               "robust lets the small input change grow on its way to the logits; an adversarially trained one "
               "keeps it small.")  # fmt: skip
    shape = list(info.input_shape)
    others = [r for r in widgets.classifiers(rows) if r["path"] != row["path"] and r.get("dataset") == row.get("dataset")]
    by_path = {r["path"]: r for r in others}
    robust = [p for p, r in by_path.items() if widgets.is_defended(r)]
    options = ["(none)", *by_path]
    default = options.index(robust[0]) if robust else 0
    other = st.selectbox("Overlay another model", options, index=default, key=f"{KEY}_inside_other",
                         format_func=lambda p: p if p == "(none)" else widgets.model_label(by_path[p], root))  # fmt: skip
    runs = [cache.inside(row["path"], picked.image, picked.label, attack=choice.name, settings=choice.settings,
                         eps=choice.eps, norm=choice.norm, name=run_name(row["path"], root))]  # fmt: skip
    if other != "(none)":
        ck = cache.checkpoint(other)
        if list(ck.info.input_shape) != shape:
            st.warning(f"{run_name(other, root)} takes images {tuple(ck.info.input_shape)}, not {tuple(shape)}.")
        else:
            runs.append(cache.inside(other, picked.image, picked.label, attack=choice.name, settings=choice.settings,
                                     eps=choice.eps, norm=choice.norm, name=run_name(other, root)))  # fmt: skip
    st.pyplot(drift_figure(runs))
    names = list(info.class_names)
    for r in runs:
        o = r.attack.images[0]
        st.caption(f"{r.name}: {names[o.prediction_before]} -> {names[o.prediction_after]}; drift at the input "
                   f"{float(r.view.input_drift[0]):.3f}, at the logits {float(r.view.drift[-1, 0]):.3f}")  # fmt: skip
    view = runs[0].view
    spatial = view.spatial()
    if spatial:
        layer = st.selectbox("Feature maps of layer", spatial, index=len(spatial) - 1, key=f"{KEY}_inside_layer",
                             format_func=lambda i: f"{short_layer(view.layers[i])} ({view.kinds[i]}, "
                                                   f"{'x'.join(map(str, view.shapes[i]))})")  # fmt: skip
        st.pyplot(feature_maps_figure(runs[0], layer))
    if view.filters is not None:
        st.pyplot(filters_figure(view.filters, runs[0].name))


def main() -> None:
    st.title("Playground")
    st.caption("Pick a model and an image, drag epsilon: the perturbation stays small, the prediction does not.")
    root = settings.runs_dir()
    rows = cache.checkpoints(root)
    row = widgets.model_picker(rows, root, key=f"{KEY}_model")
    if row is None:
        st.info(f"No readable model in {str(root)!r}. Train one with `make demo`, `lab train`, or on the Models page.")
        return
    ck = cache.checkpoint(row["path"])
    info = ck.info
    with st.sidebar.expander("About this model"):
        st.markdown(widgets.facts_markdown(widgets.model_facts(row, ck.record, root)))
    picked = widgets.image_picker(row["path"], info, key=KEY)
    if picked is None:
        return
    for note in picked.notices:
        st.info(f"Upload: {note}.")
    choice = widgets.attack_controls(info, key=KEY)
    methods, quick = widgets.method_picker(ck.model, key=KEY)
    res = cache.playground(row["path"], picked.image, picked.label, attack=choice.name, settings=choice.settings,
                           eps=choice.eps, norm=choice.norm, methods=methods, quick=quick, name=picked.name)  # fmt: skip
    names = list(info.class_names)
    _images(res, names, picked.label, choice.title)
    st.subheader("Top classes before and after")
    left, right = st.columns([3, 2])
    left.pyplot(probability_bars([("clean", res.probs_clean), ("adversarial", res.probs_adversarial)], names,
                                 label=picked.label, title=choice.title))  # fmt: skip
    right.markdown(_story(res, names, picked.label))
    st.subheader("Explanations, clean and adversarial")
    _explanations(res, names)
    st.subheader("Inside the network")
    if st.toggle("Look inside: feature maps and drift layer by layer", key=f"{KEY}_inside"):
        _inside(rows, row, picked, choice, info, root)
    st.subheader("Detector")
    if st.toggle("Guard the model with a detector", key=f"{KEY}_detector"):
        _detector(rows, row, res, info, root)
    st.subheader("Defense")
    if st.toggle("Run the image through a defense", key=f"{KEY}_defense"):
        _defense(rows, row, res, choice, picked.label, info, root)


if __name__ == "__main__":
    with user_errors():
        main()
