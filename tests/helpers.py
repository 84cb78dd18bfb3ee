"""Helpers shared by the test modules (fixtures are in conftest.py): running the CLI as a user
does, small clips and models, a tiny HTTP client, and stand-ins for writing legacy .pth files.

Numeric tolerances live here too, each with the reason for its size.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import pickle
import socket
import struct
import subprocess
import sys
import threading
import time
import types
import urllib.error
import urllib.request
from collections import OrderedDict
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]

# Heatmaps are normalised to [0, 1]. oneDNN picks different float32 kernels per CPU (summation order
# in the 1280-channel weighted sum), which moved Lite0 maps by up to 1.07e-5 against the keras.io
# function on an AVX-512 Xeon (1e-5 elsewhere). 1e-4 is ~10x that spread, and still 100x below what a
# wrong formula gives (Grad-CAM++ or a missing ReLU differ by > 1e-2 on the same maps).
MAP_TOLERANCE = 1e-4
# Probabilities: softmax of the same logits; same reasoning, one order tighter in practice.
PROBABILITY_TOLERANCE = 1e-5


# -- the CLI as a user runs it ----------------------------------------------------------------

def run(*args: str, cwd: Path, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run([sys.executable, "-m", "stream_cam", *args], cwd=cwd, env=environment,
                          capture_output=True, text=True, timeout=timeout)


def start(*args: str, cwd: Path, env: dict | None = None) -> subprocess.Popen:
    environment = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.Popen([sys.executable, "-m", "stream_cam", *args], cwd=cwd, env=environment,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


# -- the light install: TensorFlow out of reach ------------------------------------------------

NO_TENSORFLOW = (
    "import sys, importlib.abc\n"
    "class NoTensorFlow(importlib.abc.MetaPathFinder):\n"
    "    def find_spec(self, name, path, target=None):\n"
    "        if name.split('.')[0] in ('tensorflow', 'keras', 'tf_keras', 'jax', 'torch'):\n"
    "            raise ModuleNotFoundError(f'{name} is not installed here')\n"
    "sys.meta_path.insert(0, NoTensorFlow())\n"
    "from stream_cam.cli import main\n"
    "code = main(sys.argv[1:])\n"
    "assert not any(m.split('.')[0] in ('tensorflow', 'keras') for m in sys.modules)\n"
    "sys.exit(code)\n"
)


def run_without_tensorflow(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """``stream-cam ARGS`` where importing TensorFlow (or Keras) fails, as on the light install."""
    return subprocess.run([sys.executable, "-c", NO_TENSORFLOW, *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=300)


def start_without_tensorflow(*args: str, cwd: Path, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", NO_TENSORFLOW, *args], cwd=cwd, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


# The one-time lines of the first run that converts a model for LiteRT, and of the first that times
# it against TensorFlow at a batch size (engine/runtime.py): which test runs first decides who sees
# them, so the checks of stderr below set them aside.
RUNTIME_NOTICES = ("preparing a faster runtime", "prepared the faster runtime", "timing LiteRT against", "timed LiteRT")


def without_notices(stderr: str) -> str:
    return "".join(line for line in stderr.splitlines(keepends=True) if not line.startswith(RUNTIME_NOTICES))


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    lines = [line for line in without_notices(result.stderr).splitlines() if line.strip()]
    assert result.returncode != 0
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("stream-cam: error: ")
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def resized_map(heatmap: np.ndarray, height: int, width: int) -> np.ndarray:
    """A (h, w) map in [0, 1] resized bilinearly to (height, width), to compare maps with pictures."""
    import cv2

    return np.clip(cv2.resize(np.asarray(heatmap, np.float32), (width, height), interpolation=cv2.INTER_LINEAR),
                   0.0, 1.0)


@contextlib.contextmanager
def viewer_page(base: str, timeout_ms: int = 60000):
    """The browser view at ``base`` in a real headless Chromium, once its first frame is shown."""
    import shutil

    from playwright.sync_api import sync_playwright
    from test_web import CHROMIUM, CHROMIUM_FLAGS

    if not shutil.which("chromium"):
        raise AssertionError("chromium is missing: apt-get install chromium (see .ci/run)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS,
                                             ignore_default_args=["--headless=old"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(base)
            page.wait_for_function("() => document.getElementById('view').naturalWidth > 0", timeout=timeout_ms)
            yield page
        finally:
            browser.close()


def wait_until(condition, timeout: float = 30, what: str = "the condition", interval: float = 0.1):
    """Poll ``condition()`` until it returns something true (returned) or fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"{what} did not happen within {timeout} s")


