"""User-facing errors.

A :class:`LabError` is a mistake the user can fix (a wrong path, an unknown name, a
corrupt file). Its message is one clear sentence; the CLI prints it and exits with
code 2, never a traceback.
"""

from __future__ import annotations


class LabError(Exception):
    """A user mistake or unusable input, reported as one sentence (CLI exit code 2)."""


class DataError(LabError):
    """A dataset cannot be found, read or verified."""


class CheckpointError(LabError):
    """A checkpoint is missing, truncated, corrupt, foreign or unsafe to load."""


class ConfigError(LabError):
    """A training recipe or a ``--set`` override is invalid."""
