"""Real time with any model: the view keeps the source's rate whatever the engine's speed,
heatmaps say how old they are, several sources go through one engine."""

from __future__ import annotations

import json
import signal
import time

import numpy as np
import pytest

from helpers import first_mjpeg_frame, free_port, get, no_stream_threads, post, start, wait_for_lines, write_clip
from stream_cam.engine.motion import MotionCompensator
from stream_cam.jobs.live import LiveOptions, LiveRun
from stream_cam.sources.readers import count_frames
from stream_cam.sources.images import builtin_image
from stream_cam.sources.readers import ArrayReader


def panning(count: int, width: int = 160, height: int = 120):
    """Frames panning across the cat photo, 3 px a frame: every frame differs."""
    import cv2

    photo = cv2.cvtColor(builtin_image("chelsea"), cv2.COLOR_RGB2BGR)

    def frame(i: int) -> np.ndarray | None:
        if i >= count:
            return None
        x = (3 * i) % (photo.shape[1] - 300)
        return cv2.resize(photo[:, x:x + 300], (width, height), interpolation=cv2.INTER_AREA)

    return frame


def heavy(cam, seconds: float):
    """``cam`` made as slow as a big model: every engine call takes at least ``seconds``."""
    real = cam.explain

    def slow(*args, **kwargs):
        time.sleep(seconds)
        return real(*args, **kwargs)

    cam.explain = slow
    return cam


def test_a_heavy_model_keeps_the_view_at_the_sources_rate(tiny_cam, tmp_path):
    heavy(tiny_cam, 0.1)  # a 10 fps engine under a 30 fps source
    options = LiveOptions(window=False, max_frames=60, log=tmp_path / "log.jsonl")
    stats = LiveRun(tiny_cam, options, lambda: ArrayReader(panning(10_000), fps=30.0)).run()
    lines = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert stats.fps >= 27  # every frame shown at the source's 30 fps
    assert stats.dropped <= 3
    assert all(line["heatmap_frame"] <= line["frame"] for line in lines)
    assert max(line["frame"] - line["heatmap_frame"] for line in lines) >= 2  # stale, and it says so
    assert stats.heatmaps < stats.shown / 2  # the engine ran at its own pace
    assert no_stream_threads()


def test_lock_step_waits_for_the_engine(tiny_cam, tmp_path):
    heavy(tiny_cam, 0.1)
    options = LiveOptions(window=False, max_frames=15, log=tmp_path / "log.jsonl", sync=True)
    stats = LiveRun(tiny_cam, options, lambda: ArrayReader(panning(10_000), fps=30.0)).run()
    lines = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert stats.fps <= 11 and stats.dropped >= 20
    assert all(line["heatmap_frame"] == line["frame"] for line in lines)


def test_two_sources_share_one_engine_and_keep_their_own_state(tiny_cam, tmp_path):
    calls = []
    real = tiny_cam.explain

    def counting(images, targets):  # as slow as a mid-size model: frames of both streams wait together
        calls.append(len(images))
        time.sleep(0.05)
        return real(images, targets)

    tiny_cam.explain = counting
    options = LiveOptions(window=False, sources=("a", "b"), max_frames=40, log=tmp_path / "log.jsonl",
                          record=tmp_path / "rec.mp4", classes=[])
    readers = [lambda: ArrayReader(panning(10_000), fps=30.0, name="a"),
               lambda: ArrayReader(panning(10_000, 96, 64), fps=20.0, name="b")]
    run = LiveRun(tiny_cam, options, readers)
    run.controls.choices[1].pick(2)  # stream 1 explains rank 2; stream 0 stays on rank 1
    stats = run.run()
    lines = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    by_stream = {s: [line for line in lines if line["stream"] == s] for s in (0, 1)}
    assert len(by_stream[0]) == 40 and len(by_stream[1]) >= 20
    assert all(line["explained"]["index"] == line["top"][0]["index"] for line in by_stream[0][5:])
    assert all(line["explained"]["index"] == line["top"][1]["index"] for line in by_stream[1][5:])
    assert max(calls[1:]) == 2  # both streams' newest frames in ONE engine call
    paths = sorted(path.name for path, _ in stats.recordings)
    assert paths == ["rec_0.mp4", "rec_1.mp4"]
    for path, frames in stats.recordings:
        assert count_frames(path) == frames
    assert no_stream_threads()


