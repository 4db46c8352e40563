"""Defenses: adversarial-training recipes (``loss(model, x, y)``) and denoisers or input
transforms that wrap a model into a new model. Filled by the defenses issue."""
