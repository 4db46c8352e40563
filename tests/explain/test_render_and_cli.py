"""Explanation rendering (:mod:`lab.present.explanations`) and ``lab explain`` end to end through the real
console script on the ``trained_fastnet`` run, plus its bad inputs as exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import assert_user_error, run_lab
from PIL import Image

from explain import EXPLAINERS
from lab.core.errors import LabError
from lab.present.explanations import grid_png, image_rgb, overlay
from lab.runs.explain import map_stats, resolve_methods, run_explain

# ---------------------------------------------------------------- rendering


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("signed", [True, False])
def test_overlay_is_rgb_uint8_for_any_image_and_map(channels: int, signed: bool) -> None:
    rng = np.random.default_rng(0)
    image = rng.random((channels, 28, 28))
    amap = rng.standard_normal((28, 28)) if signed else rng.random((28, 28))
    out = overlay(image, amap, signed)
    assert out.shape == (28, 28, 3) and out.dtype == np.uint8
    assert overlay(image[0], amap, signed).shape == (28, 28, 3)  # [H, W] image too
    assert overlay(image, np.zeros((28, 28)), signed).dtype == np.uint8  # an all-zero map is fine


def test_overlay_colors_signs_apart() -> None:
    image = np.full((1, 4, 4), 0.5)
    amap = np.zeros((4, 4))
    amap[0, 0], amap[3, 3] = 1.0, -1.0
    out = overlay(image, amap, signed=True, alpha=1.0).astype(int)
    assert out[0, 0, 0] > out[0, 0, 2]  # positive: red
    assert out[3, 3, 2] > out[3, 3, 0]  # negative: blue


def is_signed(method: str, settings: dict | None = None) -> bool:
    return EXPLAINERS.get(method).signed_for(settings or {})


def test_signedness_follows_the_methods() -> None:
    assert is_signed("integrated_gradients") and is_signed("occlusion")
    assert not is_signed("saliency") and not is_signed("gradcam") and not is_signed("attention")
    assert not is_signed("smoothgrad") and is_signed("smoothgrad", {"base": "gradient"})
    assert not is_signed("integrated_gradients", {"reduce": "abs_sum"})
    assert not is_signed("smoothgrad", {"base": "gradient", "reduce": "abs_sum"})
    assert not is_signed("smoothgrad_sq", {"base": "gradient"}) and not is_signed("vargrad")


def test_grid_png_size_matches_what_it_returns(tmp_path: Path) -> None:
    cell = image_rgb(np.random.default_rng(1).random((1, 28, 28)))
    rows = [(f"row {i}", [cell, cell, cell]) for i in range(3)]
    size = grid_png(tmp_path / "grid.png", rows, ["image", "a", "b"], title="t")
    with Image.open(tmp_path / "grid.png") as img:
        assert img.size == size
    assert not [p for p in tmp_path.iterdir() if p.name != "grid.png"]  # no temporary file left
    with pytest.raises(ValueError):
        grid_png(tmp_path / "bad.png", [("r", [cell])], ["a", "b"])


def test_methods_resolve_aliases_and_refuse_unknown_names() -> None:
    assert resolve_methods("ig, saliency,ig") == ["integrated_gradients", "saliency"]
    assert resolve_methods("sg,ixg,gbp,shap") == ["smoothgrad", "input_x_gradient", "guided_backprop", "gradient_shap"]
    with pytest.raises(LabError, match="choose from"):
        resolve_methods("saliency,magic")


def test_map_stats_top_mass() -> None:
    a = np.zeros((10, 10))
    a[0, :] = 1.0
    s = map_stats(a)
    assert s["top_mass"] == pytest.approx(1.0) and s["sum"] == 10 and s["min"] == 0
    assert map_stats(np.ones((10, 10)))["top_mass"] == pytest.approx(0.1)


def test_run_explain_api_with_an_attack(trained_fastnet) -> None:
    m = trained_fastnet
    run = run_explain([m.model], ["saliency", "ig"], m.x[:3], m.y[:3].numpy(), attack="fgsm", eps=0.1, quick=True)
    (me,) = run.models
    assert me.maps["integrated_gradients"].shape == (3, 28, 28)
    assert me.adversarial is not None and me.adversarial.shape == (3, 1, 28, 28)
    assert float(np.abs(me.adversarial - m.x[:3].numpy()).max()) <= 0.1 + 1e-6
    d = run.to_dict()
    assert d["attack"]["name"] == "fgsm" and "cosine_clean_adv" in d["models"][0]["images"][0]["methods"]["saliency"]


# ---------------------------------------------------------------- the CLI


def _load(out: Path) -> dict:
    assert {p.name for p in out.iterdir()} == {"explanations.png", "explanations.json"}
    data = json.loads((out / "explanations.json").read_text())
    with Image.open(out / "explanations.png") as img:
        assert list(img.size) == data["png"]["size"]
    return data


def test_cli_explains_test_images(trained_fastnet, tmp_path: Path) -> None:
    out = tmp_path / "ex"
    proc = run_lab("explain", "--model", str(trained_fastnet.run), "--method", "saliency,ig", "--images", "0:4",
                   "--quick", "--out", str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    data = _load(out)
    assert data["methods"] == ["saliency", "integrated_gradients"] and data["n"] == 4
    (model,) = data["models"]
    assert [r["name"] for r in model["images"]] == [f"test[{i}]" for i in range(4)]
    for row in model["images"]:
        assert set(row["methods"]) == {"saliency", "integrated_gradients"}
        assert row["methods"]["saliency"]["target"] == row["prediction"]
        assert set(row["methods"]["saliency"]["stats"]) == {"min", "max", "sum", "abs_sum", "top_mass"}
        assert "adv_prediction" not in row
    assert data["signed"] == {"saliency": False, "integrated_gradients": True}


def test_cli_explains_adversarial_images(trained_fastnet, tmp_path: Path) -> None:
    out = tmp_path / "adv"
    proc = run_lab("explain", "--model", str(trained_fastnet.run), "--method", "saliency", "--images", "2:5",
                   "--attack", "pgd", "--eps", "0.1", "--target", "3", "--out", str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    data = _load(out)
    assert data["attack"]["name"] == "pgd" and data["attack"]["eps"] == pytest.approx(0.1)
    rows = data["models"][0]["images"]
    assert [r["name"] for r in rows] == ["test[2]", "test[3]", "test[4]"]
    for row in rows:
        assert isinstance(row["adv_prediction"], int)
        entry = row["methods"]["saliency"]
        assert entry["target"] == 3 and entry["adv_target"] == 3
        assert entry["cosine_clean_adv"] is None or -1 <= entry["cosine_clean_adv"] <= 1


def test_cli_metrics_table(trained_fastnet, tmp_path: Path) -> None:
    """--metrics writes every quality metric per method; Grad-CAM passes the sanity check and
    faithful maps beat the random map on deletion (the model-dependence and faithfulness tests)."""
    out = tmp_path / "metrics"
    proc = run_lab("explain", "--model", str(trained_fastnet.run), "--method", "saliency,gradcam", "--images", "0:8",
                   "--quick", "--attack", "pgd", "--eps", "0.1", "--metrics", "--out", str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "sanity" in proc.stdout
    data = json.loads((out / "metrics.json").read_text())
    (table,) = data["models"].values()
    assert set(table) == {"saliency", "gradcam"}
    for row in table.values():
        assert 0 <= row["deletion_auc"] <= 1 and 0 <= row["insertion_auc"] <= 1
        assert row["infidelity"] >= 0 and row["sensitivity"] >= 0
        assert -1 <= row["under_attack"]["spearman"] <= 1 and 0 <= row["under_attack"]["top_k_iou"] <= 1
    # Measured over fixture seeds 0-4, with and without LAB_PRECISION=fp32: Grad-CAM's final
    # Spearman after randomization -0.13 to 0.00 (passes below 0.5); saliency's deletion AUC
    # 0.19-0.27 against the random map's 0.47-0.53 (a gap of 0.22-0.34; asked for 0.1).
    assert table["gradcam"]["sanity"]["passed"] is True
    assert table["saliency"]["deletion_auc"] + 0.1 < table["saliency"]["random_deletion_auc"]


def test_cli_compares_models(trained_fastnet, tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    run = str(trained_fastnet.run)
    proc = run_lab("explain", "--compare", run, run, "--method", "gradcam", "--images", "0:2", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    data = _load(out)
    assert len(data["models"]) == 2 and data["models"][0]["name"] != data["models"][1]["name"]
    a, b = (m["images"] for m in data["models"])
    assert [r["prediction"] for r in a] == [r["prediction"] for r in b]


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--method", "saliency,magic"], "unknown explanation method 'magic'"),
        (["--method", "attention"], "has no attention maps"),
        (["--method", "saliency", "--target", "10"], "out of range"),
        (["--method", "saliency", "--images", "4:2"], "START < STOP"),
    ],
)
def test_cli_bad_inputs_exit_2(trained_fastnet, tmp_path: Path, extra: list[str], fragment: str) -> None:
    proc = run_lab("explain", "--model", str(trained_fastnet.run), "--images", "0:2", *extra,
                   "--out", str(tmp_path / "x"))  # fmt: skip
    assert_user_error(proc, fragment)


def test_cli_refuses_an_image_of_the_wrong_size(trained_fastnet, tmp_path: Path) -> None:
    bad = tmp_path / "big.png"
    Image.fromarray(np.zeros((32, 32), dtype=np.uint8)).save(bad)
    proc = run_lab("explain", "--model", str(trained_fastnet.run), "--method", "saliency", "--image", str(bad),
                   "--out", str(tmp_path / "x"))  # fmt: skip
    assert_user_error(proc, "32x32 pixels")
    assert not (tmp_path / "x").exists()
