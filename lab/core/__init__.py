"""The bottom layer: what every other part of the lab stands on.

``errors`` (the one-sentence :class:`LabError` family), ``registry`` (methods by name, and
plug-ins found through entry points), ``io`` (atomic writes, file hashes), ``runtime``
(device, precision, seeding), ``epsilon`` (threat-model radii: parsing, defaults, range
checks) and ``settings`` (one coercer for a method's keyword-only settings, shared by TOML,
the CLI and the dashboard). Nothing here imports another part of the lab.
"""
