"""What trying to break stream_cam found, closed: links at output names, DNS rebinding, cross-site
requests, framing, oversized and hostile control values, slow clients, token guessing, lying headers."""

from __future__ import annotations

import http.client
import json
import logging
import signal
import socket
import threading
from pathlib import Path

import numpy as np
import pytest

from helpers import assert_one_line_error, free_port, get, run, start, wait_for_lines, write_clip
from stream_cam.errors import OutputExistsError
from stream_cam.sinks.files import check_output_path, next_free_path, publish, temporary_path, write_image
from stream_cam.sinks.worker import JsonlLog
from stream_cam.web import server as web_server
from stream_cam.web.address import parse_address
from stream_cam.web.auth import FREE_FAILURES, FailedAttempts
from stream_cam.web.broadcast import Broadcaster
from stream_cam.web.server import WebServer

# -- outputs: a link at the output's name is an existing file --------------------------------------


@pytest.fixture
def dangling(tmp_path) -> Path:
    link = tmp_path / "out.mp4"
    link.symlink_to(tmp_path / "nowhere" / "x.mp4")
    return link


@pytest.mark.unit
def test_a_dangling_link_counts_as_existing(dangling):
    with pytest.raises(OutputExistsError, match="symbolic link"):
        check_output_path(dangling, overwrite=False)
    assert next_free_path(dangling).name == "out-2.mp4"
    tmp = temporary_path(dangling)
    tmp.write_bytes(b"result")
    with pytest.raises(OutputExistsError):
        publish(tmp, dangling, overwrite=False)
    final = publish(tmp, dangling, overwrite=False, elsewhere=True)  # returns: no endless loop
    assert final.name == "out-2.mp4" and final.read_bytes() == b"result"
    assert dangling.is_symlink() and not (dangling.parent / "nowhere").exists()


@pytest.mark.unit
def test_overwrite_replaces_a_link_never_its_target(tmp_path):
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    for name, write in [("log.jsonl", lambda p: JsonlLog(p, str, overwrite=True).close()),
                        ("snap.png", lambda p: write_image(p, np.zeros((8, 8, 3), np.uint8), overwrite=True))]:
        link = tmp_path / name
        link.symlink_to(target)
        write(link)
        assert not link.is_symlink() and link.is_file()
        assert target.read_text() == "keep me"
    link = tmp_path / "log2.jsonl"
    link.symlink_to(target)
    with pytest.raises(OutputExistsError):
        JsonlLog(link, str, overwrite=False)


@pytest.mark.unit
def test_the_log_grows_under_its_final_name(tmp_path):
    log = JsonlLog(tmp_path / "a.jsonl", str)
    try:
        assert (tmp_path / "a.jsonl").exists()  # followable (tail -f) from the start
        assert not list(tmp_path.glob(".*part*"))  # no temporary name left behind
    finally:
        log.close()


@pytest.mark.parametrize("command", [
    ["video", "clip.mp4", "-o", "out.mp4"],
    ["demo", "--no-window", "-o", "out.mp4"],
    ["video", "clip.mp4", "-o", "other.mp4", "--log", "out.mp4"],
    ["video", "clip.mp4", "-o", "other.mp4", "--results", "out.mp4"],
    ["live", "--source", "clip.mp4", "--no-window", "--record", "out.mp4"],
    ["image", "skimage:chelsea", "-o", "out.mp4"],
    ["export", "-o", "out.mp4"],
], ids=["video", "demo", "log", "results", "record", "image", "export"])
def test_every_output_flag_refuses_a_dangling_link(command, tmp_path):
    write_clip(tmp_path / "clip.mp4", frames=4)
    (tmp_path / "out.mp4").symlink_to("/nonexistent/x.mp4")
    result = run(*command, cwd=tmp_path, timeout=120)
    assert result.returncode == 2, result.stderr
    assert_one_line_error(result, "out.mp4")
    assert (tmp_path / "out.mp4").is_symlink() and not list(tmp_path.glob(".*part*"))


