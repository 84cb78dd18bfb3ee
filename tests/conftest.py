"""Shared fixtures: tiny seeded Keras models, the offline ImageNet model, real photos.

No test downloads anything: the models here are built from seeds, and the
EfficientNet-Lite0 weights ship inside a pip package.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pytest

from stream_cam.tf_runtime import import_tensorflow

import_tensorflow()
import keras  # noqa: E402


def tiny_cnn(seed: int = 0, classes: int = 4, size: int = 32, activation: str | None = "softmax"):
    """A small functional CNN with seeded weights; last conv layer is 'last_conv'."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((size, size, 3), name="pixels")
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1")(inputs)
    x = keras.layers.MaxPooling2D(name="pool1")(x)
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="last_conv")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = keras.layers.Dense(classes, activation=activation, name="predictions")(x)
    return keras.Model(inputs, outputs, name=f"tiny_{seed}")


@pytest.fixture
def tiny_model():
    return tiny_cnn()


@pytest.fixture(scope="session")
def lite0():
    """The real offline ImageNet model (built once per test session)."""
    from stream_cam.models.loader import load_model

    return load_model("efficientnet_lite0")


@pytest.fixture(scope="session")
def lite0_cam(lite0):
    from stream_cam.engine.gradcam import GradCAM

    return GradCAM(lite0)


@pytest.fixture(scope="session")
def photos():
    """Real photos shipped inside scikit-image, as uint8 RGB."""
    from stream_cam.sources.images import builtin_image

    return {name: builtin_image(name) for name in ("chelsea", "coffee", "rocket")}


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def write_clip(path, frames: int = 40, fps: float = 12.0, size: tuple[int, int] = (160, 120), cut_every: int = 0):
    """A small mp4v clip panning across real photos (cat, then coffee after a cut)."""
    import cv2

    from stream_cam.sources.images import builtin_image

    photos = [cv2.cvtColor(builtin_image(n), cv2.COLOR_RGB2BGR) for n in ("chelsea", "coffee")]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    assert writer.isOpened()
    for i in range(frames):
        photo = photos[(i // cut_every) % 2] if cut_every else photos[0]
        h, w = photo.shape[:2]
        x = int((w - 300) * i / max(frames - 1, 1))
        writer.write(cv2.resize(photo[:, x:x + 300], size, interpolation=cv2.INTER_AREA))
    writer.release()
    return path


@pytest.fixture
def clip(tmp_path):
    return write_clip(tmp_path / "clip.mp4")


@pytest.fixture
def tiny_cam():
    from stream_cam.engine.gradcam import GradCAM

    return GradCAM(tiny_cnn(classes=8))
