"""Everything the lab's users touch: the Docker lab, load, chaos, demo, report.

Subpackages: ``chaos`` (``meridian chaos``: faults, scenarios, checks),
``load`` (``meridian load``: the workload generator and its history),
``demo`` (``meridian demo replication``: the live dashboard), ``report``
(``meridian report RUN_DIR``).  This package's own modules are ``meridian
lab``, the three-region Docker lab (``deploy/docker-compose.yml``), one job each:

    compose.py  names shared with the chaos and demo tools (project, services,
                containers, networks, endpoints) and how to run Compose
    dockerd.py  is Docker usable; start dockerd when it is not running
    source.py   the Meridian source checkout the lab builds from, and its hash
    image.py    the wheelhouse, the base image (pulled or debootstrapped), the image
    rootfs.py   a Debian root filesystem with debootstrap, for offline machines
    wait.py     wait until every region's router answers and its catalog works
    lock.py     one owner of the lab at a time (tests, scenarios)
    cli.py      ``meridian lab up|down|status|logs|build``
    probe.py    the containers' health checks (stdlib and the limits only, run inside the image)
    entrypoint.py  the image's entrypoint: a bare ``serve`` gets /data when a volume
                is mounted there, a scratch folder otherwise (stdlib only)
"""
