"""Stopping a video job: the frames done are kept as NAME.partial (playable), the final name only
ever holds a complete output, and the exit status is 130/143 however many signals arrive."""

from __future__ import annotations

import signal
import subprocess
import time

import pytest

from helpers import start, write_clip
from stream_cam.sources.readers import count_frames

STATUS = {signal.SIGINT: 130, signal.SIGTERM: 143}


def wait_for_frames(folder, proc: subprocess.Popen, deadline_s: float = 120) -> None:
    """Until the run's temporary output holds some frames (or the process ended)."""
    deadline = time.monotonic() + deadline_s
    while proc.poll() is None and time.monotonic() < deadline:
        parts = list(folder.glob(".out.*part*"))
        if parts and parts[0].exists() and parts[0].stat().st_size > 20_000:
            return
        time.sleep(0.02)
    pytest.fail(f"no frames were written (exit {proc.poll()})")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_stopped_video_keeps_its_frames_as_partial_and_exits_130_or_143(tmp_path, signum):
    write_clip(tmp_path / "long.mp4", frames=1500, fps=30)
    proc = start("video", "long.mp4", "-o", "out.mp4", "--runtime", "tensorflow", cwd=tmp_path)
    wait_for_frames(tmp_path, proc)
    proc.send_signal(signum)
    # More signals while it stops and winds down: the status stays the first signal's.
    while proc.poll() is None:
        try:
            proc.wait(timeout=0.05)
        except subprocess.TimeoutExpired:
            proc.send_signal(signum)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == STATUS[signum], err
    assert not (tmp_path / "out.mp4").exists()  # the final name: complete outputs only
    kept = count_frames(tmp_path / "out.partial.mp4")
    assert 0 < kept < 1500
    assert "out.partial.mp4" in err and "Traceback" not in err
    assert not list(tmp_path.glob(".*part*"))  # no temporary file left
