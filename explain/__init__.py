"""Explanations: ``explain(model, x, target) -> maps`` per registered method (captum
where captum has it) and attention maps. Filled by the explanations issue."""
