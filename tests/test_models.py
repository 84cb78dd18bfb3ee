"""Models: the safe .pth reader, the offline ImageNet model, registry, files, labels."""

from __future__ import annotations

import os
import pickle

import keras
import numpy as np
import pytest

from helpers import fake_torch, legacy_file, state_pickle
from stream_cam.errors import InputError, ModelError, UnsafeFileError
from stream_cam.models import efficientnet_lite
from stream_cam.models.labels import read_label_file, resolve_class
from stream_cam.models.loader import load_model
from stream_cam.models.registry import APPLICATIONS
from stream_cam.models.torch_legacy import LegacyFormatError, read_state_dict

CAT_CLASSES = {281, 282, 285}  # tabby, tiger cat, Egyptian cat
ESPRESSO = 967


# -- the legacy .pth reader -------------------------------------------------------

def _one_tensor(shape: tuple[int, ...], numel: int) -> bytes:
    with fake_torch():
        return state_pickle({"w": ("0", shape, numel)})


def test_reader_round_trips_a_crafted_file():
    data = np.arange(24, dtype="<f4")
    raw = legacy_file(_one_tensor((2, 3, 4), 24), [("0", data)])
    state = read_state_dict(raw)
    np.testing.assert_array_equal(state["w"], data.reshape(2, 3, 4))


def test_reader_rejects_truncated_and_oversized_storages():
    data = np.arange(24, dtype="<f4")
    raw = legacy_file(_one_tensor((2, 3, 4), 24), [("0", data)])
    with pytest.raises(LegacyFormatError, match="truncated"):
        read_state_dict(raw[:-8])
    # A storage claiming 10^12 elements must fail before allocating anything.
    huge = legacy_file(_one_tensor((2, 3, 4), 10**12), [("0", data)])
    with pytest.raises(LegacyFormatError):
        read_state_dict(huge)
    # A tensor reaching past its storage.
    past = legacy_file(_one_tensor((5, 5), 24), [("0", data)])
    with pytest.raises(LegacyFormatError):
        read_state_dict(past)
    with pytest.raises(LegacyFormatError, match="magic"):
        read_state_dict(pickle.dumps(42, protocol=2) + raw)


