"""Free disk space and the one line every library says when a disk is full.

The store, the feature cache and the layer checkpoints all write to disks that can fill up;
each refuses or fails with the same sentence, ``no space left on <folder>: free N MB …``, so a
user can tell a full disk from a bug whatever was writing.
"""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

MB = 1 << 20


def free_bytes(path: Path | str) -> int | None:
    """Free bytes (for an unprivileged writer) on the file system that holds ``path``, or of its
    nearest existing parent; ``None`` when that cannot be asked."""
    here = Path(path).absolute()
    for folder in (here, *here.parents):
        if folder.exists():
            try:
                return shutil.disk_usage(folder).free
            except OSError:
                return None
    return None


def is_no_space(error: BaseException) -> bool:
    """Whether ``error`` (or what it was raised from) says the disk is full."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if "no space left" in str(seen).lower():
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def no_space_message(path: Path | str, *, needed: int | None = None, what: str = "") -> str:
    """``no space left on <path>: free N MB[, <what> needs about M MB]; free some space …``."""
    free = free_bytes(path)
    have = "free space unknown" if free is None else f"free {free / MB:.0f} MB"
    need = f", {what or 'this'} needs about {max(needed, MB) / MB:.0f} MB" if needed else ""
    return f"no space left on {path}: {have}{need}; free some space and run this again"


__all__ = ["MB", "free_bytes", "is_no_space", "no_space_message"]
