"""The architecture of DESIGN.md, checked on the source tree (no model is built here).

* the import-linter contracts of pyproject.toml hold: the layers (``lab.core`` at the
  bottom, the CLI and the dashboard on top), attacks and explanations that know no
  defense, run, screen or CLI, defenses that know no training loop, streamlit only in the
  dashboard, no import cycle inside any package;
* an import inside a function is only for an optional or heavy package (:data:`LAZY_OK`)
  and carries a comment saying why, on its line or the line above (one comment may cover a
  run of consecutive imports); everything else is imported at the top of its module, so
  the import graph the contracts check is the real one;
* no file in ``lab/`` is longer than :data:`MAX_LINES` lines unless its module docstring
  says why, in a line starting "Long because ...".
"""

from __future__ import annotations

import ast
import io
import os
import re
import shutil
import subprocess
import sys
import tokenize
from collections.abc import Iterator
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("lab", "attacks", "defenses", "explain")
#: where imports inside functions are looked for: the packages, the benchmarks, the app
SCANNED = (*PACKAGES, "benchmarks", "app.py")

#: packages that may be imported inside a function, and why: optional (not a dependency of
#: the lab, or only of an extra) or heavy to import (>= 0.4 s on the lab's 2-core machine,
#: measured with ``python -X importtime`` after torch) and needed by few code paths.
#: Pillow is on neither side (a dependency, 10 ms): it is imported at the top.
LAZY_OK = {
    "captum": "heavy (0.6 s); the attribution methods only",
    "foolbox": "heavy (0.5 s); the foolbox attacks only",
    "eagerpy": "foolbox's tensor layer, with foolbox",
    "pyautoattack": "the AutoAttack attacks only",
    "autoattack": "the AutoAttack attacks only (the package's other name)",
    "scipy": "heavy (0.4 s for scipy.ndimage); a few metrics and the foolbox patch",
    "matplotlib": "heavy (0.5 s); plots only",
    "streamlit": "heavy (0.5 s); the dashboard only",
    "torch.distributed": "heavy (1.2 s); multi-process training only",
    "ray": "optional: the Ray sweep engine",
    "playwright": "optional (dev extra): the browser test and the cold-start benchmark",
    "torchattacks": "optional: a peer library for the benchmarks",
}
#: the modules that may import computed module names (``importlib.import_module``), and why
DYNAMIC_IMPORTERS = {
    "lab/core/registry.py": "finds every module of its package and the plug-ins' entry points",
    "lab/cli/__init__.py": "imports only the command that runs, from its COMMANDS table (lab --help stays fast)",
    "lab/dashboard/warm.py": "imports the first page's modules in a thread while the dashboard's server starts",
}
MAX_LINES = 300
LONG_BECAUSE = re.compile(r"^\s*Long because\s+\S+(\s+\S+){2,}", re.MULTILINE)
_PRAGMAS = re.compile(
    r"noqa(:\s*[A-Z]+[0-9]+(\s*,\s*[A-Z]+[0-9]+)*)?|type:\s*ignore(\[[^\]]*\])?|fmt:\s*\w+|pragma:\s*no\s*cover"
    r"|pylint:\s*\S+|nosec|isort:\s*\w+",
    re.IGNORECASE,
)

#: the layers of DESIGN.md, top first, as the layers contract must state them
LAYERS = [
    "lab.cli | lab.dashboard",
    "lab.present",
    "(lab.experiments)",
    "lab.runs",
    "lab.training | lab.evaluation",
    "defenses | explain",
    "attacks",
    "lab.data | lab.models",
    "lab.core",
]


def python_files() -> Iterator[Path]:
    for entry in SCANNED:
        path = ROOT / entry
        if path.is_file():
            yield path
        else:
            yield from sorted(p for p in path.rglob("*.py") if "__pycache__" not in p.parts)


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


# ---------------------------------------------------------------- (a) the contracts


def lint_imports_command() -> list[str]:
    exe = Path(sys.executable).with_name("lint-imports")
    found = str(exe) if exe.exists() else shutil.which("lint-imports")
    if found is None:
        pytest.fail("import-linter is not installed (it is in the dev extra: pip install -e '.[dev]')")
    return [found, "--no-cache", "--no-logo", str(ROOT / "pyproject.toml")]  # import-linter >= 2.17


