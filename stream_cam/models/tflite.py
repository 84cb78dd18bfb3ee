"""An exported explainer (``stream-cam export``) opened with LiteRT: no TensorFlow anywhere.

The file carries what it is (its ``describe`` signature): labels, input size and scaling, the
CAM method and target layer it was exported with. :class:`TFLiteModel` offers what the jobs use
of a loaded model (``labels``, ``label()``, ``input_size``, ``preprocess()``, ``name``) plus the
``explain`` signature runner.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelError, one_line
from ..tf_runtime import quiet_stderr
from .preprocessing import as_batch, resize_batch

log = logging.getLogger(__name__)

TFLITE_SUFFIX = ".tflite"
LITERT_MISSING = "running a .tflite model needs LiteRT: pip install ai-edge-litert"


def is_tflite(name_or_path: str | Path) -> bool:
    return str(name_or_path).lower().endswith(TFLITE_SUFFIX)


def _interpreter(path: Path, threads: int) -> Any:
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError as exc:
        raise ModelError(LITERT_MISSING) from exc
    try:
        with quiet_stderr(log.isEnabledFor(logging.DEBUG)):
            return Interpreter(model_path=str(path), num_threads=threads)
    except (ValueError, RuntimeError, UnicodeDecodeError) as exc:
        raise ModelError(f"{path} is not a TFLite model LiteRT can open: {one_line(exc)}") from exc


def read_description(path: str | Path, interpreter: Any = None) -> dict:
    """What an exported file says about itself; a clear error for any other .tflite file."""
    path = Path(path)
    interpreter = interpreter or _interpreter(path, 1)
    signatures = interpreter.get_signature_list()
    if "description" not in signatures.get("explain", {}).get("outputs", []):
        raise ModelError(f"{path} was not made by 'stream-cam export' (no explain signature with a description); "
                         "export your model with: stream-cam export --model MODEL -o FILE.tflite")
    try:
        inputs = interpreter.get_signature_runner("explain").get_input_details()
        image_shape, target_shape = (tuple(int(n) for n in inputs[name]["shape"]) for name in ("image", "target"))
        # What the file declares is checked before anything is sized from it (a 0x0 input spun forever).
        if len(image_shape) != 4 or image_shape[0] != 1 or image_shape[3] != 3 or \
                not all(1 <= n <= MAX_SIDE for n in image_shape[1:3]) or len(target_shape) != 2 or \
                target_shape[0] != 1 or not 1 <= target_shape[1] <= MAX_MAPS:
            raise ValueError(f"its inputs are shaped {image_shape} and {target_shape}")
        image = np.zeros(image_shape, np.uint8)
        with quiet_stderr(log.isEnabledFor(logging.DEBUG)):  # the first call creates the XNNPACK delegate
            target = np.full(target_shape, -1, np.int32)  # (1, K): K maps per call
            raw = interpreter.get_signature_runner("explain")(image=image, target=target)["description"]
        info = json.loads(bytes(np.asarray(raw, np.uint8)).decode())
        check_description(info, image_shape[1:3], target_shape[1])
    except (KeyError, TypeError, ValueError, RuntimeError, UnicodeDecodeError, RecursionError) as exc:
        raise ModelError(f"{path} is not a stream-cam model: {one_line(exc)}") from exc
    return info


MAX_SIDE = 8192  # pixels: an input side beyond this is not a model for frames
MAX_MAPS = 1000
MAX_CLASSES = 1_000_000


def check_description(info: object, size: tuple[int, ...], maps: int) -> None:
    """ValueError unless ``info`` is a stream-cam description that agrees with the file's inputs."""
    if not isinstance(info, dict) or info.get("format") != "stream_cam":
        raise ValueError("its description is not stream-cam's")
    labels, classes = info.get("labels"), info.get("num_classes")
    if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
        raise ValueError("its labels are not a list of names")
    if not isinstance(classes, int) or not 1 <= classes <= MAX_CLASSES or len(labels) not in (0, classes):
        raise ValueError(f"it declares {classes!r} classes and {len(labels)} labels")
    if info.get("input_size") != list(size):
        raise ValueError(f"it declares the input size {info.get('input_size')!r}, but takes {list(size)}")
    if int(info.get("maps", 1)) != maps:
        raise ValueError(f"it declares {info.get('maps')!r} maps per call, but takes {maps}")
    for name in ("layer", "scaling", "method"):
        if not isinstance(info.get(name), str) or len(info[name]) > 200:
            raise ValueError(f"its {name} is not a name")


@dataclass
class TFLiteModel:
    """An exported explainer on LiteRT, presented like a loaded Keras model."""

    path: Path
    info: dict
    interpreter: Any = field(repr=False)

    @classmethod
    def open(cls, path: str | Path, threads: int | None = None) -> "TFLiteModel":
        path = Path(path)
        if not path.is_file():
            raise ModelError(f"model file {path} does not exist")
        interpreter = _interpreter(path, threads or os.cpu_count() or 1)
        return cls(path, read_description(path, interpreter), interpreter)

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def labels(self) -> list[str]:
        return self.info["labels"]

    @property
    def input_size(self) -> tuple[int, int]:
        height, width = self.info["input_size"]
        return int(height), int(width)

    @property
    def layer_name(self) -> str:
        return self.info["layer"]

    @property
    def scaling(self) -> str:
        return self.info["scaling"]

    @property
    def method(self) -> str:
        return self.info["method"]

    @property
    def maps(self) -> int:
        """How many classes' maps one call gives (files made before this was recorded: 1)."""
        return int(self.info.get("maps", 1))

    def label(self, index: int) -> str:
        return self.labels[index] if 0 <= index < len(self.labels) else f"class {index}"

    def preprocess(self, rgb_uint8_batch: np.ndarray, bgr: bool = False) -> np.ndarray:
        """uint8 frames of any size -> uint8 RGB at the input size (the file scales them itself)."""
        batch = resize_batch(as_batch(rgb_uint8_batch), self.input_size)
        return np.ascontiguousarray(batch[..., ::-1]) if bgr else batch

    def runner(self) -> Any:
        return self.interpreter.get_signature_runner("explain")