def test_a_failing_source_leaves_the_others_running(tiny_cam):
    opened = {"n": 0}

    def flaky():  # a camera that dies after 10 frames and cannot be reopened
        opened["n"] += 1
        if opened["n"] > 1:
            raise ConnectionError("unplugged")
        return ArrayReader(lambda i: np.zeros((48, 64, 3), np.uint8) if i < 10 else None, fps=30.0,
                           name="flaky", live=True)

    options = LiveOptions(window=False, sources=("flaky", "good"), max_frames=60)
    run = LiveRun(tiny_cam, options, [flaky, lambda: ArrayReader(panning(10_000), fps=60.0, name="good")])
    run.options.max_frames = None
    stats_holder = {}

    def stop_when_good_has_shown_enough():
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (len(run.streams) < 2 or run.streams[1].shown < 90):
            time.sleep(0.05)
        stats_holder["flaky_reconnecting"] = len(run.streams) == 2 and run.streams[0].source.reconnecting
        run.controls.quit = True

    import threading

    watcher = threading.Thread(target=stop_when_good_has_shown_enough)
    watcher.start()
    stats = run.run()
    watcher.join()
    assert stats.shown_per_stream[1] >= 90  # the good source went on
    assert stats.shown_per_stream[0] <= 10 and stats_holder["flaky_reconnecting"]
    assert no_stream_threads()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_several_sources_stop_cleanly_on_signals(tmp_path, signum):
    write_clip(tmp_path / "a.mp4", frames=30, fps=15)
    write_clip(tmp_path / "b.mp4", frames=20, fps=10, size=(96, 64))
    proc = start("live", "--source", "a.mp4", "--source", "b.mp4", "--loop", "--no-window", "--record", "rec.mp4",
                 "--log", "log.jsonl", cwd=tmp_path)
    wait_for_lines(tmp_path / "log.jsonl", 20, proc)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == {signal.SIGINT: 130, signal.SIGTERM: 143}[signum], err
    for name in ("rec_0.mp4", "rec_1.mp4"):
        assert f"recorded {name}" in out and count_frames(tmp_path / name) > 0


def test_each_source_has_its_own_browser_stream(tmp_path):
    write_clip(tmp_path / "a.mp4", frames=30, fps=15)
    write_clip(tmp_path / "b.mp4", frames=20, fps=10, size=(96, 64))
    port = free_port()
    proc = start("live", "--source", "a.mp4", "--source", "b.mp4", "--loop", "--no-window",
                 "--serve", f"127.0.0.1:{port}", cwd=tmp_path)
    base = f"http://127.0.0.1:{port}/"
    try:
        state, deadline = {}, time.monotonic() + 120
        while time.monotonic() < deadline and not all(s.get("top") for s in state.get("streams", [{}])):
            assert proc.poll() is None, proc.stderr.read()
            try:
                state = json.loads(get(base + "state", timeout=2)[1])
            except (OSError, ValueError):
                time.sleep(0.2)
        assert [s["stream"] for s in state["streams"]] == [0, 1]
        assert [s["source"] for s in state["streams"]] == ["a.mp4", "b.mp4"]
        import cv2

        sizes = []
        for n in (0, 1):
            status, jpeg = get(f"{base}snapshot/{n}.jpg")
            assert status == 200
            sizes.append(cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR).shape[:2])
        assert sizes == [(120, 160), (64, 96)]
        streamed = first_mjpeg_frame(port, "/stream/1.mjpg")
        assert cv2.imdecode(np.frombuffer(streamed, np.uint8), cv2.IMREAD_COLOR).shape[:2] == (64, 96)
        assert get(base + "snapshot/2.jpg")[0] == 404
        # A control can name its source.
        status, body = post(base + "control", {"stream": 1, "rank": 2})
        assert status == 200, body
        reply = json.loads(body)
        assert reply["stream"] == 1 and reply["choice"] == {"rank": 2}
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


@pytest.mark.unit
def test_motion_compensation_moves_a_stale_map_with_a_pan():
    import cv2

    photo = cv2.cvtColor(builtin_image("chelsea"), cv2.COLOR_RGB2BGR)
    old = cv2.resize(photo[:, 0:400], (640, 480))
    new = cv2.resize(photo[:, 30:430], (640, 480))  # the content moved 48 px to the left
    heat = np.zeros((7, 7), np.float32)
    heat[3, 4] = 1.0
    for method in ("flow", "shift"):
        motion = MotionCompensator(method)
        moved = motion.warp(heat, motion.thumbnail(old), motion.thumbnail(new))
        peak_x = np.unravel_index(np.argmax(moved), moved.shape)[1] / moved.shape[1] * 640
        original_x = (4 + 0.5) / 7 * 640
        assert original_x - 70 < peak_x < original_x - 25, method  # followed the content leftwards
    off = MotionCompensator("off")
    assert off.warp(heat, off.thumbnail(old), off.thumbnail(new)) is heat


