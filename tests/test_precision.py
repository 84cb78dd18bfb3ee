"""--mixed-precision: the forward pass in float16/bfloat16 (both run on this CPU), the CAM's gradients,
weights and map in float32; the same top class and map as float32 on real photos, for CNNs and
transformers, for models built by name and read from files; refused where it cannot run."""

from __future__ import annotations

import json

import numpy as np
import pytest

from helpers import assert_one_line_error, run, tiny_cnn
from stream_cam.errors import InputError
from stream_cam.models.precision import check_precision


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


@pytest.mark.unit
def test_precision_names():
    assert check_precision(None) is None and check_precision("bfloat16") == "bfloat16"
    with pytest.raises(InputError, match="choose one of float16, bfloat16"):
        check_precision("int8")
    with pytest.raises(TypeError):
        check_precision(16)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def lowered():
    from stream_cam.models.loader import load_model

    return {precision: load_model("efficientnet_lite0", precision=precision) for precision in ("bfloat16", "float16")}


def test_the_forward_pass_is_lowered_and_the_weights_and_scores_stay_float32(lite0, lowered):
    for precision, model in lowered.items():
        dtypes = {layer.compute_dtype for layer in model.keras_model.layers[1:-1]}
        assert dtypes == {precision}, dtypes
        assert model.keras_model.layers[-1].compute_dtype == "float32"  # the class scores
        assert {w.dtype for w in model.keras_model.weights} == {"float32"}
        assert model.target.name == lite0.target.name and model.input_size == lite0.input_size
    # The user's model is not touched.
    assert {layer.compute_dtype for layer in lite0.keras_model.layers} == {"float32"}


@pytest.mark.parametrize("method", ["gradcam", "gradcam++", "layercam", "eigencam"])
def test_top_class_and_map_are_kept_on_real_photos(lite0, lowered, photos, method):
    from stream_cam.engine.methods import build_method

    images = np.stack([lite0.preprocess(p[None])[0] for p in photos.values()])
    targets = np.full((len(images), 1), -1, np.int32)
    reference = build_method(method, lite0).explain(images, targets)
    for precision, model in lowered.items():
        result = build_method(method, model).explain(images, targets)
        assert result.heatmaps.dtype == result.probabilities.dtype == np.float32
        assert (result.class_indices == reference.class_indices).all(), precision
        for low, full in zip(result.heatmaps, reference.heatmaps):
            # bfloat16 keeps 8 bits of mantissa: measured max difference 0.06, correlation >= 0.999.
            assert np.abs(low - full).max() < 0.1 and _correlation(low, full) > 0.99, (precision, method)


def test_a_model_read_from_a_file_is_lowered_too(tmp_path, rng):
    from stream_cam.engine.gradcam import GradCAM
    from stream_cam.models.loader import load_model

    tiny_cnn(seed=3, classes=5, size=32).save(tmp_path / "tiny.keras")
    full = load_model(tmp_path / "tiny.keras")
    low = load_model(tmp_path / "tiny.keras", precision="bfloat16")
    assert "bfloat16" in {layer.compute_dtype for layer in low.keras_model.layers}
    images = rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    a, b = GradCAM(full)(images), GradCAM(low)(images)
    assert (a.class_indices == b.class_indices).all()
    assert all(_correlation(x, y) > 0.98 for x, y in zip(a.heatmaps, b.heatmaps))


@pytest.mark.parametrize("method", ["gradcam", "relevance", "rollout"])
def test_a_transformer_runs_lowered(method):
    from test_transformers import hub_vit, photos as noise
    from stream_cam.engine.methods import METHODS
    from stream_cam.models.loaded import LoadedModel
    from stream_cam.models.precision import lower_precision

    keras_model = hub_vit()
    low = lower_precision(keras_model, "bfloat16")
    assert low.output_dense.compute_dtype == "float32" and low.backbone.compute_dtype == "bfloat16"
    full_cam, low_cam = (METHODS[method](LoadedModel.from_keras(m)) for m in (keras_model, low))
    images = noise(3, full_cam.model.input_size)
    a, b = full_cam(images, classes=[[1]] * 3), low_cam(images, classes=[[1]] * 3)
    assert b.heatmaps.dtype == np.float32 and np.isfinite(b.heatmaps).all()
    assert all(_correlation(x, y) > 0.98 for x, y in zip(a.heatmaps, b.heatmaps))


def test_the_command_runs_lowered_on_the_tensorflow_engine(tmp_path):
    result = run("image", "skimage:chelsea", "--mixed-precision", "bfloat16", "-o", "out", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["runtime"] == "tensorflow"  # LiteRT computes in float32: auto picks TensorFlow
    assert report["top"][0]["label"] == "Egyptian cat"


@pytest.mark.parametrize("command, extra", [
    ("image", []), ("video", ["clip.mp4", "-o", "o.mp4"]), ("live", ["--no-window", "--source", "clip.mp4"]),
    ("demo", ["--no-window"]), ("evaluate", []),
])
def test_refused_with_litert(command, extra, tmp_path):
    result = run(command, *extra, "--mixed-precision", "float16", "--runtime", "litert", cwd=tmp_path)
    assert_one_line_error(result, "--mixed-precision float16 runs the TensorFlow engine", "leave out --runtime litert")
    assert list(tmp_path.iterdir()) == []


def test_refused_with_a_tflite_file_and_on_export(lite0_tflite, tmp_path):
    result = run("image", "--model", str(lite0_tflite), "--mixed-precision", "bfloat16", cwd=tmp_path)
    assert_one_line_error(result, "a .tflite file runs on LiteRT in float32")
    result = run("export", "-o", "x.tflite", "--mixed-precision", "bfloat16", cwd=tmp_path)
    assert_one_line_error(result, "unrecognized arguments: --mixed-precision")
