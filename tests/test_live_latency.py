"""Live: a frame waits for nothing but the work on it, with or without the browser view."""

from __future__ import annotations

import json
import statistics

import pytest

from helpers import free_port, write_clip


@pytest.mark.parametrize("serve", [False, True])
def test_frames_of_a_paced_file_are_shown_without_waiting(cli, tmp_path, serve):
    # The browser view's start-up stalls the first frames; a file's backlog (up to 6 frames) must then
    # drain, not stay: before, every later frame sat 100 ms (3 frames at 30 fps) before it was drawn.
    clip = write_clip(tmp_path / "clip.mp4", frames=120, fps=30, size=(320, 240))
    log = tmp_path / "live.jsonl"
    extra = ["--serve", str(free_port())] if serve else []
    code, out, err = cli("live", "--source", clip, "--no-window", "--max-frames", "90", "--log", log,
                         "--runtime", "tensorflow", *extra)
    assert code == 0, err
    waits = [json.loads(line)["ms"]["capture"] for line in log.read_text().splitlines()]
    # One frame period (33 ms) is the most a frame can wait for the one before it to be drawn.
    assert len(waits) == 90 and statistics.median(waits[30:]) < 33.0, waits
