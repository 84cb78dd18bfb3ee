"""The runtime choice (``--runtime``) and the LiteRT cache: parity with the TensorFlow engine,
top-k in one call, damaged entries rebuilt, two processes filling the cache, the fallbacks."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from helpers import assert_one_line_error, run, tiny_cnn


@pytest.fixture
def cache(tmp_path, photos):
    from stream_cam.engine.litert_cache import LiteRTCache

    return LiteRTCache(tmp_path / "cache", photos["chelsea"])


def _entries(cache) -> list[Path]:
    return sorted(cache.folder.glob("*.tflite"))


EXPORTABLE_CNN = ("gradcam", "gradcam++", "xgradcam", "layercam", "hirescam", "scorecam")


@pytest.mark.parametrize("method", EXPORTABLE_CNN)
def test_litert_matches_tensorflow_for_every_exportable_method_on_a_seeded_model(method, cache, photos):
    from stream_cam.engine.methods import build_method
    from stream_cam.engine.runtime import choose_runtime
    from stream_cam.models.loaded import LoadedModel

    cam = build_method(method, LoadedModel.from_keras(tiny_cnn(seed=3, classes=6)), score_channels=8)
    fast = choose_runtime(cam, "auto", cache)
    assert fast.runtime == "litert" and fast.method_name == method
    for name in ("chelsea", "coffee", "rocket"):
        ours, theirs = cam(photos[name], top_k=2), fast(photos[name], top_k=2)
        np.testing.assert_array_equal(theirs.class_indices, ours.class_indices)
        np.testing.assert_allclose(theirs.heatmaps, ours.heatmaps, atol=1e-4)
        np.testing.assert_allclose(theirs.probabilities, ours.probabilities, atol=1e-5)


@pytest.mark.parametrize("method", EXPORTABLE_CNN)
@pytest.mark.slow  # converts the offline model or starts two processes
def test_litert_matches_tensorflow_on_the_offline_model(method, lite0, cache, photos):
    from stream_cam.engine.methods import build_method
    from stream_cam.engine.runtime import choose_runtime

    cam = build_method(method, lite0, score_channels=8)
    fast = choose_runtime(cam, "auto", cache)
    assert fast.runtime == "litert"
    for name in ("chelsea", "coffee", "rocket"):
        ours, theirs = cam(photos[name]), fast(photos[name])
        assert int(theirs.class_indices[0]) == int(ours.class_indices[0])
        np.testing.assert_allclose(theirs.heatmaps, ours.heatmaps, atol=1e-4)
    # The keras.io example's two classes of the cat-and-dog photo's cat, explained by class index.
    ours, theirs = cam(photos["chelsea"], classes=[[285, 260]]), fast(photos["chelsea"], classes=[[285, 260]])
    np.testing.assert_allclose(theirs.heatmaps, ours.heatmaps, atol=1e-4)


@pytest.mark.slow  # converts the offline model or starts two processes
def test_top_k_maps_come_from_one_call_and_equal_k_single_calls(lite0_cam, cache, photos):
    from stream_cam.engine.runtime import choose_runtime

    three = choose_runtime(lite0_cam, "litert", cache, maps=3)
    one = choose_runtime(lite0_cam, "litert", cache, maps=1)
    assert (three.maps, one.maps) == (3, 1) and len(_entries(cache)) == 2  # a file per K
    calls = []
    original = three._run
    three._run = lambda **kw: calls.append(kw["target"].shape) or original(**kw)
    together = three(photos["chelsea"], top_k=3)
    assert calls == [(1, 3)]  # ONE call for the three maps
    apart = one(photos["chelsea"], top_k=3)  # three calls, ranks 2 and 3 named by the first one
    ours = lite0_cam(photos["chelsea"], top_k=3)
    for result in (together, apart):
        np.testing.assert_array_equal(result.class_indices, ours.class_indices)
        np.testing.assert_allclose(result.heatmaps, ours.heatmaps, atol=1e-4)
    # More classes than the file's K: its K per call, then the rest
    six = three(photos["chelsea"], top_k=6)
    np.testing.assert_array_equal(six.class_indices, lite0_cam(photos["chelsea"], top_k=6).class_indices)


def test_the_cache_is_read_back_not_rebuilt_and_its_key_follows_what_shapes_the_file(cache, photos):
    from stream_cam.engine.gradcam import GradCAM
    from stream_cam.engine.methods import build_method
    from stream_cam.engine.runtime import choose_runtime
    from stream_cam.models.loaded import LoadedModel

    said = []
    cache.announce = said.append
    model = LoadedModel.from_keras(tiny_cnn(seed=5))
    first = choose_runtime(GradCAM(model), "auto", cache)
    assert len(said) == 4 and said[0].startswith("preparing a faster runtime") and " s " in said[1]
    assert said[2].startswith("timing LiteRT against TensorFlow at batch 1")  # auto's measurement, once
    again = choose_runtime(GradCAM(model), "auto", cache)
    assert len(said) == 4 and again.model.path == first.model.path  # read back, not converted or timed again
    keys = {cache.key(GradCAM(model), 1)}
    keys.add(cache.key(GradCAM(model), 2))  # maps per call
    keys.add(cache.key(build_method("layercam", model), 1))  # method
    keys.add(cache.key(GradCAM(model.with_layer("conv1")), 1))  # layer
    keys.add(cache.key(GradCAM(LoadedModel.from_keras(tiny_cnn(seed=6))), 1))  # weights
    assert len(keys) == 5


@pytest.mark.parametrize("damage", ("garbage", "truncated", "flipped byte", "no sidecar"))
def test_a_damaged_entry_is_detected_and_rebuilt(damage, cache, photos, caplog):
    from stream_cam.engine.gradcam import GradCAM
    from stream_cam.engine.runtime import choose_runtime
    from stream_cam.models.loaded import LoadedModel

    cam = GradCAM(LoadedModel.from_keras(tiny_cnn(seed=7)))
    choose_runtime(cam, "auto", cache)
    [entry] = _entries(cache)
    data = entry.read_bytes()
    if damage == "garbage":
        entry.write_bytes(b"not a model" * 100)
    elif damage == "truncated":
        entry.write_bytes(data[: len(data) // 2])
    elif damage == "flipped byte":
        entry.write_bytes(data[:-100] + bytes([data[-100] ^ 0xFF]) + data[-99:])
    else:
        entry.with_suffix(".json").unlink()
    said = []
    cache.announce = said.append
    with caplog.at_level(logging.WARNING, logger="stream_cam.engine.runtime"):
        rebuilt = choose_runtime(cam, "auto", cache)
    assert said and said[0].startswith("preparing")  # made again
    if damage != "no sidecar":
        assert "damaged LiteRT cache entry" in caplog.text
    assert entry.read_bytes() != b"" and json.loads(entry.with_suffix(".json").read_text())["sha256"]
    np.testing.assert_allclose(rebuilt(photos["coffee"]).heatmaps, cam(photos["coffee"]).heatmaps, atol=1e-4)


FILL = textwrap.dedent("""
    import sys, keras
    import numpy as np
    from stream_cam.tf_runtime import import_tensorflow
    import_tensorflow()
    from stream_cam.jobs.engine_spec import EngineSpec
    cam = EngineSpec(model=sys.argv[1]).build()
    print(cam.runtime, cam.model.path.name, flush=True)
