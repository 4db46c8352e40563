"""The dashboard's first page run without its imports: they are loaded while the server starts.

A Streamlit page runs in the server's process, and its first run pays for the imports of
torch, captum, matplotlib and the lab (about 2.5 s of the Playground's first result on a
2-core CPU). :func:`start` (called by :mod:`lab.dashboard.server` before the server comes up)
imports the Playground page's modules in a background thread, while the server starts and
the browser loads the app; ``app.py`` calls :func:`wait` before anything else, so that a page
never imports a module that the thread is halfway through. Without :func:`start` (a plain
``streamlit run app.py``), :func:`wait` returns at once. Standard library only: importing this
module must not import what the thread imports.
"""

from __future__ import annotations

import importlib
import threading

#: what the thread imports: the default page (and through it torch, captum and the lab's API)
MODULES = ("lab.dashboard.pages.playground",)

_done = threading.Event()
_done.set()  # nothing to wait for unless start() runs
_error: list[BaseException] = []


def _warm(modules: tuple[str, ...]) -> None:
    try:
        for name in modules:
            importlib.import_module(name)
    except Exception as e:  # noqa: BLE001  # the page imports it again and shows the error itself
        _error.append(e)
    finally:
        _done.set()


def start(modules: tuple[str, ...] = MODULES) -> threading.Thread:
    """Import ``modules`` in a daemon thread; :func:`wait` blocks until it is done."""
    _done.clear()
    thread = threading.Thread(target=_warm, args=(modules,), name="lab-warm-imports", daemon=True)
    thread.start()
    return thread


def wait(timeout: float = 60.0) -> bool:
    """Block until :func:`start`'s imports are done (at once without it); False on timeout."""
    return _done.wait(timeout)
