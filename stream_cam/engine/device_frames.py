"""The frame path on the device (``--render device``): resizing, preprocessing, the CAM, the heatmap's
upsampling, colouring and blending, all inside compiled TensorFlow graphs, so that on a GPU the
host only decodes, draws the HUD's text and encodes.

Two graphs, one rendering step:

- :class:`DeviceRenderer`: ``(frame uint8, heatmap)`` -> the blended frame (uint8). Used whenever
  the heatmap drawn is not the frame's own (live: the newest heatmap on every frame, moved along the
  motion; smoothing across frames).
- :class:`DeviceFramePath`: uint8 BGR frames at their own size -> annotated frames (uint8) and the
  numbers, in ONE call (video files without smoothing, images).

Both equal the host path (:mod:`stream_cam.render.overlay`, :mod:`stream_cam.models.preprocessing`)
step for step, with the same kernels, so the model sees the same input to the last bit:

- the model input: Gaussian pyramid halvings while the frame is at least twice the input (OpenCV's
  ``pyrDown``: 5x5 binomial kernel, reflect-101 borders, rounded half up), then OpenCV's uint8
  bilinear resize (``INTER_LINEAR``: half-pixel centres, 11-bit fixed-point weights, its vertical
  pass's rounding; columns clamped at the borders, rows clamped by index only), in int32;
- the heatmap: quantised to 256 levels, upsampled to the frame with the same uint8 bilinear resize,
  looked up in the colormap's 256-entry table and blended ``frame * (1 - alpha) + colour * alpha``,
  rounded half to even like ``cv2.addWeighted``.

Measured against OpenCV 5.1 on this x86 CPU: equal resizes, equal model inputs (tests/test_device_frames.py).
OpenCV builds without SIMD round the vertical pass once instead of twice: one level apart there.

The colormap table and alpha are inputs of the graphs: changing them live does not retrace.
Graphs are traced once per frame size (a stream keeps its size) and per number of maps.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..models.preprocessing import SCALINGS, check_scaling
from .explainer import CAMResult
from .gradcam import CAM

BINOMIAL = np.array([1.0, 4.0, 6.0, 4.0, 1.0], np.float32)


def pyramid_steps(height: int, width: int, size: tuple[int, int]) -> int:
    """How many halvings the host's ``resize_frame`` makes from (height, width) towards ``size``."""
    steps = 0
    while height >= 2 * size[0] and width >= 2 * size[1]:
        height, width, steps = (height + 1) // 2, (width + 1) // 2, steps + 1
    return steps


def _linear_weights(source: int, target: int, clamp_weights: bool) -> tuple[np.ndarray, ...]:
    """OpenCV's INTER_LINEAR indices and 11-bit weights along one axis (computed as it does, in float32).

    Columns (``clamp_weights``) put the whole weight on the edge pixel past the borders; rows keep
    their fractional weights and only clamp the row index."""
    position = ((np.arange(target) + 0.5) * (source / target) - 0.5).astype(np.float32)
    first = np.floor(position).astype(np.int64)
    fraction = (position - first).astype(np.float32)
    if clamp_weights:
        fraction[first < 0], first[first < 0] = 0.0, 0
        past = first >= source - 1
        fraction[past], first[past] = 0.0, source - 1
        w0 = np.rint((np.float32(1.0) - fraction) * 2048).astype(np.int32)
        w1 = 2048 - w0
    else:
        w0 = np.rint((np.float32(1.0) - fraction) * 2048).astype(np.int32)
        w1 = np.rint(fraction * 2048).astype(np.int32)
    return (np.clip(first, 0, source - 1).astype(np.int32), np.clip(first + 1, 0, source - 1).astype(np.int32),
            w0, w1)


def opencv_linear(tf: Any, image: Any, height: int, width: int) -> Any:
    """In-graph: ``cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)`` of uint8 levels
    held in an int32 ``(N, h, w, C)`` tensor, to the same integers."""
    x0, x1, a0, a1 = _linear_weights(int(image.shape[2]), width, clamp_weights=True)
    y0, y1, b0, b1 = _linear_weights(int(image.shape[1]), height, clamp_weights=False)
    # 1. Horizontal pass: exact integer sums (level x 2048).
    rows = tf.gather(image, x0, axis=2) * a0[None, None, :, None] + tf.gather(image, x1, axis=2) * a1[None, None, :, None]
    # 2. Vertical pass as OpenCV's vector code does it: (w * (row >> 4)) >> 16 per row, then (+2) >> 2.
    shift = tf.bitwise.right_shift
    top = shift(b0[None, :, None, None] * shift(tf.gather(rows, y0, axis=1), 4), 16)
    bottom = shift(b1[None, :, None, None] * shift(tf.gather(rows, y1, axis=1), 4), 16)
    return tf.clip_by_value(shift(top + bottom + 2, 2), 0, 255)


