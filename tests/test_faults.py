"""Faults injected on purpose: broken sources, odd frames, damaged files, signals, fuzzing."""

from __future__ import annotations

import json
import signal
import struct
import threading
import time
import zlib

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from helpers import (assert_one_line_error, fake_torch, legacy_file, no_stream_threads, run, start, state_pickle,
                     wait_for_lines, wait_until, write_clip)
from stream_cam.errors import InputError, StreamCamError
from stream_cam.memory import rss_mb
from stream_cam.jobs.live import LiveOptions, LiveRun
from stream_cam.jobs.video import VideoOptions, process_video
from stream_cam.models.torch_legacy import LegacyFormatError, read_state_dict
from stream_cam.render.overlay import overlay_heatmap
from stream_cam.sources.readers import count_frames
from stream_cam.sources.images import read_image
from stream_cam.sources.readers import ArrayReader


# -- property tests over the overlay ---------------------------------------------------

frame_dtypes = st.sampled_from([np.uint8, np.uint16, np.float32, np.float64, np.int32, np.bool_])
heat_values = st.floats(allow_nan=True, allow_infinity=True, width=32)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    height=st.integers(1, 64), width=st.integers(1, 64), channels=st.sampled_from([0, 1, 3, 4]),
    dtype=frame_dtypes, heat=hnp.arrays(np.float32, hnp.array_shapes(min_dims=2, max_dims=2, max_side=16),
                                        elements=heat_values),
    alpha=st.floats(0, 1), data=st.data(),
)
@pytest.mark.unit
def test_overlay_always_returns_a_valid_frame(height, width, channels, dtype, heat, alpha, data):
    shape = (height, width) if channels == 0 else (height, width, channels)
    frame = data.draw(hnp.arrays(dtype, shape))
    out = overlay_heatmap(frame, heat, alpha)
    assert out.dtype == np.uint8 and out.shape == (height, width, 3)


@settings(max_examples=4, deadline=None)
@given(size=st.sampled_from([(1, 1), (2160, 3840), (1080, 1920), (7, 3000)]))
@pytest.mark.unit
def test_overlay_handles_tiny_to_4k_frames(size):
    frame = np.full((*size, 3), 90, np.uint8)
    heat = np.array([[np.nan, 1.0], [np.inf, -np.inf]], np.float32)
    out = overlay_heatmap(frame, heat)
    assert out.shape == (*size, 3) and out.dtype == np.uint8
    # Every non-finite value counts as cold (no evidence); only the 1.0 corner is drawn hot.
    if min(size) >= 4:
        cold = overlay_heatmap(frame[:1, :1], np.zeros((1, 1), np.float32))[0, 0]
        hot = overlay_heatmap(frame[:1, :1], np.ones((1, 1), np.float32))[0, 0]
        assert all(np.array_equal(out[y, x], cold) for y, x in ((0, 0), (-1, 0), (-1, -1)))
        assert np.array_equal(out[0, -1], hot)


# -- fuzzing the legacy .pth reader -------------------------------------------------------