def test_import_contracts_hold() -> None:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    proc = subprocess.run(lint_imports_command(), cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    if proc.returncode != 0:
        pytest.fail("import-linter found broken contracts:\n" + out[out.find("Contracts") :], pytrace=False)


def test_contracts_state_the_design() -> None:
    """The contracts are the design's, not a weakened copy: every package analysed, the
    layers in DESIGN.md's order, streamlit forbidden, cycles looked for in every package."""
    conf = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    assert sorted(conf["root_packages"]) == sorted(PACKAGES)
    assert conf.get("include_external_packages") is True  # else external forbidden modules are not checked
    by_type: dict[str, list[dict[str, object]]] = {}
    for c in conf["contracts"]:
        by_type.setdefault(c["type"], []).append(c)
    (layers,) = by_type["layers"]
    assert layers["layers"] == LAYERS and not layers.get("ignore_imports")
    forbidden = by_type["forbidden"]
    assert not any(c.get("ignore_imports") or c.get("allow_indirect_imports") for c in forbidden)
    banned = {(s, f) for c in forbidden for s in c["source_modules"] for f in c["forbidden_modules"]}  # type: ignore[attr-defined]
    for source in ("attacks", "explain"):
        for target in ("defenses", "lab.training", "lab.evaluation", "lab.runs", "lab.present", "lab.cli",
                       "lab.dashboard", "streamlit"):  # fmt: skip
            assert (source, target) in banned, (source, target)
    for target in ("lab.training", "lab.evaluation", "lab.runs", "lab.present", "lab.cli", "lab.dashboard"):
        assert ("defenses", target) in banned, target
    below_dashboard = [m for layer in LAYERS[1:] for m in re.split(r"\s*\|\s*", layer.strip("()"))]
    for source in [*below_dashboard, "lab.cli"]:
        assert source == "lab.experiments" or (source, "streamlit") in banned, source
    (acyclic,) = by_type["acyclic_siblings"]
    assert sorted(acyclic["ancestors"]) == sorted(PACKAGES) and not acyclic.get("skip_descendants")  # type: ignore[arg-type]


# ---------------------------------------------------------------- (b) imports inside functions


def comments_by_line(source: str) -> dict[int, str]:
    """Line number -> the reason a comment on that line gives (pragmas such as noqa removed)."""
    out: dict[int, str] = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            text = _PRAGMAS.sub(" ", tok.string.lstrip("#"))
            out[tok.start[0]] = " ".join(re.sub(r"[#:\-]+", " ", text).split())
    return out


def lazy_ok(module: str) -> bool:
    return any(module == ok or module.startswith(ok + ".") for ok in LAZY_OK)


def imported_modules(node: ast.Import | ast.ImportFrom) -> list[str]:
    """The modules an import statement names (``from a import b`` -> ``a.b``, which is ``a``'s
    attribute or submodule; relative imports keep their dots, so they are never allowed)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    base = "." * node.level + (node.module or "")
    if node.level or lazy_ok(base):
        return [base]
    return [f"{base}.{a.name}" for a in node.names]


def function_imports(tree: ast.AST) -> Iterator[tuple[str, ast.Import | ast.ImportFrom]]:
    """(function name, import statement) for every import inside a function (or a function
    nested in one), at any depth of its body."""
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for stmt in fn.body:
                for node in ast.walk(stmt):
                    if isinstance(node, (ast.Import, ast.ImportFrom)) and not _in_nested_function(stmt, node):
                        yield fn.name, node


def _in_nested_function(stmt: ast.stmt, node: ast.AST) -> bool:
    """Whether ``node`` sits in a function defined inside ``stmt`` (it is reported for that one)."""
    for inner in ast.walk(stmt):
        if isinstance(inner, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)) and inner is not node:
            if any(n is node for n in ast.walk(inner)):
                return True
    return False


def dynamic_imports(tree: ast.AST) -> Iterator[tuple[int, str | None]]:
    """(line, module name or None when computed) of ``importlib.import_module(...)`` and
    ``__import__(...)`` calls; an f-string gives its literal head (``f"foolbox.{x}"`` -> ``foolbox.``)."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        f = node.func
        name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
        if name not in ("import_module", "__import__"):
            continue
        arg = node.args[0]
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            yield node.lineno, arg.value
        elif isinstance(arg, ast.JoinedStr) and arg.values and isinstance(arg.values[0], ast.Constant):
            head = str(arg.values[0].value)
            yield node.lineno, head.rstrip(".") if "." in head else None
        else:
            yield node.lineno, None


def lazy_import_problems(path: Path) -> list[str]:
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source, filename=str(path))
    comments = comments_by_line(source)
    found = sorted(function_imports(tree), key=lambda t: t[1].lineno)
    problems: list[str] = []
    run_start: dict[int, int] = {}  # an import's line -> the first line of its run of consecutive imports
    prev: ast.stmt | None = None
    for _, node in found:
        joined = (
            prev is not None
            and node.lineno == (prev.end_lineno or prev.lineno) + 1
            and node.col_offset == prev.col_offset
        )
        run_start[node.lineno] = run_start[prev.lineno] if joined and prev is not None else node.lineno
        prev = node
    for fn, node in found:
        where = f"{rel(path)}:{node.lineno}: `{ast.unparse(node)}` inside {fn}()"
        bad = [m for m in imported_modules(node) if not lazy_ok(m)]
        if bad:
            problems.append(f"{where}: {', '.join(bad)} is neither optional nor heavy")
            continue
        start = run_start[node.lineno]
        lines = range(start - 1, (node.end_lineno or node.lineno) + 1)
        if not any(len(comments.get(i, "").split()) >= 2 for i in lines):
            problems.append(f"{where}: say why it is imported here, in a comment on its line or the line above")
    if rel(path) not in DYNAMIC_IMPORTERS:
        for line, module in dynamic_imports(tree):
            if module is None or not lazy_ok(module):
                problems.append(f"{rel(path)}:{line}: a dynamic import of {module or 'a computed name'}; only "
                                f"{', '.join(sorted(DYNAMIC_IMPORTERS))} import computed names (DYNAMIC_IMPORTERS)")  # fmt: skip
    return problems


