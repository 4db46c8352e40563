"""lab.dashboard.warm: the page's imports loaded in a thread, app.py waiting for them."""

from __future__ import annotations

import sys

from lab.dashboard import warm


def test_wait_returns_at_once_without_start() -> None:
    assert warm.wait(timeout=0)


def test_start_imports_the_modules_and_wait_blocks_until_done(monkeypatch) -> None:
    monkeypatch.delitem(sys.modules, "colorsys", raising=False)
    warm.start(("colorsys",)).join(10)
    assert warm.wait(timeout=0)
    assert "colorsys" in sys.modules


def test_a_failed_import_ends_the_wait_and_is_kept() -> None:
    before = len(warm._error)
    warm.start(("lab.no_such_module_here",)).join(10)
    assert warm.wait(timeout=0)
    assert len(warm._error) == before + 1 and isinstance(warm._error[-1], ImportError)
