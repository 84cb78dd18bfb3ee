"""Which runtime explains the frames (``--runtime``): the TensorFlow engine, or the same explainer
converted once for LiteRT (XNNPACK), which on a CPU is 1.4-3.9x faster (README, "Speed").

``auto``: LiteRT on a CPU for a CNN whose method LiteRT can run; TensorFlow on a GPU, with XLA,
for transformers, and when the conversion fails (said once, and the run goes on). ``litert``:
LiteRT or a clear error. ``tensorflow``: the engine as built.

The conversion is cached (:class:`LiteRTCache`, ``~/.cache/stream_cam/litert``): one file per
key, a digest of everything that determines the file (weights, architecture, layer, method and
its settings, input size, labels, maps per call, stream_cam's, TensorFlow's and Keras' versions).
A new entry is checked against the engine on a real photo before it is used (the check
``stream-cam export`` makes); each entry's sidecar records the file's SHA-256, so a damaged,
truncated or foreign file is rebuilt, never trusted. Entries are written under a temporary name
and renamed into place (atomic), and made under a file lock: two processes wanting the same
entry convert it once, the second one reads it. Each new entry prunes the cache: entries unused for
60 days go, then the least recently used ones while it holds over 2 GiB.

``auto`` also times the two at the job's batch size on this machine, once (:mod:`.speed`): a video
job calls TensorFlow with batches of 8, where it can be the faster one (ResNet50 on 2 cores). The
figures are kept in the entry's record, so later runs choose at once.

LiteRT's threads: every core (``os.cpu_count()``, the interpreter's default here). Measured on 2
cores, 2 threads beat 1 in live mode too, beside the display and capture threads (Lite0: 10.3 vs
14.9 ms per heatmap, the same CPU per shown frame; README, "Runtimes").
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
from ..defaults import cache_folder as default_cache_folder
from ..errors import ModelError
from ..models.preprocessing import SCALINGS
from .explainer import Explains
from .gradcam import CAM
from .litert import LiteRTExplainer
from .registry import METHOD_INFO, RUNTIMES
from .speed import TIMED_BATCHES, Speeds, measure, speed_key

log = logging.getLogger(__name__)

MAX_CACHE_BYTES = 2 << 30  # beyond 2 GiB the least recently used entries go (ResNet50's is 100 MB)
MAX_AGE_DAYS = 60.0  # entries unused this long go
MAX_MAP_DIFFERENCE = 1e-3  # a converted explainer further than this from the engine is not used


def gpu_visible() -> bool:
    import tensorflow as tf

    return bool(tf.config.get_visible_devices("GPU"))  # --device cpu hides them


def why_not_litert(cam: CAM) -> str:
    """Why ``auto`` keeps the TensorFlow engine for ``cam`` ("" when LiteRT should run it)."""
    if not METHOD_INFO[cam.method_name].exportable:
        return f"LiteRT has no form of {cam.method_name} (it needs an SVD)"
    if cam.jit_compile:
        return "--xla compiles the TensorFlow engine"
    if cam.model.scaling not in SCALINGS:
        return "the model's input is scaled by a Python function (preprocess=), which a file cannot hold"
    if cam.model.is_transformer:
        return "a transformer is explained by TensorFlow unless --runtime litert is given"
    if gpu_visible():
        return "a GPU is visible"
    return ""


def choose_runtime(cam: CAM, runtime: str, cache: LiteRTCache, maps: int = 1,
                   threads: int | None = None, batch: int = 1) -> Explains:
    """The explainer that runs ``cam``'s explanations under ``runtime`` (``auto``, ``tensorflow``, ``litert``).

    ``maps``: how many classes' maps the jobs ask for per frame (top-k in one call); ``batch``: the
    frames per engine call (video: ``--batch``), at which ``auto`` runs whichever measured faster."""
    if runtime not in RUNTIMES:
        raise ModelError(f"--runtime {runtime}: choose one of {', '.join(RUNTIMES)}")
    if runtime == "tensorflow":
        return cam
    if runtime == "auto":
        reason = why_not_litert(cam)
        if reason:
            log.info("runtime: TensorFlow (%s)", reason)
            return cam
    elif not METHOD_INFO[cam.method_name].exportable:
        raise ModelError(f"--runtime litert: LiteRT has no form of {cam.method_name} (it needs an SVD); "
                         "use another --method or --runtime tensorflow")
    try:
        explainer, path = cache.entry(cam, maps, threads)
    except ModelError as exc:
        if runtime == "litert":
            raise
        log.warning("LiteRT cannot run this explainer, so TensorFlow does: %s", exc)
        return cam
    if runtime == "auto":
        speeds = cache.speeds(path, cam, explainer, maps, batch, threads)
        if speeds.faster == "tensorflow":
            log.info("runtime: TensorFlow (%s)", speeds.describe())
            return cam
    explainer.convert = lambda other: choose_runtime(other, "auto", cache, maps, threads, batch)
    return explainer


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
        """:meth:`explainer`, and the path of its cache entry."""
        self.folder.mkdir(parents=True, exist_ok=True)
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
            record = json.loads(sidecar.read_text())
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
            try:
                _write_atomically(sidecar, json.dumps(record, indent=1))
            except OSError as exc:
                log.warning("the timing holds for this run only; it cannot be kept in %s: %s", sidecar, exc)
        return speeds

    def _open(self, path: Path, cam: CAM, threads: int | None) -> LiteRTExplainer | None:
        """The entry at ``path`` if it is whole and is ``cam``'s; None (and the entry removed) otherwise."""
        sidecar = path.with_suffix(".json")
        if not path.exists() or not sidecar.exists():
            return None
        try:
            record = json.loads(sidecar.read_text())
            if _sha256(path) != record.get("sha256"):
                raise ModelError("its SHA-256 does not match the one recorded when it was made")
            explainer = LiteRTExplainer(path, threads, source=cam)
            if (explainer.method_name, explainer.model.layer_name) != (cam.method_name, cam.model.layer_name):
                raise ModelError("it holds another method or layer")
        except (OSError, ValueError, ModelError) as exc:
            log.warning("rebuilding the damaged LiteRT cache entry %s: %s", path.name, exc)
            path.unlink(missing_ok=True)
            sidecar.unlink(missing_ok=True)
            return None
        with contextlib.suppress(OSError):  # a read-only cache is still used, just never pruned
            os.utime(sidecar)  # its last use, for pruning
        return explainer

    def prune(self, keep: Path | None = None) -> list[str]:
        """Remove entries unused for ``max_age_days``, then the least recently used ones while the cache
        holds more than ``max_bytes`` (never ``keep``), and conversions abandoned a day ago. Returns the
        removed entries' names. A run using a removed file keeps it open (POSIX); a later run converts again."""
        now = time.time()
        entries = []
        for model in self.folder.glob("*.tflite"):
            sidecar = model.with_suffix(".json")
            with contextlib.suppress(OSError):
                used = sidecar.stat().st_mtime if sidecar.exists() else model.stat().st_mtime
                entries.append((used, model.stat().st_size, model))
        entries.sort()  # least recently used first
        total, removed = sum(size for _, size, _ in entries), []
        for used, size, model in entries:
            if model == keep or (now - used < self.max_age_days * 86400 and total <= self.max_bytes):
                continue
            for part in (model, model.with_suffix(".json"), model.with_suffix(".lock")):
                part.unlink(missing_ok=True)
            total -= size
            removed.append(model.name)
        for stray in self.folder.glob(".*.part"):  # left by a conversion that was killed
            with contextlib.suppress(OSError):
                if now - stray.stat().st_mtime > 86400:
                    stray.unlink()
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
        try:
            tmp.write_bytes(blob)
            difference = self._check(cam, tmp)
            record = {"sha256": hashlib.sha256(blob).hexdigest(), "size": len(blob), "model": cam.model.name,
                      "method": cam.method_name, "layer": cam.model.layer_name, "maps": maps,
                      "max_map_difference": difference, "made": time.strftime("%Y-%m-%dT%H:%M:%S")}
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
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock between processes (POSIX ``flock``; elsewhere the atomic rename alone)."""
    try:
        import fcntl
    except ImportError:  # Windows: two runs may both convert; the rename keeps the entry whole
        yield
        return
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # waits while another process converts the same entry
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
