"""The LiteRT cache: each explainer converted once, checked, kept, timed and pruned.

One file per key, a digest of everything that determines the file (weights, architecture, layer,
method and its settings, input size, labels, maps per call, stream_cam's, TensorFlow's and Keras'
versions). A new entry is checked against the engine on a real photo before it is used (the check
``stream-cam export`` makes); each entry's record holds the file's SHA-256 and is signed with this
user's secret, so a damaged, truncated or foreign file is rebuilt, never trusted. Entries are
written under a temporary name and renamed into place (atomic), and made under a file lock: two
processes wanting the same entry convert it once, the second one reads it. Each new entry prunes
the cache: entries unused for 60 days go, then the least recently used ones while it holds over
2 GiB, and conversions whose maker is gone.

The folder is this user's alone (0700, files 0600, made with O_EXCL | O_NOFOLLOW, never through a
link; :mod:`.cache_files`). A cache that cannot be used raises OSError naming the file, and
:func:`.runtime.choose_runtime` runs TensorFlow with one warning.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from .. import __version__
from ..errors import ModelError
from .cache_files import (MAX_RECORD_BYTES, UnsafeCacheError, is_regular, pid_alive, private_folder,
                          read_regular, remove, signature, signed_by, user_secret, write_new)
from .gradcam import CAM
from .litert import LiteRTExplainer
from .speed import TIMED_BATCHES, Speeds, measure, speed_key

log = logging.getLogger(__name__)

MAX_CACHE_BYTES = 2 << 30  # beyond 2 GiB the least recently used entries go (ResNet50's is 100 MB)
MAX_AGE_DAYS = 60.0  # entries unused this long go
MAX_MAP_DIFFERENCE = 1e-3  # a converted explainer further than this from the engine is not used


class LiteRTCache:
    """Converted explainers on disk, keyed by what determines them (see the module's docstring).

    ``check_image``: the real photo (uint8 RGB) a new entry is compared with the engine on;
    ``announce``: where the one-time "preparing a faster runtime" lines go (the user's terminal)."""

    def __init__(self, folder: Path, check_image: np.ndarray, announce: Callable[[str], None] | None = None,
                 max_bytes: int = MAX_CACHE_BYTES, max_age_days: float = MAX_AGE_DAYS) -> None:
        self.folder = Path(folder) / "litert"
        self.check_image = check_image
        self.announce = announce or log.info
        self.max_bytes, self.max_age_days = max_bytes, max_age_days
        self._secret = b""  # this user's signing secret, read when the cache is first used

    # -- the key ------------------------------------------------------------------------------
    def key(self, cam: CAM, maps: int) -> str:
        """A digest of the model's weights and architecture, the layer, the method and its settings,
        the input size and scaling, the labels, ``maps`` and the versions that shape the file."""
        import keras
        import tensorflow as tf

        from .export import FORMAT_VERSION

        model = cam.model
        digest = hashlib.blake2b(digest_size=20)
        about = {"format": FORMAT_VERSION, "stream_cam": __version__, "tensorflow": tf.__version__,
                 "keras": keras.__version__, "method": cam.method_name, "class": type(cam).__name__,
                 "layer": model.layer_name, "input_size": list(model.input_size), "scaling": model.scaling,
                 "labels": list(model.labels), "maps": maps,
                 "max_channels": getattr(cam, "max_channels", None),
                 "architecture": _architecture(model.keras_model)}
        digest.update(json.dumps(about, sort_keys=True, default=str).encode())
        for weight in model.keras_model.weights:
            value = np.ascontiguousarray(weight.numpy())
            digest.update(f"{weight.path}{value.shape}{value.dtype}".encode())
            digest.update(value.tobytes())
        return digest.hexdigest()

    # -- an entry -----------------------------------------------------------------------------
    def explainer(self, cam: CAM, maps: int = 1, threads: int | None = None) -> LiteRTExplainer:
        """``cam`` on LiteRT: from the cache, or converted, checked and cached now (once)."""
        return self.entry(cam, maps, threads)[0]

    def entry(self, cam: CAM, maps: int = 1, threads: int | None = None) -> tuple[LiteRTExplainer, Path]:
        """:meth:`explainer`, and the path of its cache entry. Raises ModelError when LiteRT cannot run
        it, OSError (naming the file) when the cache cannot be used."""
        try:
            private_folder(self.folder)
        except FileExistsError as exc:  # a file where a parent folder should be
            raise UnsafeCacheError(f"{self.folder} cannot be made: {exc.filename} is not a folder") from exc
        self._secret = user_secret(self.folder)  # entries are trusted only when signed with it
        key = self.key(cam, maps)
        path = self.folder / f"{key}.tflite"
        found = self._open(path, cam, threads)
        if found is not None:
            return found, path
        with _locked(self.folder / f"{key}.lock"):
            found = self._open(path, cam, threads)  # another process may have made it meanwhile
            if found is None:
                self._make(cam, maps, path)
                self.prune(keep=path)  # the cache grows only here
                found = self._open(path, cam, threads)
        if found is None:
            raise ModelError(f"the LiteRT file just made in {self.folder} cannot be read back")
        return found, path

    # -- which runtime is faster ------------------------------------------------------------------
    def speeds(self, path: Path, cam: CAM, explainer: LiteRTExplainer, maps: int, batch: int,
               threads: int | None) -> Speeds:
        """Both runtimes' ms per frame at ``batch`` here: from the entry's record, or measured now (once,
        under the entry's lock, so two runs starting together do not time each other's load)."""
        sidecar = path.with_suffix(".json")
        key = speed_key(batch, threads)
        with contextlib.ExitStack() as held:
            try:
                held.enter_context(_locked(path.with_suffix(".lock")))
            except OSError as exc:  # a cache this user may read but not write (shared, read-only)
                log.warning("timing without the cache's lock: %s", exc)
            record = self._record(sidecar) or {}
            if not isinstance(record.get("speeds"), dict):  # none yet, or damaged: timed afresh
                record["speeds"] = {}
            known = record["speeds"].get(key)
            if known is not None:
                try:
                    return Speeds.from_json(batch, known)
                except ValueError as exc:
                    log.warning("measuring again: %s", exc)
            # The usual batches (1 and 8) are timed together with the one asked for: one wait, once.
            batches = sorted({batch} | {b for b in TIMED_BATCHES if speed_key(b, threads) not in record["speeds"]})
            self.announce(f"timing LiteRT against TensorFlow at batch {' and '.join(map(str, batches))} on this "
                          "machine, once ...")
            for each in batches:
                timed = measure(cam, explainer, self.check_image, each, maps)
                record["speeds"][speed_key(each, threads)] = timed.to_json()
                if each == batch:
                    speeds = timed
            self.announce(f"timed {speeds.describe()}: {speeds.faster_name} explains "
                          "(--runtime tensorflow|litert chooses yourself)")
            record["mac"] = signature(self._secret, record)
            try:
                _write_atomically(sidecar, json.dumps(record, indent=1))
            except OSError as exc:
                log.warning("the timing holds for this run only; it cannot be kept in %s: %s", sidecar, exc)
        return speeds

    def _open(self, path: Path, cam: CAM, threads: int | None) -> LiteRTExplainer | None:
        """The entry at ``path`` if it is whole and is ``cam``'s; None (and the entry removed) otherwise."""
        sidecar = path.with_suffix(".json")
        if not os.path.lexists(path):
            return None
        try:
            record = self._record(sidecar)
            if record is None:
                raise ModelError("its record is missing or damaged")
            if not signed_by(self._secret, record):
                raise ModelError("this user did not make it (its record is not signed with this user's secret)")
            if hashlib.sha256(read_regular(path)).hexdigest() != record.get("sha256"):
                raise ModelError("its SHA-256 does not match the one recorded when it was made")
            explainer = LiteRTExplainer(path, threads, source=cam)
            if (explainer.method_name, explainer.model.layer_name) != (cam.method_name, cam.model.layer_name):
                raise ModelError("it holds another method or layer")
        except (OSError, ValueError, ModelError) as exc:
            log.warning("rebuilding the damaged LiteRT cache entry %s: %s", path.name, exc)
            for part in (path, sidecar):
                remove(part)  # raises PermissionError in a cache this user cannot write: TensorFlow then
            return None
        with contextlib.suppress(OSError):  # a read-only cache is still used, just never pruned
            os.utime(sidecar)  # its last use, for pruning
        return explainer

    def _record(self, sidecar: Path) -> dict | None:
        """An entry's record (a JSON table, a regular file), or None when missing or damaged."""
        try:
            record = json.loads(read_regular(sidecar, MAX_RECORD_BYTES))
        except (OSError, ValueError, UnicodeDecodeError, RecursionError):
            return None
        return record if isinstance(record, dict) else None

    def prune(self, keep: Path | None = None) -> list[str]:
        """Remove entries unused for ``max_age_days``, then the least recently used ones while the cache
        holds more than ``max_bytes`` (never ``keep``), and conversions abandoned a day ago. Returns the
        removed entries' names. A run using a removed file keeps it open (POSIX); a later run converts again."""
        now = time.time()
        entries, parts = [], 0
        for stray in self.folder.glob(".*.part"):  # a conversion's temporary file: .KEY.PID.part
            with contextlib.suppress(OSError, ValueError):
                maker = int(stray.name.rsplit(".", 2)[-2]) if stray.name.count(".") >= 3 else 0
                if not pid_alive(maker) or now - os.lstat(stray).st_mtime > 86400:
                    remove(stray)  # its maker was killed (or it is over a day old): nobody finishes it
                elif is_regular(stray):
                    parts += os.lstat(stray).st_size  # still being written: it counts
        for model in self.folder.glob("*.tflite"):
            if not is_regular(model):
                continue  # a folder or link with an entry's name is not an entry (it is rebuilt on use)
            sidecar = model.with_suffix(".json")
            with contextlib.suppress(OSError):
                used = os.lstat(sidecar).st_mtime if is_regular(sidecar) else os.lstat(model).st_mtime
                entries.append((used, os.lstat(model).st_size, model))
        entries.sort()  # least recently used first
        total, removed = sum(size for _, size, _ in entries) + parts, []
        for used, size, model in entries:
            if model == keep or (now - used < self.max_age_days * 86400 and total <= self.max_bytes):
                continue
            for part in (model, model.with_suffix(".json"), model.with_suffix(".lock")):
                remove(part)
            total -= size
            removed.append(model.name)
        if removed:
            log.info("pruned %d LiteRT cache entries (%s)", len(removed), ", ".join(removed))
        return removed

    def _make(self, cam: CAM, maps: int, path: Path) -> None:
        """Convert ``cam``, check it against the engine on the photo, and publish it atomically."""
        from .export import to_tflite

        self.announce(f"preparing a faster runtime (LiteRT) for {cam.model.name} / {cam.method_name}, once ...")
        start = time.perf_counter()
        blob = to_tflite(cam, "f32", maps)
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.part")
        remove(tmp)  # one left by an earlier run with this pid, or a link planted at the name
        remove(path)  # a damaged entry (or a folder, a link) with the entry's name
        try:
            write_new(tmp, blob)
            difference = self._check(cam, tmp)
            record = {"sha256": hashlib.sha256(blob).hexdigest(), "size": len(blob), "model": cam.model.name,
                      "method": cam.method_name, "layer": cam.model.layer_name, "maps": maps,
                      "max_map_difference": difference, "made": time.strftime("%Y-%m-%dT%H:%M:%S")}
            record["mac"] = signature(self._secret, record)
            _write_atomically(path.with_suffix(".json"), json.dumps(record, indent=1))
            os.replace(tmp, path)  # the file last: an entry is whole once its .tflite exists
        finally:
            tmp.unlink(missing_ok=True)
        self.announce(f"prepared the faster runtime in {time.perf_counter() - start:.1f} s "
                      f"(cached in {self.folder}; later runs start at once)")

    def _check(self, cam: CAM, path: Path) -> float:
        """The converted file against the engine on the photo: the same class, maps within the limit."""
        from .export import compare_with_engine

        top_engine, top_file, difference = compare_with_engine(cam, path, self.check_image)
        if top_engine != top_file or not difference <= MAX_MAP_DIFFERENCE:
            raise ModelError(f"the LiteRT form disagrees with the engine (class {top_file} vs {top_engine}, "
                             f"maps {difference:.2g} apart)")
        return difference


def _architecture(keras_model: Any) -> str:
    """The model's layers and their settings, as text (the weights are hashed on their own)."""
    try:
        return json.dumps(keras_model.get_config(), sort_keys=True, default=str)
    except (NotImplementedError, TypeError, ValueError):  # a model that cannot describe itself
        return ";".join(f"{layer.name}:{type(layer).__name__}" for layer in keras_model.layers)


def _write_atomically(path: Path, text: str) -> None:
    """``text`` into ``path`` whole or not at all (a temporary file renamed into place)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    remove(tmp)  # never written through a link planted at the name
    try:
        write_new(tmp, text.encode())
        if os.path.isdir(path) and not os.path.islink(path):
            remove(path)  # a folder where the record should be
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock between processes (POSIX ``flock``; elsewhere the atomic rename alone)."""
    try:
        import fcntl
    except ImportError:  # Windows: two runs may both convert; the rename keeps the entry whole
        yield
        return
    if os.path.lexists(path) and not is_regular(path):
        remove(path)  # a folder or a link where the lock should be: never followed
    fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0), 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # waits while another process converts the same entry
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
