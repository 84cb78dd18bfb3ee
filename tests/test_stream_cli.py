"""live, video and demo as a user runs them: subprocesses, signals, bad input."""

from __future__ import annotations

import json
import signal
import socket
import time

import pytest

from helpers import assert_one_line_error, free_port, get, run, start, wait_for_lines, write_clip
from stream_cam.sources.readers import count_frames


@pytest.mark.slow  # over 15 s measured on 2 cores
def test_video_command_round_trip_and_several_inputs(tmp_path):
    write_clip(tmp_path / "a.mp4", frames=20, fps=10)
    write_clip(tmp_path / "b.mp4", frames=13, fps=25, size=(96, 64))
    result = run("video", "a.mp4", "-o", "a_cam.mp4", "--log", "a.jsonl", "--batch", "8", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert count_frames(tmp_path / "a_cam.mp4") == 20
    assert len((tmp_path / "a.jsonl").read_text().splitlines()) == 20
    result = run("video", "a.mp4", "b.mp4", "-o", "outs", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert count_frames(tmp_path / "outs" / "a_gradcam.mp4") == 20
    assert count_frames(tmp_path / "outs" / "b_gradcam.mp4") == 13
    assert "frame/s" in result.stderr  # the tqdm progress bar


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_during_recording_leaves_a_playable_file(tmp_path, signum):
    write_clip(tmp_path / "clip.mp4", frames=30, fps=15)
    proc = start("live", "--source", "clip.mp4", "--loop", "--no-window", "--record", "rec.mp4",
                 "--log", "rec.jsonl", cwd=tmp_path)
    logged = wait_for_lines(tmp_path / "rec.jsonl", 10, proc)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=20)
    # The same statuses as `video`: 130 for Ctrl-C, 143 for SIGTERM, after an orderly stop.
    assert proc.returncode == {signal.SIGINT: 130, signal.SIGTERM: 143}[signum], err
    assert "recorded rec.mp4" in out
    assert count_frames(tmp_path / "rec.mp4") >= logged
    assert "Traceback" not in err


def test_demo_runs_headless_and_writes_its_video(tmp_path):
    result = run("demo", "--no-window", "-o", "demo.mp4", "--seconds-per-scene", "0.4", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "wrote the demo video to" in result.stdout
    assert count_frames(tmp_path / "demo.mp4") == 5 * 12


def test_demo_without_a_display_never_overwrites(tmp_path):
    (tmp_path / "stream_cam_demo.mp4").write_bytes(b"an older demo")
    result = run("demo", "--seconds-per-scene", "0.2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "no display" in result.stdout and "stream_cam_demo-2.mp4" in result.stdout
    assert (tmp_path / "stream_cam_demo.mp4").read_bytes() == b"an older demo"


def test_silent_url_fails_within_seconds(tmp_path):
    with socket.socket() as server:  # accepts connections, never answers
        server.bind(("127.0.0.1", 0))
        server.listen(4)
        port = server.getsockname()[1]
        result = run("live", "--source", f"http://127.0.0.1:{port}/stream.mjpg", "--no-window", cwd=tmp_path)
    assert_one_line_error(result, "cannot open stream", "no answer within 5 s")


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["live", "--source", "clip.mp4", "--no-window", "--record", "r.mp4", "--codec", "divx"], ["unknown codec"]),
        (["live", "--source", "clip.mp4", "--no-window", "--record", "mine.mp4"], ["already exists"]),
        (["live", "--source", "missing.mp4", "--no-window"], ["missing.mp4: no such file"]),
        (["live", "--smooth", "1.5"], ["--smooth"]),
        (["video", "clip.mp4", "-o", "o.mp4", "--batch", "0"], ["--batch"]),
        (["video", "notvideo.mp4", "-o", "o.mp4"], ["not a video"]),
        (["video", "clip.mp4", "-o", "o.avi", "--codec", "mp4v"], ["mp4v needs a"]),
        (["video", "empty.mp4", "-o", "o.mp4"], ["the file is empty"]),
        (["live", "--cycle", "-3"], ["--cycle"]),
        (["live", "--top-k", "1001"], ["--top-k"]),
        (["live", "--token", "abc"], ["--token goes with --serve"]),
        (["demo", "--serve", "http://x"], ["expected PORT or HOST:PORT"]),
    ],
)
def test_stream_bad_input_gives_one_clear_line(tmp_path, args, fragments):
    write_clip(tmp_path / "clip.mp4", frames=5)
    (tmp_path / "mine.mp4").write_bytes(b"keep")
    (tmp_path / "notvideo.mp4").write_text("text, not video")
    (tmp_path / "empty.mp4").write_bytes(b"")
    assert_one_line_error(run(*args, cwd=tmp_path), *fragments)
    assert (tmp_path / "mine.mp4").read_bytes() == b"keep"
    assert not (tmp_path / "o.mp4").exists()


def test_live_log_matches_the_issue_format(tmp_path):
    write_clip(tmp_path / "clip.mp4", frames=12, fps=30)
    result = run("live", "--source", "clip.mp4", "--no-window", "--log", "l.jsonl", "--top-k", "3", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in (tmp_path / "l.jsonl").read_text().splitlines()]
    assert records and all(len(r["top"]) == 3 for r in records)
    first = records[0]
    assert set(first) == {"frame", "stream", "heatmap_frame", "method", "runtime", "device", "stability", "trust", "t",
                          "wall", "top", "explained", "ms"}
    # On a CPU the default model runs on LiteRT, on the CPU.
    assert {(r["runtime"], r["device"]) for r in records} == {("litert", "cpu")}
    assert set(first["explained"]) == {"index", "label", "score", "peak_xy"}
    assert set(first["ms"]) == {"capture", "engine", "render", "write"}


@pytest.mark.slow  # over 15 s measured on 2 cores
def test_demo_written_to_a_file_can_be_watched_in_the_browser(tmp_path):
    port = free_port()
    proc = start("demo", "--no-window", "-o", "d.mp4", "--serve", f"127.0.0.1:{port}", "--seconds-per-scene", "2",
                 cwd=tmp_path, env={"DISPLAY": ""})
    state, deadline = {}, time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None and not state.get("top"):
        try:
            status, body = get(f"http://127.0.0.1:{port}/state", timeout=2)
            state = json.loads(body) if status == 200 else {}
        except OSError:
            time.sleep(0.1)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert state.get("top") and state["controls"] is False  # served while writing (view only)
    assert "browser view" in out and count_frames(tmp_path / "d.mp4") == 5 * 60


@pytest.mark.parametrize("argv, fragment", [
    (["live", "--source", "clip.mp4", "--no-window", "--fullscreen"], "--fullscreen needs a window"),
    (["demo", "--no-window", "-o", "d.mp4", "--kiosk"], "play the demo live"),
    (["demo", "--no-window", "-o", "d.mp4", "--cycle", "3"], "play the demo live"),
    (["video", "clip.mp4", "-o", "o.mp4", "--token", "x"], "--token goes with --serve"),
])
def test_flags_that_cannot_take_effect_are_refused(tmp_path, argv, fragment):
    write_clip(tmp_path / "clip.mp4", frames=3)
    assert_one_line_error(run(*argv, cwd=tmp_path), fragment)


@pytest.mark.unit
def test_preprocess_accepts_a_value_that_starts_with_a_dash():
    from stream_cam.cli.parser import build_parser, join_dash_values

    args = build_parser().parse_args(join_dash_values(["image", "--preprocess", "-1..1", "x.png"]))
    assert args.preprocess == "-1..1" and args.paths == ["x.png"]
