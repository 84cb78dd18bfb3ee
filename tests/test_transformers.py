"""Vision transformers: token maps for every method, attention relevance and rollout against numpy,
the models people have (keras-hub ViT and DeiT, a functional Keras ViT), and a known-answer test on a
ViT trained here, where the evidence's place is known."""

from __future__ import annotations

import json

import numpy as np
import pytest

from helpers import assert_one_line_error, run, run_without_tensorflow
from stream_cam.engine.methods import METHODS
from stream_cam.errors import ModelError
from stream_cam.models.loaded import LoadedModel

import keras_hub  # noqa: E402 - part of the test extra (pip install -e ".[test]")


def hub_vit(seed: int = 0, size: int = 64, classes: int = 4, pooling: str = "token"):
    import keras

    keras.utils.set_random_seed(seed)
    backbone = keras_hub.models.ViTBackbone(image_shape=(size, size, 3), patch_size=8, num_layers=2, num_heads=3,
                                            hidden_dim=48, mlp_dim=96, use_class_token=pooling == "token")
    return keras_hub.models.ViTImageClassifier(backbone=backbone, num_classes=classes, pooling=pooling)


def hub_deit(seed: int = 0):
    import keras

    keras.utils.set_random_seed(seed)
    backbone = keras_hub.models.DeiTBackbone(image_shape=(32, 32, 3), patch_size=8, num_layers=2, num_heads=2,
                                             hidden_dim=16, intermediate_dim=32)
    return keras_hub.models.DeiTImageClassifier(backbone=backbone, num_classes=3)


