"""Secrets never reach a screen, log, frame or response; a refused source says what the server said.
The source here is itself a stream_cam: a demo serving its raw frames behind a token."""

from __future__ import annotations

import json

import pytest

from helpers import assert_one_line_error, free_port, get, run, start, wait_for_server
from stream_cam.redact import redact

SECRET = "pa55-SECRET-t0ken"


@pytest.mark.parametrize("spec, shown", [
    (f"rtsp://admin:{SECRET}@cam.local:554/stream", "rtsp://admin:***@cam.local:554/stream"),
    (f"http://cam/stream.mjpg?token={SECRET}&channel=2", "http://cam/stream.mjpg?token=***&channel=***"),
    (f"https://u:{SECRET}@[::1]:8443/a?key={SECRET}#{SECRET}", "https://u:***@[::1]:8443/a?key=***#***"),
    (f"http://cam/s.mjpg?{SECRET}&a=1", "http://cam/s.mjpg?***&a=***"),
    ("0", "0"), ("/dev/video2", "/dev/video2"), ("clips/a.mp4", "clips/a.mp4"),
])
@pytest.mark.unit
def test_source_addresses_are_redacted(spec, shown):
    assert redact(spec) == shown and SECRET not in redact(spec)


@pytest.fixture
def upstream(tmp_path):
    """A stream_cam demo serving on loopback with a token: the source of the tests below."""
    port = free_port()
    proc = start("demo", "--no-window", "--serve", f"127.0.0.1:{port}", "--token", SECRET, "--seconds-per-scene",
                 "1", cwd=tmp_path, env={"DISPLAY": ""})
    base = f"http://127.0.0.1:{port}/"
    wait_for_server(base, proc, token=SECRET)
    yield base
    proc.terminate()
    proc.communicate(timeout=30)


def test_a_stream_cam_fed_by_a_stream_cam_shows_no_secret(upstream, tmp_path):
    port = free_port()
    source = f"{upstream}raw.mjpg?token={SECRET}"
    proc = start("live", "--source", source, "--no-window", "--max-frames", "40", "--log", "b.jsonl",
                 "--serve", f"127.0.0.1:{port}", cwd=tmp_path, env={"DISPLAY": ""})
    wait_for_server(f"http://127.0.0.1:{port}/", proc)
    state = json.loads(get(f"http://127.0.0.1:{port}/state", timeout=2)[1])
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert state.get("source") == f"{upstream}raw.mjpg?token=***"
    assert SECRET not in out + err + json.dumps(state) + (tmp_path / "b.jsonl").read_text()
    assert len((tmp_path / "b.jsonl").read_text().splitlines()) == 40


def test_a_refused_source_says_what_the_server_said(upstream, tmp_path):
    result = run("live", "--source", f"{upstream}stream.mjpg?token=wrong-{SECRET}", "--no-window", cwd=tmp_path)
    assert_one_line_error(result, "the server answered 401", "token")
    assert SECRET not in result.stdout + result.stderr