def wait_for_server(base: str, proc=None, token: str | None = None, timeout: float = 120) -> None:
    """Until ``base`` answers /healthz and its /state has a top class (a first frame was explained);
    fails at once, with its stderr, if ``proc`` ends first."""
    auth = {"Authorization": f"Bearer {token}"} if token else {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(proc.stderr.read())
        try:
            if get(base + "healthz", auth, timeout=2)[0] == 200 and json.loads(get(base + "state", auth)[1]).get("top"):
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError("the server did not come up")


def wait_for_lines(path: Path, n: int, proc: subprocess.Popen, timeout: float = 120) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and len(path.read_text().splitlines()) >= n:
            return len(path.read_text().splitlines())
        if proc.poll() is not None:
            raise AssertionError(f"exited early: {proc.stderr.read()}")
        time.sleep(0.1)
    raise AssertionError(f"{path} did not reach {n} lines")


def no_stream_threads() -> bool:
    return not any(t.name.startswith("stream_cam") for t in threading.enumerate())


# -- inputs -----------------------------------------------------------------------------------

def numbered_frames(n: int, size=(64, 48)):
    """Frames that carry their own index in the pixel values."""
    return [np.full((size[1], size[0], 3), i % 256, np.uint8) for i in range(n)]


def write_clip(path, frames: int = 40, fps: float = 12.0, size: tuple[int, int] = (160, 120), cut_every: int = 0):
    """A small mp4v clip panning across real photos (cat, then coffee after a cut)."""
    import cv2

    from stream_cam.sources.images import builtin_image

    photos = [cv2.cvtColor(builtin_image(n), cv2.COLOR_RGB2BGR) for n in ("chelsea", "coffee")]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    assert writer.isOpened()
    for i in range(frames):
        photo = photos[(i // cut_every) % 2] if cut_every else photos[0]
        h, w = photo.shape[:2]
        x = int((w - 300) * i / max(frames - 1, 1))
        writer.write(cv2.resize(photo[:, x:x + 300], size, interpolation=cv2.INTER_AREA))
    writer.release()
    return path


def tiny_cnn(seed: int = 0, classes: int = 4, size: int = 32, activation: str | None = "softmax"):
    """A small functional CNN with seeded weights; last conv layer is 'last_conv'."""
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((size, size, 3), name="pixels")
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1")(inputs)
    x = keras.layers.MaxPooling2D(name="pool1")(x)
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="last_conv")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = keras.layers.Dense(classes, activation=activation, name="predictions")(x)
    return keras.Model(inputs, outputs, name=f"tiny_{seed}")


# -- a tiny HTTP client for the browser view ----------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url: str, headers: dict | None = None, timeout: float = 10) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def post(url: str, body: dict, headers: dict | None = None, timeout: float = 10) -> tuple[int, bytes]:
    """POST ``body`` as JSON; (status, body) also for an error status."""
    import json

    request = urllib.request.Request(url, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def first_mjpeg_frame(port: int, path: str, headers: dict | None = None) -> bytes:
    """The first JPEG of an MJPEG stream served on loopback ``port`` at ``path``."""
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        assert response.status == 200 and "multipart/x-mixed-replace" in response.getheader("Content-Type")
        data = b""
        while b"\xff\xd9" not in data[data.find(b"\xff\xd8"):]:  # up to the end of the first JPEG
            data += response.read1(65536)
        start = data.index(b"\xff\xd8")
        return data[start:data.index(b"\xff\xd9", start) + 2]
    finally:
        connection.close()


# -- legacy .pth files, written without torch ---------------------------------------------------

def _rebuild_tensor_v2(*args):  # stands in for torch._utils._rebuild_tensor_v2 when pickling
    raise AssertionError("never called")


class _FloatStorage:
    """Pickles as torch.FloatStorage would, without torch."""


_rebuild_tensor_v2.__module__, _rebuild_tensor_v2.__qualname__ = "torch._utils", "_rebuild_tensor_v2"
_FloatStorage.__module__, _FloatStorage.__qualname__ = "torch", "FloatStorage"


@contextlib.contextmanager
def fake_torch():
    """Just enough of a 'torch' module for pickle to name the stand-ins as torch's own."""
    saved = {k: sys.modules.get(k) for k in ("torch", "torch._utils")}
    torch, utils = types.ModuleType("torch"), types.ModuleType("torch._utils")
    torch.FloatStorage, utils._rebuild_tensor_v2 = _FloatStorage, _rebuild_tensor_v2
    sys.modules.update({"torch": torch, "torch._utils": utils})
    try:
        yield
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


class _StorageRef:
    def __init__(self, key: str, numel: int) -> None:
        self.key, self.numel = key, numel


def state_pickle(tensors: dict[str, tuple]) -> bytes:
    """A pickle of {name: tensor} the way torch's legacy saver writes it; each tensor is
    (storage key, shape, storage element count[, strides]). Call inside ``fake_torch()``."""

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, _StorageRef):
                return ("storage", _FloatStorage, obj.key, "cpu", obj.numel)
            return None

    class Rebuild:
        def __init__(self, key: str, shape: tuple[int, ...], numel: int, strides: tuple | None = None) -> None:
            self.key, self.shape, self.numel, self.strides = key, shape, numel, strides

        def __reduce__(self):
            strides = self.strides or tuple(int(np.prod(self.shape[i + 1:])) for i in range(len(self.shape)))
            return (_rebuild_tensor_v2, (_StorageRef(self.key, self.numel), 0, self.shape, strides, False,
                                         OrderedDict()))

    buffer = io.BytesIO()
    Pickler(buffer, protocol=2).dump(OrderedDict((name, Rebuild(*spec)) for name, spec in tensors.items()))
    return buffer.getvalue()


def legacy_file(state: bytes, storages: list[tuple[str, np.ndarray]]) -> bytes:
    """The five pickles and the raw storages of a legacy .pth file."""
    out = io.BytesIO()
    for header in (0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001, "little_endian": True}):
        pickle.dump(header, out, protocol=2)
    out.write(state)
    pickle.dump([key for key, _ in storages], out, protocol=2)
    for _, data in storages:
        out.write(struct.pack("<q", data.size))
        out.write(data.tobytes())
    return out.getvalue()


def write_clip_with_sound(path, seconds: float = 2.0, fps: int = 12, size: tuple[int, int] = (160, 120)):
    """A small MPEG-4 clip with an AAC soundtrack (a 440 Hz tone), made with PyAV."""
    import av

    width, height = size
    with av.open(str(path), "w") as container:
        video = container.add_stream("mpeg4", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        audio = container.add_stream("aac", rate=44100)
        for i in range(int(seconds * fps)):
            picture = np.full((height, width, 3), (i * 10) % 255, np.uint8)
            picture[:, : (i * 7) % width] = (40, 160, 220)
            for packet in video.encode(av.VideoFrame.from_ndarray(picture, format="bgr24")):
                container.mux(packet)
        tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(int(44100 * seconds)) / 44100)).astype(np.float32)
        step = audio.codec_context.frame_size or 1024
        for start in range(0, len(tone) - step, step):
            frame = av.AudioFrame.from_ndarray(tone[None, start:start + step], format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 44100, start
            for packet in audio.encode(frame):
                container.mux(packet)
        for stream in (audio, video):
            for packet in stream.encode():
                container.mux(packet)
    return path
