"""Compare models: a standard, an adversarially trained, a denoised and an attention model
on the same image and epsilon (each attacked white-box on its own), each one's Grad-CAM
(and an attention model's own attention map) of the clean and the adversarial image, and
their accuracy-vs-epsilon curves from their ``lab eval`` reports.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

from defenses.detectors import DETECTORS
from lab.core.text import pct
from lab.dashboard import cache, settings, widgets
from lab.dashboard.images import overlay_picture, picture
from lab.dashboard.ui import run_name, show, user_errors
from lab.present import reports
from lab.present.detection import load_detection
from lab.present.plots import accuracy_curves, probability_bars
from lab.present.text import eps_label
from lab.runs.detect import holds_autoencoder
from lab.runs.playground import defense_kind, denoise_images

KEY = "cmp"
MAX_MODELS = 4


def default_selection(rows: list[dict[str, Any]]) -> list[str]:
    """One undefended, one adversarially trained, one denoised and one attention model of one
    dataset (MNIST when it has a standard model), whichever exist, else the first models of it."""
    if not rows:
        return []
    plain = [r for r in rows if not widgets.is_defended(r)]
    mnist = [r for r in plain if r.get("dataset") == "mnist"]
    dataset = (mnist or plain or rows)[0].get("dataset")
    same = [r for r in rows if r.get("dataset") == dataset]
    picked: list[str] = []
    wanted = [lambda r, want=want: defense_kind({"defense": r.get("defense")}) == want and not widgets.has_attention(r)
              for want in (None, "adversarial training", "denoiser")] + [widgets.has_attention]  # fmt: skip
    for want in wanted:
        hit = next((r for r in same if want(r) and r["path"] not in picked), None)
        if hit is not None:
            picked.append(hit["path"])
    for r in same:
        if len(picked) >= 3:
            break
        if r["path"] not in picked:
            picked.append(r["path"])
    return picked[:MAX_MODELS]


def map_methods(row: dict[str, Any]) -> tuple[str, ...]:
    """The maps each column shows: Grad-CAM, and an attention model's own attention map beside it."""
    return ("gradcam", "attention") if widgets.has_attention(row) else ("gradcam",)


def _guard_controls(rows: list[dict[str, Any]], dataset: Any, root: Path) -> tuple[str, str | None] | None:
    """The detector (and MagNet's autoencoder run) that guards each plain model, or None."""
    c1, c2, _ = st.columns([2, 3, 1])
    name = c1.selectbox("Guard each classifier with a detector", ["(none)", *DETECTORS.names()], key=f"{KEY}_det",
                        help="Each plain model's adversarial image is also shown to the detector (threshold: 5% false "
                             "positives on the last 1,000 test images). The attack ignores the detector (naive); "
                             "`lab detect` adds the adaptive attack.")  # fmt: skip
    if name == "(none)":
        return None
    if name != "magnet":
        return name, None
    daes = {r["path"]: r for r in rows if r.get("dataset") == dataset and holds_autoencoder(r.get("defense"))}
    if not daes:
        st.info(f"MagNet needs a denoising autoencoder run (configs/mnist_dae.toml, make demo's runs/demo_dae) in {root}.")
        return None
    ae = c2.selectbox("Its autoencoder", list(daes), key=f"{KEY}_det_ae",
                      format_func=lambda p: widgets.model_label(daes[p], root))  # fmt: skip
    return name, ae


def _guarded(path: str, guard: tuple[str, str | None], res: Any, names: list[str], held: bool) -> None:
    det, ae = guard
    clean, adv = cache.detector_verdicts(path, det, np.stack([res.attack.clean[0], res.attack.adversarial[0]]),
                                         autoencoder=ae)  # fmt: skip
    ok = held or adv.rejected
    st.metric(f"Guarded by {det}", "rejected" if adv.rejected else f"passes: {names[adv.prediction]}",
              delta="holds" if ok else "fooled", delta_color="normal" if ok else "inverse", delta_arrow="off")  # fmt: skip
    st.caption(f"{det} score {adv.score:.4g} (clean image {clean.score:.4g}, "
               f"{'rejected' if clean.rejected else 'passes'}); threshold {adv.threshold:.4g}")  # fmt: skip


