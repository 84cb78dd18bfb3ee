"""``stream-cam info``: what this machine gives stream_cam: versions, the devices TensorFlow sees,
whether a GPU is usable, which runtime explains by default, the extras installed, the cameras.

Works without TensorFlow (a kiosk install running exported ``.tflite`` files says so)."""

from __future__ import annotations

import importlib.metadata as metadata
import platform
import sys
from typing import Any

from .. import __version__
from ..checks import installed
from ..defaults import cache_folder

# What `info` reports the version of: a name for people, and the distribution pip knows.
PACKAGES = (("TensorFlow", "tensorflow"), ("Keras", "keras"), ("OpenCV", "opencv-python"),
            ("LiteRT", "ai-edge-litert"), ("PyAV", "av"), ("Ray", "ray"), ("keras-hub", "keras-hub"),
            ("NumPy", "numpy"))
CUDA_WHEELS = ("nvidia-cuda-runtime-cu12", "nvidia-cudnn-cu12")  # what tensorflow[and-cuda] brings on Linux
DISTRIBUTION = "stream-cam"


def version_of(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def extras() -> dict[str, bool]:
    """Each extra of stream-cam, and whether everything it asks for is installed here (for this platform)."""
    from packaging.requirements import Requirement

    try:
        requirements = [Requirement(text) for text in metadata.requires(DISTRIBUTION) or []]
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return {}
    names = metadata.metadata(DISTRIBUTION).get_all("Provides-Extra") or []
    found = {}
    for extra in names:
        wanted = [r for r in requirements if r.marker is not None and r.marker.evaluate({"extra": extra})
                  and not r.marker.evaluate({"extra": ""})]
        found[extra] = all(_installed(r) for r in wanted)
    return found


def _installed(requirement: Any) -> bool:
    if version_of(requirement.name) is None:
        return False
    if "and-cuda" in requirement.extras:  # tensorflow[and-cuda]: its CUDA wheels are the point
        return all(version_of(name) is not None for name in CUDA_WHEELS)
    return True


def tensorflow_info() -> dict[str, Any]:
    """TensorFlow's build (CUDA, cuDNN) and the devices it sees; {"installed": False} without it."""
    if not installed("tensorflow"):
        return {"installed": False}
    from ..tf_runtime import import_tensorflow

    tf = import_tensorflow()
    build = dict(tf.sysconfig.get_build_info())
    gpus = []
    for gpu in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(gpu)
        capability = details.get("compute_capability")
        gpus.append({"name": gpu.name.replace("/physical_device:", ""), "model": details.get("device_name", ""),
                     "compute_capability": ".".join(map(str, capability)) if capability else None})
    return {"installed": True, "cuda_build": bool(build.get("is_cuda_build")),
            "cuda": build.get("cuda_version"), "cudnn": build.get("cudnn_version"),
            "cuda_libraries": all(version_of(name) is not None for name in CUDA_WHEELS),
            "devices": [d.name.replace("/physical_device:", "") for d in tf.config.list_physical_devices()],
            "gpus": gpus}


def machine_info() -> dict[str, Any]:
    """Everything ``stream-cam info`` reports, as one JSON-ready dict."""
    from ..sources.cameras import list_cameras

    tf = tensorflow_info()
    gpu = bool(tf.get("gpus"))
    runtime = "tensorflow" if gpu else "litert"  # what --runtime auto picks for a CNN (engine/runtime.py)
    return {
        "stream_cam": __version__, "python": platform.python_version(), "platform": f"{sys.platform} "
        f"{platform.machine()}", "versions": {dist: version_of(dist) for _, dist in PACKAGES},
        "tensorflow": tf, "gpu_usable": gpu, "default_device": "gpu:0" if gpu else "cpu",
        "default_runtime": runtime, "cache": str(cache_folder()), "extras": extras(),
        "cameras": [camera.as_dict() for camera in list_cameras()],
    }


def info_lines(info: dict[str, Any]) -> list[str]:
    """``info`` for a person: a few lines, the GPU's state spelt out."""
    named = {name: info["versions"].get(dist) for name, dist in PACKAGES}
    versions = " · ".join(f"{name} {value}" for name, value in named.items() if value)
    missing = [name for name, value in named.items() if not value]
    lines = [f"stream_cam {info['stream_cam']} (Python {info['python']}, {info['platform']})", versions]
    if missing:
        lines.append(f"not installed: {', '.join(missing)}")
    tf = info["tensorflow"]
    if tf["installed"]:
        built = (f"built for CUDA {tf['cuda']}, cuDNN {tf['cudnn']}" if tf["cuda_build"] else "built without CUDA")
        libraries = "" if not tf["cuda_build"] else \
            ("; CUDA libraries installed" if tf["cuda_libraries"] else "; CUDA libraries not installed")
        lines.append(f"TensorFlow {built}{libraries}; sees {', '.join(tf['devices']) or 'no device'}")
        for gpu in tf["gpus"]:
            lines.append(f"  {gpu['name']}: {gpu['model'] or 'a GPU'}"
                         + (f" (compute capability {gpu['compute_capability']})" if gpu["compute_capability"] else ""))
        if not tf["gpus"]:
            lines.append("GPU: none usable (with an NVIDIA GPU on Linux: pip install 'stream-cam[gpu]'; "
                         "README, \"On a GPU\")")
    if not tf["installed"]:
        says = "LiteRT, exported .tflite files only (TensorFlow is not installed)"
    elif info["default_runtime"] == "tensorflow":
        says = f"TensorFlow on {info['default_device']}"
    else:
        says = ("LiteRT on the CPU (TensorFlow for what LiteRT cannot run, or where it timed faster "
                "at the job's batch size)")
    lines.append(f"explains by default with: {says}; converted runtimes cached in {info['cache']}")
    have = [name for name, ok in info["extras"].items() if ok]
    lack = [name for name, ok in info["extras"].items() if not ok]
    lines.append(f"extras installed: {', '.join(have) or 'none'}" + (f"; not: {', '.join(lack)}" if lack else ""))
    cameras = info["cameras"]
    lines.append("cameras: " + (", ".join(f"{c['path']}" + (f" ({c['name']})" if c["name"] else "") for c in cameras)
                                or "none found (a video file or URL works as --source)"))
    return lines