""")


@pytest.mark.slow  # converts the offline model or starts two processes
def test_two_processes_filling_the_cache_at_once_convert_once_and_agree(tmp_path):
    model = tmp_path / "tiny.keras"
    tiny_cnn(seed=9).save(model)
    env = {"STREAM_CAM_CACHE": str(tmp_path / "shared")}
    import os

    environment = {**os.environ, **env}
    procs = [subprocess.Popen([sys.executable, "-c", FILL, str(model)], cwd=tmp_path, env=environment,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    answers = {out.strip() for out, _ in outs}
    assert len(answers) == 1 and answers.pop().startswith("litert ")  # the same entry for both
    preparing = sum(err.count("preparing a faster runtime") for _, err in outs)
    assert preparing == 1, outs  # one converted it, the other waited for it and read it
    timing = sum(err.count("timing LiteRT against TensorFlow") for _, err in outs)
    assert timing == 1, outs  # one timed the two runtimes, the other read its figures
    folder = tmp_path / "shared" / "litert"
    assert len(list(folder.glob("*.tflite"))) == 1 and not list(folder.glob(".*.part"))


def test_auto_keeps_tensorflow_where_litert_cannot_or_should_not_run(cache, tiny_model):
    from stream_cam.engine.gradcam import GradCAM
    from stream_cam.engine.methods import build_method
    from stream_cam.engine.runtime import choose_runtime, why_not_litert
    from stream_cam.errors import ModelError
    from stream_cam.models.loaded import LoadedModel

    model = LoadedModel.from_keras(tiny_model)
    eigen = build_method("eigencam", model)
    assert choose_runtime(eigen, "auto", cache) is eigen and "SVD" in why_not_litert(eigen)
    xla = GradCAM(model, jit_compile=True)
    assert choose_runtime(xla, "auto", cache) is xla and "--xla" in why_not_litert(xla)
    plain = GradCAM(model)
    assert choose_runtime(plain, "tensorflow", cache) is plain
    with pytest.raises(ModelError, match="no form of eigencam"):
        choose_runtime(eigen, "litert", cache)
    assert not _entries(cache)  # nothing was converted for any of these


def test_auto_falls_back_to_tensorflow_when_the_conversion_fails_and_litert_refuses(cache, caplog):
    import keras

    from stream_cam.engine.gradcam import GradCAM
    from stream_cam.engine.runtime import choose_runtime
    from stream_cam.errors import ModelError

    # A ReLU between the target layer and the logits: LiteRT has no ReluGrad (FACTS §12).
    keras.utils.set_random_seed(0)
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(8, 3, name="last_conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(8, activation="relu")(x)
    cam = GradCAM(keras.Model(inputs, keras.layers.Dense(3)(x)), layer="last_conv")
    with caplog.at_level(logging.WARNING):
        assert choose_runtime(cam, "auto", cache) is cam
    assert "LiteRT cannot run this explainer, so TensorFlow does" in caplog.text
    with pytest.raises(ModelError, match="LiteRT cannot run"):
        choose_runtime(cam, "litert", cache)


def test_the_cli_says_which_runtime_explained_and_refuses_what_cannot_be(tmp_path):
    out = run("image", "--json", "-o", str(tmp_path / "a.png"), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["runtime"] == "litert"
    assert len(out.stdout.strip().splitlines()) == 1  # the one-time "preparing" lines go to stderr
    out = run("image", "--json", "--runtime", "tensorflow", "-o", str(tmp_path / "b.png"), cwd=tmp_path)
    assert out.returncode == 0 and json.loads(out.stdout)["runtime"] == "tensorflow"
    refused = run("image", "--runtime", "litert", "--method", "eigencam", "-o", str(tmp_path / "c.png"), cwd=tmp_path)
    assert_one_line_error(refused, "--runtime litert", "eigencam")
    assert not (tmp_path / "c.png").exists()


def test_a_live_method_switch_on_litert_converts_or_falls_back_to_tensorflow_without_stopping(cache, tmp_path):
    import threading

    from stream_cam.engine.gradcam import GradCAM
    from stream_cam.engine.runtime import choose_runtime
    from stream_cam.jobs.live import LiveOptions, LiveRun
    from stream_cam.models.loaded import LoadedModel
    from stream_cam.sources.readers import ArrayReader
    from stream_cam.web.state import parse_control

    from helpers import wait_until

    fast = choose_runtime(GradCAM(LoadedModel.from_keras(tiny_cnn(seed=11))), "auto", cache)
    assert fast.runtime == "litert" and "eigencam" in fast.methods  # the engine's methods, not the file's one
    frame = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    # 600 frames at 60 fps: room after the last switch for converting layercam and timing it against
    # TensorFlow (its first call traces) on a loaded machine, where 150 frames fell short once.
    options = LiveOptions(window=False, max_frames=600, log=tmp_path / "log.jsonl")
    run = LiveRun(fast, options, lambda: ArrayReader(lambda i: frame if i < 10_000 else None, fps=60.0))

    def switch() -> None:
        wait_until(lambda: run.stats.shown >= 30, what="30 frames shown")
        run.apply_control(parse_control({"method": "eigencam"}))  # no LiteRT form: TensorFlow
        wait_until(lambda: run.stats.shown >= 80, what="80 frames shown")
        run.apply_control(parse_control({"method": "layercam"}))  # converted, then on LiteRT

    switcher = threading.Thread(target=switch)
    switcher.start()
    stats = run.run()
    switcher.join()
    lines = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    seen = list(dict.fromkeys((line["method"], line["runtime"]) for line in lines))
    assert seen == [("gradcam", "litert"), ("eigencam", "tensorflow"), ("layercam", "litert")]
    assert stats.shown == 600


def _speed_records(folder: Path) -> dict:
    [sidecar] = folder.glob("*.json")
    return json.loads(sidecar.read_text())["speeds"]


def _set_speed_record(folder: Path, batch: int, figures: dict) -> None:
    """Write figures into the one cache entry's record in ``folder``, as a measurement would."""
    from stream_cam.engine.speed import speed_key

    from stream_cam.engine.cache_files import signature, user_secret

    [sidecar] = folder.glob("*.json")
    record = json.loads(sidecar.read_text())
    record["speeds"][speed_key(batch, None)] = figures
    record["mac"] = signature(user_secret(folder), record)  # as this user's run signs it
    sidecar.write_text(json.dumps(record))


