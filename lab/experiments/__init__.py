"""Research experiments: sweeps over models, defenses, attacks, radii, seeds and explainers.

A sweep file (:mod:`lab.experiments.spec`) plans a graph of cells, each keyed by its
resolved settings, its data's fingerprint and the lab's version; the driver
(:mod:`lab.experiments.sweep`) runs the cells not yet done on an engine
(:mod:`lab.experiments.engines`: this process, worker processes, or Ray) and records each
finished cell in one transaction of the sweep's SQLite store (:mod:`lab.experiments.store`);
:mod:`lab.experiments.tables` aggregates the store over seeds; :mod:`lab.experiments.reproduce`
runs the published MNIST defenses against their papers' numbers.
"""
