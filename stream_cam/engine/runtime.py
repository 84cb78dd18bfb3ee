"""Which runtime explains the frames (``--runtime``): the TensorFlow engine, or the same explainer
converted once for LiteRT (XNNPACK), which on a CPU is 1.4-3.9x faster (README, "Speed").

``auto``: LiteRT on a CPU for a CNN whose method LiteRT can run; TensorFlow on a GPU, with XLA,
for transformers, and when the conversion fails (said once, and the run goes on). ``litert``:
LiteRT or a clear error. ``tensorflow``: the engine as built.

The conversion is cached (:mod:`.litert_cache`, ``~/.cache/stream_cam/litert``): converted once,
checked against the engine on a real photo, kept in a folder of this user's alone, and used only
when its record is signed with this user's secret. A cache that cannot be used (read-only with no
healthy entry, full, another user's) is one warning naming it, and TensorFlow explains.

``auto`` also times the two at the job's batch size on this machine, once (:mod:`.speed`): a video
job calls TensorFlow with batches of 8, where it can be the faster one (ResNet50 on 2 cores). The
figures are kept in the entry's record, so later runs choose at once.

LiteRT's threads: every core (``os.cpu_count()``, the interpreter's default here). Measured on 2
cores, 2 threads beat 1 in live mode too, beside the display and capture threads (Lite0: 10.3 vs
14.9 ms per heatmap, the same CPU per shown frame; README, "Runtimes").
"""

from __future__ import annotations

import logging

from ..defaults import CACHE_ENV
from ..errors import ModelError
from ..models.preprocessing import SCALINGS
from .explainer import Explains
from .gradcam import CAM
from .litert_cache import LiteRTCache
from .registry import METHOD_INFO, RUNTIMES

log = logging.getLogger(__name__)


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
    except OSError as exc:  # the cache: read-only with no healthy entry, full, not this user's, ...
        reason = f"the LiteRT cache cannot be used ({exc.strerror or exc}{': ' + str(exc.filename) if exc.filename else ''})"
        if runtime == "litert":
            raise ModelError(f"--runtime litert: {reason}; free the disk, or set {CACHE_ENV} to a folder of your own")
        log.warning("%s, so TensorFlow explains; set %s to a folder of your own to use LiteRT", reason, CACHE_ENV)
        return cam
    if runtime == "auto":
        speeds = cache.speeds(path, cam, explainer, maps, batch, threads)
        if speeds.faster == "tensorflow":
            log.info("runtime: TensorFlow (%s)", speeds.describe())
            return cam
    explainer.convert = lambda other: choose_runtime(other, "auto", cache, maps, threads, batch)
    return explainer
