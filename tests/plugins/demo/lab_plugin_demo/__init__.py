"""A plug-in distribution for the lab: an attack, an explainer and a model, one file each,
registered through the entry points of its pyproject.toml (a test fixture)."""
