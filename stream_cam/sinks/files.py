"""Write output files atomically and never over a user's file without permission."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Sequence, TextIO

import cv2
import numpy as np

from ..errors import InputError, OutputError, OutputExistsError


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# mkstemp makes 0600 files; outputs get the permissions any new file would get.
FILE_MODE = 0o666 & ~_current_umask()


# How many other names publishing tries (name-2 ... name-N) before it gives up: every loop is bounded.
MAX_FREE_NAMES = 10_000
MAX_PUBLISH_ATTEMPTS = 100


def occupied(path: Path) -> bool:
    """True if anything has this name: a file, a folder, or a symbolic link (even a dangling one).

    ``Path.exists()`` follows links, so a link to nowhere would look free while ``link()`` and
    ``open(..., "x")`` refuse it; every output check uses this instead."""
    return os.path.lexists(path)


def check_output_path(path: Path, overwrite: bool) -> Path:
    """Fail early, before any work, if ``path`` cannot or may not be written.

    A symbolic link counts as an existing file (whether or not its target exists); with
    ``--overwrite`` the link itself is replaced, never the file it points to."""
    if path.is_dir() and not path.is_symlink():
        raise OutputError(f"{path} is a folder; give a file name")
    if occupied(path) and not overwrite:
        what = "is a symbolic link" if path.is_symlink() else "already exists"
        raise OutputExistsError(f"{path} {what}; pass --overwrite to replace it")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(f"cannot write {path}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise OutputError(f"cannot write {path}: folder {parent} is not writable")
    return path


def same_file(a: Path | str, b: Path | str) -> bool:
    """Whether two names reach one file: the same file on disk (links, hard links, ``./x`` and
    ``../d/x`` alike), or, where either does not exist yet, the same resolved path."""
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return os.path.realpath(a) == os.path.realpath(b)


def check_not_input(outputs: Sequence[Path], inputs: Sequence[str | Path], flag: str = "-o") -> None:
    """Refuse an output that is one of the inputs, however it is spelt: writing it (even with
    ``--overwrite``) would replace the input with its own annotated copy."""
    for output in outputs:
        for spec in inputs:
            if os.path.lexists(spec) and same_file(output, spec):
                raise OutputError(f"{flag} {output} is the input {spec}; writing it would replace the input. "
                                  "Give another output name")


def check_folder(folder: Path) -> None:
    """The folder exists and is writable, or its nearest existing parent is."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise OutputError(f"cannot create output folder {folder}: {existing} is not a folder")
    if not os.access(existing, os.W_OK):
        raise OutputError(f"cannot write to {folder}: {existing} is not writable (read-only?); "
                          "choose another output folder")


def make_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create output folder {folder}: {exc.strerror or exc}; "
                          "choose another output folder") from exc


def temporary_path(path: Path) -> Path:
    """A new, empty file beside ``path`` with a name no other run can be using (hidden, ``.part``).

    Two runs writing the same output each get their own; :func:`publish` moves it into place."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".part{path.suffix}", dir=path.parent or ".")
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from exc
    os.close(fd)
    return Path(tmp)


def _link_new(tmp: Path, path: Path) -> bool:
    """Give ``tmp`` the name ``path`` only if no file has it: True on success, False if it exists."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        return False
    except OSError:  # no hard links on this file system (FAT, some shares): a small race remains
        if occupied(path):
            return False
        os.replace(tmp, path)
        return True
    tmp.unlink()
    return True


def publish(tmp: Path, path: Path, overwrite: bool, elsewhere: bool = False) -> Path:
    """Give the finished temporary file its final name; returns the name it got.

    Without ``overwrite`` nothing that exists is ever replaced: the step is a hard link, which fails
    if ``path`` appeared meanwhile (another run published it). Then, with ``elsewhere``, the result
    takes the next free name (``name-2.mp4``...); without, OutputExistsError says where it is."""
    try:
        os.chmod(tmp, FILE_MODE)
        if overwrite:
            os.replace(tmp, path)
            return path
        if _link_new(tmp, path):
            return path
        for _ in range(MAX_PUBLISH_ATTEMPTS if elsewhere else 0):
            candidate = next_free_path(path)
            if _link_new(tmp, candidate):
                return candidate
        raise OutputExistsError(f"{path} appeared while this run was writing it (or no free name was found "
                                f"beside it); nothing was replaced, and this run's result is in {tmp}")
    except OutputError:
        raise
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}; the result is in {tmp}") from exc


def next_free_path(path: Path) -> Path:
    """``path``, or ``name-2.ext``, ``name-3.ext``... whichever no file or link has yet."""
    if not occupied(path):
        return path
    for n in range(2, MAX_FREE_NAMES):
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
        if not occupied(candidate):
            return candidate
    raise OutputError(f"too many files named like {path}")


def open_published(path: Path, overwrite: bool) -> tuple[Path, TextIO]:
    """A text file that grows in place (a log): made under a temporary name, given its final name at
    once (so it can be followed while it grows), and written through the open handle.

    The rename replaces a link itself, never its target; without ``overwrite`` an existing name
    (a dangling link too) is refused, as :func:`publish` refuses it."""
    check_output_path(path, overwrite)
    tmp = temporary_path(path)
    try:
        handle = tmp.open("w", encoding="utf-8")
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from exc
    try:
        publish(tmp, path, overwrite)
    except OutputExistsError:
        handle.close()
        tmp.unlink(missing_ok=True)
        raise OutputExistsError(f"{path} already exists; pass --overwrite to replace it") from None
    except OutputError:
        handle.close()
        tmp.unlink(missing_ok=True)
        raise
    return path, handle


def write_bytes_atomic(path: Path, data: bytes, overwrite: bool = False, elsewhere: bool = False) -> Path:
    """Write to a temporary file beside ``path``, then :func:`publish` it: never half a file under
    the final name, and never over an existing file without ``overwrite``. ``elsewhere``: a name
    taken meanwhile (another run) gives the next free one (``name-2.png``); returns the name used."""
    if not elsewhere:
        check_output_path(path, overwrite)
    tmp = temporary_path(path)
    try:
        tmp.write_bytes(data)
        path = publish(tmp, path, overwrite, elsewhere)
    except OutputExistsError:
        raise OutputExistsError(f"{path} already exists; pass --overwrite to replace it") from None
    except OSError as exc:
        if isinstance(exc, OutputError):
            raise
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)
    return path


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
