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
