"""The browser view: a real headless Chromium, concurrency, the token, bad input."""

from __future__ import annotations

import http.client
import json
import shutil
import socket
import threading
import time

import cv2
import matplotlib
import numpy as np
import pytest

from helpers import (assert_one_line_error, first_mjpeg_frame, free_port, get, post, run, start, wait_for_server,
                     wait_until)
from stream_cam.errors import InputError
from stream_cam.jobs.live import LiveOptions, LiveRun
from stream_cam.sources.demo import DemoClip
from stream_cam.sources.readers import ArrayReader
from stream_cam.web.broadcast import Broadcaster
from stream_cam.web.address import parse_address
from stream_cam.web.server import WebServer
from stream_cam.web.state import parse_control

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--disable-quic"]



def snapshot_after_change(base: str, auth: dict, key: str, value: object) -> bytes:
    """/snapshot.jpg once /state says ``key`` is ``value`` and two newer frames have been drawn."""
    state = wait_until(lambda: (s := json.loads(get(base + "state", auth)[1])).get(key) == value and s, 15,
                       f"{key} = {value} in /state")
    wait_until(lambda: json.loads(get(base + "state", auth)[1])["frame"] >= state["frame"] + 2, 15, "newer frames")
    return get(base + "snapshot.jpg", auth)[1]


def saturation(jpeg: bytes) -> float:
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    return float(cv2.cvtColor(image, cv2.COLOR_BGR2HSV)[..., 1].mean())


def on_jet(jpeg: bytes) -> float:
    """The fraction of the picture's pixels that are colours of matplotlib's jet (within 16 levels).

    A heatmap drawn at alpha 1 is all jet; a photo almost never is (the demo's photos: under 0.1%).
    """
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    jet = (matplotlib.colormaps["jet"](np.linspace(0, 1, 256))[:, 2::-1] * 255).astype(np.float32)  # BGR
    pixels = image.reshape(-1, 3)[::5].astype(np.float32)
    distance = np.sqrt(((pixels[:, None, :] - jet[None]) ** 2).sum(-1)).min(axis=1)
    return float((distance < 16).mean())


@pytest.fixture(params=[None, "s3cret-viewer"], ids=["open", "with-token"])
def demo_server(request, tmp_path):
    """A demo serving the page, without and with a token; yields (base URL, token)."""
    port, token = free_port(), request.param
    proc = start("demo", "--no-window", "--serve", f"127.0.0.1:{port}", *(["--token", token] if token else []),
                 cwd=tmp_path, env={"DISPLAY": ""})
    base = f"http://127.0.0.1:{port}/"
    try:
        wait_for_server(base, proc, token)
        yield base, token
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=30)
        if token:
            assert token not in out + err  # never logged or printed


