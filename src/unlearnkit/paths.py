"""Output folders: checked before any work, so a bad ``--out`` fails fast and writes nothing."""

from __future__ import annotations

import os
from pathlib import Path

from unlearnkit.errors import OutputError


def check_writable(out: str | os.PathLike, *, option: str = "--out") -> Path:
    """Fail with one clear line unless ``out`` is, or can be created as, a writable folder.

    Nothing is created: the nearest existing ancestor is checked instead, so a bad
    input found later still leaves the disk as it was.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OutputError(
            f"cannot write to output folder {out}: it is an existing file; choose another {option}"
        )
    existing = next(p for p in (out, *out.parents) if p.exists() or p == p.parent)
    if not existing.is_dir():
        raise OutputError(
            f"cannot write to output folder {out}: {existing} is a file, not a folder; "
            f"choose another {option}"
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(
            f"cannot write to output folder {out}: {existing} is not writable; "
            f"choose another {option}"
        )
    return out
