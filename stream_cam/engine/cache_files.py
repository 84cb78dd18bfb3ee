"""The LiteRT cache's file rules: a folder of this user's only, files made new and never through a
link, nothing opened that is not a regular file, and entries signed with a secret of this user's.

A cache folder may be shared (``STREAM_CAM_CACHE`` on a group-writable disk) or tampered with. So:
the folder must be a real folder owned by this user, and is made private (0700); every file in it
is created with ``O_EXCL | O_NOFOLLOW`` (0600), so a link planted at one of its names is refused,
never followed; reads use ``O_NOFOLLOW | O_NONBLOCK`` and check ``S_ISREG`` (a FIFO or a link to
``/dev/zero`` neither hangs nor fills memory); and an entry's record carries an HMAC keyed by a
random secret only this user can read, so a file another user put there is never used, whatever
digest its record claims.
"""

from __future__ import annotations

import errno
import hashlib
import hmac
import json
import os
import stat
from pathlib import Path
from typing import Any

SECRET_NAME = ".secret"  # 32 random bytes, 0600, in the cache folder
MAX_RECORD_BYTES = 1 << 20  # a record (sidecar) is a few hundred bytes; anything larger is damaged
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)


class UnsafeCacheError(OSError):
    """The cache folder or a file in it is not what it must be (not ours, a link, not a regular file)."""


def private_folder(folder: Path) -> Path:
    """``folder`` made (0700) or checked: a real folder (not a link) of this user's, private to them."""
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        os.mkdir(folder, 0o700)
    except FileExistsError:
        pass
    info = os.lstat(folder)
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise UnsafeCacheError(f"{folder} is {'a link' if stat.S_ISLNK(info.st_mode) else 'not a folder'}")
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        raise UnsafeCacheError(f"{folder} belongs to another user")
    if info.st_mode & 0o077:
        try:
            os.chmod(folder, 0o700)  # older versions made it 0755: others could read converted weights
        except OSError as exc:  # a read-only disk: still checked file by file
            if exc.errno != errno.EROFS:
                raise
    return folder


def write_new(path: Path, data: bytes) -> None:
    """Create ``path`` (0600) and write ``data``: refused if anything, a link too, has that name."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    except BaseException:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise
    os.close(fd)


def read_regular(path: Path, limit: int | None = None) -> bytes:
    """The bytes of ``path`` if it is a regular file (not a link, FIFO, device or folder) of at most
    ``limit`` bytes; UnsafeCacheError otherwise."""
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW | _NONBLOCK | _CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # O_NOFOLLOW met a link
            raise UnsafeCacheError(f"{path.name} is a link") from exc
        raise
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise UnsafeCacheError(f"{path.name} is not a regular file")
        if limit is not None and info.st_size > limit:
            raise UnsafeCacheError(f"{path.name} is {info.st_size} bytes, more than a record holds")
        return handle.read()


def is_regular(path: Path) -> bool:
    """Whether ``path`` is a regular file itself (a link to one is not)."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def remove(path: Path) -> None:
    """Remove whatever has this name in the (private) cache folder: a file, a link, a folder."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(info.st_mode):
        import shutil

        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def user_secret(folder: Path) -> bytes:
    """This user's signing secret for ``folder``'s entries, made on first use (0600, O_EXCL)."""
    path = folder / SECRET_NAME
    for _ in range(2):
        try:
            secret = read_regular(path, 64)
        except FileNotFoundError:
            try:
                write_new(path, os.urandom(32))
            except FileExistsError:
                pass  # another run made it meanwhile: read that one
            continue
        if len(secret) == 32 and (not hasattr(os, "getuid") or os.lstat(path).st_uid == os.getuid()):
            return secret
        raise UnsafeCacheError(f"{path} is not a secret this user made")
    raise UnsafeCacheError(f"{path} cannot be made")


def signature(secret: bytes, record: dict[str, Any]) -> str:
    """The HMAC-SHA256 of a record (everything but its ``mac``), as hex."""
    text = json.dumps({k: v for k, v in record.items() if k != "mac"}, sort_keys=True, default=str)
    return hmac.new(secret, text.encode(), hashlib.sha256).hexdigest()


def signed_by(secret: bytes, record: Any) -> bool:
    """Whether ``record`` is a table signed with ``secret`` (made by this user)."""
    return isinstance(record, dict) and isinstance(record.get("mac"), str) \
        and hmac.compare_digest(record["mac"], signature(secret, record))


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs here (a conversion's temporary file names its maker)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True
