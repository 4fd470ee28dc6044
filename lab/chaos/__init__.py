"""``meridian chaos``: faults injected into a running cluster, and scenarios that check what survives.

Modules, one job each:

* ``scenario``  the YAML scenario format: parsing, validation, time scaling,
                and the seeded plan (which fault fires when, at whom);
* ``faults``    every fault kind, how to inject and revert it, ``faults.jsonl``;
* ``targets``   what faults act on: a running ``meridian up`` (``--cluster-dir``),
                the Docker lab (``--lab``), or a ``meridian up`` of chaos's own;
* ``sampler``   replication lag and backlog sampled every second (``lag.jsonl``);
* ``timeline``  carries out a plan on a clock (virtual in tests);
* ``checks``    what must hold after a run (``checks.json``);
* ``runner``    one scenario run end to end (``run.json``, summary table);
* ``cli``       the ``meridian chaos ...`` command line.
"""
