"""The named attack suites ``lab eval --suite`` runs, cheapest attack first.

* ``quick``: FGSM and PGD-20, a smoke test (an upper bound only: weak attacks);
* ``standard``: adds PGD-100 with 10 restarts under the cross-entropy and the margin loss;
* ``extended``: FGSM, PGD-20 and PGD-100 (margin), no restarts: the defended models' table,
  where every threat row runs every attack;
* ``autoattack``: the official AutoAttack, standard version (Croce & Hein 2020), the reference;
* ``autoattack-fast``: AutoAttack's standard attacks less FAB-T, on the lab's own loop: APGD-CE
  and APGD-T (targeted DLR, 9 targets) re-implemented in :mod:`attacks.lab_apgd` (active set,
  batched targets, low-precision steering confirmed in fp32), then the official Square (5,000
  queries, AutoAttack's schedule, its queries to a TorchScript inference copy of the model where
  one answers like it: :mod:`lab.models.frozen`) on what survives. Its report names each attack for what it
  is; ``benchmarks/autoattack_fast.py`` measures its agreement with ``autoattack``.
"""

from __future__ import annotations

from lab.core.errors import LabError
from lab.evaluation.engine import AttackSpec

SUITES: dict[str, list[AttackSpec]] = {
    "quick": [AttackSpec("fgsm"), AttackSpec("pgd", {"steps": 20})],
    "standard": [
        AttackSpec("fgsm"),
        AttackSpec("pgd", {"steps": 20}),
        AttackSpec("pgd", {"steps": 100, "restarts": 10, "loss": "ce"}),
        AttackSpec("pgd", {"steps": 100, "restarts": 10, "loss": "margin"}),
    ],
    # One PGD per loss, no restarts: the defended models' table (every threat row runs it).
    "extended": [
        AttackSpec("fgsm"),
        AttackSpec("pgd", {"steps": 20}),
        AttackSpec("pgd", {"steps": 100, "loss": "margin"}),
    ],
    "autoattack": [AttackSpec("autoattack", {"version": "standard"}, label="autoattack (standard)")],
    "autoattack-fast": [
        AttackSpec("lab_apgd", {"loss": "ce"}, label="APGD-CE (lab)"),
        AttackSpec("lab_apgd", {"loss": "dlr", "targets": 9}, label="APGD-T (lab, 9 targets)"),
        AttackSpec("square", {"n_queries": 5000, "rescale_schedule": False, "chunk": 250, "fast_forward": True},
                   label="Square-5000 (official)"),
    ],
}


def suite_specs(name: str) -> list[AttackSpec]:
    """A copy of suite ``name``'s attack specs; LabError naming the suites for an unknown one."""
    if name not in SUITES:
        raise LabError(f"unknown suite {name!r}; choose one of: {', '.join(SUITES)}")
    return list(SUITES[name])
