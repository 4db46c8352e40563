"""Adversarial attacks, one per file, registered by name.

Contract (see DESIGN.md): an attack is configured in ``__init__`` (keyword-only) and
called as ``attack(model, x, y, *, target=None) -> x_adv`` on images in [0, 1]. The
attacks themselves arrive with the attacks-and-evaluation issue.
"""
