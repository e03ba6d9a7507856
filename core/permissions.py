"""Files under the data directory are the operator's alone: 0600 files, 0700 directories.

Every ``genpon`` command starts with :func:`restrict_umask`, so whatever it creates (database and
its WAL, blobs, index, spool, keys) is private; ``genpon init`` reports what an older installation
left readable by others (:func:`loose_permissions`)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

PRIVATE_UMASK = 0o077
MAX_EXAMINED = 100_000


def restrict_umask() -> int:
    """Make new files 0600 and new directories 0700; returns the previous umask."""
    return os.umask(PRIVATE_UMASK)


def loose_permissions(root: Path, *, limit: int = 20) -> list[tuple[Path, int]]:
    """Up to ``limit`` paths under ``root`` (itself included) that the group or others may
    access, with their modes. Symbolic links are not followed; at most :data:`MAX_EXAMINED`
    entries are examined, so a very large blob store does not stall ``init``."""
    found: list[tuple[Path, int]] = []
    examined = 0

    def check(path: Path) -> bool:
        nonlocal examined
        examined += 1
        try:
            st = path.lstat()
        except OSError:
            return True
        if not stat.S_ISLNK(st.st_mode) and stat.S_IMODE(st.st_mode) & 0o077:
            found.append((path, stat.S_IMODE(st.st_mode)))
        return len(found) < limit and examined < MAX_EXAMINED

    if not root.exists() or not check(root):
        return found
    for dirpath, dirnames, filenames in os.walk(root):
        for name in (*dirnames, *filenames):
            if not check(Path(dirpath) / name):
                return found
    return found