def test_auto_runs_the_runtime_measured_faster_at_the_jobs_batch_size_and_keeps_the_figures(cache, caplog):
    from stream_cam.engine.gradcam import GradCAM
    from stream_cam.engine.runtime import choose_runtime
    from stream_cam.models.loaded import LoadedModel

    said: list[str] = []
    cache.announce = said.append
    cam = GradCAM(LoadedModel.from_keras(tiny_cnn(seed=12)))
    # Measured for real at batch 1: a tiny model runs far faster on LiteRT than through TensorFlow.
    assert choose_runtime(cam, "auto", cache).runtime == "litert"
    records = _speed_records(cache.folder)  # batch 1, and video's batch 8 with it (one wait)
    assert len(records) == 2
    for figures in records.values():
        assert 0 < figures["litert_ms"] < figures["tensorflow_ms"], figures
    assert said[-1].startswith("timed LiteRT") and "LiteRT explains" in said[-1]
    # Kept figures decide at once: where they say TensorFlow is faster (as ResNet50 at batch 8 on
    # 2 cores), auto runs TensorFlow and says why; an explicit --runtime litert is obeyed.
    _set_speed_record(cache.folder, 8, {"tensorflow_ms": 30.0, "litert_ms": 40.0})
    said.clear()
    with caplog.at_level(logging.INFO, logger="stream_cam.engine.runtime"):
        assert choose_runtime(cam, "auto", cache, batch=8) is cam
    assert not said and "LiteRT 40.0 ms, TensorFlow 30.0 ms per frame at batch 8" in caplog.text
    assert choose_runtime(cam, "litert", cache, batch=8).runtime == "litert"
    assert choose_runtime(cam, "auto", cache, batch=1).runtime == "litert"  # batch 1's own figures
    # A damaged record is measured again, never trusted.
    _set_speed_record(cache.folder, 8, {"tensorflow_ms": "fast", "litert_ms": -1})
    with caplog.at_level(logging.WARNING, logger="stream_cam.engine.runtime"):
        choose_runtime(cam, "auto", cache, batch=8)
    assert "damaged speed record" in caplog.text and said[0].startswith("timing LiteRT against TensorFlow at batch 8")
    assert [r["litert_ms"] > 0 for r in _speed_records(cache.folder).values()] == [True, True]
    [sidecar] = cache.folder.glob("*.json")
    sidecar.write_text(json.dumps({**json.loads(sidecar.read_text()), "speeds": ["not", "a", "table"]}))
    said.clear()
    assert choose_runtime(cam, "auto", cache, batch=8).runtime == "litert" and said  # timed afresh