class DeviceRenderer:
    """The blend of :func:`stream_cam.render.overlay.overlay_heatmap`, as a compiled graph."""

    def __init__(self) -> None:
        import tensorflow as tf

        self._tf = tf
        self._functions: dict[tuple[int, ...], Any] = {}

    def blend_graph(self, frames: Any, heatmaps: Any, lut: Any, alpha: Any) -> Any:
        """In-graph: uint8 ``(N, H, W, 3)`` frames and ``(N, h, w)`` maps in [0, 1] -> uint8 blended frames."""
        tf = self._tf
        height, width = frames.shape[1], frames.shape[2]
        # 1. Quantise the small map to 256 levels (as the host does before resizing).
        heat = tf.where(tf.math.is_finite(heatmaps), heatmaps, 0.0)
        levels = tf.cast(tf.round(tf.clip_by_value(heat, 0.0, 1.0) * 255.0), tf.int32)
        # 2. Upsample the levels to the frame with OpenCV's uint8 bilinear resize.
        index = opencv_linear(tf, levels[..., None], height, width)[..., 0]
        # 3. Colour through the 256-entry table, then blend: frame * (1 - alpha) + colour * alpha.
        colors = tf.cast(tf.gather(lut, index), tf.float32)
        mixed = tf.cast(frames, tf.float32) * (1.0 - alpha) + colors * alpha
        return tf.cast(tf.clip_by_value(tf.round(mixed), 0.0, 255.0), tf.uint8)

    def _graph(self, frame_size: tuple[int, int], map_size: tuple[int, int]) -> Any:
        key = (*frame_size, *map_size)
        if key not in self._functions:
            tf = self._tf
            function = tf.function(self.blend_graph, autograph=False)
            self._functions[key] = function.get_concrete_function(
                tf.TensorSpec([None, *frame_size, 3], tf.uint8), tf.TensorSpec([None, *map_size], tf.float32),
                tf.TensorSpec([256, 3], tf.uint8), tf.TensorSpec([], tf.float32))
        return self._functions[key]

    def blend(self, frame: np.ndarray, heatmap: np.ndarray, alpha: float, lut: np.ndarray) -> np.ndarray:
        """One uint8 (H, W, 3) frame with ``heatmap`` blended on; ``lut``: (256, 1, 3) or (256, 3) uint8."""
        tf = self._tf
        heatmap = np.asarray(heatmap, np.float32)
        graph = self._graph(frame.shape[:2], heatmap.shape)
        out = graph(tf.constant(frame[None]), tf.constant(heatmap[None]),
                    tf.constant(np.asarray(lut, np.uint8).reshape(256, 3)), tf.constant(alpha, tf.float32))
        return out.numpy()[0]


class DeviceFramePath(DeviceRenderer):
    """``cam``'s explanations of uint8 BGR frames at their own size, and the frames drawn, in one call."""

    def __init__(self, cam: CAM) -> None:
        if not isinstance(cam, CAM):
            raise TypeError(f"the frame path on the device needs the TensorFlow engine, not {type(cam).__name__}")
        super().__init__()
        self.cam = cam
        self.scaling = check_scaling(cam.model.scaling)
        self._paths: dict[tuple[int, int, int], Any] = {}

    def model_input(self, frames: Any) -> Any:
        """In-graph: uint8 BGR ``(N, H, W, 3)`` -> the model's float32 RGB input, as ``model.preprocess`` makes it."""
        tf = self._tf
        size = self.cam.model.input_size
        x = tf.cast(frames, tf.float32)
        # 1. Halve with the 5x5 binomial kernel while the frame is at least twice the input (cv2.pyrDown).
        kernel = np.outer(BINOMIAL, BINOMIAL) / 256.0
        kernel = tf.constant(np.tile(kernel[:, :, None, None], (1, 1, 3, 1)), tf.float32)
        for _ in range(pyramid_steps(int(frames.shape[1]), int(frames.shape[2]), size)):
            padded = tf.pad(x, [[0, 0], [2, 2], [2, 2], [0, 0]], mode="REFLECT")  # OpenCV's reflect-101
            x = tf.floor(tf.nn.depthwise_conv2d(padded, kernel, [1, 2, 2, 1], "VALID") + 0.5)
        # 2. OpenCV's uint8 bilinear resize to the input size.
        if tuple(x.shape[1:3]) != tuple(size):
            x = tf.cast(opencv_linear(tf, tf.cast(x, tf.int32), size[0], size[1]), tf.float32)
        # 3. BGR -> RGB, then the model's own scaling.
        return SCALINGS[self.scaling](x[..., ::-1])

    def _path(self, height: int, width: int, k: int) -> Any:
        key = (height, width, k)
        if key not in self._paths:
            tf = self._tf

            def path(frames: Any, targets: Any, lut: Any, alpha: Any) -> tuple[Any, ...]:
                probabilities, chosen, heatmaps = self.cam._compute(self.model_input(frames), targets, k)
                return self.blend_graph(frames, heatmaps[:, 0], lut, alpha), probabilities, chosen, heatmaps

            function = tf.function(path, jit_compile=self.cam.jit_compile, autograph=False)
            self._paths[key] = function.get_concrete_function(
                tf.TensorSpec([None, height, width, 3], tf.uint8), tf.TensorSpec([None, k], tf.int32),
                tf.TensorSpec([256, 3], tf.uint8), tf.TensorSpec([], tf.float32))
        return self._paths[key]

    def __call__(self, frames: np.ndarray, targets: np.ndarray, lut: np.ndarray,
                 alpha: float) -> tuple[np.ndarray, CAMResult]:
        """``frames``: uint8 BGR ``(N, H, W, 3)`` (one size); ``targets`` as for :meth:`CAM.explain`.
        Returns the frames with the first target's heatmap blended on, and the CAM's numbers."""
        tf = self._tf
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise ValueError(f"expected uint8 BGR frames (N, H, W, 3), got {frames.dtype} {frames.shape}")
        targets = self.cam.check_targets(frames, targets)
        graph = self._path(frames.shape[1], frames.shape[2], targets.shape[1])
        drawn, probabilities, chosen, heatmaps = graph(
            tf.constant(frames), tf.constant(targets), tf.constant(np.asarray(lut, np.uint8).reshape(256, 3)),
            tf.constant(alpha, tf.float32))
        return drawn.numpy(), CAMResult(heatmaps.numpy(), probabilities.numpy(), chosen.numpy())