def test_video_over_a_dangling_link_with_overwrite_replaces_the_link(dangling, tmp_path):
    write_clip(tmp_path / "clip.mp4", frames=6)
    result = run("video", "clip.mp4", "-o", "out.mp4", "--overwrite", cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    assert dangling.is_file() and not dangling.is_symlink() and not Path("/nonexistent").exists()


def test_sigterm_ends_a_demo_whose_default_name_is_a_dangling_link(tmp_path):
    (tmp_path / "stream_cam_demo.mp4").symlink_to("/nonexistent/x.mp4")
    proc = start("demo", "--no-window", "--log", "d.jsonl", "-v", cwd=tmp_path, env={"DISPLAY": ""})
    try:
        wait_for_lines(tmp_path / "d.jsonl", 10, proc)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, err
    # Stopped: the frames done are kept as NAME.partial, beside the link, which is left alone.
    written = tmp_path / "stream_cam_demo-2.partial.mp4"
    assert written.is_file() and "stream_cam_demo-2.partial.mp4" in out + err
    assert (tmp_path / "stream_cam_demo.mp4").is_symlink()
    assert not list(tmp_path.glob(".*part*"))


def test_resume_refuses_a_file_that_is_not_a_video(tmp_path):
    write_clip(tmp_path / "clip.mp4", frames=4)
    (tmp_path / "x.mp4").write_text("notes\n")
    result = run("video", "clip.mp4", "-o", "x.mp4", "--resume", cwd=tmp_path, timeout=120)
    assert_one_line_error(result, "--resume", "x.mp4", "--overwrite")
    assert result.returncode == 2 and (tmp_path / "x.mp4").read_text() == "notes\n"


# -- the browser view: Host, Origin, content type, sizes, headers ----------------------------------


class Recorder:
    """An ``apply_control`` that remembers what it applied (the state must not change on a refusal)."""

    def __init__(self) -> None:
        self.applied: list = []

    def __call__(self, change) -> dict:
        self.applied.append(change)
        return {"ok": True}


@pytest.fixture
def view():
    hub = Broadcaster()
    hub.publish(np.zeros((48, 64, 3), np.uint8), {"frame": 1})
    recorder = Recorder()
    port = free_port()
    server = WebServer(parse_address(str(port)), hub, recorder, allow_hosts=["kiosk.lan"]).start()
    try:
        get(f"http://127.0.0.1:{port}/healthz")  # serving
        yield port, recorder
    finally:
        server.close()


def request(port: int, method: str, path: str, headers: dict, body: bytes = b"") -> tuple[int, dict, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        headers = {"Host": f"127.0.0.1:{port}", **headers}
        if body or method == "POST":
            headers.setdefault("Content-Length", str(len(body)))
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.endheaders(body or None)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


@pytest.mark.parametrize("path", ["/", "/state", "/snapshot.jpg", "/healthz", "/static/app.js", "/stream.mjpg"])
@pytest.mark.unit
def test_a_foreign_host_gets_no_data(view, path):
    port, _ = view
    status, _, body = request(port, "GET", path, {"Host": f"evil.example:{port}"})
    assert status == 421 and b"frame" not in body and b"\xff\xd8" not in body
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}", f"kiosk.lan:{port}", "KIOSK.LAN"):
        if path != "/stream.mjpg":
            assert request(port, "GET", path, {"Host": host})[0] == 200, host
    assert request(port, "GET", "/state", {"Host": f"kiosk.lan.evil.example:{port}"})[0] == 421


@pytest.mark.unit
def test_a_foreign_host_cannot_control(view):
    port, recorder = view
    status, _, _ = request(port, "POST", "/control", {"Host": f"evil.example:{port}",
                                                      "Content-Type": "application/json"}, b'{"pause": true}')
    assert status == 421 and recorder.applied == []


@pytest.mark.parametrize("headers, status", [
    ({"Content-Type": "text/plain"}, 415),
    ({"Content-Type": "application/x-www-form-urlencoded"}, 415),
    ({"Content-Type": "multipart/form-data; boundary=x"}, 415),
    ({}, 415),
    ({"Content-Type": "application/json", "Origin": "null"}, 403),
    ({"Content-Type": "application/json", "Origin": "http://evil.example"}, 403),
    ({"Content-Type": "application/json", "Origin": "http://127.0.0.1:1"}, 403),  # another port, same host
    ({"Content-Type": "application/json", "Sec-Fetch-Site": "cross-site"}, 403),
    ({"Content-Type": "application/json", "Sec-Fetch-Site": "same-site"}, 403),
])
@pytest.mark.unit
def test_cross_site_controls_are_refused(view, headers, status):
    port, recorder = view
    got, _, body = request(port, "POST", "/control", headers, b'{"pause": true}')
    assert got == status and recorder.applied == [] and len(body) < 200


@pytest.mark.unit
def test_the_own_origin_may_control(view):
    port, recorder = view
    status, headers, _ = request(port, "POST", "/control", {"Content-Type": "application/json; charset=utf-8",
                                                            "Origin": f"http://127.0.0.1:{port}",
                                                            "Sec-Fetch-Site": "same-origin"}, b'{"pause": true}')
    assert status == 200 and len(recorder.applied) == 1 and recorder.applied[0].pause is True
    assert headers["cache-control"] == "no-store"


@pytest.mark.parametrize("path", ["/", "/state", "/healthz", "/snapshot.jpg", "/static/app.js"])
@pytest.mark.unit
def test_security_headers(view, path):
    port, _ = view
    status, headers, _ = request(port, "GET", path, {})
    assert status == 200
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert "script-src 'self'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY" and headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    if path in ("/state", "/healthz"):
        assert headers["cache-control"] == "no-store"


@pytest.mark.unit
def test_bodies_over_the_limit_are_refused_before_they_are_read(view):
    port, recorder = view
    big = json.dumps({"colormap": "x" * 10_000_000}).encode()
    status, _, body = request(port, "POST", "/control", {"Content-Type": "application/json"}, big)
    assert status == 413 and len(body) < 200 and recorder.applied == []
    # No length given (chunked): stopped once the limit is passed.
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("POST", "/control", body=iter([b"[" * 40_000] * 3),
                           headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
                           encode_chunked=True)
        response = connection.getresponse()
        assert response.status == 413 and len(response.read()) < 200
    finally:
        connection.close()


@pytest.mark.parametrize("body", [
    '{"alpha": ' + "9" * 5000 + "}", '{"rank": ' + "9" * 5000 + "}", '{"alpha": 1' + "0" * 400 + "}",
    "[" * 10_000 + "]" * 10_000, '{"class": "' + "7" * 5000 + '"}', '{"class": "²"}',
    '{"colormap": "' + "y" * 5000 + '"}', '{"method": "' + "z" * 5000 + '"}', '{"' + "k" * 5000 + '": 1}',
])
def test_hostile_values_get_a_short_400(tiny_cam, body, caplog):
    from stream_cam.jobs.live import LiveOptions, LiveRun

    live = LiveRun(tiny_cam, LiveOptions(window=False))
    port = free_port()
    server = WebServer(parse_address(str(port)), Broadcaster(), live.apply_control).start()
    try:
        with caplog.at_level(logging.WARNING):
            status, _, reply = request(port, "POST", "/control", {"Content-Type": "application/json"}, body.encode())
        assert status == 400, reply
        assert len(reply) < 400
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]  # no traceback logged
    finally:
        server.close()