def test_the_measurement_refuses_what_it_cannot_time(tiny_cam, photos):
    from stream_cam.engine.speed import Speeds, _cpu_name, measure, speed_key

    # Figures hold for one batch size, thread count and CPU (a cache folder may be shared).
    assert speed_key(8, 1) != speed_key(4, 1) != speed_key(4, 3)
    assert speed_key(8, 1).endswith(_cpu_name()) and _cpu_name().strip()
    with pytest.raises(ValueError, match="at least 1"):
        measure(tiny_cam, tiny_cam, photos["chelsea"], batch=0)
    assert Speeds(8, 5.0, 5.0).faster == "litert"  # level: LiteRT, which needs less memory
    assert Speeds(8, 4.7, 5.0).faster == "litert"  # TensorFlow 6% faster: a near tie, still LiteRT
    assert Speeds(8, 4.4, 5.0).faster == "tensorflow"  # 14% faster: TensorFlow
    with pytest.raises(ValueError, match="damaged"):
        Speeds.from_json(8, {"tensorflow_ms": 0, "litert_ms": 1})


def test_a_video_job_on_auto_runs_what_the_figures_at_its_batch_size_say(tmp_path):
    from helpers import write_clip

    tiny_cnn(seed=13).save(tmp_path / "tiny.keras")
    write_clip(tmp_path / "clip.mp4", frames=10)
    env = {"STREAM_CAM_CACHE": str(tmp_path / "cache")}

    def video(*extra: str) -> tuple[set, str]:
        result = run("video", "clip.mp4", "-o", "out.mp4", "--overwrite", "--model", "tiny.keras", "--log", "l.jsonl",
                     *extra, cwd=tmp_path, env=env)
        assert result.returncode == 0, result.stderr
        records = [json.loads(line) for line in (tmp_path / "l.jsonl").read_text().splitlines()]
        return {r["runtime"] for r in records}, result.stderr

    runtimes, stderr = video()
    # Batch 1 (live, image) is timed with the job's batch 8, in one wait: no command times again.
    assert runtimes == {"litert"} and "timing LiteRT against TensorFlow at batch 1 and 8" in stderr
    assert len(_speed_records(tmp_path / "cache" / "litert")) == 2
    _set_speed_record(tmp_path / "cache" / "litert", 8, {"tensorflow_ms": 1.0, "litert_ms": 2.0})
    runtimes, stderr = video()
    assert runtimes == {"tensorflow"} and "timing" not in stderr  # the kept figures decided
    runtimes, stderr = video("--batch", "4")
    assert runtimes == {"litert"} and "timing LiteRT against TensorFlow at batch 4" in stderr
    runtimes, _ = video("--runtime", "litert")
    assert runtimes == {"litert"}


