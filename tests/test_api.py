"""The Python API as a reader of the keras.io example uses it: plain Keras models get the input
scaling they expect (or one warning), a preprocessed float batch is accepted, RGB throughout, and the
CLI's words work in load_model."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from helpers import MAP_TOLERANCE, PROBABILITY_TOLERANCE, tiny_cnn
from stream_cam.errors import InputError
from stream_cam.models.preprocessing import application_scaling


@pytest.mark.unit
@pytest.mark.parametrize("name, scaling", [
    ("xception", "-1..1"), ("mobilenetv2_1.00_224", "-1..1"), ("mobilenet_1.00_224", "-1..1"),
    ("resnet50v2", "-1..1"), ("inception_v3", "-1..1"), ("resnet50", "caffe"), ("vgg16", "caffe"),
    ("densenet121", "torch"), ("efficientnetb0", "none"), ("efficientnetv2-b0", "none"),
    ("MobileNetV3Small", "none"), ("convnext_tiny", "none"), ("efficientnet_lite0", "lite"),
    ("my_model", None), ("tiny_0", None)])
def test_keras_applications_are_recognised_by_name(name, scaling):
    assert application_scaling(name) == scaling


def test_a_plain_keras_model_gets_its_own_scaling(lite0, lite0_cam, photos):
    from stream_cam.engine.gradcam import GradCAM

    # The keras.io reader's call: the Keras model itself, raw uint8 RGB. It must see what the CLI sees.
    plain = GradCAM(lite0.keras_model)(photos["chelsea"])
    ours = lite0_cam(photos["chelsea"])
    assert int(plain.class_indices[0]) == int(ours.class_indices[0]) == 285  # Egyptian cat, not "pillow"
    np.testing.assert_allclose(plain.probabilities, ours.probabilities, atol=PROBABILITY_TOLERANCE)
    np.testing.assert_allclose(plain.heatmaps, ours.heatmaps, atol=MAP_TOLERANCE)


def test_an_unknown_model_warns_once_naming_the_argument(caplog):
    from stream_cam.engine.gradcam import GradCAM

    with caplog.at_level(logging.WARNING):
        GradCAM(tiny_cnn(seed=3))
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "preprocess=" in warnings[0].getMessage()
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        GradCAM(tiny_cnn(seed=3), preprocess="0..1")
    assert not [r for r in caplog.records if r.levelno == logging.WARNING]


def test_preprocess_takes_a_name_or_a_function(rng):
    from stream_cam.engine.gradcam import GradCAM

    model = tiny_cnn(seed=5)
    frames = rng.integers(0, 256, (3, 40, 50, 3), dtype=np.uint8)
    named = GradCAM(model, preprocess="0..1")(frames)
    function = GradCAM(model, preprocess=lambda x: x / 255.0)(frames)
    raw = GradCAM(model, preprocess="none")(frames)
    np.testing.assert_allclose(named.heatmaps, function.heatmaps, atol=1e-6)
    np.testing.assert_allclose(named.probabilities, function.probabilities, atol=1e-6)
    assert not np.allclose(named.probabilities, raw.probabilities, atol=1e-4)
    with pytest.raises(InputError, match="unknown preprocessing"):
        GradCAM(model, preprocess="imagenet")


def test_a_preprocessed_float_batch_is_taken_as_it_is(lite0, lite0_cam, photos):
    # The keras.io example passes img_array, already preprocessed: the same answer as the raw frame.
    img_array = lite0.preprocess(photos["coffee"])
    assert img_array.dtype == np.float32 and img_array.shape == (1, 224, 224, 3)
    from_float, from_pixels = lite0_cam(img_array), lite0_cam(photos["coffee"])
    np.testing.assert_allclose(from_float.heatmaps, from_pixels.heatmaps, atol=1e-6)
    np.testing.assert_allclose(lite0_cam(img_array[0].astype(np.float64)).probabilities, from_pixels.probabilities,
                               atol=1e-6)
    with pytest.raises(InputError, match="preprocessed model input shaped"):
        lite0_cam(np.zeros((1, 100, 100, 3), np.float32))


def test_a_keras_application_and_the_examples_img_array(photos):
    import cv2
    import keras

    from stream_cam.engine.gradcam import GradCAM
    from stream_cam.models.loader import load_model

    # The CLI's word for no weights; the keras.applications name gives the model's own scaling.
    model = load_model("mobilenet_v2", weights="random")
    assert model.scaling == "-1..1"
    cam = GradCAM(model.keras_model)
    assert cam.model.scaling == "-1..1"
    pixels = cv2.resize(photos["rocket"], (224, 224), interpolation=cv2.INTER_LINEAR)
    img_array = keras.applications.mobilenet_v2.preprocess_input(pixels[None].astype(np.float32))
    np.testing.assert_allclose(cam(img_array).probabilities, cam(pixels).probabilities, atol=1e-6)


def test_the_explained_class_carries_its_probability_outside_the_top_k(tiny_cam, rng):
    from stream_cam.engine.stream import ClassChoice, StreamExplainer
    from stream_cam.frames import Frame
    from stream_cam.sinks.worker import Annotated, frame_record

    image = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    probabilities = tiny_cam(image[..., ::-1]).probabilities[0]
    last = int(np.argmin(probabilities))  # ranked 8th of 8: outside a top-2 list
    explainer = StreamExplainer(tiny_cam, ClassChoice(top_k=2, classes=[last]), top_k=2)
    explanation = explainer.explain([Frame(0, image, 0.0, 0.0)])[0]
    assert last not in [c for c, _ in explanation.top]
    assert explanation.score == pytest.approx(float(probabilities[last]), abs=1e-6)
    record = frame_record(Annotated(explanation.frame.image, explanation), tiny_cam.model.label)
    assert record["explained"]["score"] == pytest.approx(float(probabilities[last]), abs=1e-6)


def test_json_output_is_only_json_even_when_keras_prints(cli, photos, tmp_path):
    import cv2

    picture = tmp_path / "cat.png"
    cv2.imwrite(str(picture), cv2.cvtColor(photos["chelsea"], cv2.COLOR_RGB2BGR))
    # Offline, Keras says "Downloading data from ..." (on stdout) before the download fails.
    code, out, err = cli("image", picture, "--model", "mobilenet_v2", "--json", "-o", tmp_path / "o.png")
    assert code == 2 and out == "" and "Downloading data from" in err and "cannot download" in err
