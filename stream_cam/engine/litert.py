"""The explainer of an exported ``.tflite`` file, run by LiteRT: the engine's results without TensorFlow.

Used exactly like :class:`~.gradcam.CAM` by every job. The file explains one frame and one
class per call: a batch is run frame by frame, and K classes of a frame are K calls (the first
one gives the probabilities, which name the classes at ranks 2..K).
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from ..models.tflite import TFLiteModel
from .explainer import CAMResult, Explainer


class LiteRTExplainer(Explainer):
    """Heatmaps and probabilities from an exported file (``stream-cam export``)."""

    model: TFLiteModel

    def __init__(self, model: TFLiteModel | str | Path, threads: int | None = None) -> None:
        self.model = model if isinstance(model, TFLiteModel) else TFLiteModel.open(model, threads)
        self.method_name = self.model.method
        self.methods = (self.method_name,)  # the file holds one method
        self.num_classes = int(self.model.info["num_classes"])
        self._run = self.model.runner()
        self._lock = threading.Lock()  # one interpreter: one call at a time

    def _one(self, image: np.ndarray, target: int) -> tuple[np.ndarray, int, np.ndarray]:
        with self._lock:
            out = self._run(image=image[None], target=np.array([[target]], np.int32))
        return out["probabilities"][0], int(out["classes"][0, 0]), out["heatmaps"][0, 0]

    def explain(self, images: np.ndarray, targets: np.ndarray) -> CAMResult:
        """``images``: uint8 ``(N, h, w, 3)`` from ``model.preprocess``; ``targets`` as for CAM.explain."""
        targets = self.check_targets(images, targets)
        images = np.asarray(images, np.uint8)
        probabilities, chosen, heatmaps = [], [], []
        for image, row in zip(images, targets):
            first, index, heat = self._one(image, int(row[0]))
            order = np.argsort(-first, kind="stable")
            classes, maps = [index], [heat]
            for target in row[1:]:
                index = int(target) if target >= 0 else int(order[-int(target) - 1])
                _, index, heat = self._one(image, index)
                classes.append(index)
                maps.append(heat)
            probabilities.append(first)
            chosen.append(classes)
            heatmaps.append(np.stack(maps))
        return CAMResult(np.stack(heatmaps).astype(np.float32), np.stack(probabilities).astype(np.float32),
                         np.array(chosen, np.int32))

    def predict(self, images: np.ndarray) -> np.ndarray:
        return np.stack([self._one(image, -1)[0] for image in np.asarray(images, np.uint8)])

    def warm_up(self, k: int = 1) -> None:
        height, width = self.model.input_size
        self._one(np.zeros((height, width, 3), np.uint8), -1)
