"""``stream-cam export`` and exported ``.tflite`` models on LiteRT: parity with the engine, and no TensorFlow.

Parity bound for f32 files: MAP_TOLERANCE (1e-4). The exported graph is the engine's own
(BatchNorm folded), run by LiteRT's XNNPACK kernels instead of oneDNN: measured 1.2e-5 at most
here. f16 files store the weights in half precision: the maps move by up to ~1e-2 (measured), the
top class stays.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from helpers import MAP_TOLERANCE, assert_one_line_error, run, run_without_tensorflow, tiny_cnn, write_clip
from stream_cam.engine.export import EXPORTABLE, to_tflite
from stream_cam.engine.registry import CNN_METHODS
from stream_cam.engine.litert import LiteRTExplainer
from stream_cam.errors import InputError, ModelError, OutputError
from stream_cam.jobs.export import ExportOptions, run_export
from stream_cam.sources.readers import count_frames

F16_TOLERANCE = 5e-2  # measured up to 1.1e-2 on the photos below


@pytest.fixture(scope="module")
def exported(lite0_cam, lite0_tflite, tmp_path_factory) -> dict[str, Path]:
    report = run_export(lite0_cam, ExportOptions(tmp_path_factory.mktemp("edge") / "lite0_f16.tflite", precision="f16"))
    assert report.top1_engine == report.top1_exported == 285
    return {"f32": lite0_tflite, "f16": report.path}


@pytest.mark.parametrize("precision, bound", [("f32", MAP_TOLERANCE), ("f16", F16_TOLERANCE)])
def test_exported_model_matches_the_engine_on_real_photos(exported, lite0_cam, photos, precision, bound):
    litert = LiteRTExplainer(exported[precision])
    assert litert.model.input_size == (224, 224) and litert.model.labels[285] == "Egyptian cat"
    for name in ("chelsea", "coffee", "rocket"):
        for classes in (None, 285, 260):
            ours, theirs = lite0_cam(photos[name], classes), litert(photos[name], classes)
            assert np.array_equal(ours.class_indices, theirs.class_indices)
            assert np.abs(ours.heatmaps - theirs.heatmaps).max() <= bound
            assert np.abs(ours.probabilities - theirs.probabilities).max() <= bound
    # Top-k and a batch: K classes per frame, each frame alone.
    batch = np.stack([cv2.resize(photos[n], (300, 200)) for n in ("chelsea", "coffee")])
    ours, theirs = lite0_cam(batch, top_k=3), litert(batch, top_k=3)
    assert np.array_equal(ours.class_indices, theirs.class_indices)
    assert np.abs(ours.heatmaps - theirs.heatmaps).max() <= bound


@pytest.mark.parametrize("method", [m for m in EXPORTABLE if m in CNN_METHODS])  # transformers: test_transformers
def test_every_exportable_method_matches_the_engine(method, tmp_path, rng):
    from stream_cam.engine.methods import METHODS, ScoreCAM

    model = tiny_cnn(3, classes=6)
    cam = ScoreCAM(model, "last_conv", max_channels=8) if method == "scorecam" else METHODS[method](model, "last_conv")
    path = tmp_path / "m.tflite"
    path.write_bytes(to_tflite(cam))
    litert = LiteRTExplainer(path)
    assert litert.method_name == method and litert.methods == (method,)
    frames = rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    ours, theirs = cam(frames, top_k=2), litert(frames, top_k=2)
    assert np.array_equal(ours.class_indices, theirs.class_indices)
    assert np.abs(ours.heatmaps - theirs.heatmaps).max() <= MAP_TOLERANCE


def test_what_cannot_be_exported_is_refused_clearly(tmp_path, rng):
    import keras

    from stream_cam.engine.methods import GradCAM

    with pytest.raises(ModelError, match="needs an SVD"):
        run_export(__import__("stream_cam.engine.methods", fromlist=["EigenCAM"]).EigenCAM(tiny_cnn(1)),
                   ExportOptions(tmp_path / "e.tflite"))
    # A head with a hidden ReLU layer: its gradient needs TensorFlow's ReluGrad.
    keras.utils.set_random_seed(0)
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(8, 3, activation="relu", name="last_conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(16, activation="relu")(x)
    model = keras.Model(inputs, keras.layers.Dense(4)(x))
    with pytest.raises(ModelError, match="only pooling and dense layers"):
        run_export(GradCAM(model, "last_conv"), ExportOptions(tmp_path / "r.tflite"))
    assert not list(tmp_path.iterdir())  # nothing written
    # A .tflite file that stream-cam did not make.
    plain = tmp_path / "plain.tflite"
    import tensorflow as tf

    plain.write_bytes(tf.lite.TFLiteConverter.from_keras_model(tiny_cnn(2)).convert())
    with pytest.raises(ModelError, match="not made by 'stream-cam export'"):
        LiteRTExplainer(plain)


def test_a_live_view_offers_only_the_exported_method(exported):
    from stream_cam.engine.stream import ClassChoice
    from stream_cam.jobs.controls import Controls
    from stream_cam.web.state import parse_control

    litert = LiteRTExplainer(exported["f32"])
    controls = Controls([ClassChoice(5)], method=litert.method_name, methods=litert.methods)
    controls.handle_key(ord("e"))
    assert controls.method == "gradcam"
    with pytest.raises(InputError, match="this model does not offer 'layercam'; choose one of: gradcam"):
        controls.apply(parse_control({"method": "layercam"}))


# -- every command with a .tflite model, with TensorFlow out of reach ------------------------------

def test_every_command_runs_an_exported_model_without_tensorflow(exported, tmp_path):
    model = str(exported["f32"])
    write_clip(tmp_path / "clip.mp4", frames=24, fps=12)
    image = run_without_tensorflow("image", "skimage:chelsea", "--model", model, "--json", "-o", "cat.png",
                                   cwd=tmp_path)
    assert image.returncode == 0, image.stderr
    assert '"label": "Egyptian cat"' in image.stdout and (tmp_path / "cat.png").is_file()
    video = run_without_tensorflow("video", "clip.mp4", "-o", "out.mp4", "--model", model, "--results", "r.parquet",
                                   cwd=tmp_path)
    assert video.returncode == 0, video.stderr
    assert count_frames(tmp_path / "out.mp4") == 24
    live = run_without_tensorflow("live", "--source", "clip.mp4", "--no-window", "--max-frames", "20", "--model",
                                  model, "--log", "live.jsonl", "--trust", "5", "--class", "Egyptian cat",
                                  cwd=tmp_path)
    assert live.returncode == 0, live.stderr
    lines = (tmp_path / "live.jsonl").read_text().splitlines()
    assert len(lines) == 20 and all('"index": 285, "label": "Egyptian cat"' in line for line in lines[-3:])
    demo = run_without_tensorflow("demo", "-o", "demo.mp4", "--model", model, "--seconds-per-scene", "0.5",
                                  cwd=tmp_path)
    assert demo.returncode == 0, demo.stderr
    assert count_frames(tmp_path / "demo.mp4") > 0
    # What needs TensorFlow says so, in one line.
    keras_model = run_without_tensorflow("image", "skimage:chelsea", cwd=tmp_path)
    assert_one_line_error(keras_model, "TensorFlow is not installed", ".tflite")


@pytest.mark.parametrize("extra, fragment", [
    (["--layer", "block3_add"], "cannot change an exported .tflite model"),
    (["--method", "layercam"], "was exported with --method gradcam"),
    (["--preprocess", "0..1"], "cannot change an exported .tflite model"),
])
def test_flags_that_an_exported_file_fixes_are_refused(exported, tmp_path, extra, fragment):
    result = run("image", "skimage:chelsea", "--model", str(exported["f32"]), *extra, cwd=tmp_path)
    assert_one_line_error(result, fragment)


def test_export_refuses_bad_outputs_before_loading(tmp_path):
    (tmp_path / "taken.tflite").write_bytes(b"mine")
    for args, fragment in ((["-o", "x.onnx"], "NAME.tflite"), (["-o", "taken.tflite"], "exists"),
                           (["--method", "eigencam", "-o", "e.tflite"], "needs an SVD"),
                           (["--format", "savedmodel", "--precision", "f16", "-o", "sm"], "applies to --format tflite")):
        result = run("export", *args, cwd=tmp_path)
        assert_one_line_error(result, fragment)
    assert (tmp_path / "taken.tflite").read_bytes() == b"mine"


def test_an_exported_model_on_ray_writes_what_it_writes_locally(exported, tmp_path):
    import pandas as pd

    write_clip(tmp_path / "clip.mp4", frames=40, fps=12, cut_every=15)
    model = str(exported["f32"])
    local = run("video", "clip.mp4", "-o", "local.mp4", "--model", model, "--results", "local.parquet", cwd=tmp_path)
    assert local.returncode == 0, local.stderr
    ray = run("video", "clip.mp4", "-o", "ray.mp4", "--model", model, "--results", "ray.parquet", "--ray",
              "--chunk", "16", cwd=tmp_path)
    assert ray.returncode == 0, ray.stderr
    assert count_frames(tmp_path / "ray.mp4") == 40
    ours, theirs = (pd.read_parquet(tmp_path / f"{n}.parquet").sort_values("frame") for n in ("ray", "local"))
    assert ours["frame"].tolist() == list(range(40))
    assert ours["class"].tolist() == theirs["class"].tolist()
    assert (tmp_path / "ray.mp4").read_bytes() == (tmp_path / "local.mp4").read_bytes()


def test_a_savedmodel_export_serves_the_engine_for_any_method(tmp_path, photos, rng):
    """--format savedmodel keeps TensorFlow's ops: EigenCAM and heads with a ReLU export too."""
    import tensorflow as tf

    from stream_cam.engine.methods import EigenCAM

    model = tiny_cnn(4, classes=5)
    cam = EigenCAM(model, "last_conv")
    report = run_export(cam, ExportOptions(tmp_path / "served", format="savedmodel"))
    assert report.path.is_dir() and not list(tmp_path.glob(".*part*"))
    explain = tf.saved_model.load(str(report.path)).signatures["explain"]
    frame = rng.integers(0, 256, (1, 32, 32, 3), dtype=np.uint8)
    out = explain(image=tf.constant(frame), target=tf.constant([[-1]], tf.int32))
    ours = cam(frame)
    assert int(out["classes"][0, 0]) == int(ours.class_indices[0])
    assert np.abs(out["heatmaps"].numpy()[:, 0] - ours.heatmaps).max() <= MAP_TOLERANCE
    with pytest.raises(OutputError, match="exists"):
        run_export(cam, ExportOptions(report.path, format="savedmodel"))  # never over an existing folder
