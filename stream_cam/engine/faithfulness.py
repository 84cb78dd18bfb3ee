"""Can this heatmap be trusted? Faithfulness scores of a map for a class on an image.

* Deletion and insertion (Petsiuk et al. 2018, RISE): pixels are removed (set to black) or
  revealed (over a blurred copy) in the order of the map, hottest first; the class's
  probability after each step is a curve, and its area (AUC, 0..1) the score. A faithful map
  makes deletion fall fast (low AUC) and insertion rise fast (high AUC).
* Average Drop % and Increase in Confidence % (Chattopadhyay et al. 2018): the image
  multiplied by the map keeps how much of the class's probability? Drop = max(0, Y - O) / Y,
  averaged; Increase = share of images where O > Y.

* ROAD (:mod:`.road`, optional): most- and least-relevant-first removal with the removed
  pixels imputed from their neighbours instead of set to black.

Every curve's steps go through the model as ONE batch. Maps are compared with two baselines
that know nothing: a random map and a centred Gaussian.
"""

from __future__ import annotations

from concurrent.futures import Executor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import cv2
import numpy as np

from .road import Road, hottest_first, road_images, split_curves

if TYPE_CHECKING:
    from .explainer import ExplainedModel

# A compiled forward pass: ``model.preprocess``'s batch -> probabilities (N, classes)
Predict = Callable[[np.ndarray], np.ndarray]

DEFAULT_STEPS = 20
BLUR_SIGMA = 10.0


@dataclass(frozen=True)
class Faithfulness:
    """The scores of one map, for one class, on one image."""

    deletion: np.ndarray  # class probability after removing 0, 1/steps, ..., all of the pixels
    insertion: np.ndarray  # the same, revealing pixels over a blurred image
    original: float  # the class's probability on the image
    masked: float  # ... on the image multiplied by the map
    road: Road | None = None  # the ROAD curves, when asked for

    @property
    def deletion_auc(self) -> float:
        return auc(self.deletion)

    @property
    def insertion_auc(self) -> float:
        return auc(self.insertion)

    @property
    def road_morf_auc(self) -> float:
        return auc(self.road_curves().morf)

    @property
    def road_lerf_auc(self) -> float:
        return auc(self.road_curves().lerf)

    def road_curves(self) -> Road:
        """The ROAD curves; a ValueError when they were not computed."""
        if self.road is None:
            raise ValueError("these scores have no ROAD curves (score_map(..., road=True))")
        return self.road

    @property
    def drop(self) -> float:
        """Relative drop of the class's probability when only the map is shown (0..1)."""
        return max(0.0, self.original - self.masked) / self.original if self.original > 0 else 0.0

    @property
    def increase(self) -> bool:
        return self.masked > self.original


def auc(curve: np.ndarray) -> float:
    """Area under a curve sampled at equal steps over [0, 1] (trapezoids)."""
    curve = np.asarray(curve, np.float64)
    return float(((curve[1:] + curve[:-1]) / 2).mean()) if len(curve) > 1 else float(curve[0])


def random_map(shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random(shape).astype(np.float32)


def center_map(shape: tuple[int, int]) -> np.ndarray:
    """A Gaussian in the middle of the frame (sigma = a quarter of each side)."""
    height, width = shape
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    return np.exp(-(((x - (width - 1) / 2) / (width / 4)) ** 2 + ((y - (height - 1) / 2) / (height / 4)) ** 2) / 2)


def score_map(model: ExplainedModel, predict: Predict, rgb: np.ndarray, heatmap: np.ndarray, class_index: int,
              steps: int = DEFAULT_STEPS, road: bool = False, pool: Executor | None = None) -> Faithfulness:
    """Deletion, insertion and the masked-image probability of ``heatmap`` for ``class_index``
    (and ROAD's two curves with ``road``, imputed in ``pool``'s threads when given).

    ``predict`` maps ``model.preprocess``'s batch to probabilities: the TensorFlow engine's float32
    input, or an exported file's own uint8 input on LiteRT. Everything happens at the model's input
    size, where the model sees the pixels."""
    height, width = model.input_size
    image = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA).astype(np.float32)
    heat = cv2.resize(np.asarray(heatmap, np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
    order = hottest_first(heat)
    blurred = cv2.GaussianBlur(image, (0, 0), BLUR_SIGMA)
    counts = np.linspace(0, order.size, steps + 1).astype(int)
    deleted, inserted = [], []
    for count in counts:
        flat = np.ones(order.size, np.float32)
        flat[order[:count]] = 0.0
        keep = flat.reshape(height, width, 1)
        deleted.append(image * keep)  # removed pixels are black
        inserted.append(blurred * keep + image * (1.0 - keep))  # revealed pixels over the blur
    shown = image * heat[..., None].clip(0.0, 1.0)  # the image multiplied by the map
    batch = np.stack([*deleted, *inserted, image, shown]).round().clip(0, 255).astype(np.uint8)
    if road:  # ROAD's images go through the model in the same batch
        batch = np.concatenate([batch, road_images(image, heat, pool, order=order)])
    probabilities = predict(model.preprocess(batch))[:, class_index]
    n = steps + 1
    return Faithfulness(probabilities[:n], probabilities[n:2 * n], float(probabilities[2 * n]),
                        float(probabilities[2 * n + 1]), split_curves(probabilities[2 * n + 2:]) if road else None)