def test_a_new_entry_prunes_entries_unused_for_long_then_the_least_recently_used_over_the_limit(cache):
    import os
    import time

    from stream_cam.engine.gradcam import GradCAM
    from stream_cam.engine.runtime import choose_runtime
    from stream_cam.models.loaded import LoadedModel

    cache.folder.mkdir(parents=True)
    now = time.time()

    def old_entry(name: str, days: float, size: int) -> Path:
        model = cache.folder / f"{name}.tflite"
        model.write_bytes(b"x" * size)
        model.with_suffix(".json").write_text("{}")
        for part in (model, model.with_suffix(".json")):
            os.utime(part, (now - days * 86400, now - days * 86400))
        return model

    stale = old_entry("stale", days=90, size=10)  # unused for longer than 60 days
    older, newer = old_entry("older", days=3, size=200_000), old_entry("newer", days=1, size=200_000)
    killed = cache.folder / ".abandoned.123.part"
    killed.write_bytes(b"half")
    os.utime(killed, (now - 2 * 86400, now - 2 * 86400))
    cache.max_bytes = 300_000  # room for one of them beside the new entry
    fast = choose_runtime(GradCAM(LoadedModel.from_keras(tiny_cnn(seed=14))), "litert", cache)
    assert fast.model.path.stat().st_size < 100_000
    # The stale entry and the abandoned conversion went; over the limit, the least recently used
    # went; the new entry stays whatever its size, and a run's use counts as recent.
    assert not stale.exists() and not stale.with_suffix(".json").exists() and not killed.exists()
    assert not older.exists() and newer.exists() and fast.model.path.exists()
    cache.max_bytes = 0
    os.utime(newer.with_suffix(".json"), (now + 10, now + 10))  # used after the new entry
    assert cache.prune(keep=newer) == [fast.model.path.name]


def test_a_cache_this_user_cannot_write_is_still_used_and_timed_for_the_run(cache, caplog, monkeypatch):
    """A shared, read-only cache folder: the entry is read, the timing made for this run and not kept.
    (The tests run as root, whom file modes do not stop, so the refusals are raised here.)"""
    import os

    from stream_cam.engine import litert_cache as runtime
    from stream_cam.engine.gradcam import GradCAM
    from stream_cam.engine.runtime import choose_runtime
    from stream_cam.models.loaded import LoadedModel

    cam = GradCAM(LoadedModel.from_keras(tiny_cnn(seed=15)))
    choose_runtime(cam, "litert", cache)  # made while the folder was writable
    [sidecar] = cache.folder.glob("*.json")
    before = sidecar.read_text()

    def refused(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    for name in ("_locked", "_write_atomically"):
        monkeypatch.setattr(runtime, name, refused)
    monkeypatch.setattr(os, "utime", refused)
    with caplog.at_level(logging.WARNING, logger="stream_cam.engine.runtime"):
        assert choose_runtime(cam, "auto", cache).runtime == "litert"
    assert "timing without the cache's lock" in caplog.text and "for this run only" in caplog.text
    assert sidecar.read_text() == before  # nothing written
