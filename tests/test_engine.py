"""The compiled Grad-CAM engine: parity with keras.io, safety, batching, model shapes."""

from __future__ import annotations

import warnings

import keras
import numpy as np
import pytest

from helpers import MAP_TOLERANCE, tiny_cnn
import reference_cams
from reference_keras_io import make_gradcam_heatmap, without_softmax
from stream_cam.engine.gradcam import GradCAM, GradCAMPlusPlus
from stream_cam.errors import InputError, ModelError
from stream_cam.models.loaded import LoadedModel


def reference(model, x, layer, index=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the example passes a bare tensor to a list-input model
        return make_gradcam_heatmap(x, without_softmax(model), layer, index)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_parity_with_keras_io_on_seeded_model(seed, rng):
    model = tiny_cnn(seed)
    x = rng.uniform(-1, 1, (1, 32, 32, 3)).astype(np.float32)
    cam = GradCAM(model, "last_conv")
    for index in (None, 0, 3):
        expected = reference(model, x, "last_conv", index)
        targets = [[-1]] if index is None else [[index]]
        ours = cam.explain(x, targets).heatmaps[0, 0]
        if np.isnan(expected).all():
            assert (ours == 0).all()
        else:
            assert np.abs(ours - expected).max() <= MAP_TOLERANCE


def test_parity_with_keras_io_on_efficientnet_lite0(lite0, lite0_cam, photos):
    x = lite0.preprocess(photos["chelsea"])
    for index in (None, 285, 260):
        expected = reference(lite0.keras_model, x, "head_activation", index)
        targets = [[-1]] if index is None else [[index]]
        ours = lite0_cam.explain(x, targets).heatmaps[0, 0]
        assert np.abs(ours - expected).max() <= MAP_TOLERANCE


def test_user_model_is_not_mutated(tiny_model, rng):
    x = rng.uniform(0, 255, (2, 32, 32, 3)).astype(np.uint8)
    before = tiny_model.predict(x.astype(np.float32), verbose=0)
    cam = GradCAM(tiny_model)
    cam(x)
    assert tiny_model.layers[-1].activation.__name__ == "softmax"
    np.testing.assert_allclose(tiny_model.predict(x.astype(np.float32), verbose=0), before, atol=1e-6)


def test_prediction_and_heatmap_from_one_call(tiny_model, rng):
    x = rng.uniform(0, 255, (3, 32, 32, 3)).astype(np.uint8)
    result = GradCAM(tiny_model)(x)
    expected = tiny_model.predict(x.astype(np.float32), verbose=0)
    np.testing.assert_allclose(result.probabilities, expected, atol=1e-5)
    np.testing.assert_array_equal(result.class_indices, expected.argmax(-1))
    assert result.heatmaps.shape == (3, 16, 16) and result.heatmaps.dtype == np.float32
    assert result.heatmaps.min() >= 0 and result.heatmaps.max() <= 1


def test_logit_explained_with_or_without_softmax(rng):
    x = rng.uniform(-1, 1, (2, 32, 32, 3)).astype(np.float32)
    with_softmax = tiny_cnn(5, activation="softmax")
    linear = tiny_cnn(5, activation=None)
    a = GradCAM(with_softmax).explain(x, [[1], [2]])
    b = GradCAM(linear).explain(x, [[1], [2]])
    np.testing.assert_allclose(a.heatmaps, b.heatmaps, atol=MAP_TOLERANCE)
    np.testing.assert_allclose(a.probabilities, b.probabilities, atol=1e-6)


def test_separate_softmax_activation_layer(rng):
    keras.utils.set_random_seed(3)
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, name="c")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    logits = keras.layers.Dense(3, name="d")(x)
    model = keras.Model(inputs, keras.layers.Softmax()(logits))
    plain = keras.Model(inputs, logits)
    data = rng.uniform(-1, 1, (1, 16, 16, 3)).astype(np.float32)
    np.testing.assert_allclose(GradCAM(model).explain(data, [[2]]).heatmaps,
                               GradCAM(plain).explain(data, [[2]]).heatmaps, atol=MAP_TOLERANCE)


