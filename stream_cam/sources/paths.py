"""The one check every file input gets before it is opened: it exists, is a file, and holds bytes."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import InputError


def check_input_file(path: str | Path, kind: str) -> Path:
    """Raise InputError naming ``path`` unless it is a non-empty file; ``kind`` is 'an image', 'a video'..."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, not {kind}")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: the file is empty")
    if not os.access(path, os.R_OK):
        raise InputError(f"{path}: no permission to read it (check its mode and owner)")
    return path
