"""Write output files atomically and never over a user's file without permission."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError, OutputError


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# mkstemp makes 0600 files; outputs get the permissions any new file would get.
FILE_MODE = 0o666 & ~_current_umask()


def check_output_path(path: Path, overwrite: bool) -> Path:
    """Fail early, before any work, if ``path`` cannot or may not be written."""
    if path.is_dir():
        raise OutputError(f"{path} is a folder; give a file name")
    if path.exists() and not overwrite:
        raise OutputError(f"{path} already exists; pass --overwrite to replace it")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(f"cannot write {path}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise OutputError(f"cannot write {path}: folder {parent} is not writable")
    return path


def write_bytes_atomic(path: Path, data: bytes, overwrite: bool = False) -> Path:
    """Write to a temporary file beside ``path``, then move it into place.

    Without ``overwrite`` the final step is a hard link, which fails if ``path``
    appeared in the meantime: an existing file is never replaced.
    """
    check_output_path(path, overwrite)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.chmod(tmp, FILE_MODE)
            if overwrite:
                os.replace(tmp, path)
            else:
                _link_new(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    except FileExistsError as exc:
        raise OutputError(f"{path} already exists; pass --overwrite to replace it") from exc
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return path


def _link_new(tmp: str, path: Path) -> None:
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise
    except OSError:  # no hard links on this file system (FAT, some shares)
        if path.exists():
            raise FileExistsError(path) from None
        os.replace(tmp, path)


def write_image(path: Path, bgr: np.ndarray, overwrite: bool = False) -> Path:
    """Encode a BGR frame by the file's extension and write it atomically."""
    ext = path.suffix.lower() or ".png"
    try:
        ok, encoded = cv2.imencode(ext, bgr)
    except cv2.error as exc:
        raise InputError(f"cannot write {path}: unsupported image type {ext!r} (use .png or .jpg)") from exc
    if not ok:
        raise InputError(f"cannot write {path}: unsupported image type {ext!r} (use .png or .jpg)")
    return write_bytes_atomic(path, encoded.tobytes(), overwrite)
