"""The live window under a real X server (Xvfb): keys sent with xdotool, screenshots read back.

.ci/run installs xvfb, xdotool and imagemagick; these tests start their own Xvfb.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
import pytest

from helpers import start, wait_for_lines, wait_until, write_clip
from stream_cam.sources.readers import count_frames

pytestmark = pytest.mark.gui  # deselect with -m "not gui" where there is no Xvfb

TOOLS = ("Xvfb", "xdotool", "import")


@pytest.fixture(scope="module")
def display():
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"missing {', '.join(missing)}: apt-get install xvfb xdotool imagemagick (see .ci/run)")
    number = next(n for n in range(90, 200) if not Path(f"/tmp/.X11-unix/X{n}").exists()
                  and not Path(f"/tmp/.X{n}-lock").exists())
    server = subprocess.Popen(["Xvfb", f":{number}", "-screen", "0", "1280x1024x24", "-nolisten", "tcp"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while not Path(f"/tmp/.X11-unix/X{number}").exists():
        if time.monotonic() > deadline or server.poll() is not None:
            server.kill()
            pytest.fail("Xvfb did not start")
        time.sleep(0.1)
    yield f":{number}"
    server.terminate()
    server.wait(10)


def xdotool(display: str, *args: str) -> str:
    result = subprocess.run(["xdotool", *args], env={**os.environ, "DISPLAY": display},
                            capture_output=True, text=True, timeout=30)
    return result.stdout.strip()


def press(display: str, key: str) -> None:
    window = xdotool(display, "search", "--sync", "--name", "stream_cam").splitlines()[0]
    xdotool(display, "windowfocus", "--sync", window)
    xdotool(display, "key", "--clearmodifiers", key)


def screenshot(display: str, path: Path) -> np.ndarray:
    subprocess.run(["import", "-display", display, "-window", "root", str(path)], check=True, timeout=30)
    return cv2.imread(str(path))


@contextlib.contextmanager
def stopped(proc: subprocess.Popen) -> Iterator[subprocess.Popen]:
    """The process, killed on the way out if a check failed before it ended."""
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_window_keys_hud_and_heatmap(display, tmp_path):
    write_clip(tmp_path / "clip.mp4", frames=60, fps=15, size=(480, 360))
    log = tmp_path / "log.jsonl"
    with stopped(start("live", "--source", "clip.mp4", "--loop", "--log", "log.jsonl", "--smooth", "0",
                       cwd=tmp_path, env={"DISPLAY": display})) as proc:
        wait_for_lines(log, 8, proc)

        # What a person sees: the HUD (yellow highlighted class, dark panel) and a jet heatmap.
        xdotool(display, "search", "--sync", "--onlyvisible", "--name", "stream_cam")  # the window is mapped

        def drawn() -> tuple[np.ndarray] | None:  # the window's pixels once it has drawn a frame
            shot = screenshot(display, tmp_path / "window.png")
            content = shot[(shot.sum(axis=2) > 0).any(axis=1)][:, (shot.sum(axis=2) > 0).any(axis=0)]
            return (content,) if content.shape[0] >= 100 and content.shape[1] >= 150 else None

        (content,) = wait_until(drawn, 30, "a window on screen")
        b, g, r = (content[..., i].astype(int) for i in range(3))
        yellow = (r > 220) & (g > 180) & (b < 60)
        assert yellow.sum() > 30, "the HUD's highlighted class is missing"
        # Jet colours are far more saturated than the grey-brown cat photo under them.
        picture = content[content.shape[0] // 3: -content.shape[0] // 6]
        saturation = cv2.cvtColor(picture, cv2.COLOR_BGR2HSV)[..., 1]
        raw = cv2.VideoCapture(str(tmp_path / "clip.mp4")).read()[1]
        raw_saturation = cv2.cvtColor(raw, cv2.COLOR_BGR2HSV)[..., 1]
        # Without a heatmap the two are equal; with one, +36 (async) to +41 (lock-step) measured here.
        assert saturation.mean() > raw_saturation.mean() + 25, "no heatmap colours"

        # c: the explained class moves from rank 1 to rank 2.
        press(display, "c")
        before = len(records(log))
        wait_for_lines(log, before + 10, proc)
        last = records(log)[-5:]
        assert all(r["explained"]["index"] == r["top"][1]["index"] for r in last)

        # r twice: a recording starts and is finalized.
        press(display, "r")
        wait_for_lines(log, len(records(log)) + 8, proc)
        press(display, "r")
        wait_for_lines(log, len(records(log)) + 3, proc)

        # q quits.
        press(display, "q")
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    recordings = list(tmp_path.glob("stream_cam_*.mp4"))
    assert len(recordings) == 1 and count_frames(recordings[0]) >= 8


def test_kiosk_survives_a_lost_source(display, tmp_path):
    source = write_clip(tmp_path / "src.mp4", frames=20, fps=15, size=(480, 360))
    hidden = tmp_path / "away.mp4"
    log = tmp_path / "log.jsonl"
    with stopped(start("live", "--kiosk", "--source", "src.mp4", "--log", "log.jsonl", cwd=tmp_path,
                       env={"DISPLAY": display})) as proc:
        wait_for_lines(log, 5, proc)
        source.rename(hidden)  # the source is cut: the file plays out, then cannot be reopened
        deadline = time.monotonic() + 30  # wait for the screen to change (a loaded machine is slow to redraw)
        while True:
            shot = screenshot(display, tmp_path / "reconnecting.png")
            b, g, r = (shot[..., i].astype(int) for i in range(3))
            titled = ((r > 220) & (g > 180) & (b < 60)).sum() > 200  # (the HUD's yellow label too: dark AND title)
            if (shot.mean() < 60 and titled) or time.monotonic() > deadline:
                break
        assert shot.mean() < 60, "not the dark reconnecting screen"
        assert ((r > 220) & (g > 180) & (b < 60)).sum() > 200, "no 'reconnecting...' title"
        assert shot.shape[:2] == (1024, 1280) and (shot[:, -50:].max() > 0), "not fullscreen"
        stalled = len(records(log))
        press(display, "q")  # a stray key does not end a kiosk
        hidden.rename(source)  # the source comes back
        wait_for_lines(log, stalled + 10, proc)
        assert proc.poll() is None
        press(display, "Escape")
        time.sleep(0.3)  # as a person presses twice (OpenCV's Qt loop can merge keys sent together)
        press(display, "Escape")  # Esc twice: the deliberate way out
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err


def test_several_sources_mosaic_tab_and_q(display, tmp_path):
    write_clip(tmp_path / "a.mp4", frames=60, fps=15, size=(320, 240))
    write_clip(tmp_path / "b.mp4", frames=60, fps=15, size=(320, 240), cut_every=20)
    log = tmp_path / "log.jsonl"
    with stopped(start("live", "--source", "a.mp4", "--source", "b.mp4", "--loop", "--log", "log.jsonl",
                       "--record", "rec.mp4", "--smooth", "0", cwd=tmp_path, env={"DISPLAY": display})) as proc:
        wait_for_lines(log, 20, proc)
        shot = screenshot(display, tmp_path / "mosaic.png")
        content = shot[(shot.sum(axis=2) > 0).any(axis=1)][:, (shot.sum(axis=2) > 0).any(axis=0)]
        assert content.shape[1] >= 2 * 300, "not two tiles side by side"
        # Tab selects source 1, then 2 explains its rank-2 class; source 0 stays on rank 1.
        press(display, "Tab")
        time.sleep(0.3)
        press(display, "2")
        wait_for_lines(log, len(records(log)) + 30, proc)
        last = records(log)[-20:]
        ones = [r for r in last if r["stream"] == 1]
        zeros = [r for r in last if r["stream"] == 0]
        assert ones and zeros
        assert all(r["explained"]["index"] == r["top"][1]["index"] for r in ones[-3:])
        assert all(r["explained"]["index"] == r["top"][0]["index"] for r in zeros[-3:])
        press(display, "q")
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    for name in ("rec_0.mp4", "rec_1.mp4"):
        assert count_frames(tmp_path / name) > 10


def test_kiosk_runs_an_exported_model_without_tensorflow(display, lite0_tflite, tmp_path):
    """The light install's kiosk: the demo fullscreen on LiteRT, TensorFlow out of reach."""
    from helpers import start_without_tensorflow

    log = tmp_path / "log.jsonl"
    with stopped(start_without_tensorflow("demo", "--kiosk", "--model", str(lite0_tflite), "--log", "log.jsonl",
                                          cwd=tmp_path, env={"DISPLAY": display})) as proc:
        wait_for_lines(log, 20, proc)
        shot = screenshot(display, tmp_path / "kiosk.png")
        assert shot.shape[:2] == (1024, 1280) and shot[:, -50:].max() > 0, "not fullscreen"
        saturation = cv2.cvtColor(shot, cv2.COLOR_BGR2HSV)[..., 1]
        assert (saturation > 150).mean() > 0.05, "no heatmap on the screen"
        assert all(r["method"] == "gradcam" for r in records(log)[-5:])
        press(display, "e")  # the method key stays on the exported method
        wait_for_lines(log, len(records(log)) + 10, proc)
        assert records(log)[-1]["method"] == "gradcam"
        press(display, "Escape")
        time.sleep(0.3)
        press(display, "Escape")
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