def functional_vit(seed: int = 0):
    """A plain Keras ViT: Conv2D patches, two blocks of MultiHeadAttention, mean pooling, softmax."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((48, 32, 3))
    x = layers.Reshape((12 * 8, 16))(layers.Conv2D(16, 4, strides=4, name="patches")(inputs))  # 12x8 grid
    for i in range(2):
        y = layers.MultiHeadAttention(2, 8, name=f"attention_{i}")(layers.LayerNormalization()(x),
                                                                    layers.LayerNormalization()(x))
        x = layers.Add()([x, y])
        x = layers.Add()([x, layers.Dense(16)(layers.Dense(32, activation="gelu")(layers.LayerNormalization()(x)))])
    outputs = layers.Dense(5, activation="softmax")(layers.GlobalAveragePooling1D()(x))
    return keras.Model(inputs, outputs, name="functional_vit")


def hub_swin(seed: int = 0):
    """A small keras-hub Swin: windowed attention, patch merging (16x16 -> 8x8 tokens), GAP head."""
    import keras

    keras.utils.set_random_seed(seed)
    backbone = keras_hub.models.SwinTransformerBackbone(image_shape=(64, 64, 3), patch_size=4, embed_dim=16,
                                                        depths=[1, 1], num_heads=[2, 2], window_size=4)
    return keras_hub.models.SwinTransformerImageClassifier(backbone=backbone, num_classes=3)


def photos(n: int, shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (n, *shape, 3), dtype=np.uint8)


@pytest.mark.parametrize("build, grid, prefix, pooling", [
    (hub_vit, (8, 8), 1, "token"), (hub_deit, (4, 4), 2, "token"), (functional_vit, (12, 8), 0, "mean"),
], ids=["keras-hub ViT", "keras-hub DeiT", "functional ViT"])
def test_token_layout_is_read_from_the_model(build, grid, prefix, pooling):
    model = LoadedModel.from_keras(build())
    assert model.is_transformer
    assert (model.tokens.grid, model.tokens.prefix, model.tokens.pooling) == (grid, prefix, pooling)
    assert len(model.tokens.attention) == 2


# Grad-CAM++'s closed form and Score-CAM's masks assume activations >= 0 (a CNN's ReLU outputs); a
# transformer's tokens come out of LayerNorm, signed, and their maps can be empty (README, Transformers).
ASSUME_NON_NEGATIVE = {"gradcam++", "scorecam"}


@pytest.mark.parametrize("build", [hub_vit, hub_deit, functional_vit], ids=["ViT", "DeiT", "functional"])
@pytest.mark.parametrize("method", list(METHODS))
def test_every_method_runs_on_a_transformer(build, method):
    model = LoadedModel.from_keras(build())
    cam = METHODS[method](model)
    images = photos(3, model.input_size)
    result = cam(images, classes=[[0, 1]] * 3)
    assert result.heatmaps.shape == (3, 2, *model.tokens.grid)
    assert np.isfinite(result.heatmaps).all()
    if method not in ASSUME_NON_NEGATIVE:
        assert (result.heatmaps.reshape(6, -1).max(axis=1) > 0).all()  # never an all-zero map
    assert cam.methods[-2:] == ("relevance", "rollout")


def test_swin_is_explained_on_its_last_stage():
    model = LoadedModel.from_keras(hub_swin())
    assert model.is_transformer and not model.attends  # windowed attention: the CAM family only
    assert (model.tokens.grid, model.tokens.prefix, model.tokens.pooling) == ((8, 8), 0, "mean")
    assert model.tokens.output_of is model.keras_model.backbone.get_layer("norm")
    with pytest.raises(ModelError, match="windowed attention"):
        METHODS["relevance"](model)


@pytest.mark.parametrize("method", [m for m in METHODS if m not in ("relevance", "rollout")])
def test_every_cam_method_runs_on_swin(method):
    model = LoadedModel.from_keras(hub_swin())
    cam = METHODS[method](model)
    result = cam(photos(2, (64, 64), seed=3), classes=[[0, 2]] * 2)
    assert result.heatmaps.shape == (2, 2, 8, 8) and np.isfinite(result.heatmaps).all()
    if method not in ASSUME_NON_NEGATIVE:
        assert (result.heatmaps.reshape(4, -1).max(axis=1) > 0).all()
    assert "relevance" not in cam.methods


def test_swin_gradcam_matches_the_textbook_computation():
    """Grad-CAM on Swin's last stage, computed straight from the backbone's tokens with a GradientTape."""
    import tensorflow as tf

    clf = hub_swin(seed=4)
    images = photos(2, (64, 64), seed=5)
    x = tf.constant(images.astype(np.float32))
    with tf.GradientTape() as tape:
        tokens = clf.backbone(x, training=False)  # (N, 64, C)
        tape.watch(tokens)
        logits = clf.get_layer("predictions")(tf.reduce_mean(tokens, axis=1))
        score = tf.reduce_sum(logits * tf.one_hot([1, 1], 3), axis=1)
    np.testing.assert_allclose(logits.numpy(), clf(x, training=False).numpy(), atol=1e-5)  # the head is GAP+Dense
    grads, tokens = tape.gradient(score, tokens).numpy(), tokens.numpy()
    weights = grads.mean(axis=1)  # (N, C): Grad-CAM's channel weights, averaged over the grid
    expected = np.maximum(np.einsum("ntc,nc->nt", tokens, weights), 0).reshape(2, 8, 8)
    expected /= expected.max(axis=(1, 2), keepdims=True)
    got = METHODS["gradcam"](LoadedModel.from_keras(clf))(images, classes=[[1]] * 2).heatmaps[:, 0]
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_the_python_api_takes_a_vit():
    import stream_cam

    clf = hub_vit(seed=2)
    image = photos(1, (64, 64))[0]
    for cam in (stream_cam.GradCAM(clf), stream_cam.AttentionRelevance(clf), stream_cam.AttentionRollout(clf)):
        result = cam(image)
        assert result.heatmaps.shape == (1, 8, 8) and result.heatmaps.max() == pytest.approx(1.0)


def test_the_transformer_methods_refuse_a_cnn(tiny_model):
    with pytest.raises(ModelError, match="attention"):
        METHODS["relevance"](tiny_model)
    assert "relevance" not in METHODS["gradcam"](tiny_model).methods


def _attention_and_gradients(clf, images, classes):
    """The attention probabilities and the gradients of each class's logit, read straight from TensorFlow."""
    import tensorflow as tf

    from stream_cam.models.tokens import AttentionRecorder, attention_layers

    x = tf.constant(images.astype(np.float32))
    with tf.GradientTape() as tape:
        with AttentionRecorder(attention_layers(clf)) as seen:
            logits = clf(x, training=False)
        score = tf.reduce_sum(logits * tf.one_hot(classes, logits.shape[-1]), axis=1)
    grads = tape.gradient(score, seen.probabilities)
    return [a.numpy() for a in seen.probabilities], [g.numpy() for g in grads]