def test_nan_safe_when_map_is_all_negative(rng):
    # Dead activations: the map's maximum is 0, the example divides 0 by 0 (NaN); we give zeros.
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(2, 3, padding="same", activation="relu", name="conv",
                            kernel_initializer="zeros", bias_initializer="zeros")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(2, kernel_initializer="ones")(x)
    model = keras.Model(inputs, outputs)
    data = np.ones((1, 8, 8, 3), np.float32)
    expected = reference(model, data, "conv", 0)
    assert np.isnan(expected).all()
    ours = GradCAM(model).explain(data, [[0]]).heatmaps
    assert np.isfinite(ours).all() and (ours == 0).all()


def test_tiny_logits_are_not_swamped(rng):
    # Random-weight models have tiny logits: a fixed epsilon would flatten the map.
    model = tiny_cnn(7)
    model.get_layer("predictions").set_weights([w * 1e-6 for w in model.get_layer("predictions").get_weights()])
    x = rng.uniform(-1, 1, (1, 32, 32, 3)).astype(np.float32)
    heat = GradCAM(model).explain(x, [[0]]).heatmaps
    assert heat.max() == pytest.approx(1.0)


def test_batch_equals_single(lite0_cam, photos):
    frames = [photos["chelsea"], photos["coffee"], photos["rocket"]]
    singles = [lite0_cam.explain(lite0_cam.model.preprocess(f), [[-1]]) for f in frames]
    x = np.concatenate([lite0_cam.model.preprocess(f) for f in frames])
    together = lite0_cam.explain(x, [[-1]] * 3)
    for i, single in enumerate(singles):
        np.testing.assert_allclose(together.heatmaps[i], single.heatmaps[0], atol=MAP_TOLERANCE)
        np.testing.assert_allclose(together.probabilities[i], single.probabilities[0], atol=1e-5)


def test_top_k_and_per_image_classes(tiny_model, rng):
    cam = GradCAM(tiny_model)
    x = rng.uniform(0, 255, (2, 32, 32, 3)).astype(np.uint8)
    top = cam(x, top_k=3)
    assert top.heatmaps.shape == (2, 3, 16, 16)
    np.testing.assert_array_equal(top.class_indices, top.top_indices(3))
    # Each top-k map equals the map computed for that class alone.
    for j in range(3):
        alone = cam(x, classes=top.class_indices[:, j])
        np.testing.assert_allclose(alone.heatmaps, top.heatmaps[:, j], atol=MAP_TOLERANCE)
    per_image = cam(x, classes=[1, 2])
    np.testing.assert_array_equal(per_image.class_indices, [1, 2])
    with pytest.raises(InputError, match="out of range"):
        cam(x, classes=4)
    with pytest.raises(InputError, match="top_k"):
        cam(x, top_k=0)


def test_any_frame_size_is_resized(tiny_model, rng):
    cam = GradCAM(tiny_model)
    small = cam(rng.integers(0, 255, (5, 7, 3), dtype=np.uint8))
    large = cam(rng.integers(0, 255, (480, 640, 3), dtype=np.uint8))
    assert small.heatmaps.shape == large.heatmaps.shape == (1, 16, 16)
    with pytest.raises(InputError, match="uint8"):
        cam(np.zeros((32, 32, 3), np.int16))
    # A float array is preprocessed model input (the keras.io example's img_array): at the input size only.
    assert cam(np.zeros((32, 32, 3), np.float32)).heatmaps.shape == (1, 16, 16)
    with pytest.raises(InputError, match="preprocessed model input"):
        cam(np.zeros((480, 640, 3), np.float32))
    with pytest.raises(InputError, match="RGB"):
        cam(np.zeros((32, 32), np.uint8))


def test_layer_auto_detection_and_errors(tiny_model):
    assert LoadedModel.from_keras(tiny_model).layer_name == "last_conv"
    assert LoadedModel.from_keras(tiny_model, "conv1").layer_name == "conv1"
    with pytest.raises(ModelError, match="no layer named 'nope'.*last_conv"):
        LoadedModel.from_keras(tiny_model, "nope")
    with pytest.raises(ModelError, match="not 4-D"):
        LoadedModel.from_keras(tiny_model, "gap")


def test_layer_auto_detection_stops_at_global_pooling():
    # MobileNetV3 pools with keepdims (1x1x C 4-D maps after pooling): those must not be picked.
    model = keras.applications.MobileNetV3Small(weights=None, input_shape=(96, 96, 3))
    info = LoadedModel.from_keras(model).target
    assert info.shape[1] > 1 and info.shape[2] > 1