@pytest.mark.browser
def test_page_in_headless_chromium(demo_server, tmp_path):
    base, token = demo_server
    auth = {"Authorization": f"Bearer {token}"} if token else {}
    if not shutil.which("chromium"):
        pytest.fail("chromium is missing: apt-get install chromium (see .ci/run)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS,
                                             ignore_default_args=["--headless=old"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(base + (f"?token={token}" if token else ""))
            if token:  # the token leaves the address bar and the page at once
                assert page.url == base and token not in page.content()
            page.wait_for_function("() => document.getElementById('view').naturalWidth > 0", timeout=30000)
            # The image updates: the stream delivers new frames.
            first = page.locator("#view").screenshot()
            wait_until(lambda: page.locator("#view").screenshot() != first, 30, "a new frame on the page")
            # The top-k list shows class names from the live state.
            page.wait_for_function("() => document.querySelectorAll('#topk li').length >= 5", timeout=30000)
            labels = page.locator("#topk .label").all_inner_texts()
            assert all(any(c.isalpha() for c in label) for label in labels)
            assert page.locator("#topk li.explained").count() == 1
            page.screenshot(path=str(tmp_path / "page.png"))
            assert page.locator("#error").inner_text() == ""
            # The page says what runs the explainer (on this CPU, LiteRT by default).
            state = json.loads(get(base + "state", auth)[1])
            assert (state["runtime"], state["device"]) == ("litert", "cpu")
            assert "litert on cpu" in page.locator("#stats").inner_text()
            # Alpha through the page changes the next frames.
            page.locator("#alpha").fill("1")
            page.wait_for_function("() => document.getElementById('alpha-value').textContent === '1.00'")
            all_heat = on_jet(snapshot_after_change(base, auth, "alpha", 1.0))
            page.locator("#alpha").fill("0")
            page.wait_for_function("() => document.getElementById('alpha-value').textContent === '0.00'")
            no_heat = on_jet(snapshot_after_change(base, auth, "alpha", 0.0))
            assert json.loads(get(base + "state", auth)[1])["alpha"] == 0.0
            assert all_heat > 0.6 and no_heat < 0.1, (all_heat, no_heat)
            # Clicking a class in the list pins that class (not its rank, which drifts as the scene moves).
            # A user points at the list, reads a row and clicks it: under the pointer the rows hold their classes.
            page.locator("#topk").hover()
            index = int(page.locator("#topk li").nth(2).get_attribute("data-index"))
            page.locator("#topk li").nth(2).click()
            wait_until(lambda: json.loads(get(base + "state", auth)[1])["explained"]["index"] == index, 15,
                       "the clicked class being explained")
            assert json.loads(get(base + "state", auth)[1])["choice"]["class"] == index
        finally:
            browser.close()


class Viewer(threading.Thread):
    """Reads the MJPEG stream as fast as it can, counting bytes."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port, self.bytes, self.stop = port, 0, threading.Event()

    def run(self) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        connection.request("GET", "/stream.mjpg")
        response = connection.getresponse()
        while not self.stop.is_set():
            chunk = response.read1(65536)
            if not chunk:
                break
            self.bytes += len(chunk)
        connection.close()


def live_fps(cam, port: int | None, frames: int, viewers: int = 0, stalled: int = 0) -> tuple[float, list]:
    clip = DemoClip(seconds_per_scene=1.0)
    options = LiveOptions(window=False, max_frames=frames, serve=parse_address(f"127.0.0.1:{port}") if port else None)
    run = LiveRun(cam, options, lambda: ArrayReader(lambda i: clip(i % clip.frame_count), 30.0, "demo"))
    clients, sockets = [], []
    if port:
        def attach() -> None:
            base = f"http://127.0.0.1:{port}/"
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    if get(base + "healthz", timeout=1)[0] == 200:
                        break
                except OSError:
                    time.sleep(0.05)
            for _ in range(viewers):
                clients.append(Viewer(port))
                clients[-1].start()
            for _ in range(stalled):  # asks for the stream, then never reads a byte
                sock = socket.create_connection(("127.0.0.1", port))
                sock.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: x\r\n\r\n")
                sockets.append(sock)

        threading.Thread(target=attach, daemon=True).start()
    stats = run.run()
    for client in clients:
        client.stop.set()
    for sock in sockets:
        sock.close()
    return stats.fps, clients


def test_viewers_do_not_slow_the_pipeline(lite0_cam):
    alone, _ = live_fps(lite0_cam, None, 150)
    watched, clients = live_fps(lite0_cam, free_port(), 150, viewers=3, stalled=1)
    print(f"pipeline fps alone {alone:.1f}, with 3 viewers + 1 stalled {watched:.1f}")
    assert all(client.bytes > 100_000 for client in clients)  # the viewers really got frames
    assert watched >= 0.9 * alone


@pytest.mark.unit
def test_stalled_clients_are_cleaned_up():
    hub = Broadcaster()
    port = free_port()
    server = WebServer(parse_address(str(port)), hub, lambda change: {}).start()
    try:
        frame = np.zeros((240, 320, 3), np.uint8)
        for i in range(5):
            hub.publish(frame + i, {"frame": i})
        viewer = Viewer(port)
        viewer.start()
        wait_until(lambda: json.loads(get(f"http://127.0.0.1:{port}/healthz")[1])["viewers"] == 1, 10, "a viewer")
        viewer.stop.set()

        def gone() -> bool:  # the next frames make the server notice the closed connection
            hub.publish(frame, {})
            return json.loads(get(f"http://127.0.0.1:{port}/healthz")[1])["viewers"] == 0

        wait_until(gone, 10, "the closed viewer being noticed")
    finally:
        server.close()


@pytest.mark.unit
def test_token_is_enforced_off_loopback():
    hub = Broadcaster()
    hub.publish(np.zeros((48, 64, 3), np.uint8), {"frame": 1})
    port = free_port()
    with pytest.raises(InputError, match="--token"):
        WebServer(parse_address(f"0.0.0.0:{port}"), hub, lambda c: {})
    server = WebServer(parse_address(f"0.0.0.0:{port}"), hub, lambda c: {}, token="s3cret").start()
    try:
        base = f"http://127.0.0.1:{port}/"
        for path in ("", "state", "snapshot.jpg", "healthz"):
            assert get(base + path)[0] == 401
            assert get(base + path + "?token=wrong")[0] == 401
            if path:  # the page itself redirects (below)
                assert get(base + path + "?token=s3cret")[0] == 200
        assert get(base + "state", {"Authorization": "Bearer s3cret"})[0] == 200
        assert get(base + "state", {"Cookie": "stream_cam_view=s3cret"})[0] == 401  # the cookie is not the token
        # Opening the page with the token: a redirect to the bare page, and a cookie for its requests.
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", "/?token=s3cret")
        response = connection.getresponse()
        response.read()
        cookie = response.getheader("Set-Cookie")
        assert response.status == 303 and response.getheader("Location") == "/"
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "s3cret" not in cookie
        session = {"Cookie": cookie.split(";")[0]}
        for path in ("", "static/app.js", "state", "snapshot.jpg", "healthz"):
            status, body = get(base + path, session)
            assert status == 200 and b"s3cret" not in body  # no response carries the token
        assert get(base + "state", {"Cookie": "stream_cam_view=" + "0" * 64})[0] == 401
        connection.close()
    finally:
        server.close()


@pytest.mark.unit
def test_page_needs_nothing_from_outside():
    hub = Broadcaster()
    port = free_port()
    server = WebServer(parse_address(str(port)), hub, lambda c: {}).start()
    try:
        _, page = get(f"http://127.0.0.1:{port}/")
        text = page.decode()
        assert "http://" not in text and "https://" not in text  # no CDN, no remote asset
        assert get(f"http://127.0.0.1:{port}/static/app.js")[0] == 200
        assert get(f"http://127.0.0.1:{port}/static/../server.py")[0] == 404  # no path is read from a request
    finally:
        server.close()


def test_controls_are_validated(tiny_cam):
    run = LiveRun(tiny_cam, LiveOptions(window=False))
    change = parse_control({"alpha": 0.7, "colormap": "viridis", "rank": 3, "pause": True})
    assert run.apply_control(change)["alpha"] == 0.7
    assert run.controls.choice.target() == -3 and run.controls.paused
    for bad in ({"alpha": 2}, {"alpha": "x"}, {"colormap": "nope"}, {"rank": 9}, {"pause": "yes"}, {"rm": 1}, [1]):
        with pytest.raises(InputError):
            run.apply_control(parse_control(bad))


@pytest.mark.parametrize(
    "serve, extra, fragments",
    [
        ("0.0.0.0:{port}", [], ["--token"]),
        ("nohost:{port}", [], ["not an IP address"]),
        ("{busy}", [], ["already in use"]),
        ("99999", [], ["out of range"]),
    ],
)
def test_serve_bad_input(tmp_path, serve, extra, fragments):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        address = serve.format(port=free_port(), busy=busy.getsockname()[1])
        result = run("demo", "--no-window", "--serve", address, *extra, cwd=tmp_path)
    assert_one_line_error(result, *fragments)


@pytest.mark.unit
def test_raw_stream_carries_the_source_frames_without_overlay():
    hub = Broadcaster()
    source = np.full((48, 64, 3), 128, np.uint8)  # grey: no colour at all
    annotated = cv2.applyColorMap(source, cv2.COLORMAP_JET)
    hub.publish(annotated, {"frame": 1}, raw=source)
    port = free_port()
    server = WebServer(parse_address(str(port)), hub, lambda c: {}).start()
    try:
        assert saturation(first_mjpeg_frame(port, "/raw.mjpg")) < 5
        assert saturation(first_mjpeg_frame(port, "/stream.mjpg")) > 100
    finally:
        server.close()


@pytest.mark.browser
def test_page_of_an_exported_model_offers_its_one_method(lite0_tflite, tmp_path):
    """The light install's browser view: the page works, and its method menu offers the exported method only."""
    from helpers import start_without_tensorflow, viewer_page

    port = free_port()
    proc = start_without_tensorflow("demo", "--no-window", "--serve", f"127.0.0.1:{port}", "--model",
                                    str(lite0_tflite), cwd=tmp_path, env={"DISPLAY": ""})
    base = f"http://127.0.0.1:{port}/"
    try:
        wait_for_server(base, proc, None)
        state = json.loads(get(base + "state")[1])
        assert state["methods"] == ["gradcam"] and state["runtime"] == "litert"
        status, body = post(base + "control", {"method": "layercam"})
        assert status == 400 and b"does not offer" in body
        with viewer_page(base, timeout_ms=30000) as page:
            page.wait_for_function("() => document.querySelectorAll('#method option:disabled').length === "
                                   "document.querySelectorAll('#method option').length - 1", timeout=30000)
            enabled = page.eval_on_selector_all("#method option:not(:disabled)", "o => o.map(x => x.value)")
            assert enabled == ["gradcam"]
            page.screenshot(path=str(tmp_path / "page.png"))
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    assert proc.returncode in (0, 143)
