"""Plug-ins through the entry points, end to end: a separate distribution is installed for
real and every face of the lab offers its methods.

``tests/plugins/demo`` is a distribution of its own (``lab-plugin-demo``): one file per
method and a pyproject.toml that declares them under the entry-point groups ``lab.attacks``,
``lab.explainers``, ``lab.models``, ``lab.defenses``, ``lab.denoisers`` and ``lab.detectors`` (see
:mod:`lab.core.registry`). The lab's code never
names it. It is built and installed with pip into a temporary folder (real ``dist-info``
metadata, real entry points), and everything below runs in subprocesses whose
``PYTHONPATH`` holds that folder: the ``lab`` console script (and ``python -m lab``) and the
dashboard under Streamlit's AppTest. Without the folder the methods are not there.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from cli_helpers import LAB, ROOT, assert_user_error

pytestmark = pytest.mark.slow  # a pip install, a training run and a dozen lab processes

DEMO = Path(__file__).resolve().parent / "plugins" / "demo"
DIST = "lab-plugin-demo"
ATTACK, EXPLAINER, MODEL = "plug_sign", "plug_grad", "plug_tiny"
DEFENSE, DENOISER, DETECTOR = "plug_uniform", "plug_blur", "plug_range"


@dataclass(frozen=True)
class Plugin:
    """One method of the demo distribution."""

    group: str  # its entry-point group
    name: str  # the name the lab knows it by
    module: str  # its file in tests/plugins/demo/lab_plugin_demo/, as a module


#: every method the demo distribution ships
PLUGINS = (
    Plugin("lab.attacks", ATTACK, "lab_plugin_demo.attack"),
    Plugin("lab.explainers", EXPLAINER, "lab_plugin_demo.explainer"),
    Plugin("lab.models", MODEL, "lab_plugin_demo.model"),
    Plugin("lab.defenses", DEFENSE, "lab_plugin_demo.defense"),
    Plugin("lab.denoisers", DENOISER, "lab_plugin_demo.denoiser"),
    Plugin("lab.detectors", DETECTOR, "lab_plugin_demo.detector"),
)

#: entry-point group -> (module, name) of the registry that loads it
REGISTRIES = {
    "lab.attacks": ("attacks.base", "ATTACKS"),
    "lab.defenses": ("defenses.base", "DEFENSES"),
    "lab.denoisers": ("defenses.denoisers.base", "DENOISERS"),
    "lab.detectors": ("defenses.detectors.base", "DETECTORS"),
    "lab.explainers": ("explain.base", "EXPLAINERS"),
    "lab.models": ("lab.models.registry", "MODELS"),
}

#: a recipe naming the plug-in model: a few seconds of real MNIST on the CPU, in fp32
RECIPE = f"""
name = "plug"
seed = 0

[data]
dataset = "mnist"
train_subset = 512
test_subset = 128

[model]
arch = "{MODEL}"

[train]
epochs = 1
batch_size = 64
optimizer = "adam"
lr = 0.01
schedule = "constant"

[runtime]
device = "cpu"
precision = "fp32"
"""

DASHBOARD_SCRIPT = """
import json, sys
from streamlit.testing.v1 import AppTest

at = AppTest.from_file(sys.argv[1], default_timeout=300)
at.run()
out = {"errors": [str(e.value) for e in at.exception]}
if not at.exception:
    out["models"] = list(at.selectbox(key="pg_model").options)
    out["attacks"] = list(at.selectbox(key="pg_attack").options)
    out["methods"] = list(at.multiselect(key="pg_methods_False").options)
    at.selectbox(key="pg_attack").set_value(sys.argv[2]).run()
    at.multiselect(key="pg_methods_False").set_value([sys.argv[3]]).run()
    out["errors"] += [str(e.value) for e in at.exception]
    out["texts"] = [str(e.value) for kind in ("caption", "markdown") for e in getattr(at, kind)]