def test_sequential_models(rng):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((32, 32, 3)),
        keras.layers.Conv2D(8, 3, activation="relu", name="conv"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(3, activation="softmax"),
    ])
    x = rng.uniform(-1, 1, (1, 32, 32, 3)).astype(np.float32)
    ours = GradCAM(model).explain(x, [[1]]).heatmaps[0, 0]
    # The example itself fails on a Keras 3 Sequential ("never been called"): give it a functional view.
    expected = reference(keras.Model(model.inputs[0], model.outputs[0]), x, "conv", 1)
    assert np.abs(ours - expected).max() <= MAP_TOLERANCE
    unbuilt = keras.Sequential([keras.layers.Conv2D(4, 3), keras.layers.GlobalAveragePooling2D(),
                                keras.layers.Dense(2)])
    with pytest.raises(ModelError, match="no input shape"):
        GradCAM(unbuilt)


def nested_transfer_model(seed: int = 0):
    """A keras.applications base inside a user's model: 'Graph disconnected' for other tools."""
    keras.utils.set_random_seed(seed)
    base = keras.applications.MobileNetV2(weights=None, include_top=False, input_shape=(96, 96, 3),
                                          alpha=0.35)
    inputs = keras.Input((96, 96, 3))
    x = base(inputs, training=False)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(5, activation="softmax", name="head")(x)
    return keras.Model(inputs, outputs), base


def test_nested_transfer_learning_model(rng):
    model, base = nested_transfer_model()
    x = rng.uniform(-1, 1, (2, 96, 96, 3)).astype(np.float32)
    cam = GradCAM(model)
    assert cam.model.layer_name == f"{base.name}/out_relu"
    result = cam.explain(x, [[-1], [3]])
    assert result.heatmaps.shape == (2, 1, 3, 3)
    np.testing.assert_allclose(result.probabilities, model.predict(x, verbose=0), atol=1e-5)
    # Equal to Grad-CAM computed by hand on the same nested graph.
    import tensorflow as tf

    head = model.get_layer("head")
    with tf.GradientTape() as tape:
        acts = base(x[:1], training=False)
        tape.watch(acts)
        pooled = keras.layers.GlobalAveragePooling2D()(acts)
        logits = tf.matmul(pooled, head.kernel) + head.bias
        score = logits[:, int(result.class_indices[0, 0])]
    grads = tape.gradient(score, acts)
    manual = tf.nn.relu(tf.einsum("nhwc,c->nhw", acts, tf.reduce_mean(grads[0], axis=(0, 1))))[0].numpy()
    manual = manual / manual.max() if manual.max() > 0 else manual
    assert np.abs(result.heatmaps[0, 0] - manual).max() <= MAP_TOLERANCE
    # An inner layer can be named with or without its model's prefix.
    assert GradCAM(model, "block_16_project").model.layer_name == f"{base.name}/block_16_project"


def test_gradcam_plus_plus_gives_valid_maps(lite0, photos):
    result = GradCAMPlusPlus(lite0)(photos["chelsea"])
    heat = result.heatmaps[0]
    assert np.isfinite(heat).all() and heat.max() == pytest.approx(1.0) and heat.min() >= 0


@pytest.mark.parametrize("seed", [0, 1])
def test_gradcam_plus_plus_matches_an_independent_implementation_on_seeded_models(seed, rng):
    model = tiny_cnn(seed, classes=6, activation=None)
    x = rng.uniform(-1, 1, (3, 32, 32, 3)).astype(np.float32)
    for index in (0, 4):
        activations, grads = reference_cams.activations_and_gradients(model, x, "last_conv", index)
        expected = reference_cams.gradcam_plus_plus(activations, grads)
        ours = GradCAMPlusPlus(model, "last_conv").explain(x, np.full((3, 1), index)).heatmaps[:, 0]
        assert np.abs(ours - expected).max() <= MAP_TOLERANCE


def test_gradcam_plus_plus_matches_an_independent_implementation_on_lite0(lite0, photos):
    cam = GradCAMPlusPlus(lite0)
    for name, index in (("chelsea", 285), ("coffee", 967), ("chelsea", 260)):
        x = lite0.preprocess(photos[name])
        activations, grads = reference_cams.activations_and_gradients(lite0.keras_model, x, "head_activation", index)
        expected = reference_cams.gradcam_plus_plus(activations, grads)
        ours = cam.explain(x, [[index]]).heatmaps[:, 0]
        assert np.abs(ours - expected).max() <= MAP_TOLERANCE
        # The bound tells the methods apart: Grad-CAM's map of the same class is far from this one.
        assert np.abs(reference_cams.gradcam(activations, grads) - expected).max() > 1e-2