def _model_column(row: dict[str, Any], picked: widgets.Picked, choice: widgets.AttackChoice, root: Path,
                  explain: bool, guard: tuple[str, str | None] | None = None) -> None:  # fmt: skip
    path = row["path"]
    ck = cache.checkpoint(path)
    names = list(ck.info.class_names)
    methods = map_methods(row) if explain else ()
    res = cache.playground(path, picked.image, picked.label, attack=choice.name, settings=choice.settings,
                           eps=choice.eps, norm=choice.norm, methods=methods, name=picked.name)  # fmt: skip
    out = res.outcome
    kind = defense_kind(ck.record, ck) or "standard"
    st.markdown(f"**{run_name(path, root)}**  \n{ck.info.arch}, {kind}")
    show(st, picture(res.attack.adversarial[0]), caption="its adversarial image")
    den = denoise_images(ck, res.attack.adversarial)
    if den is not None:
        show(st, picture(den[0]), caption="after its denoiser")
        st.caption("The attack ran through the whole pipeline, but a transform without useful gradients (bit depth, "
                   "JPEG, median) hides them: a prediction that holds here may fall to BPDA/EOT; see its report's "
                   "threat rows.")  # fmt: skip
    ok = out.prediction_after == (picked.label if picked.label is not None else out.prediction_before)
    st.metric("Adversarial prediction", f"{names[out.prediction_after]} ({pct(out.confidence_after)})",
              delta="holds" if ok else "fooled", delta_color="normal" if ok else "inverse", delta_arrow="off")  # fmt: skip
    if guard is not None and kind != "denoiser":
        _guarded(path, guard, res, names, ok)
    st.caption(f"clean: {names[out.prediction_before]} ({pct(out.confidence_before)}); "
               f"L-inf {out.linf:.3f}, L2 {out.l2:.3f}; {res.seconds_attack:.2f} s")  # fmt: skip
    st.pyplot(probability_bars([("clean", res.probs_clean), ("adversarial", res.probs_adversarial)], names, k=3,
                               label=picked.label))  # fmt: skip
    ex = res.explanations
    if ex is not None:
        m = ex.models[0]
        for method in ex.methods:
            cos = res.map_cosines.get(method)
            st.markdown(f"**{method}**" + ("" if cos is None else f" (clean vs adversarial cosine {cos:.2f})"))
            c1, c2 = st.columns(2)
            show(c1, overlay_picture(ex.images[0], m.maps[method][0], ex.signed[method]),
                 caption=f"{method} of the clean image ({names[int(m.targets[method][0])]})")  # fmt: skip
            show(c2, overlay_picture(ex.images[1], m.maps[method][1], ex.signed[method]),
                 caption=f"{method} of the adversarial image ({names[int(m.targets[method][1])]})")  # fmt: skip


def _detection_row(path: str, detector: str, root: Path) -> dict[str, str] | None:
    """The summary row of ``lab detect``'s report for the model guarded by ``detector``, if it has one."""
    rep = load_detection(path, detector)
    if rep is None:
        return None
    worst = [f"{pct(r['robust_with_rejection'])} at {r['eps']:g}" for r in rep.get("results", [])]
    return {"model": f"{run_name(path, root)} + {detector}", "report": f"lab detect ({rep.get('n')} images)",
            "headline": "robust accuracy with rejection, worst of every attack row: " + ", ".join(worst)}  # fmt: skip