@pytest.mark.unit
def test_a_client_leaving_mid_body_leaves_no_traceback(view, caplog):
    port, recorder = view
    with caplog.at_level(logging.WARNING):
        for _ in range(5):
            with socket.create_connection(("127.0.0.1", port)) as sock:
                sock.sendall(f"POST /control HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json"
                             "\r\nContent-Length: 1000\r\n\r\n{\"pa".encode())
        assert get(f"http://127.0.0.1:{port}/healthz")[0] == 200  # still serving, after the 5 left
    assert recorder.applied == []
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], [r.getMessage() for r in caplog.records]


@pytest.mark.unit
def test_a_client_that_never_finishes_its_headers_is_closed(monkeypatch):
    monkeypatch.setattr(web_server, "HEADER_TIMEOUT_S", 1.0)
    port = free_port()
    server = WebServer(parse_address(str(port)), Broadcaster(), Recorder()).start()
    try:
        get(f"http://127.0.0.1:{port}/healthz")
        slow = [socket.create_connection(("127.0.0.1", port)) for _ in range(20)]
        for sock in slow:
            sock.sendall(b"GET /state HTTP/1.1\r\nHo")
            sock.settimeout(15)
        assert get(f"http://127.0.0.1:{port}/healthz")[0] == 200  # the others are served meanwhile
        for sock in slow:
            assert sock.recv(100) == b""  # closed by the server (a timeout here raises)
            sock.close()
    finally:
        server.close()


@pytest.mark.unit
def test_a_polling_client_keeps_its_connection_past_the_header_deadline(monkeypatch):
    monkeypatch.setattr(web_server, "HEADER_TIMEOUT_S", 1.0)
    port = free_port()
    server = WebServer(parse_address(str(port)), Broadcaster(), Recorder()).start()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", "/healthz")
        connection.getresponse().read()
        sock = connection.sock
        for _ in range(12):  # a page polling 5 times a second, for 2.4 deadlines
            threading.Event().wait(0.2)  # the client's own pace
            connection.request("GET", "/healthz")
            response = connection.getresponse()
            assert response.status == 200 and response.read()
        assert connection.sock is sock  # the same connection throughout: never cut between requests
    finally:
        connection.close()
        server.close()


