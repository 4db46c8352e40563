"""Evaluation: the evaluator (``engine``: epsilon sweeps, active sets, threat rows, the
per-image worst case), suites, gradient-masking checks (``masking``), the report data
(``report``), the CI gate (``gate``), and the split of each attack call across the ranks
of a ``torchrun`` evaluation (``shards``).

Reports are data; ``lab.present`` renders them. Nothing here loads checkpoints or reads
files the user names: ``lab.runs`` does that.
"""
