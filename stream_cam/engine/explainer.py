"""What every explainer offers, without TensorFlow: the result of a call, and the ways of naming classes.

:class:`Explains` is the interface the jobs are written against (a ``typing.Protocol``, so mypy
checks every explainer against it): :class:`CAM` (the compiled TensorFlow engine, and every CAM and
attention method, its subclasses) and :class:`~.litert.LiteRTExplainer` (an exported model on
LiteRT) both meet it by subclassing :class:`Explainer`, which holds the shared class naming.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

import numpy as np

from ..errors import InputError
from ..frames import MAX_RANK  # a target of -r may ask for any rank r up to max(K, MAX_RANK)
from ..models.preprocessing import as_batch, as_model_input
from .registry import METHOD_NAMES

ClassSpec = int | Sequence[int] | Sequence[Sequence[int]] | None


@dataclass(frozen=True)
class CAMResult:
    """What one engine call returns for a batch of N frames.

    heatmaps: float32 in [0, 1] at the target layer's resolution, ``(N, h, w)``
        for one class per frame, ``(N, K, h, w)`` for top-k or several classes.
    probabilities: ``(N, classes)``.
    class_indices: the explained classes, ``(N,)`` or ``(N, K)`` like heatmaps.
    """

    heatmaps: np.ndarray
    probabilities: np.ndarray
    class_indices: np.ndarray

    def top_indices(self, k: int = 5) -> np.ndarray:
        """``(N, k)`` class indices by descending probability."""
        return np.argsort(-self.probabilities, axis=-1, kind="stable")[:, :k]

    def __len__(self) -> int:
        return len(self.probabilities)


class ExplainedModel(Protocol):
    """What an explainer's model tells the jobs: a :class:`~stream_cam.models.loaded.LoadedModel`,
    or an exported file's :class:`~stream_cam.models.tflite.TFLiteModel`."""

    @property
    def name(self) -> str: ...
    @property
    def labels(self) -> list[str]: ...
    @property
    def input_size(self) -> tuple[int, int]: ...
    @property
    def layer_name(self) -> str: ...
    @property
    def scaling(self) -> str: ...

    def label(self, index: int) -> str: ...

    def preprocess(self, rgb_uint8_batch: np.ndarray, bgr: bool = False) -> np.ndarray: ...


class Explains(Protocol):
    """What the jobs use of an explainer."""

    @property
    def model(self) -> ExplainedModel: ...
    @property
    def num_classes(self) -> int: ...
    @property
    def method_name(self) -> str: ...
    @property
    def methods(self) -> tuple[str, ...]: ...
    @property
    def runtime(self) -> str: ...  # what runs it: "tensorflow" or "litert"
    @property
    def device(self) -> str: ...  # where: "cpu" or "gpu:N"

    def explain(self, images: np.ndarray, targets: np.ndarray) -> CAMResult: ...

    def predict(self, images: np.ndarray) -> np.ndarray: ...

    def warm_up(self, k: int = 1) -> None: ...

    def __call__(self, frames: np.ndarray, classes: ClassSpec = None, top_k: int | None = None) -> CAMResult: ...


class Explainer:
    """The explainer interface: ``explain`` on preprocessed input, and ``__call__`` on frames.

    Subclasses set ``model``, ``num_classes`` and ``method_name``, and implement :meth:`explain`,
    :meth:`predict` and :meth:`warm_up`."""

    model: ExplainedModel
    num_classes: int
    method_name: str = "gradcam"
    methods: tuple[str, ...] = METHOD_NAMES  # what a live view may switch to
    runtime: str = "tensorflow"
    device: str = "cpu"  # the TensorFlow engine's device is set where it is built (engine/device.py)

    def explain(self, images: np.ndarray, targets: np.ndarray) -> CAMResult:
        raise NotImplementedError

    def _ranks(self, k: int) -> int:
        """How many ranks a call for K targets can resolve."""
        return min(max(k, MAX_RANK), self.num_classes)

    def check_targets(self, images: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """``targets`` as int32 ``(N, K)``: class indices in range, or -r with r within reach."""
        targets = np.asarray(targets, np.int32)
        if targets.ndim != 2 or len(targets) != len(images):
            raise InputError(f"targets must be shaped (N, K) with N={len(images)}, got {targets.shape}")
        k = targets.shape[1]
        if (targets >= self.num_classes).any() or (targets < -self._ranks(k)).any():
            bad = int(targets.max() if (targets >= self.num_classes).any() else targets.min())
            raise InputError(f"class index {bad} is out of range: the model has classes 0..{self.num_classes - 1}")
        return targets

    def predict(self, images: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def warm_up(self, k: int = 1) -> None:
        raise NotImplementedError

    def targets_for(self, n: int, classes: ClassSpec = None, top_k: int | None = None) -> np.ndarray:
        """The (N, K) targets array for the ways of naming classes that __call__ accepts."""
        if classes is not None and top_k is not None:
            raise InputError("give either classes or top_k, not both")
        if top_k is not None:
            if not isinstance(top_k, (int, np.integer)) or not 1 <= top_k <= self.num_classes:
                raise InputError(f"top_k must be an integer from 1 to {self.num_classes}, got {top_k!r}")
            return np.tile(-np.arange(1, top_k + 1, dtype=np.int32), (n, 1))
        if classes is None:
            return np.full((n, 1), -1, np.int32)
        array = np.asarray(classes)
        if not np.issubdtype(array.dtype, np.integer):
            raise InputError(f"classes must be integer class indices, got {classes!r}")
        if array.ndim == 0:
            array = np.full((n, 1), int(array))
        elif array.ndim == 1:
            array = array.reshape(n, 1) if len(array) == n else np.tile(array, (n, 1))
        if array.shape[0] != n or array.ndim != 2:
            raise InputError(f"classes must give one index, N indices or an (N, K) array; got {array.shape}")
        if (array < 0).any():
            raise InputError("class indices must not be negative")
        return array.astype(np.int32)

    def __call__(self, frames: np.ndarray, classes: ClassSpec = None, top_k: int | None = None) -> CAMResult:
        """Explain uint8 RGB frames, ``(H, W, 3)`` or ``(N, H, W, 3)``, of any size; or a float
        array already preprocessed for the model, at its input size (as the keras.io example passes
        ``img_array``).

        ``classes``: None (top-1), one index for all frames, one per frame, or
        ``(N, K)``. ``top_k``: explain the k most likely classes of each frame.
        """
        array = np.asarray(frames)
        if np.issubdtype(array.dtype, np.floating):
            images = as_model_input(array, self.model.input_size)
        else:
            images = self.model.preprocess(as_batch(array))
        targets = self.targets_for(len(images), classes, top_k)
        result = self.explain(images, targets)
        if targets.shape[1] == 1 and top_k is None and np.ndim(classes) < 2:  # type: ignore[arg-type]
            return CAMResult(result.heatmaps[:, 0], result.probabilities, result.class_indices[:, 0])
        return result