@pytest.mark.unit
def test_wrong_tokens_are_logged_without_the_token_and_slowed(caplog):
    port = free_port()
    server = WebServer(parse_address(str(port)), Broadcaster(), Recorder(), token="right-token-123").start()
    try:
        with caplog.at_level(logging.WARNING, logger="stream_cam.web.auth"):
            statuses = [get(f"http://127.0.0.1:{port}/state?token=guess-{i}")[0] for i in range(FREE_FAILURES + 3)]
        assert statuses[:FREE_FAILURES] == [401] * FREE_FAILURES and statuses[-1] == 429
        messages = [r.getMessage() for r in caplog.records]
        assert messages and len(messages) < len(statuses)  # logged, not once per guess
        assert not any("guess" in m or "right-token" in m for m in messages)
    finally:
        server.close()


@pytest.mark.unit
def test_the_lockout_doubles_and_ends():
    now = [0.0]
    attempts = FailedAttempts(clock=lambda: now[0])
    for _ in range(FREE_FAILURES):
        attempts.failed("a")
    assert attempts.locked("a") == 0
    attempts.failed("a")
    first = attempts.locked("a")
    attempts.failed("a")
    assert attempts.locked("a") == pytest.approx(2 * first) and attempts.locked("b") == 0
    now[0] += 3
    assert attempts.locked("a") == 0
    attempts.succeeded("a")
    attempts.failed("a")
    assert attempts.locked("a") == 0


def test_token_from_a_file_or_the_environment(tmp_path):
    secret = "file-token-9876"
    (tmp_path / "token").write_text(secret + "\n")
    port = free_port()
    proc = start("demo", "--no-window", "--serve", f"0.0.0.0:{port}", "--token-file", "token", cwd=tmp_path,
                 env={"DISPLAY": ""})
    try:
        from helpers import wait_for_server

        wait_for_server(f"http://127.0.0.1:{port}/", proc, secret)
        assert get(f"http://127.0.0.1:{port}/state")[0] == 401
        assert get(f"http://127.0.0.1:{port}/state", {"Authorization": f"Bearer {secret}"})[0] == 200
        assert secret not in Path(f"/proc/{proc.pid}/cmdline").read_bytes().decode(errors="replace")
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=60)
    assert secret not in out + err
    for extra, fragment in [(["--token-file", "missing"], "--token-file"),
                            (["--token", "a", "--token-file", "token"], "once")]:
        result = run("demo", "--no-window", "--serve", str(free_port()), *extra, cwd=tmp_path)
        assert_one_line_error(result, fragment)
    result = run("demo", "--no-window", "--serve", f"0.0.0.0:{free_port()}", cwd=tmp_path,
                 env={"STREAM_CAM_TOKEN": "", "DISPLAY": ""})
    assert_one_line_error(result, "--token")  # an empty variable is no token


def test_allow_host_goes_with_serve(tmp_path):
    assert_one_line_error(run("demo", "--no-window", "--allow-host", "kiosk.lan", cwd=tmp_path), "--serve")


# -- Ray: a header that lies about the frame count --------------------------------------------------


def avi_claiming(path: Path, claimed: int, frames: int = 12) -> Path:
    """An MJPG AVI of ``frames`` frames whose headers claim ``claimed`` frames."""
    write_clip(path.with_suffix(".tmp.avi"), frames=frames)
    import cv2

    capture = cv2.VideoCapture(str(path.with_suffix(".tmp.avi")))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 12.0, (160, 120))
    while True:
        ok, image = capture.read()
        if not ok:
            break
        writer.write(image)
    writer.release()
    capture.release()
    data = bytearray(path.read_bytes())
    avih = data.index(b"avih")
    data[avih + 8 + 16:avih + 8 + 20] = claimed.to_bytes(4, "little")  # dwTotalFrames
    strh = data.index(b"strh")
    data[strh + 8 + 32:strh + 8 + 36] = claimed.to_bytes(4, "little")  # dwLength
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("claimed", [0, 1_000_000_000])
@pytest.mark.unit
def test_ray_probe_counts_frames_a_header_lies_about(tmp_path, claimed):
    from stream_cam.jobs.chunks import plan_chunks
    from stream_cam.jobs.video_job import probe_input

    video = avi_claiming(tmp_path / "lying.avi", min(claimed, 2**32 - 1))
    info = probe_input(str(video))
    assert info.frame_count == 12
    assert len(plan_chunks(0, info.frame_count, None, 4, 0.0)) == 1