def _curves(paths: list[str], root: Path, detector: str | None = None) -> None:
    entries = reports.find_reports(root) if root.is_dir() else []
    models: list[tuple[str, list[reports.Curve]]] = []
    labels: dict[float, str] = {}
    clean: dict[str, float] = {}
    norms: set[str] = set()
    summary = []
    for path in paths:
        name = run_name(path, root)
        found = reports.reports_for_run(entries, path)
        if not found:
            summary.append({"model": name, "report": "none: run `lab eval --model " + str(path) + "`", "headline": "-"})
            continue
        titles = [e.title for e in found]
        chosen = st.selectbox(f"Report for {name}", titles, key=f"{KEY}_report_{path}") if len(found) > 1 else titles[0]
        entry = found[titles.index(chosen)]
        rep = reports.load_robustness(entry.path)
        norms.add(rep.norm)
        models.append((name, reports.curves(rep, attacks=False)))
        clean[name] = float(rep.clean_accuracy) if rep.clean_accuracy is not None else float("nan")
        labels.update({float(r.eps): eps_label(rep, r.eps) for r in rep.results})
        h = reports.headline(rep)
        summary.append({"model": name, "report": entry.title,
                        "headline": h.text})  # fmt: skip
    for path in paths if detector else []:
        row = _detection_row(path, str(detector), root)
        if row is not None:
            summary.append(row)
    if models:
        if len(norms) > 1:
            st.warning("These reports use different norms (" + ", ".join(sorted(norms)) + "); their epsilons do "
                       "not compare.")  # fmt: skip
        left, _ = st.columns([3, 1])
        left.pyplot(accuracy_curves(models, norm=sorted(norms)[0], eps_labels=labels, clean=clean,
                                    title="robust accuracy vs epsilon (bold: worst case; dashed: threat rows)"))  # fmt: skip
    st.dataframe(summary, hide_index=True)


def main() -> None:
    st.title("Compare models")
    st.caption("The same image and epsilon against each model, every model attacked on its own (white-box); "
               "below, their accuracy-vs-epsilon curves from their reports.")  # fmt: skip
    root = settings.runs_dir()
    rows = widgets.classifiers(cache.checkpoints(root))
    if not rows:
        st.info(f"No readable model in {str(root)!r}. Train some on the Models page or with `make demo`.")
        return
    by_path = {r["path"]: r for r in rows}
    paths = st.multiselect("Models", list(by_path), default=default_selection(rows), key=f"{KEY}_models",
                           max_selections=MAX_MODELS, format_func=lambda p: widgets.model_label(by_path[p], root))  # fmt: skip
    if not paths:
        st.info("Choose at least one model.")
        return
    first = cache.checkpoint(paths[0])
    shape = list(first.info.input_shape)
    odd = [run_name(p, root) for p in paths if list(cache.checkpoint(p).info.input_shape) != shape]
    if odd:
        st.error(f"{', '.join(odd)} take{'s' if len(odd) == 1 else ''} other images than {run_name(paths[0], root)} "
                 f"{tuple(shape)}; compare models of one dataset.")  # fmt: skip
        return
    picked = widgets.image_picker(paths[0], first.info, key=KEY)
    if picked is None:
        return
    for note in picked.notices:
        st.info(f"Upload: {note}.")
    choice = widgets.attack_controls(first.info, key=KEY)
    label = f"label {first.info.class_names[picked.label]}" if picked.label is not None else "uploaded"
    st.caption(f"{picked.name} ({label}); {choice.title}")
    show(st, picture(picked.image, px=112), caption="the image")
    explain = st.toggle("Maps: each model's Grad-CAM, and an attention model's own attention", value=True,
                        key=f"{KEY}_maps", help="Each map explains the class the model predicts for that image.")  # fmt: skip
    guard = _guard_controls(rows, first.info.dataset, root)
    for col, path in zip(st.columns(len(paths)), paths):
        with col, user_errors():
            _model_column(by_path[path], picked, choice, root, explain, guard)
    st.subheader("Accuracy vs epsilon")
    _curves(paths, root, None if guard is None else guard[0])
    st.caption(f"Reports are found under {str(root)!r}; `lab eval --model RUN` writes one.")


if __name__ == "__main__":
    with user_errors():
        main()
