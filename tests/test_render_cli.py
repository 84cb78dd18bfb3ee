"""--render host|device|auto through the command: the device path draws the same frames as the host
path on every command that takes the flag, and is refused where it cannot run."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from helpers import assert_one_line_error, run, write_clip

COMMANDS = {"image": ["skimage:chelsea", "-o", "out"], "video": ["clip.mp4", "-o", "o.mp4"],
            "live": ["--no-window", "--source", "clip.mp4", "--max-frames", "6"],
            "demo": ["--no-window", "-o", "demo.mp4", "--seconds-per-scene", "0.5"]}


def _frames(path) -> list[np.ndarray]:
    capture, frames = cv2.VideoCapture(str(path)), []
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                return frames
            frames.append(frame)
    finally:
        capture.release()


@pytest.mark.parametrize("command", list(COMMANDS))
def test_device_rendering_is_refused_with_litert(command, tmp_path):
    write_clip(tmp_path / "clip.mp4", frames=4)
    result = run(command, *COMMANDS[command], "--render", "device", "--runtime", "litert", cwd=tmp_path)
    assert_one_line_error(result, "--render device draws inside the TensorFlow engine's graph",
                          "leave out --runtime litert")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]  # nothing made


def test_device_rendering_is_refused_with_a_tflite_file(lite0_tflite, tmp_path):
    result = run("image", "skimage:chelsea", "--model", str(lite0_tflite), "--render", "device", cwd=tmp_path)
    assert_one_line_error(result, "--render device", ".tflite")


def test_video_frames_are_the_same_rendered_on_the_device(tmp_path):
    # An odd frame size, so the resampling at the borders is exercised too.
    write_clip(tmp_path / "clip.mp4", frames=12, size=(177, 101))
    for render in ("host", "device"):
        result = run("video", "clip.mp4", "-o", f"{render}.mp4", "--render", render, "--runtime", "tensorflow",
                     cwd=tmp_path)
        assert result.returncode == 0, result.stderr
    host, device = _frames(tmp_path / "host.mp4"), _frames(tmp_path / "device.mp4")
    assert len(host) == len(device) == 12
    for a, b in zip(host, device):
        assert int(np.abs(a.astype(np.int16) - b).max()) <= 1
    # The HUD is still drawn on the host over the device's blend: its bar differs from the raw clip.
    raw = _frames(tmp_path / "clip.mp4")
    assert float(np.abs(device[5].astype(np.int16) - raw[5]).mean()) > 5


def test_an_image_overlay_is_the_same_rendered_on_the_device(tmp_path):
    for render in ("host", "device"):
        result = run("image", "skimage:chelsea", "-o", render, "--render", render, "--runtime", "tensorflow",
                     "--json", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout.splitlines()[-1])["runtime"] == "tensorflow"
    # Left to choose, --render device picks the runtime it needs.
    auto = run("image", "skimage:chelsea", "-o", "auto", "--render", "device", "--json", cwd=tmp_path)
    assert auto.returncode == 0 and json.loads(auto.stdout.splitlines()[-1])["runtime"] == "tensorflow"
    (host,), (device,) = (sorted((tmp_path / r).glob("*.png")) for r in ("host", "device"))
    a, b = cv2.imread(str(host)), cv2.imread(str(device))
    assert a.shape == b.shape and int(np.abs(a.astype(np.int16) - b).max()) <= 1


def test_live_and_demo_run_with_device_rendering(tmp_path):
    write_clip(tmp_path / "clip.mp4", frames=8)
    live = run("live", *COMMANDS["live"], "--render", "device", "--log", "live.jsonl", cwd=tmp_path)
    assert live.returncode == 0, live.stderr
    lines = [json.loads(line) for line in (tmp_path / "live.jsonl").read_text().splitlines()]
    assert len(lines) == 6 and {line["runtime"] for line in lines} == {"tensorflow"}
    demo = run("demo", *COMMANDS["demo"], "--render", "device", cwd=tmp_path)
    assert demo.returncode == 0, demo.stderr
    frames = _frames(tmp_path / "demo.mp4")
    assert frames and float(np.std(frames[len(frames) // 2])) > 10  # a drawn photo, not a blank frame
