"""Streams in-process: ordered and newest-frame sources, the live loop, smoothing, sinks."""

from __future__ import annotations

import json
import threading
import time

import cv2
import numpy as np
import pytest

from helpers import no_stream_threads, numbered_frames
from stream_cam.engine.stream import ClassChoice, StreamExplainer, TemporalSmoother
from stream_cam.errors import InputError, OutputError
from stream_cam.sinks.worker import Annotated, SinkThread
from stream_cam.jobs.controls import Controls
from stream_cam.jobs.live import LiveOptions, LiveRun
from stream_cam.jobs.video import VideoOptions, process_video
from stream_cam.render.hud import HudState, draw_hud
from stream_cam.sinks.video import VideoSink
from stream_cam.sources.readers import count_frames
from stream_cam.sources.latest import LatestFrames
from stream_cam.sources.pumps import OrderedFrames
from stream_cam.sources.readers import ArrayReader, open_reader, sane_fps


@pytest.mark.unit
def test_ordered_source_keeps_every_frame_in_order():
    frames = OrderedFrames(ArrayReader(numbered_frames(300)), maxsize=4)
    seen = []
    for frame in frames:
        seen.append(int(frame.image[0, 0, 0]))
        if frame.index % 50 == 0:
            time.sleep(0.01)  # a slow consumer: the reader waits, nothing is lost
    frames.close()
    assert seen == [i % 256 for i in range(300)]
    assert no_stream_threads()


@pytest.mark.unit
def test_latest_source_drops_stale_frames_and_stays_fresh():
    produced = []

    def camera(i):  # a source much faster than its consumer
        produced.append(time.perf_counter())
        time.sleep(0.001)
        return np.full((48, 64, 3), i % 256, np.uint8) if i < 3000 else None

    source = LatestFrames(ArrayReader(camera, fps=1000, live=True))
    indices, ages = [], []
    for _ in range(20):
        frame = source.get(timeout=2)
        ages.append(time.perf_counter() - frame.captured_at)
        indices.append(frame.index)
        time.sleep(0.02)  # a slow engine
    source.close()
    assert indices == sorted(indices) and len(set(indices)) == 20
    assert source.dropped > 50  # stale frames were skipped, not queued
    # Only the newest frame is ever held: a frame is never older than ~one consumer step.
    assert max(ages) < 0.5 and np.median(ages) < 0.05
    assert no_stream_threads()


@pytest.mark.unit
def test_file_played_live_keeps_its_own_pace():
    reader = ArrayReader(numbered_frames(15), fps=25)  # 40 ms apart: a busy CI machine still keeps up
    source = LatestFrames(reader, pace=True)
    start = time.perf_counter()
    got = [source.get(timeout=2) for _ in range(15)]
    elapsed = time.perf_counter() - start
    source.close()
    assert [f.index for f in got] == list(range(15))  # a fast consumer gets every frame
    assert elapsed >= 14 / 25 * 0.9  # ...but not faster than 25 fps


@pytest.mark.unit
def test_camera_reporting_zero_fps_falls_back_to_30():
    assert sane_fps(0.0) == 30.0 and sane_fps(float("nan")) == 30.0 and sane_fps(25.0) == 25.0


@pytest.mark.parametrize("sync", [True, False], ids=["lock-step", "async"])
def test_live_run_on_a_fast_source(tiny_cam, tmp_path, sync):
    def camera(i):  # a 500 fps camera: the reader waits 2 ms per frame, as a driver does
        return np.random.default_rng(i).integers(0, 255, (120, 160, 3), dtype=np.uint8)

    real_explain = tiny_cam.explain

    def slow_explain(*args, **kwargs):  # an engine at ~60 fps, far slower than the camera
        time.sleep(0.015)
        return real_explain(*args, **kwargs)

    tiny_cam.explain = slow_explain
    options = LiveOptions(window=False, max_frames=40, record=tmp_path / "rec.mp4", log=tmp_path / "log.jsonl",
                          sync=sync)
    stats = LiveRun(tiny_cam, options, lambda: ArrayReader(camera, fps=500, live=True)).run()
    assert stats.shown == 40
    if sync:  # the display waits for the engine: stale frames are dropped, every heatmap is the frame's own
        assert stats.dropped > 40 and set(stats.ages) == {0}
    else:  # the display does not wait: heatmaps are reused on newer frames, and say how old they are
        assert max(stats.ages) > 0 and stats.heatmaps < stats.shown
    assert np.percentile(stats.latencies_ms, 95) < 500
    (path, frames), = stats.recordings
    assert frames == 40 and count_frames(path) == 40
    assert len((tmp_path / "log.jsonl").read_text().splitlines()) == 40
    assert stats.log_lines == 40  # counted from the log itself (was 0: read after the sinks were cleared)
    assert no_stream_threads()


