"""Evaluation: the evaluator (``engine``: epsilon sweeps, active sets, threat rows, the
per-image worst case), suites, gradient-masking checks (``masking``), the report data
(``report``) and the CI gate (``gate``).

Reports are data; ``lab.present`` renders them. Nothing here loads checkpoints or reads
files the user names: ``lab.runs`` does that.
"""