def test_non_image_model_is_refused():
    inputs = keras.Input((10,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    with pytest.raises(ModelError, match="image model"):
        GradCAM(model)


def test_subclassed_model_is_refused_clearly():
    class Subclassed(keras.Model):
        def __init__(self):
            super().__init__()
            self.conv = keras.layers.Conv2D(2, 3)
            self.pool = keras.layers.GlobalAveragePooling2D()
            self.dense = keras.layers.Dense(2)

        def call(self, x):
            return self.dense(self.pool(self.conv(x)))

    model = Subclassed()
    model(np.zeros((1, 8, 8, 3), np.float32))
    with pytest.raises(ModelError, match="subclassed"):
        GradCAM(model)


def _bn_model(seed: int):
    """Every foldable conv type, with and without bias, and BNs with odd settings."""
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", use_bias=True)(inputs)
    x = keras.layers.BatchNormalization(epsilon=1e-3)(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same", depth_multiplier=2, use_bias=False)(x)
    x = keras.layers.BatchNormalization(center=False)(x)
    y = keras.layers.SeparableConv2D(6, 3, padding="same", depth_multiplier=2, name="sep")(x)
    y = keras.layers.BatchNormalization(scale=False, name="sep_bn")(y)
    shortcut = keras.layers.Conv2D(6, 1, name="shortcut")(x)  # x feeds two layers: not folded
    x = keras.layers.Activation("relu", name="target")(keras.layers.Add()([y, shortcut]))
    outputs = keras.layers.Dense(3, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, outputs)
    for layer in model.layers:  # non-trivial running statistics
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.moving_mean.shape[0]
            layer.moving_mean.assign(rng.normal(0, 0.5, n).astype("float32"))
            layer.moving_variance.assign(rng.uniform(0.2, 2.0, n).astype("float32"))
    return model


def test_batchnorm_folding_keeps_results_and_removes_batchnorm(rng):
    model = _bn_model(0)
    x = rng.uniform(-1, 1, (3, 16, 16, 3)).astype(np.float32)
    folded = GradCAM(model, fold_batchnorm=True)
    plain = GradCAM(model, fold_batchnorm=False)
    assert not any(isinstance(l, keras.layers.BatchNormalization) for l in folded._cam_model.layers)
    assert sum(isinstance(l, keras.layers.BatchNormalization) for l in plain._cam_model.layers) == 3
    a, b = folded.explain(x, [[0, 1, 2]] * 3), plain.explain(x, [[0, 1, 2]] * 3)
    np.testing.assert_allclose(a.probabilities, b.probabilities, atol=1e-5)
    np.testing.assert_allclose(a.heatmaps, b.heatmaps, atol=MAP_TOLERANCE)
    np.testing.assert_allclose(a.probabilities, model.predict(x, verbose=0), atol=1e-5)


def test_target_batchnorm_is_not_folded(rng):
    model = _bn_model(1)
    cam = GradCAM(model, "sep_bn")
    names = {l.name for l in cam._cam_model.layers}
    assert "sep_bn" in names and "sep" in names


def test_rank_targets_beyond_k(tiny_model, rng):
    # The live view's "explain rank 3" asks for one map of the third class.
    cam = GradCAM(tiny_model)
    x = rng.uniform(-1, 1, (2, 32, 32, 3)).astype(np.float32)
    top3 = cam.explain(x, [[-1, -2, -3]] * 2)
    third = cam.explain(x, [[-3]] * 2)
    np.testing.assert_array_equal(third.class_indices[:, 0], top3.class_indices[:, 2])
    np.testing.assert_allclose(third.heatmaps[:, 0], top3.heatmaps[:, 2], atol=MAP_TOLERANCE)
    with pytest.raises(InputError, match="out of range"):
        cam.explain(x, [[-6]] * 2)


# -- the CAM family against independent implementations --------------------------------------

GRADIENT_METHODS = [("xgradcam", reference_cams.xgradcam), ("layercam", reference_cams.layercam),
                    ("hirescam", reference_cams.hirescam), ("gradcam++", reference_cams.gradcam_plus_plus),
                    ("gradcam", reference_cams.gradcam)]


@pytest.mark.parametrize("name, reference_map", GRADIENT_METHODS, ids=[m for m, _ in GRADIENT_METHODS])
def test_gradient_methods_match_their_published_formulas(name, reference_map, lite0, photos, rng):
    from stream_cam.engine.methods import METHODS

    seeded = tiny_cnn(3, classes=6, activation=None)
    x = rng.uniform(-1, 1, (3, 32, 32, 3)).astype(np.float32)
    activations, grads = reference_cams.activations_and_gradients(seeded, x, "last_conv", 4)
    ours = METHODS[name](seeded, "last_conv").explain(x, np.full((3, 1), 4)).heatmaps[:, 0]
    assert np.abs(ours - reference_map(activations, grads)).max() <= MAP_TOLERANCE
    cam = METHODS[name](lite0)
    for photo, index in (("chelsea", 285), ("coffee", 967)):
        x = lite0.preprocess(photos[photo])
        activations, grads = reference_cams.activations_and_gradients(lite0.keras_model, x, "head_activation", index)
        ours = cam.explain(x, [[index]]).heatmaps[:, 0]
        assert np.abs(ours - reference_map(activations, grads)).max() <= MAP_TOLERANCE


# SVD in float32 (TensorFlow) against float64 (numpy): the first component agrees to ~1e-5 of
# the map's range here; 1e-3 leaves room across CPUs and still catches a wrong projection or sign
# (a flipped sign or an uncentred projection differ by > 0.1).
EIGEN_TOLERANCE = 1e-3


def test_eigencam_matches_its_formula_and_keeps_its_sign(lite0, photos):
    from stream_cam.engine.methods import EigenCAM

    cam = EigenCAM(lite0)
    for photo in ("chelsea", "coffee", "rocket"):
        x = lite0.preprocess(photos[photo])
        activations, _ = reference_cams.activations_and_gradients(lite0.keras_model, x, "head_activation", 0)
        expected = reference_cams.eigencam(activations)
        ours = cam.explain(x, [[-1]]).heatmaps[:, 0]
        assert np.abs(ours - expected).max() <= EIGEN_TOLERANCE
        assert np.abs(ours - reference_cams.eigencam(activations, flip=True)).max() > 0.1  # the other sign
    # The same frame twice, and a slightly brighter copy: the same sign, the same map.
    x = lite0.preprocess(photos["chelsea"])
    again = cam.explain(np.concatenate([x, x * 1.02]), [[-1], [-1]]).heatmaps[:, 0]
    assert np.corrcoef(again[0].ravel(), again[1].ravel())[0, 1] > 0.99


@pytest.mark.parametrize("max_channels", [8, None])
def test_scorecam_matches_its_formula_on_a_seeded_model(rng, max_channels):
    from stream_cam.engine.methods import ScoreCAM

    model = tiny_cnn(5, classes=6, activation=None)
    x = rng.uniform(-1, 1, (2, 32, 32, 3)).astype(np.float32)
    expected = reference_cams.scorecam(model, x, "last_conv", 2, max_channels)
    ours = ScoreCAM(model, "last_conv", max_channels=max_channels).explain(x, np.full((2, 1), 2)).heatmaps[:, 0]
    assert np.abs(ours - expected).max() <= MAP_TOLERANCE


def test_scorecam_on_the_offline_model_finds_the_cat(lite0, photos):
    from stream_cam.engine.methods import ScoreCAM

    x = lite0.preprocess(photos["chelsea"])
    expected = reference_cams.scorecam(lite0.keras_model, x, "head_activation", 285, 16)
    ours = ScoreCAM(lite0, max_channels=16).explain(x, [[285]]).heatmaps[:, 0]
    assert np.abs(ours - expected).max() <= MAP_TOLERANCE


def test_methods_registry_is_used_like_gradcam(tiny_model, rng):
    from stream_cam.engine.methods import METHODS
    from stream_cam.engine.registry import CNN_METHODS

    x = rng.uniform(0, 255, (2, 32, 32, 3)).astype(np.uint8)
    for name in CNN_METHODS:  # the transformer methods refuse a CNN (tests/test_transformers.py)
        result = METHODS[name](tiny_model)(x)
        assert result.heatmaps.shape == (2, 16, 16) and np.isfinite(result.heatmaps).all(), name
        assert result.probabilities.shape == (2, 4)