@pytest.mark.parametrize("sync", [False, True], ids=["async", "lock-step"])
def test_the_method_switches_live_without_stopping_the_view(tiny_cam, tmp_path, sync):
    from stream_cam.web.state import parse_control

    options = LiveOptions(window=False, max_frames=120, log=tmp_path / "log.jsonl", sync=sync)
    run = LiveRun(tiny_cam, options, lambda: ArrayReader(panning(10_000), fps=60.0))
    assert run.controls.method == "gradcam"
    run.controls.handle_key(ord("e"))  # the key: the next method
    assert run.controls.method == "gradcam++"
    switched = {}

    def switch_later():
        while run.stats.shown < 40:
            time.sleep(0.01)
        switched["reply"] = run.apply_control(parse_control({"method": "eigencam"}))

    import threading

    switcher = threading.Thread(target=switch_later)
    switcher.start()
    stats = run.run()
    switcher.join()
    methods = [json.loads(line)["method"] for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert switched["reply"]["method"] == "eigencam"
    assert methods[0] == "gradcam++" and methods[-1] == "eigencam"
    assert set(methods) == {"gradcam++", "eigencam"}
    assert stats.shown == 120 and set(run.cams) == {"gradcam", "gradcam++", "eigencam"}
    with pytest.raises(Exception, match="unknown method"):
        run.apply_control(parse_control({"method": "nope"}))


def test_each_log_line_says_how_stable_the_heatmap_is(tiny_cam, tmp_path):
    from stream_cam.pixels import StabilityMeter, correlation

    still = np.random.default_rng(3).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    options = LiveOptions(window=False, max_frames=30, log=tmp_path / "still.jsonl", sync=True, smooth=0)
    LiveRun(tiny_cam, options, lambda: ArrayReader(lambda i: still if i < 10_000 else None, fps=60.0)).run()
    values = [json.loads(line)["stability"] for line in (tmp_path / "still.jsonl").read_text().splitlines()]
    assert values[0] is None  # nothing to compare with yet
    assert all(v == pytest.approx(1.0, abs=1e-6) for v in values[1:])  # the same picture: the same map
    meter = StabilityMeter()
    a, b = np.eye(7, dtype=np.float32), np.fliplr(np.eye(7)).astype(np.float32)
    assert meter.update(0, 5, a) is None
    assert meter.update(1, 5, b) == pytest.approx(correlation(a, b))
    assert meter.update(1, 5, b) == pytest.approx(correlation(a, b))  # the same heatmap shown again
    assert meter.update(2, 6, a) is None  # another class: not compared
    assert correlation(np.zeros((7, 7)), a) is None


def test_the_trust_meter_rides_in_the_same_engine_call(lite0_cam, photos, tmp_path):
    import cv2

    calls = []
    real = lite0_cam.explain

    def counting(images, targets):
        calls.append(len(images))
        return real(images, targets)

    cat = cv2.cvtColor(photos["chelsea"], cv2.COLOR_RGB2BGR)
    options = LiveOptions(window=False, max_frames=21, log=tmp_path / "log.jsonl", sync=True, trust=5)
    run = LiveRun(lite0_cam, options, lambda: ArrayReader(lambda i: cat if i < 10_000 else None, fps=60.0))
    lite0_cam.explain = counting
    try:
        run.run()
    finally:
        lite0_cam.explain = real
    lines = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    measured = [i for i, line in enumerate(lines) if line["trust"] is not None]
    assert measured == [4, 9, 14, 19]  # every 5th frame, once there is a previous map
    # What survives, computed here without the live path: the cat at the model's size with all but the
    # hottest 20% of its heatmap black, explained for the same class, over the full frame's probability.
    height, width = lite0_cam.model.input_size
    full = lite0_cam(photos["chelsea"])
    small = cv2.resize(cat, (width, height), interpolation=cv2.INTER_AREA)
    level = cv2.resize(full.heatmaps[0], (width, height), interpolation=cv2.INTER_LINEAR)
    kept = small * (level >= np.quantile(level, 0.8))[..., None].astype(np.uint8)
    index = int(full.class_indices[0])
    expected = float(lite0_cam(cv2.cvtColor(kept, cv2.COLOR_BGR2RGB), classes=index).probabilities[0, index]
                     / full.probabilities[0, index])
    assert [lines[i]["trust"] for i in measured] == pytest.approx([expected] * 4, abs=2e-3)
    assert len(calls) == 1 + 21 and sorted(set(calls)) == [1, 2]  # warm-up + one call per frame; trust rides along
    assert run.streams[0].hud.trust == pytest.approx(lines[19]["trust"], abs=1e-4)  # the log rounds to 4 places


@pytest.mark.unit
def test_the_trust_gauge_is_drawn_only_when_measured():
    from stream_cam.render.hud import HudState, draw_hud

    frame = np.zeros((240, 320, 3), np.uint8)
    plain = draw_hud(frame.copy(), HudState(top=[("cat", 0.9)]))
    high = draw_hud(frame.copy(), HudState(top=[("cat", 0.9)], trust=0.9))
    low = draw_hud(frame.copy(), HudState(top=[("cat", 0.9)], trust=0.2))
    assert not np.array_equal(plain, high) and not np.array_equal(high, low)