class _Counting:
    """A sink that counts what it gets and whether it was closed."""

    def __init__(self) -> None:
        self.frames, self.closed = 0, False

    def write_annotated(self, item) -> None:
        self.frames += 1

    def close(self) -> None:
        self.closed = True


class _Raising:
    def __init__(self, error: BaseException, after: int) -> None:
        self.error, self.after, self.frames = error, after, 0

    def write_annotated(self, item) -> None:
        self.frames += 1
        if self.frames > self.after:
            raise self.error

    def close(self) -> None:
        pass


@pytest.mark.parametrize("error", [cv2.error("resize failed"), Exception("anything at all")],
                         ids=["cv2.error", "Exception"])
@pytest.mark.unit
def test_a_sink_raising_anything_stops_the_writer_without_hanging(error):
    good = _Counting()
    sinks = SinkThread([_Raising(error, after=3), good], maxsize=2)
    outcome: dict = {}

    def feed() -> None:  # far more frames than the queue holds: put() must raise, not block forever
        try:
            for _ in range(200):
                sinks.put(Annotated(np.zeros((4, 4, 3), np.uint8), None))
        except OutputError as exc:
            outcome["error"] = exc

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    feeder.join(10)
    assert not feeder.is_alive(), "put() blocked after the writer failed"
    assert "writing failed" in str(outcome["error"])
    sinks.close()
    assert good.closed and good.frames == 3  # the other sinks are still finalized
    assert sinks.failure is error
    assert no_stream_threads()