# -- the same attacks from a real browser -------------------------------------------------------------

ATTACK_PAGE = """<!doctype html><html><body>
<iframe id="framed" src="http://127.0.0.1:{port}/"></iframe>
<iframe name="sink"></iframe>
<form id="form" action="http://127.0.0.1:{port}/control" method="POST" enctype="text/plain" target="sink">
<input name='{{"pause": true, "x": "' value='"}}'></form>
<script>
window.attempts = Promise.allSettled([
  fetch("http://127.0.0.1:{port}/control", {{method: "POST", mode: "no-cors", credentials: "include",
        body: '{{"pause": true}}'}}),
  fetch("http://127.0.0.1:{port}/control", {{method: "POST", mode: "no-cors", credentials: "include",
        headers: {{"Content-Type": "application/x-www-form-urlencoded"}}, body: "pause=true"}}),
  fetch("http://127.0.0.1:{port}/control", {{method: "POST", credentials: "include",
        headers: {{"Content-Type": "application/json"}}, body: '{{"pause": true}}'}}),
]).then(() => {{ document.getElementById("form").submit(); return "sent"; }});
</script></body></html>"""


@pytest.fixture
def attacker(tmp_path):
    """Another web server on this host (another port): where the hostile pages come from."""
    import functools
    import http.server

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="attacker", daemon=True)
    thread.start()
    try:
        yield tmp_path, server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def chromium(playwright, *extra: str):
    import shutil

    from test_web import CHROMIUM, CHROMIUM_FLAGS

    if not shutil.which("chromium"):
        pytest.fail("chromium is missing: apt-get install chromium (see .ci/run)")
    return playwright.chromium.launch(executable_path=CHROMIUM, args=[*CHROMIUM_FLAGS, *extra],
                                      ignore_default_args=["--headless=old"])


@pytest.mark.browser
def test_a_rebound_name_gets_nothing_in_chromium(view):
    """evil.example resolving to 127.0.0.1 (Chromium's host-resolver rules stand in for the DNS)."""
    from playwright.sync_api import sync_playwright

    port, recorder = view
    with sync_playwright() as playwright:
        browser = chromium(playwright, "--host-resolver-rules=MAP evil.example 127.0.0.1")
        try:
            page = browser.new_page()
            response = page.goto(f"http://evil.example:{port}/")
            assert response.status == 421
            got = page.evaluate("""async () => {
                const state = await fetch('/state');
                const snap = await fetch('/snapshot.jpg');
                const control = await fetch('/control', {method: 'POST', headers: {'Content-Type': 'application/json'},
                                                         body: '{"pause": true}'});
                return [state.status, await state.text(), snap.status, control.status];
            }""")
            assert got[0] == 421 and '"frame"' not in got[1] and got[2] == 421 and got[3] == 421
            assert page.goto(f"http://localhost:{port}/state").status == 200  # the real names still work
        finally:
            browser.close()
    assert recorder.applied == []


@pytest.mark.browser
@pytest.mark.parametrize("token", [None, "viewer-token-55"], ids=["open", "with-token"])
def test_a_page_on_another_port_cannot_drive_or_frame_the_view(attacker, token):
    from playwright.sync_api import sync_playwright

    folder, attacker_port = attacker
    hub = Broadcaster()
    hub.publish(np.zeros((48, 64, 3), np.uint8), {"frame": 1})
    recorder = Recorder()
    port = free_port()
    (folder / "attack.html").write_text(ATTACK_PAGE.format(port=port))
    server = WebServer(parse_address(str(port)), hub, recorder, token=token).start()
    try:
        with sync_playwright() as playwright:
            browser = chromium(playwright)
            try:
                context = browser.new_context()
                page = context.new_page()
                if token:  # the viewer opened the page once: the browser holds the SameSite=Strict cookie
                    page.goto(f"http://127.0.0.1:{port}/?token={token}", wait_until="domcontentloaded")
                    assert page.url == f"http://127.0.0.1:{port}/"
                # Had the view loaded in the frame, its endless MJPEG would keep "load" from ever firing.
                page.goto(f"http://127.0.0.1:{attacker_port}/attack.html")
                assert page.evaluate("window.attempts") == "sent"
                page.wait_for_load_state("load")
                framed = page.frame_locator("#framed")
                assert framed.locator("#topk").count() == 0  # frame-ancestors 'none': the view did not load
            finally:
                browser.close()
        assert recorder.applied == []  # nothing the page sent changed the state
    finally:
        server.close()