def test_imports_inside_functions_are_optional_heavy_packages_with_a_reason() -> None:
    problems = [p for path in python_files() for p in lazy_import_problems(path)]
    assert not problems, (
        f"{len(problems)} import(s) inside functions. Import the lab's modules, torch and numpy at the top of the "
        "module (a cycle that this closes is a layering bug to fix, not to hide); an optional or heavy package "
        "(LAZY_OK) may wait, with a comment saying why:\n" + "\n".join(problems)
    )


def test_the_lazy_import_checker_itself(tmp_path: Path) -> None:
    """What the checker accepts and refuses, on a file written here."""
    src = tmp_path / "m.py"
    src.write_text(
        "import torch\n"
        "def ok():\n"
        "    # plots only: matplotlib is heavy to import\n"
        "    import matplotlib\n"
        "    import matplotlib.figure\n"
        "    from captum.attr import Saliency  # heavy: only this method needs it\n"
        "def no_reason():\n"
        "    import foolbox  # noqa: F401\n"
        "def own_module():\n"
        "    from lab.core import errors  # cycle\n"
        "def relative():\n"
        "    from . import x  # because\n"
        "def numpy():\n"
        "    import numpy as np  # is it heavy? no\n"
        "def dynamic(name):\n"
        "    import importlib  # heavy? no, but stdlib\n"
        "    return importlib.import_module(f'lab.{name}')\n"
    )
    global ROOT
    old, ROOT = ROOT, tmp_path
    try:
        problems = lazy_import_problems(src)
    finally:
        ROOT = old
    text = "\n".join(problems)
    assert "inside ok()" not in text
    assert "m.py:8:" in text and "say why" in text  # a pragma is no reason
    for line, fn in ((10, "own_module"), (12, "relative"), (14, "numpy"), (16, "dynamic")):
        assert f"m.py:{line}:" in text and f"inside {fn}()" in text and "neither optional nor heavy" in text
    assert "m.py:17: a dynamic import" in text
    assert len(problems) == 6, text


# ---------------------------------------------------------------- (c) long files


def test_no_long_file_in_lab_without_a_reason() -> None:
    long = []
    for path in sorted((ROOT / "lab").rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        n = len(source.splitlines())
        if n <= MAX_LINES:
            continue
        doc = ast.get_docstring(ast.parse(source)) or ""
        if not LONG_BECAUSE.search(doc):
            long.append(f"{rel(path)}: {n} lines")
    assert not long, (
        f"files in lab/ over {MAX_LINES} lines: split them by job, or give the reason in the module docstring "
        "(a line starting 'Long because ...'):\n" + "\n".join(long)
    )


def test_every_package_folder_is_a_tracked_regular_package() -> None:
    """A folder of modules without a tracked ``__init__.py`` (an ignore pattern once hid
    ``lab/runs/__init__.py``) imports as a namespace package, which import-linter cannot see
    as a layer; a fresh clone must hold every ``__init__.py``."""
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: nothing is tracked")
    tracked = set(subprocess.run(["git", "ls-files", *PACKAGES], cwd=ROOT, capture_output=True, text=True,
                                 check=True).stdout.split())  # fmt: skip
    folders = {Path(f).parent for f in tracked if f.endswith(".py")}
    missing = sorted(str(d / "__init__.py") for d in folders if str(d / "__init__.py") not in tracked)
    assert not missing, f"package folders without a tracked __init__.py: {missing}"
