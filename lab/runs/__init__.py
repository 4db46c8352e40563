"""Runs: what one CLI command or one dashboard page asks for, as plain functions.

``evaluate`` (a checkpoint under a suite, with its report), ``attack`` (one attack on a few
images), ``explain`` (attribution maps, optionally of adversarial images), ``playground``
(the dashboard's live attack/defense/explanation step), ``samples`` (test images or user
files as tensors). Results are dataclasses; ``lab.present`` renders and writes them.
"""
