"""Words about a model for the pages and the CLI: its defense, as its checkpoint records it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lab.runs.playground import defense_record


def defense_label(record: Mapping[str, Any] | None) -> str:
    """Short text for a model's defense: ``"pgd_at (eps 0.3)"``, ``"dae (denoiser)"``, ``"none"``.

    ``record``: a checkpoint record (``model.json``), or ``{"defense": ...}``.
    """
    d = defense_record(record)
    if d is None:
        return "none"
    settings = d.get("settings") or {}
    name = str(d.get("name"))
    if d.get("kind") in ("denoiser", "detector"):
        return f"{name} ({d['kind']})"
    eps = settings.get("eps")
    return f"{name} (eps {eps:g})" if isinstance(eps, (int, float)) else name