@pytest.fixture(scope="module")
def checkpoint():
    with fake_torch():
        state = state_pickle({"a": ("0", (2, 3), 6), "b": ("1", (4,), 4)})
    raw = legacy_file(state, [("0", np.arange(6, dtype="<f4")), ("1", np.ones(4, dtype="<f4"))])
    state = read_state_dict(raw)
    assert state["a"].tolist() == [[0, 1, 2], [3, 4, 5]] and state["b"].tolist() == [1, 1, 1, 1]
    return raw


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
@pytest.mark.unit
def test_mutated_checkpoints_load_or_fail_cleanly(checkpoint, data):
    raw = bytearray(checkpoint)
    for _ in range(data.draw(st.integers(1, 6))):
        position = data.draw(st.integers(0, len(raw) - 1))
        raw[position] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(len(raw) // 2, len(raw)))
    try:
        state = read_state_dict(bytes(raw[:cut]))
    except StreamCamError:
        return  # LegacyFormatError or UnsafeFileError: a clear refusal
    # If it loads, every tensor is backed by bytes from the file: nothing larger was made.
    assert sum(v.nbytes for v in state.values() if isinstance(v, np.ndarray)) <= len(raw)


@pytest.mark.unit
def test_a_tiny_storage_cannot_become_a_huge_tensor():
    with fake_torch():  # 10^9 elements with stride 0 over a 1-element storage
        state = state_pickle({"w": ("0", (10**9,), 1, (0,))})
    with pytest.raises(LegacyFormatError, match="more elements"):
        read_state_dict(legacy_file(state, [("0", np.zeros(1, "<f4"))]))


# -- sources that fail or change ------------------------------------------------------------

def test_live_reopens_a_failing_source_and_keeps_going(tiny_cam):
    opened = {"n": 0}

    def open_camera():
        opened["n"] += 1
        if opened["n"] in (2, 3):  # the camera is gone for two attempts
            raise ConnectionError("camera unplugged")
        return ArrayReader(lambda i: np.full((48, 64, 3), i % 255, np.uint8) if i < 15 else None,
                           fps=100, live=True)

    stats = LiveRun(tiny_cam, LiveOptions(window=False, max_frames=40), open_camera).run()
    assert stats.shown == 40 and opened["n"] >= 4
    assert no_stream_threads()


def test_odd_frames_mid_stream_are_handled(tiny_cam, tmp_path):
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (48, 64, 3), dtype=np.uint8) for _ in range(4)]
    frames += [rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)]  # resolution change
    frames += [rng.integers(0, 255, (48, 64), dtype=np.uint8)]  # grayscale
    frames += [rng.random((48, 64, 3)).astype(np.float32)]  # float
    frames += [rng.integers(0, 65535, (48, 64, 4), dtype=np.uint16)]  # 16-bit with alpha
    frames += [rng.integers(0, 255, (48, 64, 3), dtype=np.uint8) for _ in range(4)]
    result = process_video(tiny_cam, ArrayReader(frames, fps=10), tmp_path / "out.mp4",
                           VideoOptions(batch=3, progress=False))
    assert result.frames == len(frames) == count_frames(tmp_path / "out.mp4")
    traces = [len(tiny_cam._functions)]
    stats = LiveRun(tiny_cam, LiveOptions(window=False), lambda: ArrayReader(frames, fps=200)).run()
    assert stats.shown >= 1 and stats.stopped_by == "end of stream"
    assert len(tiny_cam._functions) == traces[0]  # no new graph for odd frames: nothing retraced


def test_video_source_failing_mid_run_is_reported_and_output_kept(tiny_cam, tmp_path):
    def failing(i):
        if i == 17:
            raise OSError("device disconnected")
        return np.full((48, 64, 3), i * 10 % 255, np.uint8)

    with pytest.raises(InputError, match="reading failed after frame 16: device disconnected"):
        process_video(tiny_cam, ArrayReader(failing, fps=10, count=100), tmp_path / "out.mp4",
                      VideoOptions(batch=4, progress=False))
    assert count_frames(tmp_path / "out.mp4") == 17  # finalized with every frame before the fault
    assert no_stream_threads()


def test_truncated_video_keeps_every_readable_frame(tmp_path):
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (96, 72))
    for i in range(40):
        writer.write(np.full((72, 96, 3), i * 6, np.uint8))
    writer.release()
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) * 6 // 10])  # the last 40% is gone
    readable = count_frames(path)
    assert 0 < readable < 40
    result = run("video", "clip.avi", "-o", "out.mp4", cwd=tmp_path)
    assert result.returncode == 3, result.stderr
    warning = [line for line in result.stderr.splitlines() if "warning" in line]
    assert len(warning) == 1 and f"only {readable} of 40 frames" in warning[0]
    assert f"after frame {readable - 1}" in warning[0]
    assert count_frames(tmp_path / "out.mp4") == readable