print("RESULT " + json.dumps(out))
"""


# ---------------------------------------------------------------- installation


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo distribution built and installed (pip, offline) into a folder of its own."""
    work = tmp_path_factory.mktemp("plugin")
    src = work / "src"  # a copy: building writes build/ and *.egg-info next to the sources
    shutil.copytree(DEMO, src, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    target = work / "site"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
         "--target", str(target), str(src)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return target


def plugin_env(site: Path | None) -> dict[str, str]:
    """The environment of the subprocesses: the installed plug-in on PYTHONPATH (or not), one thread."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env.pop("PYTHONPATH", None)
    if site is not None:
        env["PYTHONPATH"] = str(site)
    return env


def lab(site: Path | None, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``lab ARGS`` (the real console script) in the repository root."""
    assert LAB, "the lab console script is not installed"
    return subprocess.run([LAB, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                          env=plugin_env(site), check=False)  # fmt: skip


def registry_names(site: Path | None) -> dict[str, list[str]]:
    """Entry-point group -> the names its registry holds, in a fresh interpreter."""
    script = (
        "import importlib, json, sys\n"
        "out = {}\n"
        "for group, (module, attr) in json.loads(sys.argv[1]).items():\n"
        "    reg = getattr(importlib.import_module(module), attr)\n"
        "    assert reg.group == group, (reg.group, group)\n"
        "    out[group] = reg.names()\n"
        "print(json.dumps(out))\n"
    )
    groups = {p.group: REGISTRIES[p.group] for p in PLUGINS}
    proc = subprocess.run([sys.executable, "-c", script, json.dumps(groups)], capture_output=True, text=True,
                          timeout=300, cwd=ROOT, env=plugin_env(site), check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_the_distribution_is_installed_with_its_entry_points(site: Path) -> None:
    (dist,) = [d for d in importlib.metadata.distributions(path=[str(site)]) if d.metadata["Name"] == DIST]
    declared = {(ep.group, ep.module) for ep in dist.entry_points}
    for p in PLUGINS:
        assert (p.group, p.module) in declared, p
        assert (site / (p.module.replace(".", "/") + ".py")).is_file()


def test_the_registries_find_the_methods_through_the_entry_points_only(site: Path) -> None:
    with_plugin, without = registry_names(site), registry_names(None)
    for p in PLUGINS:
        assert p.name in with_plugin[p.group], (p, with_plugin[p.group])
        assert p.name not in without[p.group], p
        assert set(without[p.group]) < set(with_plugin[p.group])  # the lab's own methods stay


# ---------------------------------------------------------------- the CLI


@pytest.fixture(scope="module")
def run(site: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``lab train`` on a recipe naming the plug-in model (1 epoch of 512 MNIST images)."""
    work = tmp_path_factory.mktemp("plugin_runs")
    recipe = work / "plug.toml"
    recipe.write_text(RECIPE)
    out = work / "runs" / "plug"
    proc = lab(site, "train", "--config", str(recipe), "--out", str(out), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    return out


def test_a_recipe_naming_the_plugin_model_trains(run: Path) -> None:
    record = json.loads((run / "model.json").read_text())
    assert record["status"] == "complete"
    assert record["model"]["arch"] == MODEL and record["model"]["input_shape"] == [1, 28, 28]
    assert record["metrics"]["test_acc"] > 0.3  # it learned: 61-75% over seeds 0-2 (chance: 10%)


def test_the_cli_offers_the_plugins_among_its_choices(site: Path, run: Path) -> None:
    for command in ([LAB], [sys.executable, "-m", "lab"]):
        proc = subprocess.run([*command, "train", "--help"], capture_output=True, text=True, timeout=300,
                              cwd=ROOT, env=plugin_env(site), check=False)  # fmt: skip
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert all(name in proc.stdout for name in (MODEL, DEFENSE, DENOISER)), proc.stdout
    # an unknown name is refused with the choices, the plug-ins among them
    assert_user_error(lab(site, "attack", "--model", str(run), "--attack", "no_such_attack"), ATTACK)
    assert_user_error(lab(site, "eval", "--model", str(run), "--attack", "no_such_attack"), ATTACK)
    assert_user_error(lab(site, "explain", "--model", str(run), "--method", "no_such_method"), EXPLAINER)


def test_lab_detect_runs_the_plugin_detector_with_its_own_setting(site: Path, run: Path, tmp_path: Path) -> None:
    out = tmp_path / "detect"
    proc = lab(site, "detect", "--model", str(run), "--detector", DETECTOR, "--param", "power=2", "--eps", "0.2",
               "-n", "8", "--steps", "5", "--calib-n", "100", "--fit-n", "0", "--no-progress", "--report", str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    data = json.loads((out / "detection.json").read_text())
    assert data["detector"]["name"] == DETECTOR and data["detector"]["settings"] == {"power": 2.0}
    assert_user_error(lab(site, "detect", "--model", str(run), "--detector", "no_such_detector"), DETECTOR)


def test_lab_attack_runs_the_plugin_attack_with_its_own_setting(site: Path, run: Path, tmp_path: Path) -> None:
    out = tmp_path / "attack"
    proc = lab(site, "attack", "--model", str(run), "--attack", ATTACK, "--param", "scale=0.5", "--eps", "0.2",
               "--n", "8", "--out", str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result = json.loads((out / "attack.json").read_text())
    assert result["attack"]["name"] == ATTACK and result["attack"]["scale"] == 0.5  # text coerced to a float
    assert result["model"]["arch"] == MODEL and len(result["images"]) == 8
    assert max(i["linf"] for i in result["images"]) <= 0.5 * 0.2 + 1e-6  # the step the setting asked for
    assert_user_error(lab(site, "attack", "--model", str(run), "--attack", ATTACK, "--param", "bogus=1"), "scale")


def test_lab_eval_reports_the_plugin_attack(site: Path, run: Path, tmp_path: Path) -> None:
    out = tmp_path / "eval"
    proc = lab(site, "eval", "--model", str(run), "--attack", ATTACK, "--eps", "0,0.1", "--n", "32",
               "--no-checks", "--no-progress", "--report", str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = json.loads((out / "report.json").read_text())
    assert [a["name"] for a in report["attacks"]] == [ATTACK]
    assert report["model"]["arch"] == MODEL and report["n"] == 32
    assert ATTACK in json.dumps(report["results"])  # the per-epsilon rows name the attack that ran


def test_lab_explain_runs_the_plugin_explainer_on_the_plugin_model(site: Path, run: Path, tmp_path: Path) -> None:
    out = tmp_path / "explain"
    proc = lab(site, "explain", "--model", str(run), "--method", f"{EXPLAINER},gradcam", "--images", "0:2",
               "--attack", ATTACK, "--eps", "0.1", "--out", str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result = json.loads((out / "explanations.json").read_text())
    assert result["methods"] == [EXPLAINER, "gradcam"]
    assert ATTACK in json.dumps(result["attack"])
    assert (out / "explanations.png").is_file()


def test_the_plugin_models_facts_come_from_its_class(site: Path, run: Path) -> None:
    """Grad-CAM's default layer is the plug-in class's ``default_layer`` (its first conv, not the last)."""
    script = (
        "import sys\n"
        "from explain.layers import default_layer_name\n"
        "from lab.training.checkpoint import load_model\n"
        "print(default_layer_name(load_model(sys.argv[1]).model))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script, str(run)], capture_output=True, text=True, timeout=300,
                          cwd=ROOT, env=plugin_env(site), check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "net.features.0"


# ---------------------------------------------------------------- the dashboard


def test_the_dashboard_offers_and_runs_the_plugins(site: Path, run: Path, defended: Path, blurred: Path) -> None:
    """The Playground under AppTest (in a subprocess with the plug-in on its path): the
    plug-in model is in the model list, the attack and the explainer in the drop-downs,
    and picking them runs them."""
    env = dict(plugin_env(site), LAB_RUNS_DIR=str(run.parent))
    proc = subprocess.run([sys.executable, "-c", DASHBOARD_SCRIPT, str(ROOT / "app.py"), ATTACK, EXPLAINER],
                          capture_output=True, text=True, timeout=600, cwd=ROOT, env=env, check=False)  # fmt: skip
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = json.loads(lines[-1].removeprefix("RESULT "))
    assert not out["errors"], out["errors"]
    assert any(MODEL in label for label in out["models"]), out["models"]
    assert any(DEFENSE in label for label in out["models"]), out["models"]  # the plug-in defense's run
    assert any(f"{DENOISER}+{MODEL}" in label for label in out["models"]), out["models"]  # and the denoised one
    assert any(label.split(" ")[0] == ATTACK for label in out["attacks"]), out["attacks"]
    assert EXPLAINER in out["methods"], out["methods"]
    assert any(c.startswith(f"{ATTACK} (L-inf") for c in out["texts"]), out["texts"]  # the attack's caption
    assert any(c.startswith(f"**{EXPLAINER}**") for c in out["texts"]), out["texts"]  # its maps' heading


# ---------------------------------------------------------------- training defenses and denoisers


def _recipe_with(name: str, section: str) -> str:
    """The plug-in model's recipe under another run name, with one more table."""
    return RECIPE.replace('name = "plug"', f'name = "{name}"') + section


def _train(site: Path, run: Path, name: str, section: str) -> Path:
    """``lab train`` on the plug-in model's recipe plus ``section``, into ``run``'s folder (so the dashboard lists it)."""
    recipe = run.parent.parent / f"{name}.toml"
    recipe.write_text(_recipe_with(name, section))
    out = run.parent / name
    proc = lab(site, "train", "--config", str(recipe), "--out", str(out), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.fixture(scope="module")
def defended(site: Path, run: Path) -> Path:
    """The plug-in defense on the plug-in model, its own setting from the recipe."""
    return _train(site, run, "plug_defense", f'\n[defense]\nname = "{DEFENSE}"\neps = 0.1\nmix = 0.5\n')


@pytest.fixture(scope="module")
def blurred(site: Path, run: Path) -> Path:
    """The plug-in denoiser in front of the plug-in model (``lab train`` only assembles the pair)."""
    return _train(site, run, "plug_denoiser", f'\n[denoiser]\nname = "{DENOISER}"\nclassifier = "{run}"\npasses = 2\n')


def test_a_recipe_naming_the_plugin_defense_trains_with_its_settings(site: Path, run: Path, defended: Path) -> None:
    record = json.loads((defended / "model.json").read_text())
    assert record["status"] == "complete" and record["model"]["arch"] == MODEL
    assert record["defense"]["name"] == DEFENSE and record["defense"]["kind"] == "training"
    assert record["defense"]["settings"]["mix"] == 0.5 and record["defense"]["settings"]["eps"] == 0.1
    # the recipe loader lets the plug-in check its own settings, one sentence naming the key
    recipe = str(run.parent.parent / "plug_defense.toml")
    assert_user_error(lab(site, "train", "--config", recipe, "--set", "defense.mix=2", "--out",
                          str(run.parent / "never")), "defense.mix")  # fmt: skip
    assert_user_error(lab(site, "train", "--config", recipe, "--set", "defense.passes=2", "--out",
                          str(run.parent / "never")), "defense.passes")  # the plug-in denoiser's setting
    assert not (run.parent / "never").exists()


def test_a_recipe_naming_the_plugin_denoiser_is_evaluated_with_its_threat_rows(
    site: Path, blurred: Path, tmp_path: Path
) -> None:
    record = json.loads((blurred / "model.json").read_text())
    assert record["model"]["arch"] == f"{DENOISER}+{MODEL}"
    assert record["defense"]["name"] == DENOISER and record["defense"]["settings"] == {"passes": 2}
    out = tmp_path / "eval"
    proc = lab(site, "eval", "--model", str(blurred), "--suite", "quick", "--eps", "0,0.1", "--n", "32",
               "--no-checks", "--no-progress", "--report", str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["model"]["arch"] == f"{DENOISER}+{MODEL}"
    rows = [row["name"] for row in report["threat_rows"]]
    assert rows == ["gray-box", "white-box"], rows  # differentiable and deterministic: no BPDA, no EOT
    assert all(set(r["rows"]) == set(rows) for r in report["results"] if r["eps"] > 0)