@pytest.mark.parametrize("sync", [True, False], ids=["lock-step", "async"])
def test_live_cleanup_runs_when_the_engine_raises(tiny_cam, tmp_path, sync):
    calls = {"n": 0}
    real_explain = tiny_cam.explain

    def failing_explain(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 12:  # 1 warm-up call, then 11 frames
            raise RuntimeError("engine exploded")
        return real_explain(*args, **kwargs)

    tiny_cam.explain = failing_explain
    reader = lambda: ArrayReader(numbered_frames(1000, (160, 120)), fps=200)  # noqa: E731
    run = LiveRun(tiny_cam, LiveOptions(window=False, record=tmp_path / "rec.mp4", sync=sync), reader)
    with pytest.raises(RuntimeError, match="exploded"):
        run.run()
    recorder = run.streams[0].recorder
    (path, frames), = recorder.finished
    assert count_frames(path) == frames  # finalized and playable
    # A file played live keeps its timeline: frames the display skipped (a busy machine) are
    # filled with the one before, so the recording may hold more frames than were shown.
    assert frames == run.stats.shown + recorder.filled
    if sync:
        assert run.stats.shown == 11  # one shown frame per engine call
    else:
        assert run.stats.shown >= 11  # the display went on with the newest heatmap until the failure reached it
    assert no_stream_threads()


def test_video_round_trip_keeps_count_fps_and_size(tiny_cam, clip, tmp_path):
    out = tmp_path / "out.mp4"
    result = process_video(tiny_cam, open_reader(str(clip)), out,
                           VideoOptions(batch=3, log=tmp_path / "log.jsonl", progress=False))
    assert result.frames == 40 == count_frames(out)
    capture = cv2.VideoCapture(str(out))
    assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(12.0)
    assert (capture.get(cv2.CAP_PROP_FRAME_WIDTH), capture.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (160, 120)
    capture.release()
    lines = (tmp_path / "log.jsonl").read_text().splitlines()
    assert len(lines) == 40
    import json

    records = [json.loads(line) for line in lines]
    assert [r["frame"] for r in records] == list(range(40))
    assert records[12]["t"] == pytest.approx(1.0)
    assert set(records[0]["ms"]) == {"capture", "engine", "render", "write"}
    assert not list(tmp_path.glob(".*part*"))


def test_overlay_is_drawn_on_the_frame_the_engine_saw(tiny_cam, tmp_path):
    # Frames alternate black and white: a heatmap computed for one frame and drawn on the
    # next would show in the log as a mismatch between frame index and its content.
    frames = [np.full((32, 32, 3), 255 * (i % 2), np.uint8) for i in range(16)]
    explainer = StreamExplainer(tiny_cam)
    source = OrderedFrames(ArrayReader(frames))
    for frame in source:
        (explanation,) = explainer.explain([frame])
        assert explanation.frame is frame
        single = tiny_cam(cv2.cvtColor(frame.image, cv2.COLOR_BGR2RGB))
        np.testing.assert_allclose(explanation.heatmap, single.heatmaps[0], atol=1e-5)
    source.close()


@pytest.mark.unit
def test_smoother_blends_and_resets_on_cut_and_class_change():
    smoother = TemporalSmoother(0.5)
    scene = np.full((48, 64, 3), 100, np.uint8)
    a, b = np.zeros((7, 7), np.float32), np.ones((7, 7), np.float32)
    assert smoother(a, 1, scene)[1] is False
    blended, smoothed = smoother(b, 1, scene)
    assert smoothed and np.allclose(blended, 0.5)
    assert smoother(b, 2, scene)[0] is b  # the class changed: reset
    cut = np.full((48, 64, 3), 250, np.uint8)
    out, smoothed = smoother(a, 2, cut)
    assert not smoothed and out is a  # the scene cut: reset
    with pytest.raises(InputError):
        TemporalSmoother(1.0)


@pytest.mark.unit
def test_keys_change_the_controls():
    controls = Controls([ClassChoice(top_k=5)])
    assert controls.choice.target() == -1
    controls.handle_key(ord("c"))
    assert controls.choice.target() == -2
    controls.handle_key(ord("4"))
    assert controls.choice.target() == -4
    controls.handle_key(ord("+"))
    assert controls.alpha == 0.5
    controls.handle_key(ord("m"))
    assert controls.colormap == "turbo"
    for key in " hr?sf":
        controls.handle_key(ord(key))
    assert controls.paused and not controls.show_hud and controls.show_keys
    assert controls.toggle_record and controls.snapshot and controls.toggle_fullscreen
    controls.handle_key(27)
    assert controls.quit
    fixed = ClassChoice(classes=[285, 967])
    fixed.cycle()
    assert fixed.target() == 967


@pytest.mark.parametrize("size", [(640, 480), (1920, 1080)])
@pytest.mark.unit
def test_hud_fits_and_scales(size):
    width, height = size
    frame = np.full((height, width, 3), 128, np.uint8)
    state = HudState(top=[("Egyptian cat", 0.78), ("tiger cat, a very long synonym list", 0.1)], explained=0,
                     fps=29.7, source="camera 0", recording=True)
    draw_hud(frame, state)
    darkened = np.flatnonzero(frame[2, :, 0] < 100)  # the top-k panel's first row of pixels
    assert darkened.min() == 0 and darkened.max() < width * 0.75  # most of the picture stays visible
    yellow = (frame[..., 0] < 50) & (frame[..., 1] > 180) & (frame[..., 2] > 230)
    assert yellow[: height // 4, : width // 2].sum() > 20  # the explained class is highlighted
    # Text is larger on the larger frame: the highlighted area grows with the frame.
    assert yellow.sum() > (200 if width > 1000 else 20)


@pytest.mark.unit
def test_video_sink_is_finalized_when_an_exception_is_raised(tmp_path):
    path = tmp_path / "partial.mp4"
    with pytest.raises(KeyError):
        with VideoSink(path, 64, 48, 10.0) as sink:
            for i in range(7):
                sink.write(np.full((48, 64, 3), i * 30, np.uint8))
            raise KeyError("boom")
    assert count_frames(path) == 7


@pytest.mark.unit
def test_video_sink_refuses_bad_codecs_and_existing_files(tmp_path):
    existing = tmp_path / "mine.mp4"
    existing.write_bytes(b"keep me")
    with pytest.raises(InputError, match="unknown codec 'divx'"):
        VideoSink(tmp_path / "a.mp4", 64, 48, 10, codec="divx")
    with pytest.raises(InputError, match="mjpg needs a .avi"):
        VideoSink(tmp_path / "a.mp4", 64, 48, 10, codec="mjpg")
    with pytest.raises(OSError, match="already exists"):
        VideoSink(existing, 64, 48, 10)
    assert existing.read_bytes() == b"keep me"


@pytest.mark.unit
def test_h264_recording_with_pyav(tmp_path):
    path = tmp_path / "web.mp4"
    with VideoSink(path, 65, 49, 15.0, codec="h264") as sink:  # odd sizes are trimmed to even
        for i in range(10):
            sink.write(np.full((49, 65, 3), i * 20, np.uint8))
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert sum(1 for _ in container.decode(stream)) == 10


def test_a_camera_is_recorded_and_logged_at_the_rate_it_really_delivers(tiny_cam, tmp_path):
    # A live source that says 25 fps but delivers about 40: the recording and the log follow the truth.
    interval = 1 / 40

    def camera(i):
        time.sleep(interval)
        return np.full((48, 64, 3), i % 256, np.uint8) if i < 2000 else None

    reader = lambda: ArrayReader(camera, fps=25.0, name="cam", live=True)  # noqa: E731
    options = LiveOptions(window=False, max_frames=60, record=tmp_path / "rec.mp4", log=tmp_path / "log.jsonl")
    run = LiveRun(tiny_cam, options, reader)
    stats = run.run()
    (path, frames), = stats.recordings
    rate, = run.streams[0].recorder.rates
    capture = cv2.VideoCapture(str(path))
    file_fps = capture.get(cv2.CAP_PROP_FPS)
    capture.release()
    records = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    # The shown rate, measured from the log's own timestamps, is what the file plays at.
    shown = (len(records) - 1) / (records[-1]["t"] - records[0]["t"])
    assert 30 <= rate <= 45 and file_fps == pytest.approx(rate, rel=0.02)
    assert shown == pytest.approx(rate, rel=0.25)
    assert frames == 60 == count_frames(path)
    assert records[-1]["wall"] - records[0]["wall"] == pytest.approx(records[-1]["t"] - records[0]["t"], abs=0.2)


def test_a_file_played_live_is_recorded_at_its_own_rate(tiny_cam, tmp_path):
    reader = lambda: ArrayReader(numbered_frames(40), fps=20.0)  # noqa: E731
    run = LiveRun(tiny_cam, LiveOptions(window=False, record=tmp_path / "rec.mp4"), reader)
    run.run()
    assert run.streams[0].recorder.rates == [20.0]


def test_a_recording_never_replaces_a_file_that_appeared_meanwhile(tiny_cam, tmp_path):
    target = tmp_path / "rec.mp4"

    def frames(i):
        if i == 5:
            target.write_bytes(b"another run's recording")  # appears while we record
        return np.full((48, 64, 3), i % 256, np.uint8) if i < 30 else None

    run = LiveRun(tiny_cam, LiveOptions(window=False, record=target), lambda: ArrayReader(frames, fps=100.0))
    stats = run.run()
    (path, count), = stats.recordings
    assert target.read_bytes() == b"another run's recording"
    assert path == tmp_path / "rec-2.mp4" and count_frames(path) == count == 30


# -- controls, statuses, kiosk -----------------------------------------------------------------

def test_a_class_control_pins_the_class_not_its_rank(tiny_cam):
    from stream_cam.web.state import parse_control

    run = LiveRun(tiny_cam, LiveOptions(window=False))
    reply = run.apply_control(parse_control({"class": "class 3"}))
    assert reply["choice"] == {"class": 3, "pinned": True, "label": "class 3"}  # the reply shows the new state
    assert run.controls.choice.target() == 3
    assert run.apply_control(parse_control({"class": 5}))["choice"]["class"] == 5
    assert run.apply_control(parse_control({"rank": 2}))["choice"] == {"rank": 2}  # a rank unpins
    fixed = LiveRun(tiny_cam, LiveOptions(window=False, classes=[4]))
    from stream_cam.jobs.live_stream import choice_state

    assert choice_state(fixed.controls.choices[0], tiny_cam.model.label) == {"class": 4, "pinned": False,
                                                                             "label": "class 4"}
    with pytest.raises(InputError, match="out of range"):
        run.apply_control(parse_control({"class": 99, "alpha": 0.9}))
    assert run.controls.alpha == 0.4  # a refused control changes nothing
    for bad in ({"class": -1}, {"class": True}, {"class": ""}, {"class": 1.5}):
        with pytest.raises(InputError):
            parse_control(bad)


def test_an_unattended_kiosk_resumes_after_a_stray_pause(tiny_cam):
    options = LiveOptions(window=False, kiosk=True, max_frames=30, pause_timeout=0.3)
    run = LiveRun(tiny_cam, options, lambda: ArrayReader(numbered_frames(10_000), fps=100.0))
    run.controls.handle_key(ord(" "))  # the stray space
    assert run.controls.paused
    worker = threading.Thread(target=run.run, daemon=True)
    worker.start()
    worker.join(30)
    if worker.is_alive():
        run.controls.quit = True
        worker.join(10)
        pytest.fail("the kiosk stayed paused")
    assert run.stats.shown == 30 and not run.controls.paused
    assert LiveOptions(kiosk=True).pause_timeout == 30.0 and LiveOptions().pause_timeout is None


@pytest.mark.unit
def test_status_messages_expire():
    hud = HudState(top=[("cat", 0.9)], source="demo")
    hud.say("press Esc again to quit", seconds=0.05)
    assert hud.current_status() == "press Esc again to quit"
    time.sleep(0.1)
    assert hud.current_status() == ""
    frame = np.zeros((240, 320, 3), np.uint8)
    expired = draw_hud(frame.copy(), hud, operator=True)
    assert np.array_equal(expired, draw_hud(frame.copy(), HudState(top=[("cat", 0.9)], source="demo"), operator=True))


@pytest.mark.unit
def test_kiosk_escape_hint_expires_and_a_late_second_escape_does_not_quit():
    from stream_cam.jobs.kiosk import KioskKeys

    keys = KioskKeys(window_s=0.1)
    assert keys.filter(ord("q")) == (-1, False, "")  # q is ignored in a kiosk
    assert keys.filter(27) == (-1, False, "press Esc again to quit")
    time.sleep(0.2)
    assert keys.filter(27) == (-1, False, "press Esc again to quit")  # too late: a new first press
    assert keys.filter(27) == (-1, True, "")
    assert keys.filter(ord("c")) == (ord("c"), False, "")


@pytest.mark.unit
def test_a_video_files_hud_shows_its_time_code_not_the_machines_speed():
    from stream_cam.render.hud import format_time_code

    frame = np.zeros((240, 320, 3), np.uint8)
    slow = draw_hud(frame.copy(), HudState(top=[("cat", 0.9)], fps=3.0, time_code=62.5, source="a.mp4"))
    fast = draw_hud(frame.copy(), HudState(top=[("cat", 0.9)], fps=99.0, time_code=62.5, source="a.mp4"))
    assert np.array_equal(slow, fast) and format_time_code(62.5) == "1:02.50"
    live_slow = draw_hud(frame.copy(), HudState(top=[("cat", 0.9)], fps=3.0, source="cam"))
    live_fast = draw_hud(frame.copy(), HudState(top=[("cat", 0.9)], fps=99.0, source="cam"))
    assert not np.array_equal(live_slow, live_fast)  # live keeps its fps


@pytest.mark.parametrize("size", [(480, 640), (768, 1024)])
@pytest.mark.unit
def test_the_kiosk_hud_fits_the_frame(size):
    hud = HudState(top=[("tabby", 0.5), ("tiger cat", 0.2), ("Egyptian cat", 0.1), ("lynx", 0.05), ("remote", 0.01)])
    blank = np.full((*size, 3), 200, np.uint8)
    normal = (draw_hud(blank.copy(), hud, 1.0) != blank).any(axis=2)[: int(size[0] * 0.7)].mean()
    kiosk = (draw_hud(blank.copy(), hud, 1.6) != blank).any(axis=2)[: int(size[0] * 0.7)].mean()
    assert kiosk * 0.7 <= 0.16  # the top-k panel covers at most ~16% of a 4:3 frame (it was ~40%)
    assert kiosk >= normal  # never smaller than the normal HUD