# -- signals at every stage ---------------------------------------------------------------

@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_while_loading_exits_promptly(tmp_path, signum):
    write_clip(tmp_path / "clip.mp4", frames=10)
    proc = start("video", "clip.mp4", "-o", "out.mp4", "-v", cwd=tmp_path)
    for line in proc.stderr:  # wait until it says it is loading (TensorFlow's import takes seconds)
        if "loading the model" in line:
            break
    time.sleep(0.2)
    sent = time.monotonic()
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=30)
    assert time.monotonic() - sent < 5
    assert proc.returncode in (130, 143), err
    assert "Traceback" not in err
    assert not (tmp_path / "out.mp4").exists() and not list(tmp_path.glob(".*part*"))


@pytest.mark.slow  # over 15 s measured on 2 cores
def test_sigterm_mid_batch_finalizes_the_output(tmp_path):
    write_clip(tmp_path / "long.mp4", frames=3000, fps=30)
    proc = start("video", "long.mp4", "-o", "out.mp4", "--log", "log.jsonl", cwd=tmp_path)
    log = tmp_path / "log.jsonl"
    wait_for_lines(log, 41, proc)
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert time.monotonic() - sent < 5
    assert proc.returncode == 143, err  # stopped by SIGTERM: what was done is kept as out.partial.mp4
    assert "stopped by SIGTERM" in out and not (tmp_path / "out.mp4").exists()
    written = count_frames(tmp_path / "out.partial.mp4")
    assert written >= 40 and written == len(log.read_text().splitlines())


# -- odd images -------------------------------------------------------------------------------

@pytest.mark.unit
def test_odd_images_are_read(tmp_path):
    rgba = np.zeros((20, 30, 4), np.uint8)
    rgba[..., 2] = 255
    cv2.imwrite(str(tmp_path / "rgba.png"), rgba)
    cv2.imwrite(str(tmp_path / "deep.png"), np.full((20, 30, 3), 40000, np.uint16))
    cv2.imwrite(str(tmp_path / "gray.png"), np.full((20, 30), 77, np.uint8))
    assert read_image(tmp_path / "rgba.png")[0, 0].tolist() == [255, 0, 0]
    assert read_image(tmp_path / "deep.png")[0, 0].tolist() == [156, 156, 156]
    assert read_image(tmp_path / "gray.png").shape == (20, 30, 3)


def test_huge_image_is_refused_before_decoding(tmp_path):
    # A valid PNG header announcing 20000 x 20000 pixels (1.2 GB decoded), with a tiny body.
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", 20000, 20000, 8, 2, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 100)) + \
        chunk(b"IEND", b"")
    (tmp_path / "huge.png").write_bytes(png)
    with pytest.raises(InputError, match="20000x20000 is larger than the 100 megapixel limit"):
        read_image(tmp_path / "huge.png")
    assert_one_line_error(run("image", "huge.png", cwd=tmp_path), "megapixel limit")


def test_short_soak_keeps_memory_flat(tiny_cam):
    # The long version is scripts/soak_live.py (20,000 frames); this one checks the same things quickly.
    frames = [np.random.default_rng(i).integers(0, 255, (48, 64, 3), dtype=np.uint8) for i in range(30)]
    samples = {}
    # Paced at 500 fps: a camera faster than the engine, that waits (as real drivers do) between frames.
    run_ = LiveRun(tiny_cam, LiveOptions(window=False, max_frames=1500),
                   lambda: ArrayReader(lambda i: frames[i % 30], 500.0, "soak"))
    done = threading.Event()

    def watch():
        while not done.wait(0.01):
            if "early" not in samples and run_.stats.shown >= 300:
                samples["early"] = rss_mb()

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        stats = run_.run()
    finally:
        done.set()
        watcher.join()
    assert stats.shown == 1500
    assert rss_mb() - samples["early"] < 50
    assert no_stream_threads()


