"""The explainer of an exported ``.tflite`` file, run by LiteRT: the engine's results without TensorFlow.

Used exactly like :class:`~.gradcam.CAM` by every job. The file explains one frame per call, K
classes at once (K = the file's ``maps``, fixed when it was made): a batch is run frame by frame,
and more classes than K take more calls (ranks beyond the first call's are read from its
probabilities). Made by ``stream-cam export``, or by the runtime cache (:mod:`.runtime`), which
keeps ``source``, the TensorFlow engine it was converted from, for switching method live.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from ..models.tflite import TFLiteModel
from .explainer import CAMResult, Explainer, Explains

if TYPE_CHECKING:  # the engine loads TensorFlow; a .tflite file alone does not need it
    from .gradcam import CAM


class LiteRTExplainer(Explainer):
    """Heatmaps and probabilities from an exported file (``stream-cam export``, or the runtime cache)."""

    model: TFLiteModel
    runtime = "litert"

    def __init__(self, model: TFLiteModel | str | Path, threads: int | None = None, source: CAM | None = None) -> None:
        self.model = model if isinstance(model, TFLiteModel) else TFLiteModel.open(model, threads)
        self.method_name = self.model.method
        self.source = source
        self.convert: Callable[[CAM], Explains] | None = None  # the runtime choice for another method (live)
        # A file alone holds one method; converted from an engine, the others are the engine's.
        self.methods = source.methods if source is not None else (self.method_name,)
        self.num_classes = int(self.model.info["num_classes"])
        self.maps = self.model.maps
        self._run = self.model.runner()
        self._lock = threading.Lock()  # one interpreter: one call at a time

    def _frame(self, image: np.ndarray, row: np.ndarray) -> tuple[np.ndarray, list[int], list[np.ndarray]]:
        """One frame's probabilities, and the classes and maps of ``row``'s targets (K per call)."""
        probabilities: np.ndarray | None = None
        classes: list[int] = []
        maps: list[np.ndarray] = []
        for start in range(0, len(row), self.maps):
            part = [int(t) for t in row[start:start + self.maps]]
            if probabilities is not None:  # ranks past the first call: named by its probabilities
                order = np.argsort(-probabilities, kind="stable")
                part = [t if t >= 0 else int(order[-t - 1]) for t in part]
            target = np.full((1, self.maps), -1, np.int32)
            target[0, :len(part)] = part
            with self._lock:
                out = self._run(image=image[None], target=target)
            if probabilities is None:
                probabilities = out["probabilities"][0]
            classes.extend(int(c) for c in out["classes"][0, :len(part)])
            maps.extend(out["heatmaps"][0, :len(part)])
        assert probabilities is not None  # row has at least one target (check_targets)
        return probabilities, classes, maps

    def explain(self, images: np.ndarray, targets: np.ndarray) -> CAMResult:
        """``images``: uint8 ``(N, h, w, 3)`` from ``model.preprocess``; ``targets`` as for CAM.explain."""
        targets = self.check_targets(images, targets)
        images = np.asarray(images, np.uint8)
        probabilities, chosen, heatmaps = [], [], []
        for image, row in zip(images, targets):
            first, classes, maps = self._frame(image, row)
            probabilities.append(first)
            chosen.append(classes)
            heatmaps.append(np.stack(maps))
        return CAMResult(np.stack(heatmaps).astype(np.float32), np.stack(probabilities).astype(np.float32),
                         np.array(chosen, np.int32))

    def predict(self, images: np.ndarray) -> np.ndarray:
        return np.stack([self._frame(image, np.array([-1]))[0] for image in np.asarray(images, np.uint8)])

    def warm_up(self, k: int = 1) -> None:
        height, width = self.model.input_size
        self._frame(np.zeros((height, width, 3), np.uint8), np.array([-1]))
