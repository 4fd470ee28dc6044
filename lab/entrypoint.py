"""The image's entrypoint: ``meridian ARGS``, with a data folder chosen for a bare ``serve``.

``docker run -p 8000:8000 IMAGE`` runs the image's default command,
``serve --host 0.0.0.0 --port 8000``, and behaves like DynamoDB Local's
container: the data outlives the container when a volume is mounted at
``/data``, and nothing outlives the run otherwise.  For a ``serve`` given
neither ``--data-dir`` nor ``--in-memory``:

* ``MERIDIAN_DATA=memory``: ``--in-memory`` (RocksDB in the container's
  ``/dev/shm``: RAM, but 64 MB unless ``docker run --shm-size`` says more);
* ``MERIDIAN_DATA=PATH``: ``--data-dir PATH``;
* a mount point at ``/data`` (a volume, a bind mount, a tmpfs: read from
  ``/proc/self/mountinfo``, so it is what the kernel says, not a guess):
  ``--data-dir /data``;
* otherwise ``--data-dir`` a scratch folder in the container's own file
  system, emptied at every start: the run's data is gone with the run, as
  with ``-inMemory``, without ``/dev/shm``'s 64 MB ceiling.  The scratch
  folder is never ``/data``: a mount this module failed to see loses nothing.

Every other command (the lab's nodes, routers and replicators pass their
own) goes to ``meridian`` unchanged.  This process then becomes
``meridian`` (``exec``), so it is the container's PID 1 and ``docker stop``'s
SIGTERM reaches the server.  Standard library only: it runs before every
container of the lab.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

DATA_ENV = "MERIDIAN_DATA"
IN_MEMORY = "memory"
VOLUME_DIR = "/data"
#: A run's data when no volume is mounted: in the container's writable layer, emptied at start.
SCRATCH_DIR = "/tmp/meridian-run"
MOUNTINFO = Path("/proc/self/mountinfo")
MERIDIAN = "meridian"


def command_word(args: list[str]) -> str | None:
    """The subcommand ``args`` names, skipping the global ``--log-level VALUE`` (as ``meridian`` does)."""
    words = iter(args)
    for word in words:
        if word == "--log-level":
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


def is_mount_point(path: str, mountinfo: str) -> bool:
    """Whether ``path`` is a mount point in ``mountinfo`` (``/proc/self/mountinfo``'s text).

    The fifth field of each line is the mount point, with spaces, tabs,
    newlines and backslashes written as octal escapes.
    """
    for line in mountinfo.splitlines():
        fields = line.split(" ")
        if len(fields) > 4 and _unescape(fields[4]) == path:
            return True
    return False


def _unescape(field: str) -> str:
    for escaped, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(escaped, char)
    return field


def data_choice(args: list[str], env: dict[str, str], mountinfo: str) -> tuple[list[str], str]:
    """The ``serve`` flags to add to ``args`` (none when it says where its data goes), and why, in words."""
    if command_word(args) != "serve":
        return [], ""
    for arg in args:
        if arg == "--in-memory" or arg == "--data-dir" or arg.startswith("--data-dir="):
            return [], ""
    chosen = env.get(DATA_ENV, "").strip()
    if chosen == IN_MEMORY:
        return ["--in-memory"], f"in memory ({DATA_ENV}={IN_MEMORY}; /dev/shm's size caps it: docker run --shm-size)"
    if chosen:
        return ["--data-dir", chosen], f"in {chosen} ({DATA_ENV})"
    if is_mount_point(VOLUME_DIR, mountinfo):
        return ["--data-dir", VOLUME_DIR], f"in {VOLUME_DIR} (a mounted volume: it outlives the container)"
    return ["--data-dir", SCRATCH_DIR], (
        f"for this run only (no volume at {VOLUME_DIR}: `docker run -v meridian-data:{VOLUME_DIR} ...` keeps it)"
    )


def main(args: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if args is None else args)
    try:
        mountinfo = MOUNTINFO.read_text()
    except OSError:
        mountinfo = ""
    extra, why = data_choice(args, dict(os.environ), mountinfo)
    if extra[:2] == ["--data-dir", SCRATCH_DIR]:
        shutil.rmtree(SCRATCH_DIR, ignore_errors=True)
    if why:
        print(f"meridian container: data {why}", flush=True)
    os.execvp(MERIDIAN, [MERIDIAN, *args, *extra])


if __name__ == "__main__":
    main()
