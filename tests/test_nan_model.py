"""A model that answers NaN: every command keeps its outputs whole, shows the scores as n/a, writes
null (valid JSON), and says once what is wrong."""

from __future__ import annotations

import json

import numpy as np
import pytest

from helpers import write_clip


@pytest.fixture(scope="module")
def nan_model(tmp_path_factory):
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="last_conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Rescaling(float("nan"))(x)  # every score NaN
    outputs = keras.layers.Dense(4, activation="softmax")(x)
    path = tmp_path_factory.mktemp("nan") / "nan.keras"
    keras.Model(inputs, outputs, name="nan_model").save(path)
    return path


def said_nan(caplog) -> int:
    """How many warnings said the model answers NaN (logging, which in this process goes to caplog)."""
    count = sum("answers NaN" in record.getMessage() for record in caplog.records)
    caplog.clear()
    return count


def test_every_command_keeps_its_outputs_whole(cli, nan_model, tmp_path, caplog):
    clip = write_clip(tmp_path / "clip.mp4", frames=12, size=(160, 120))
    code, out, err = cli("image", "skimage:chelsea", "--model", nan_model, "--json", "-o", tmp_path / "o.png")
    assert code == 0, err
    report = json.loads(out)  # valid JSON: null, not NaN
    assert report["top"][0]["score"] is None and report["explained"][0]["score"] is None
    assert said_nan(caplog) == 1 and (tmp_path / "o.png").stat().st_size > 0
    code, out, err = cli("video", clip, "--model", nan_model, "-o", tmp_path / "v.mp4", "--log", tmp_path / "v.jsonl")
    assert code == 0 and "(12 frames" in out, err
    lines = [json.loads(line) for line in (tmp_path / "v.jsonl").read_text().splitlines()]
    assert len(lines) == 12 and all(line["explained"]["score"] is None for line in lines)
    assert said_nan(caplog) == 1  # said once, not per frame
    code, out, err = cli("live", "--source", clip, "--model", nan_model, "--no-window", "--max-frames", "8")
    assert code == 0 and "8 frames shown" in out, err
    code, out, err = cli("evaluate", "skimage:chelsea", "--model", nan_model, "--json")
    assert code == 0, err
    assert all(json.loads(line)["deletion_auc"] is None for line in out.splitlines() if line.startswith("{"))


@pytest.mark.unit
def test_the_hud_shows_a_nan_score_as_unavailable():
    from stream_cam.frames import percent, score_value
    from stream_cam.render.hud import HudState, draw_hud

    state = HudState(top=[("cat", float("nan")), ("dog", 0.2)], explained=-1, explained_label="chow",
                     explained_score=float("nan"))
    drawn = draw_hud(np.zeros((480, 640, 3), np.uint8), state)
    assert drawn.any()
    assert percent(float("nan")) == "n/a" and percent(0.723) == "72.3%" and score_value(float("inf")) is None