def test_full_disk_stops_recording_cleanly(tiny_cam, tmp_path, monkeypatch):
    import shutil as shutil_module

    from stream_cam.sinks import video as video_module

    real = shutil_module.disk_usage
    calls = {"n": 0}

    def filling_disk(path):  # plenty of room for the first checks, then almost none
        calls["n"] += 1
        usage = real(path)
        return usage._replace(free=10 * 2**20) if calls["n"] > 2 else usage

    monkeypatch.setattr(video_module.shutil, "disk_usage", filling_disk)
    frames = lambda: ArrayReader(lambda i: np.full((48, 64, 3), i % 255, np.uint8), fps=100)  # noqa: E731
    run_ = LiveRun(tiny_cam, LiveOptions(window=False, record=tmp_path / "rec.mp4"), frames)
    with pytest.raises(StreamCamError, match="almost full"):
        run_.run()
    (path, written), = run_.streams[0].recorder.finished
    assert written == 2 * video_module.FREE_SPACE_CHECK_EVERY
    assert count_frames(path) == written  # what was written stays playable
    assert no_stream_threads()


# -- outputs: races, odd sizes, suffixes, read-only folders ---------------------------------------

@pytest.mark.slow  # over 15 s measured on 2 cores
def test_two_runs_writing_the_same_output_lose_nothing(tmp_path):
    write_clip(tmp_path / "long.mp4", frames=1200, fps=30)  # still writing while the second run loads
    write_clip(tmp_path / "short.mp4", frames=7, fps=30)
    (tmp_path / "race").mkdir()
    first = start("video", "long.mp4", "-o", "race/same.mp4", cwd=tmp_path)
    wait_until(lambda: list((tmp_path / "race").glob(".*part*")), 120, "the first run's temporary file")
    second = run("video", "short.mp4", "-o", "race/same.mp4", cwd=tmp_path)
    out, err = first.communicate(timeout=300)
    assert second.returncode == 0 and first.returncode == 0, second.stderr + err
    # Whoever finished first has the name (usually the short run); the other run says where its
    # result went, and it is there.
    message = "race/same.mp4 appeared while this run was writing it"
    assert (message in err) != (message in second.stderr), err + second.stderr  # exactly one run lost
    loser, winner = (1200, 7) if message in err else (7, 1200)
    assert "race/same-2.mp4" in (err if loser == 1200 else second.stderr)
    assert count_frames(tmp_path / "race" / "same.mp4") == winner
    assert count_frames(tmp_path / "race" / "same-2.mp4") == loser
    assert sorted(p.name for p in (tmp_path / "race").iterdir()) == ["same-2.mp4", "same.mp4"]  # no .part left


@pytest.mark.unit
def test_publish_never_replaces_a_file_that_appeared(tmp_path):
    from stream_cam.errors import OutputExistsError
    from stream_cam.sinks.files import publish, temporary_path

    target = tmp_path / "out.mp4"
    tmp = temporary_path(target)
    tmp.write_bytes(b"mine")
    target.write_bytes(b"theirs")  # another run published first
    with pytest.raises(OutputExistsError, match=f"result is in {tmp}"):
        publish(tmp, target, overwrite=False)
    assert tmp.read_bytes() == b"mine" and target.read_bytes() == b"theirs"  # the message is true
    assert publish(tmp, target, overwrite=False, elsewhere=True) == tmp_path / "out-2.mp4"
    assert (tmp_path / "out-2.mp4").read_bytes() == b"mine" and not tmp.exists()
    assert temporary_path(target) != temporary_path(target)  # every run its own temporary file


def _odd_clip(path, width=333, height=177, frames=6):
    import av

    container = av.open(str(path), "w")
    stream = container.add_stream("ffv1", rate=10)
    stream.width, stream.height, stream.pix_fmt = width, height, "bgr0"
    for i in range(frames):
        image = np.full((height, width, 3), 60 + 20 * i, np.uint8)
        image[-1, :] = (0, 0, 255)  # the last row red, the last column blue: they must survive
        image[:, -1] = (255, 0, 0)
        for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    return path


