"""What a new user met on real footage: the HUD on small frames, file rates, early refusals, camera
modes, the cameras list, CLI habits (--version, misspelt flags, class words), writer rates."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest

from helpers import REPO, assert_one_line_error, run, run_without_tensorflow, write_clip
from stream_cam.errors import InputError
from stream_cam.render.hud import PANEL_COVER, HudState, draw_hud
from stream_cam.sinks.recorder import Recorder
from stream_cam.sinks.video import VideoSink, writer_rate
from stream_cam.sinks.worker import Annotated
from stream_cam.sources.cameras import CameraSettings, apply_settings, check_camera_exists, list_cameras
from stream_cam.sources.latest import LatestFrames
from stream_cam.sources.readers import ArrayReader, CaptureReader, count_frames

# -- the HUD fits any frame -------------------------------------------------------------------------

TOP = [("Egyptian cat", 0.723), ("tabby, tabby cat", 0.1), ("tiger cat", 0.08), ("lynx, catamount", 0.05),
       ("remote control, remote", 0.01)]
SIZES = [(160, 120), (176, 144), (240, 180), (320, 240), (640, 272), (640, 480), (480, 640), (1280, 720),
         (1920, 1080), (3840, 2160), (1000, 120), (160, 900)]


@pytest.mark.parametrize("width, height", SIZES)
@pytest.mark.parametrize("scale", [1.0, 1.6])
@pytest.mark.parametrize("explained", [0, 3, -1])
@pytest.mark.unit
def test_the_top_k_panel_stays_within_the_bound(width, height, scale, explained):
    blank = np.full((height, width, 3), 200, np.uint8)
    state = HudState(top=TOP, explained=explained, explained_label="chow" if explained < 0 else TOP[explained][0],
                     fps=29.7, source="a_very_long_file_name_from_a_phone_2026-12-03.mp4")
    out = draw_hud(blank.copy(), state, scale)
    changed = (out != blank).any(axis=2)
    status_top = int(height * 0.7)  # the status bar lives at the bottom
    rows = np.flatnonzero(changed[:status_top].any(axis=1))
    cols = np.flatnonzero(changed[:status_top].any(axis=0))
    assert rows.max() + 1 <= PANEL_COVER[1] * height + 1
    assert cols.max() + 1 <= PANEL_COVER[0] * width + 1
    # The explained class is always listed, in yellow.
    yellow = (out[..., 0] < 60) & (out[..., 1] > 170) & (out[..., 2] > 220)
    assert yellow[:status_top].any()
    # The status text stops before the right edge (it is shortened, not cut off by the frame).
    text = (out[status_top:] > 235).all(axis=2)
    assert not text[:, -2:].any()


@pytest.mark.unit
def test_a_small_frame_lists_fewer_rows_but_keeps_the_explained_one():
    blank = np.full((144, 176, 3), 200, np.uint8)
    out = draw_hud(blank.copy(), HudState(top=TOP, explained=4, explained_label=TOP[4][0]))
    yellow = (out[..., 0] < 60) & (out[..., 1] > 170) & (out[..., 2] > 220)
    assert yellow.any()  # rank 5 is explained: it replaces a row that would not fit
    changed_rows = np.flatnonzero((out[:100] != blank[:100]).any(axis=(1, 2)))
    assert changed_rows.max() < 0.3 * 144


# -- a file played live keeps its timeline ---------------------------------------------------------

@pytest.mark.unit
def test_a_file_source_hands_a_late_consumer_the_frames_it_missed():
    frames = [np.full((48, 64, 3), i, np.uint8) for i in range(12)]
    source = LatestFrames(ArrayReader(frames, fps=200.0), pace=True)
    try:
        source.ended.wait(10)  # the consumer was busy for the whole file
        got = [source.get(timeout=1) for _ in range(LatestFrames.FILE_BACKLOG)]
    finally:
        source.close()
    indices = [f.index for f in got if f is not None]
    assert indices == list(range(12 - LatestFrames.FILE_BACKLOG, 12))  # in order, none skipped within the backlog


@pytest.mark.unit
def test_a_camera_source_keeps_only_the_newest_frame():
    frames = [np.full((48, 64, 3), i, np.uint8) for i in range(12)]
    source = LatestFrames(ArrayReader(frames, fps=200.0, live=True), pace=False)
    try:
        source.ended.wait(10)
        first = source.get(timeout=1)
        second = source.get(timeout=0)
    finally:
        source.close()
    assert first is not None and first.index == 11 and second is None


def _annotated(index: int, image: np.ndarray):
    from stream_cam.frames import Explanation, Frame

    frame = Frame(index, image, index / 25.0, 0.0)
    explanation = Explanation(frame=frame, heatmap=np.zeros((7, 7), np.float32), class_index=0, top=[(0, 1.0)],
                              engine_ms=1.0, method="gradcam")
    return Annotated(image, explanation)


@pytest.mark.unit
def test_a_recording_of_a_file_has_the_files_rate_and_duration_even_with_frames_missed(tmp_path):
    recorder = Recorder(25.0, timeline=True)
    recorder.start(tmp_path / "r.mp4")
    shown = [i for i in range(50) if i % 7 != 3]  # a busy machine: some frames never reached the display
    for i in shown:
        recorder.write_annotated(_annotated(i, np.full((48, 64, 3), i * 5, np.uint8)))
    recorder.close()
    (path, frames), = recorder.finished
    capture = cv2.VideoCapture(str(path))
    fps = capture.get(cv2.CAP_PROP_FPS)
    capture.release()
    assert fps == pytest.approx(25.0, abs=0.01)
    assert frames == count_frames(path) == 50 and recorder.filled == 50 - len(shown)


# -- writer rates FFmpeg refuses as given ----------------------------------------------------------

@pytest.mark.parametrize("fps", [219.697, 160.937, 182.706, 174.383, 262.661, 61.123, 99.999, 59.94, 119.88, 240.0])
@pytest.mark.parametrize("codec, suffix", [("mp4v", ".mp4"), ("xvid", ".avi"), ("mjpg", ".avi")])
@pytest.mark.unit
def test_a_measured_rate_always_opens_a_writer(tmp_path, fps, codec, suffix):
    path = tmp_path / f"r{suffix}"
    with VideoSink(path, 64, 48, fps, codec) as sink:
        sink.write(np.zeros((48, 64, 3), np.uint8))
    capture = cv2.VideoCapture(str(path))
    stored = capture.get(cv2.CAP_PROP_FPS)
    capture.release()
    assert abs(stored - fps) <= 0.01 * fps


@pytest.mark.unit
def test_writer_rate_snaps_to_common_rates():
    assert writer_rate(29.9701) == Fraction(30000, 1001) and writer_rate(25.01) == 25
    assert writer_rate(219.697) == Fraction(2197, 10) and writer_rate(77.7777) == Fraction(7778, 100)


@pytest.mark.unit
def test_writer_rate_keeps_an_exact_rate_before_snapping():
    # 24 is within 0.1% of 24000/1001: an exact 24 must stay 24, and NTSC stays rational.
    assert writer_rate(24.0) == 24 and writer_rate(24000 / 1001) == Fraction(24000, 1001)
    assert writer_rate(30000 / 1001) == Fraction(30000, 1001) and writer_rate(60.0) == 60
    assert writer_rate(23.99) == 24  # the nearest, not the first within 0.1%


# -- refusals that need no model --------------------------------------------------------------------

# The CLI in-process; the last stderr line says whether TensorFlow got imported on the way.
PROBE = ("import sys\nfrom stream_cam.cli import main\ncode = main(sys.argv[1:])\n"
         "sys.stderr.write('TF=%s\\n' % ('tensorflow' in sys.modules))\nsys.exit(code)\n")


@pytest.mark.parametrize("argv, fragments", [
    (["live", "--source", "7", "--no-window"], ["camera 7 does not exist", "/dev/video7"]),
    (["live", "--source", "/dev/video9", "--no-window"], ["/dev/video9 does not exist"]),
    (["video", "notes.txt", "-o", "x.mp4"], ["notes.txt", "not a video"]),
    (["image", "notes.txt"], ["notes.txt", "not an image"]),
    (["live", "--source", "clip.mp4"], ["no display", "--no-window"]),
    (["live", "--source", "clip.mp4", "--no-window", "--width", "640"], ["not a camera"]),
    (["live", "--source", "0", "--source", "1", "--fps", "30", "--fps", "25", "--fps", "10", "--no-window"],
     ["--fps given 3 times for 2 sources"]),
    (["live", "--source", "0", "--no-window", "--fourcc", "MJPEG"], ["--fourcc"]),
    (["live", "--source", "0", "--no-window", "--width", "5"], ["--width"]),
    (["video", "clip.mp4", "-o", "o.mp4", "--bacth", "4"], ["did you mean --batch?"]),
    (["image", "skimage:chelsea", "--class", "bike"], ["mountain bike"]),
    (["image", "skimage:chelsea", "--class", "²"], ["unknown class name"]),
])
def test_refused_before_tensorflow_in_one_line(tmp_path, argv, fragments):
    (tmp_path / "notes.txt").write_text("shopping list\n")
    write_clip(tmp_path / "clip.mp4", frames=3)
    result = subprocess.run([sys.executable, "-c", PROBE, *argv], cwd=tmp_path, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO), "DISPLAY": ""}, timeout=300)
    *lines, loaded = result.stderr.rstrip("\n").split("\n")
    assert loaded == "TF=False", result.stderr  # refused before TensorFlow was imported
    result.stderr = "\n".join(lines)
    assert result.returncode == 2, result.stderr
    assert_one_line_error(result, *fragments)
    assert result.stderr.count("stream-cam:") == 1  # the prefix once (scripts/bench_refusals.py times it)


@pytest.mark.unit
def test_results_without_pyarrow_names_the_extra(monkeypatch):
    from stream_cam.sinks import results

    monkeypatch.setattr(results, "installed", lambda name: name != "pyarrow")  # as on an install without it
    with pytest.raises(InputError, match=r'stream-cam\[results\]'):
        results.check_results_path(Path("t.parquet"), False)


@pytest.mark.unit
def test_version(tmp_path):
    from stream_cam import __version__

    result = run("--version", cwd=tmp_path)
    assert result.returncode == 0 and result.stdout.strip() == f"stream-cam {__version__}"


# -- camera modes, through the one place captures are opened ----------------------------------------

class FakeCamera:
    """Answers like a real V4L2 camera that has only 1280x720 at 10 fps in YUYV: it records what it is
    asked, and gives its own mode back."""

    MODE = {cv2.CAP_PROP_FRAME_WIDTH: 1280.0, cv2.CAP_PROP_FRAME_HEIGHT: 720.0, cv2.CAP_PROP_FPS: 10.0,
            cv2.CAP_PROP_FOURCC: float(cv2.VideoWriter_fourcc(*"YUYV")), cv2.CAP_PROP_FRAME_COUNT: -1.0}
    opened: list = []

    def __init__(self, *args) -> None:
        self.args = args
        self.calls: list[tuple[int, float]] = []
        FakeCamera.opened.append(self)

    def isOpened(self) -> bool:
        return True

    def set(self, prop: int, value: float) -> bool:
        self.calls.append((prop, value))
        return True

    def get(self, prop: int) -> float:
        return self.MODE.get(prop, 0.0)

    def read(self):
        return True, np.zeros((720, 1280, 3), np.uint8)

    def release(self) -> None:
        pass


@pytest.mark.unit
def test_camera_mode_is_asked_in_v4l2_order_and_a_different_answer_is_said(tmp_path, monkeypatch, caplog):
    from stream_cam.sources import readers

    monkeypatch.setattr(readers, "check_camera_exists", lambda spec: None)
    FakeCamera.opened = []
    settings = CameraSettings(width=1920, height=1080, fps=30, fourcc="MJPG", backend="v4l2")
    with caplog.at_level("WARNING"):
        reader = CaptureReader("0", settings, capture_class=FakeCamera)
    camera = FakeCamera.opened[0]
    assert camera.args == (0, cv2.CAP_V4L2)
    assert [prop for prop, _ in camera.calls] == [cv2.CAP_PROP_FOURCC, cv2.CAP_PROP_FRAME_WIDTH,
                                                  cv2.CAP_PROP_FRAME_HEIGHT, cv2.CAP_PROP_FPS]
    assert camera.calls[0][1] == cv2.VideoWriter_fourcc(*"MJPG")
    assert (reader.info.width, reader.info.height, reader.info.fps) == (1280, 720, 10.0)  # read back
    said = " ".join(r.getMessage() for r in caplog.records)
    assert "asked 1920x1080 at 30 fps, the camera gives 1280x720 at 10 fps" in said and "YUYV" in said


@pytest.mark.unit
def test_a_camera_that_gives_what_was_asked_says_nothing():
    camera = FakeCamera()
    assert apply_settings(camera, CameraSettings(width=1280, height=720, fps=10), "camera 0") == ""
    assert apply_settings(camera, CameraSettings(), "camera 0") == "" and len(camera.calls) == 3


@pytest.mark.unit
def test_camera_settings_per_source(tmp_path):
    from stream_cam.cli.parser import build_parser
    from stream_cam.cli.plan import camera_settings

    args = build_parser().parse_args(["live", "--source", "0", "--source", "2", "--width", "640", "--fps", "30",
                                      "--fps", "15", "--no-window"])
    modes = camera_settings(args, args.sources)
    assert [(m.width, m.fps) for m in modes] == [(640, 30.0), (640, 15.0)]
    args = build_parser().parse_args(["live", "--source", "0", "--source", "a.mp4", "--width", "640"])
    assert [m.width for m in camera_settings(args, args.sources)] == [640, None]  # once: meant for the cameras


@pytest.mark.unit
def test_cameras_are_listed_from_dev_and_sysfs(tmp_path):
    if not sys.platform.startswith("linux"):
        pytest.fail("this test describes Linux's /dev and sysfs")
    dev, sysfs = tmp_path / "dev", tmp_path / "sys"
    for n, name in ((0, "HD Webcam C615"), (2, "Integrated Camera"), (10, "")):
        (dev).mkdir(exist_ok=True)
        (dev / f"video{n}").touch()
        if name:
            (sysfs / f"video{n}").mkdir(parents=True)
            (sysfs / f"video{n}" / "name").write_text(name + "\n")
    (dev / "video-extra").touch()
    cameras = list_cameras(dev, sysfs)
    assert [(c.index, c.path, c.name) for c in cameras] == [
        (0, str(dev / "video0"), "HD Webcam C615"), (2, str(dev / "video2"), "Integrated Camera"),
        (10, str(dev / "video10"), "")]
    with pytest.raises(InputError, match="camera 1 does not exist.*video0"):
        check_camera_exists("1", dev)
    check_camera_exists("2", dev)


@pytest.mark.unit
def test_the_cameras_command(tmp_path):
    result = run_without_tensorflow("cameras", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout)
    assert isinstance(listed, list)
    assert [c["path"] for c in listed] == [str(p) for p in sorted(Path("/dev").glob("video[0-9]*"),
                                                                  key=lambda p: int(p.name[5:]))]
    text = run_without_tensorflow("cameras", cwd=tmp_path)
    assert text.returncode == 0 and (text.stdout.strip().startswith("no camera") if not listed else listed[0]["path"]
                                     in text.stdout)


# -- class words -------------------------------------------------------------------------------------

@pytest.mark.parametrize("word, first", [("bike", "mountain bike"), ("bicycle", "mountain bike"),
                                         ("car", "sports car"), ("kat", None)])
@pytest.mark.unit
def test_class_words_suggest_what_people_mean(word, first):
    from stream_cam.models.labels import imagenet_labels, resolve_class, suggest_classes

    labels = imagenet_labels()
    with pytest.raises(InputError, match="unknown class name"):
        resolve_class(word, labels)
    suggestions = suggest_classes(word, labels)
    if first is not None:
        assert suggestions[0] == first
    assert len(suggestions) <= 6


def test_evaluate_shows_a_progress_bar(tmp_path):
    result = run("evaluate", "skimage:chelsea", "--model", "efficientnet_lite0", "--steps", "3", "--json",
                 cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "evaluate" in result.stderr and "frame" in result.stderr  # tqdm, on stderr
    json.loads(result.stdout.splitlines()[0])  # stdout stays JSON
