"""Which device runs the TensorFlow engine (``--device``), and its memory policy (``--gpu-memory``).

``auto``: the first GPU TensorFlow sees, else the CPU. ``cpu``: the GPUs are hidden from
TensorFlow, so nothing is placed on them (LiteRT can then run by default). ``gpu`` / ``gpu:N``:
that GPU, or one line saying what TensorFlow sees and to install ``stream-cam[gpu]``.

TensorFlow takes every GPU's whole memory at first use unless told otherwise, which starves a
browser or a second run on a kiosk. So before anything touches a GPU, :func:`configure_devices`
turns on memory growth on every GPU it keeps visible, or, with ``--gpu-memory MB``, gives the
chosen GPU one logical device of that size (a hard cap; growth and a cap exclude each other on one
GPU). Both must happen before the first op: TensorFlow raises ``RuntimeError`` after that.

This module imports no TensorFlow at load: the planner checks ``--device`` before TensorFlow loads.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from ..errors import InputError, ModelError

log = logging.getLogger(__name__)

DEVICES = ("auto", "cpu", "gpu", "gpu:N")  # what --device takes (N: a GPU's index)
DEFAULT_DEVICE = "auto"
INSTALL_GPU = "install the GPU build with: pip install 'stream-cam[gpu]' (Linux; README, \"On a GPU\")"
_GPU = re.compile(r"gpu(?::(\d+))?")


@dataclass(frozen=True)
class DeviceRequest:
    """What ``--device`` asked for: ``kind`` auto, cpu or gpu; ``index`` a GPU's number (gpu only)."""

    kind: str = DEFAULT_DEVICE
    index: int | None = None

    def __str__(self) -> str:
        return self.kind if self.index is None else f"{self.kind}:{self.index}"


def parse_device(text: str) -> DeviceRequest:
    """``auto``, ``cpu``, ``gpu`` or ``gpu:N`` (any case) as a :class:`DeviceRequest`."""
    if not isinstance(text, str):
        raise TypeError(f"--device takes a string, not {type(text).__name__}")
    value = text.strip().lower()
    if value in ("auto", "cpu"):
        return DeviceRequest(value)
    match = _GPU.fullmatch(value)
    if match is None:
        raise InputError(f"--device {text}: choose auto, cpu, gpu or gpu:N (N: the GPU's index, from 0)")
    return DeviceRequest("gpu", int(match.group(1)) if match.group(1) is not None else None)


def check_gpu_memory(text: str | int) -> int:
    """``--gpu-memory``: a positive whole number of megabytes."""
    try:
        megabytes = int(text)
    except (TypeError, ValueError):
        raise InputError(f"--gpu-memory {text}: give whole megabytes, e.g. --gpu-memory 2048") from None
    if megabytes < 1:
        raise InputError(f"--gpu-memory {text}: give at least 1 MB")
    return megabytes


def configure_devices(config: Any, request: DeviceRequest, memory_mb: int | None = None) -> str:
    """Make TensorFlow use the device ``request`` names; return its name for the HUD and the log
    (``cpu`` or ``gpu:N``, N as TensorFlow numbers the physical GPUs).

    ``config``: ``tf.config`` (a test may pass a stand-in that records the calls). Must run before
    TensorFlow places anything: memory growth and logical devices cannot be set afterwards."""
    gpus = list(config.list_physical_devices("GPU"))
    if request.kind == "cpu":
        if memory_mb is not None:
            raise InputError("--gpu-memory caps a GPU's memory; it does not apply to --device cpu")
        if gpus:
            _call(config.set_visible_devices, [], "GPU")  # nothing lands on a GPU
        return "cpu"
    if not gpus:
        if request.kind == "auto":
            if memory_mb is not None:
                log.warning("--gpu-memory %d: TensorFlow sees no GPU, so it does not apply", memory_mb)
            return "cpu"
        raise InputError(f"--device {request}: TensorFlow sees no GPU (only {_seen(config)}); {INSTALL_GPU}, "
                         "or use --device cpu")
    index = request.index or 0
    if index >= len(gpus):
        raise InputError(f"--device {request}: TensorFlow sees {len(gpus)} GPU{'s' if len(gpus) > 1 else ''} "
                         f"(gpu:0 to gpu:{len(gpus) - 1})")
    chosen = gpus[index]
    # Only the chosen GPU stays visible (TensorFlow then calls it GPU:0); memory policy before first use.
    _call(config.set_visible_devices, [chosen], "GPU")
    if memory_mb is not None:
        _call(config.set_logical_device_configuration, chosen,
              [config.LogicalDeviceConfiguration(memory_limit=memory_mb)])
    else:
        _call(config.experimental.set_memory_growth, chosen, True)
    log.info("device: gpu:%d (%s)%s", index, getattr(chosen, "name", chosen),
             f", capped at {memory_mb} MB" if memory_mb is not None else ", memory grows as needed")
    return f"gpu:{index}"


def _call(function: Any, *args: Any) -> None:
    """A tf.config call that only works before TensorFlow has placed anything."""
    try:
        function(*args)
    except RuntimeError as exc:
        raise ModelError(f"the device could not be set up, TensorFlow had already started on one: {exc}") from exc


def _seen(config: Any) -> str:
    names = [getattr(d, "name", str(d)).replace("/physical_device:", "") for d in config.list_physical_devices()]
    return ", ".join(names) or "no device"