@pytest.mark.parametrize("codec, name", [("mp4v", "out.mp4"), ("h264", "out.mp4"), ("mjpg", "out.avi")])
def test_odd_frame_sizes_are_padded_not_cropped(tiny_cam, tmp_path, codec, name):
    from stream_cam.jobs.video import VideoOptions, process_video
    from stream_cam.sources.readers import open_reader

    reader = open_reader(str(_odd_clip(tmp_path / "odd.mkv")))
    assert (reader.info.width, reader.info.height) == (333, 177)
    result = process_video(tiny_cam, reader, tmp_path / name,
                           VideoOptions(batch=2, progress=False, codec=codec, hud=False, alpha=0.0))
    assert result.padded_to == (334, 178) and result.frames == 6
    capture = cv2.VideoCapture(str(tmp_path / name))
    ok, frame = capture.read()
    capture.release()
    assert ok and frame.shape == (178, 334, 3)
    # The input's last row and column are kept (and repeated once), not cut off.
    assert frame[176, 10, 2] > 150 and frame[177, 10, 2] > 150
    assert frame[10, 332, 0] > 150 and frame[10, 333, 0] > 150


def test_odd_size_is_announced_on_the_command_line(tmp_path):
    _odd_clip(tmp_path / "odd.mkv")
    result = run("video", "odd.mkv", "-o", "out.mp4", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "the output is 334x178" in result.stderr


@pytest.mark.parametrize("output", ["out/x.webm", "x.gif"])
def test_an_unknown_output_suffix_is_refused_and_creates_nothing(tmp_path, output):
    write_clip(tmp_path / "a.mp4", frames=3)
    before = sorted(p.name for p in tmp_path.iterdir())
    assert_one_line_error(run("video", "a.mp4", "-o", output, cwd=tmp_path), "cannot write", ".mp4")
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_an_unwritable_output_folder_is_one_clear_line(tmp_path):
    write_clip(tmp_path / "a.mp4", frames=3)
    write_clip(tmp_path / "b.mp4", frames=3)
    # /proc refuses new folders even to root: the same path as a read-only mount.
    result = run("video", "a.mp4", "b.mp4", "-o", "/proc/stream_cam_out", cwd=tmp_path)
    assert_one_line_error(result, "/proc/stream_cam_out")
    assert result.returncode == 2


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.unit
def test_exif_orientation_is_honoured_as_viewers_do(tmp_path, orientation):
    from PIL import Image, ImageOps

    stored = np.random.default_rng(orientation).integers(0, 255, (30, 50, 3)).astype(np.uint8)
    image = Image.fromarray(stored)
    exif = image.getexif()
    exif[0x0112] = orientation
    image.save(tmp_path / "photo.png", exif=exif)
    upright = np.asarray(ImageOps.exif_transpose(Image.open(tmp_path / "photo.png")).convert("RGB"))
    assert np.array_equal(read_image(tmp_path / "photo.png"), upright)


def test_a_sideways_phone_photo_is_explained_upright(tmp_path):
    from PIL import Image

    from stream_cam.sources.images import builtin_image

    # chelsea stored sideways (as a phone held upright stores it) with orientation 6: show it turned back.
    upright = builtin_image("chelsea")
    stored = np.ascontiguousarray(np.rot90(upright, 1))
    image = Image.fromarray(stored)
    exif = image.getexif()
    exif[0x0112] = 6
    image.save(tmp_path / "phone.jpg", exif=exif, quality=95)
    result = run("image", "phone.jpg", "--json", "-o", "phone_cam.png", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["size"] == [upright.shape[1], upright.shape[0]]  # width, height as a viewer shows it
    assert report["top"][0]["index"] in (281, 282, 285)  # a cat, as upright chelsea is
    assert cv2.imread(str(tmp_path / "phone_cam.png")).shape[:2] == upright.shape[:2]