def test_reader_refuses_os_system_and_never_runs_it(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    raw = legacy_file(pickle.dumps({"w": Evil()}, protocol=2), [])
    path = tmp_path / "evil.pth"
    path.write_bytes(raw)
    with pytest.raises(UnsafeFileError, match="system"):
        read_state_dict(path)
    assert not marker.exists()
    # Also in the header pickles, before any state dict is read.
    with pytest.raises(UnsafeFileError):
        read_state_dict(pickle.dumps(Evil(), protocol=2) + raw)
    assert not marker.exists()


def test_real_weights_file_reads_without_torch():
    import sys

    state = read_state_dict(efficientnet_lite.weights_path())
    assert "torch" not in sys.modules
    assert len(state) == 296
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert state["_fc.weight"].shape == (1000, 1280)
    assert sum(v.dtype == np.float32 for v in state.values()) == 247


def test_weights_digest_is_checked(tmp_path):
    fake = tmp_path / "weights.pth"
    raw = bytearray(efficientnet_lite.weights_path().read_bytes())
    raw[-1] ^= 0xFF  # one flipped byte in the last tensor
    fake.write_bytes(bytes(raw))
    with pytest.raises(ModelError, match="not the expected"):
        efficientnet_lite.build_efficientnet_lite0(fake)


@pytest.mark.parametrize("variant, size, stage_repeats, head_in", [
    ("efficientnet_lite0", 224, (1, 2, 2, 3, 3, 4, 1), 320),
    ("efficientnet_lite1", 240, (1, 3, 3, 4, 4, 5, 1), 320),
    ("efficientnet_lite2", 260, (1, 3, 3, 4, 4, 5, 1), 352),
])
def test_lite_variants_are_read_from_their_own_weights(variant, size, stage_repeats, head_in, photos):
    """Lite1 and Lite2: deeper and (Lite2) wider than Lite0, with their own input sizes; the blocks and
    channels come from the weights file, and the model recognises the real photos."""
    from stream_cam.engine.gradcam import GradCAM
    from stream_cam.models.loader import load_model

    stages = efficientnet_lite.stages_from_weights(read_state_dict(efficientnet_lite.weights_path(variant)))
    assert tuple(stage[0] for stage in stages) == stage_repeats and stages[-1][5] == head_in
    model = load_model(variant)
    assert model.input_size == (size, size) and model.name == variant
    cam = GradCAM(model)
    result = cam(np.stack([photos["chelsea"]]))
    assert int(np.ravel(result.class_indices)[0]) == 285  # Egyptian cat
    result = cam(np.stack([photos["coffee"]]))
    assert model.labels[int(np.ravel(result.class_indices)[0])] == "espresso"
    assert result.heatmaps.shape[-2:] == (size // 32 + (size % 32 > 0),) * 2


def test_a_variant_with_the_wrong_weights_is_refused(tmp_path):
    # Lite0's file offered as Lite1's: refused by its digest, before any layer is built.
    with pytest.raises(ModelError, match="not the expected EfficientNet-Lite1 weights"):
        efficientnet_lite.build_efficientnet_lite("efficientnet_lite1", efficientnet_lite.weights_path())


# -- the offline ImageNet model -------------------------------------------------------

def test_lite0_is_the_real_imagenet_model(lite0):
    assert lite0.keras_model.count_params() == 4_694_024
    assert lite0.input_size == (224, 224) and lite0.layer_name == "head_activation"
    assert lite0.labels[285] == "Egyptian cat"


def test_lite0_predicts_real_photos(lite0_cam, photos):
    assert int(lite0_cam(photos["chelsea"]).class_indices[0]) in CAT_CLASSES
    assert int(lite0_cam(photos["coffee"]).class_indices[0]) == ESPRESSO


def test_gradcam_peak_is_on_the_cat_face(lite0_cam, photos):
    chelsea = photos["chelsea"]  # 451x300; the face (eyes to nose) spans about x 120-370, y 50-280
    heat = lite0_cam(chelsea).heatmaps[0]
    from stream_cam.pixels import peak_xy

    x, y = peak_xy(heat, *chelsea.shape[:2])
    assert 120 <= x <= 370 and 50 <= y <= 280
    # The face region holds more heat than the border of the image.
    h, w = heat.shape
    centre = heat[1:h - 1, 1:w - 1].mean()
    border = np.concatenate([heat[0], heat[-1], heat[:, 0], heat[:, -1]]).mean()
    assert centre > 2 * border


def test_class_discrimination_cat_vs_espresso(lite0_cam, photos):
    import cv2

    # Chelsea and coffee side by side, like the keras.io cat-and-dog photo.
    cat = cv2.resize(photos["chelsea"], (300, 300), interpolation=cv2.INTER_AREA)
    cup = cv2.resize(photos["coffee"], (300, 300), interpolation=cv2.INTER_AREA)
    both = np.hstack([cat, cup])
    result = lite0_cam(both, classes=[[285, ESPRESSO]])
    from helpers import resized_map

    # Compare the heat on each half of the picture, at the picture's resolution.
    cat_map, cup_map = (resized_map(m, 300, 600) for m in result.heatmaps[0])
    cat_share = cat_map[:, :300].sum() / cat_map.sum()
    cup_share = cup_map[:, 300:].sum() / cup_map.sum()
    print(f"cat map on cat half {cat_share:.0%}, espresso map on coffee half {cup_share:.0%}")
    assert cat_share > 0.65 and cup_share > 0.65


# -- registry, files, labels ------------------------------------------------------

@pytest.mark.parametrize("name", sorted(APPLICATIONS))
def test_keras_applications_build_with_their_own_settings(name):
    model = load_model(name, weights=None)
    spec = APPLICATIONS[name]
    assert model.input_size == (spec.size, spec.size)
    assert model.target.shape[1] > 1 and len(model.target.shape) == 4
    if spec.layer:
        assert model.layer_name == spec.layer
    assert len(model.labels) == 1000


def test_download_failure_gives_offline_advice(monkeypatch, tmp_path):
    import urllib.error

    import keras.src.utils.file_utils as file_utils

    def refuse(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(file_utils, "urlretrieve", refuse)
    with pytest.raises(ModelError, match="efficientnet_lite0"):
        load_model("mobilenet_v2")


def test_unknown_model_and_missing_weights_file(tmp_path):
    with pytest.raises(InputError, match="unknown model 'nonet'.*efficientnet_lite0"):
        load_model("nonet")
    with pytest.raises(InputError, match="does not exist"):
        load_model("resnet50", weights=tmp_path / "missing.h5")


def test_user_keras_file_with_labels(tmp_path, tiny_model):
    path = tmp_path / "tiny.keras"
    tiny_model.save(path)
    labels = tmp_path / "labels.txt"
    labels.write_text("apple\nbanana, plantain\ncherry\ndate\n")
    model = load_model(path, labels=labels, preprocessing="0..1")
    assert model.input_size == (32, 32) and model.layer_name == "last_conv"
    assert resolve_class("Plantain", model.labels) == 1
    with pytest.raises(ModelError, match="3 names but the model has 4"):
        (tmp_path / "short.json").write_text('["a", "b", "c"]')
        load_model(path, labels=tmp_path / "short.json")


def test_lambda_layer_is_refused_by_safe_mode(tmp_path):
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Lambda(lambda t: t * 2.0)(inputs)
    x = keras.layers.Conv2D(2, 3)(x)
    outputs = keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(x))
    path = tmp_path / "lambda.keras"
    keras.Model(inputs, outputs).save(path)
    with pytest.raises(ModelError, match="Lambda.*safe_mode=False"):
        load_model(path)


def test_label_files(tmp_path):
    (tmp_path / "a.json").write_text('{"0": "zero", "1": "one"}')
    assert read_label_file(tmp_path / "a.json") == ["zero", "one"]
    (tmp_path / "gap.json").write_text('{"0": "zero", "2": "two"}')
    with pytest.raises(InputError, match="without gaps"):
        read_label_file(tmp_path / "gap.json")
    (tmp_path / "bad.json").write_text("{nope")
    with pytest.raises(InputError, match="not valid JSON"):
        read_label_file(tmp_path / "bad.json")


def test_class_names_resolve_by_any_synonym(lite0):
    labels = lite0.labels
    assert resolve_class("285", labels) == 285
    assert resolve_class("egyptian CAT", labels) == 285
    assert resolve_class("tabby cat", labels) == 281
    assert resolve_class("chow chow", labels) == 260
    with pytest.raises(InputError, match="out of range"):
        resolve_class(1000, labels)
    with pytest.raises(InputError, match="did you mean 'egyptian cat'"):
        resolve_class("egyptian kat", labels)
