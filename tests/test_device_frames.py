"""The frame path on the device (engine/device_frames.py) against the host path, on this CPU: the same
resizes, the same model input, the same classes and maps, the same overlay pixels."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from helpers import MAP_TOLERANCE, write_clip
from stream_cam.engine.device_frames import DeviceFramePath, DeviceRenderer, opencv_linear, pyramid_steps
from stream_cam.render.colormap import colormap_lut
from stream_cam.render.overlay import overlay_heatmap
from stream_cam.sources.images import builtin_image

SIZES = [(451, 300), (640, 480), (97, 61), (1921, 1081), (224, 224), (225, 223), (33, 500)]  # (width, height)


@pytest.mark.parametrize("source, target, channels", [
    ((451, 300), (224, 224), 3), ((97, 61), (224, 224), 3), ((7, 7), (640, 480), 1), ((7, 7), (97, 61), 1),
    ((14, 14), (1921, 1081), 1), ((224, 224), (99, 301), 3), ((5, 3), (1, 1), 3), ((320, 240), (224, 224), 3)])
def test_opencv_linear_is_cv2_resize(source, target, channels):
    import tensorflow as tf

    rng = np.random.default_rng(sum(source) + sum(target))
    image = rng.integers(0, 256, (source[1], source[0], channels), dtype=np.uint8)
    expected = cv2.resize(image, target, interpolation=cv2.INTER_LINEAR).reshape(target[1], target[0], channels)
    ours = opencv_linear(tf, tf.constant(image[None].astype(np.int32)), target[1], target[0]).numpy()[0]
    np.testing.assert_array_equal(ours, expected)


def test_pyramid_steps_follow_the_host():
    assert pyramid_steps(480, 640, (224, 224)) == 1
    assert pyramid_steps(1081, 1921, (224, 224)) == 2
    assert pyramid_steps(300, 451, (224, 224)) == 0
    assert pyramid_steps(447, 5000, (224, 224)) == 0  # both sides must be twice the input


@pytest.fixture(scope="module")
def device_path(lite0_cam):
    return DeviceFramePath(lite0_cam)


@pytest.mark.parametrize("photo", ["chelsea", "coffee", "astronaut", "rocket"])
def test_model_input_frames_and_maps_equal_the_host_path(device_path, lite0_cam, photo):
    import tensorflow as tf

    bgr = cv2.cvtColor(builtin_image(photo), cv2.COLOR_RGB2BGR)
    lut = colormap_lut("jet")
    for size in [None, *SIZES]:
        frame = bgr if size is None else cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
        host_input = lite0_cam.model.preprocess(frame, bgr=True)
        np.testing.assert_array_equal(device_path.model_input(tf.constant(frame[None])).numpy(), host_input)
        host = lite0_cam.explain(host_input, np.array([[-1, -2]]))
        drawn, device = device_path(frame[None], np.array([[-1, -2]]), lut, 0.4)
        np.testing.assert_array_equal(device.class_indices, host.class_indices)
        assert np.abs(device.heatmaps - host.heatmaps).max() <= MAP_TOLERANCE
        np.testing.assert_allclose(device.probabilities, host.probabilities, atol=1e-6)
        expected = overlay_heatmap(frame, host.heatmaps[0, 0], 0.4, "jet", bgr=True)
        assert drawn.shape == (1, *frame.shape) and drawn.dtype == np.uint8
        assert np.abs(drawn[0].astype(int) - expected.astype(int)).max() <= 1, (photo, size)


def test_a_batch_of_video_frames(device_path, lite0_cam, tmp_path):
    """Frames decoded from a clip at an odd size, as a batch: each equals the host's own."""
    write_clip(tmp_path / "odd.mp4", frames=6, size=(179, 101))
    capture = cv2.VideoCapture(str(tmp_path / "odd.mp4"))
    frames = np.stack([capture.read()[1] for _ in range(6)])
    capture.release()
    lut = colormap_lut("turbo")
    drawn, device = device_path(frames, np.full((6, 1), -1), lut, 0.7)
    host = lite0_cam.explain(lite0_cam.model.preprocess(frames, bgr=True), np.full((6, 1), -1))
    np.testing.assert_array_equal(device.class_indices, host.class_indices)
    assert np.abs(device.heatmaps - host.heatmaps).max() <= MAP_TOLERANCE
    for i in range(6):
        expected = overlay_heatmap(frames[i], host.heatmaps[i, 0], 0.7, "turbo", bgr=True)
        assert np.abs(drawn[i].astype(int) - expected.astype(int)).max() <= 1


@pytest.mark.parametrize("colormap, alpha", [("jet", 0.4), ("inferno", 0.0), ("viridis", 1.0), ("coolwarm", 0.55)])
def test_the_blend_alone(colormap, alpha):
    rng = np.random.default_rng(3)
    renderer = DeviceRenderer()
    frame = rng.integers(0, 256, (61, 97, 3), dtype=np.uint8)
    heatmap = rng.random((7, 9)).astype(np.float32)
    heatmap[0, 0], heatmap[1, 1], heatmap[2, 2] = np.nan, np.inf, -0.5  # counted as 0, as the host does
    drawn = renderer.blend(frame, heatmap, alpha, colormap_lut(colormap))
    expected = overlay_heatmap(frame, heatmap, alpha, colormap, bgr=True)
    assert np.abs(drawn.astype(int) - expected.astype(int)).max() <= 1
    assert (drawn != frame).any() == (alpha > 0)


def test_prechecks(device_path, lite0_tflite):
    from stream_cam.engine.litert import LiteRTExplainer

    with pytest.raises(TypeError, match="TensorFlow engine"):
        DeviceFramePath(LiteRTExplainer(lite0_tflite))
    with pytest.raises(ValueError, match="uint8 BGR frames"):
        device_path(np.zeros((1, 32, 32, 3), np.float32), np.array([[-1]]), colormap_lut("jet"), 0.4)