def _scaled(rows: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    rows = rows - rows.min(axis=1, keepdims=True)
    rows = np.maximum(rows, 0)
    return (rows / np.where(rows.max(axis=1, keepdims=True) > 0, rows.max(axis=1, keepdims=True), 1)).reshape(
        -1, *grid)


def test_relevance_matches_a_numpy_implementation():
    clf = hub_vit(seed=3)
    images = photos(4, (64, 64), seed=1)
    classes = np.array([0, 1, 2, 3])
    attention, grads = _attention_and_gradients(clf, images, classes)
    tokens = attention[0].shape[-1]
    relevance = np.repeat(np.eye(tokens)[None], len(images), axis=0)
    for a, g in zip(attention, grads):  # Chefer et al. 2021, written out
        relevance = relevance + np.einsum("nij,njk->nik", np.maximum(g * a, 0).mean(axis=1), relevance)
    expected = _scaled(relevance[:, 0, 1:], (8, 8))
    got = METHODS["relevance"](clf)(images, classes=classes.tolist()).heatmaps
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_rollout_matches_a_numpy_implementation():
    clf = hub_vit(seed=4)
    images = photos(3, (64, 64), seed=2)
    attention, _ = _attention_and_gradients(clf, images, np.zeros(3, int))
    tokens = attention[0].shape[-1]
    rollout = np.repeat(np.eye(tokens)[None], len(images), axis=0)
    for a in attention:  # Abnar & Zuidema 2020, written out
        mixed = 0.5 * a.mean(axis=1) + 0.5 * np.eye(tokens)
        rollout = np.einsum("nij,njk->nik", mixed / mixed.sum(axis=-1, keepdims=True), rollout)
    expected = _scaled(rollout[:, 0, 1:], (8, 8))
    result = METHODS["rollout"](clf)(images, classes=[1, 2, 3])
    np.testing.assert_allclose(result.heatmaps, expected, atol=1e-5)


# -- a known answer: the class is where the red disk is ----------------------------------------------

def quadrant_scenes(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int]]]:
    """64x64 images on dim noise: a red disk whose quadrant is the class, and a blue disk anywhere else
    (its place says nothing about the class)."""
    import cv2

    rng = np.random.default_rng(seed)
    images = rng.integers(0, 40, (n, 64, 64, 3)).astype(np.uint8)
    classes = rng.integers(0, 4, n)
    centres = []
    for image, quadrant in zip(images, classes):
        red = (int((quadrant % 2) * 32 + rng.integers(9, 23)), int((quadrant // 2) * 32 + rng.integers(9, 23)))
        while True:
            blue = (int(rng.integers(7, 57)), int(rng.integers(7, 57)))
            if np.hypot(blue[0] - red[0], blue[1] - red[1]) > 16:
                break
        cv2.circle(image, blue, 7, (40, 40, 255), -1)
        cv2.circle(image, red, 7, (255, 40, 40), -1)
        centres.append(red)
    return images, classes, centres


@pytest.fixture(scope="module")
def trained_vit():
    """A keras-hub ViT trained here on the quadrant task (about a minute on 2 cores)."""
    import keras

    images, classes, _ = quadrant_scenes(2000, seed=0)
    clf = hub_vit(seed=0)
    clf.compile(optimizer=keras.optimizers.Adam(1e-3),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    clf.fit(images.astype(np.float32) / 127.5 - 1, classes, epochs=8, batch_size=64, verbose=0)
    return LoadedModel.from_keras(clf, scaling="-1..1", labels=["top left", "top right", "bottom left",
                                                               "bottom right"], name="quadrants")


def on_evidence(heatmaps: np.ndarray, images: np.ndarray) -> float:
    """Share of maps whose hottest patch holds red-disk pixels."""
    hits = 0
    for heat, image in zip(heatmaps, images):
        row, col = np.unravel_index(np.argmax(heat), heat.shape)
        cell = image[row * 8:(row + 1) * 8, col * 8:(col + 1) * 8]
        hits += bool(((cell[..., 0] > 200) & (cell[..., 2] < 100)).any())
    return hits / len(images)


def test_the_default_method_points_at_the_evidence(trained_vit):
    from stream_cam.engine.registry import default_method

    images, classes, _ = quadrant_scenes(200, seed=99)  # unseen
    result = METHODS["gradcam"](trained_vit)(images)
    assert (result.class_indices == classes).mean() >= 0.95  # the model learnt the task
    scores = {name: on_evidence(METHODS[name](trained_vit)(images, classes=classes.tolist()).heatmaps, images)
              for name in ("rollout", "relevance", "gradcam", "layercam")}
    print("peak on the evidence:", {k: round(v, 2) for k, v in scores.items()})
    assert scores[default_method(True)] >= 0.9
    assert scores["relevance"] > scores["gradcam"]  # the usual recipe is the weakest


def test_relevance_is_class_specific_and_rollout_is_not(trained_vit):
    images, classes, _ = quadrant_scenes(40, seed=7)
    wrong = ((classes + 1) % 4).tolist()

    def correlation(name: str) -> float:
        cam = METHODS[name](trained_vit)
        right, other = cam(images, classes=classes.tolist()).heatmaps, cam(images, classes=wrong).heatmaps
        return float(np.mean([np.corrcoef(a.ravel(), b.ravel())[0, 1] for a, b in zip(right, other)]))

    assert correlation("rollout") > 0.999  # the same map whatever the class
    assert correlation("relevance") < 0.6


# -- the models people have, through the CLI ---------------------------------------------------------

@pytest.mark.slow  # over 15 s measured on 2 cores
def test_a_keras_hub_file_loads_and_explains_through_the_cli(tmp_path):
    import cv2

    clf = hub_vit(seed=5)
    clf.save(tmp_path / "vit.keras")
    image = photos(1, (64, 64))[0]
    cv2.imwrite(str(tmp_path / "scene.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    result = run("image", "scene.png", "--model", "vit.keras", "--json", "-o", "out", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout.splitlines()[0])
    assert record["method"] == "rollout" and len(record["explained"][0]["peak_xy"]) == 2
    assert (tmp_path / "out").is_dir() and any((tmp_path / "out").iterdir())
    refused = run("image", "scene.png", "--model", "vit.keras", "--layer", "mha", cwd=tmp_path)
    assert_one_line_error(refused, "transformer")


def test_a_hub_preset_offline_says_so(tmp_path):
    result = run("image", "skimage:chelsea", "--model", "hub:vit_base_patch16_224_imagenet", cwd=tmp_path,
                 env={"KAGGLE_API_ENDPOINT": "http://127.0.0.1:9"}, timeout=300)
    assert_one_line_error(result, "cannot download the keras-hub preset", "no network")


# -- LiteRT: a transformer's explainer, gradients included, runs on LiteRT's built-in ops -----------

@pytest.mark.parametrize("build, method", [
    (hub_vit, "relevance"), (hub_vit, "gradcam"), (hub_deit, "relevance"), (functional_vit, "rollout"),
    (hub_swin, "gradcam"),
], ids=["ViT relevance", "ViT gradcam", "DeiT relevance", "functional rollout", "Swin gradcam"])
def test_a_transformer_exports_to_litert_and_matches_the_engine(build, method, tmp_path):
    from stream_cam.engine.export import to_tflite
    from stream_cam.engine.litert import LiteRTExplainer

    model = LoadedModel.from_keras(build())
    cam = METHODS[method](model)
    path = tmp_path / "explainer.tflite"
    path.write_bytes(to_tflite(cam))  # StridedSliceGrad and Erfc (exact GELU) would refuse this
    exported = LiteRTExplainer(path)
    for image in photos(3, model.input_size, seed=11):
        ours, theirs = cam(image), exported(image)
        assert theirs.class_indices.tolist() == ours.class_indices.tolist()
        np.testing.assert_allclose(theirs.heatmaps, ours.heatmaps, atol=1e-4)
        assert theirs.heatmaps.max() == pytest.approx(1.0)


def test_the_export_leaves_the_engine_and_tensorflow_as_they_were():
    import tensorflow as tf
    from tensorflow.python.framework import ops

    from stream_cam.engine.export import to_tflite

    gelu, gradient = tf.nn.gelu, ops._gradient_registry.lookup("StridedSlice")
    to_tflite(METHODS["gradcam"](LoadedModel.from_keras(functional_vit())))
    assert tf.nn.gelu is gelu and ops._gradient_registry.lookup("StridedSlice") is gradient


def test_an_exported_vit_runs_every_command_without_tensorflow(tmp_path):
    hub_vit(seed=1).save(tmp_path / "vit.keras")
    export = run("export", "--model", "vit.keras", "-o", "vit.tflite", cwd=tmp_path)
    assert export.returncode == 0, export.stderr
    assert "rollout" in export.stdout + export.stderr  # the transformer default, said
    image = run_without_tensorflow("image", "skimage:chelsea", "--model", "vit.tflite", "--json", "-o", "v.png",
                                   cwd=tmp_path)
    assert image.returncode == 0, image.stderr
    assert json.loads(image.stdout)["method"] == "rollout" and (tmp_path / "v.png").is_file()
    refused = run_without_tensorflow("image", "skimage:chelsea", "--model", "vit.tflite", "--method", "gradcam",
                                     cwd=tmp_path)
    assert_one_line_error(refused, "was exported with --method rollout")


# -- everywhere a CNN works: video, live (async, motion, two sources), evaluate, the browser view --

@pytest.fixture(scope="module")
def vit_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("vit")
    hub_vit(seed=3).save(folder / "vit.keras")
    return folder / "vit.keras"


@pytest.mark.slow  # over 15 s measured on 2 cores
def test_a_vit_runs_video_live_and_evaluate(vit_file, tmp_path):
    from helpers import write_clip
    from stream_cam.sources.readers import count_frames

    write_clip(tmp_path / "clip.mp4", frames=16, fps=8)
    model = str(vit_file)
    video = run("video", "clip.mp4", "-o", "out.mp4", "--model", model, "--method", "relevance", cwd=tmp_path)
    assert video.returncode == 0, video.stderr
    assert count_frames(tmp_path / "out.mp4") == 16
    live = run("live", "--source", "clip.mp4", "--source", "clip.mp4", "--no-window", "--max-frames", "12",
               "--model", model, "--motion", "flow", "--log", "live.jsonl", cwd=tmp_path, env={"DISPLAY": ""})
    assert live.returncode == 0, live.stderr
    lines = [json.loads(line) for line in (tmp_path / "live.jsonl").read_text().splitlines()]
    assert len(lines) >= 12 and {line["method"] for line in lines} == {"rollout"}  # the transformer default
    evaluate = run("evaluate", "clip.mp4", "--model", model, "--method", "all", "--json", "--every", "4",
                   cwd=tmp_path)
    assert evaluate.returncode == 0, evaluate.stderr
    assert {"relevance", "rollout", "gradcam"} <= set(evaluate.stdout.replace('"', " ").split())


@pytest.mark.browser
def test_the_page_of_a_vit_offers_and_switches_the_attention_methods(vit_file, tmp_path):
    from helpers import free_port, get, post, start, viewer_page, wait_for_server, wait_until

    port = free_port()
    proc = start("demo", "--no-window", "--serve", f"127.0.0.1:{port}", "--model", str(vit_file), cwd=tmp_path,
                 env={"DISPLAY": ""})
    base = f"http://127.0.0.1:{port}/"
    try:
        wait_for_server(base, proc)
        state = json.loads(get(base + "state")[1])
        assert state["method"] == "rollout" and {"relevance", "rollout", "gradcam"} <= set(state["methods"])
        with viewer_page(base) as page:
            page.wait_for_function("() => document.getElementById('method').value === 'rollout'", timeout=30000)
            page.select_option("#method", "relevance")
            # The page's choice reaches the run (it switches once the new method is compiled).
            wait_until(lambda: json.loads(get(base + "state")[1])["method"] == "relevance", 60,
                       "the switch to relevance")
            page.screenshot(path=str(tmp_path / "vit_page.png"))
        assert post(base + "control", {"method": "eigencam"})[0] == 200  # the CAM family is offered too
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
