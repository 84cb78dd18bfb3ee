"""``stream-cam video --ray`` on real Ray clusters started by the tests (no mocks of Ray).

A local cluster is started by the command itself (``--ray``); another is started with
``ray start --head`` in a temporary folder, used by address, and stopped afterwards.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from helpers import REPO, assert_one_line_error, free_port, run, start, write_clip
from stream_cam.sources.readers import count_frames

pytestmark = pytest.mark.ray  # a local Ray cluster, started by the tests


def read_frames(path: Path) -> np.ndarray:
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return np.stack(frames)


def assert_same_video(ours: Path, reference: Path) -> None:
    """The same frame count, size and pictures (the same frames through the same encoder)."""
    a, b = read_frames(ours), read_frames(reference)
    assert a.shape == b.shape
    # Measured: byte-identical files. Allow a grey level or two in case a CPU sums the
    # engine's batch in another order with one thread than with two.
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 8


def assert_one_row_per_frame(table: "pd.DataFrame", counts: dict[str, int]) -> None:
    assert sorted(table["video"].unique()) == sorted(counts)
    for video, count in counts.items():
        frames = table.loc[table["video"] == video, "frame"].tolist()
        assert sorted(frames) == list(range(count))  # every frame exactly once


# The videos are compared pixel for pixel, HUD included, and the HUD names the runtime. `auto` times
# the two runtimes per batch size and thread count (2 threads locally, 1 per Ray worker here), so a
# close call may go either way in either run: the comparisons name the runtime.
SAME_RUNTIME = ("--runtime", "litert")


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("clips")
    write_clip(folder / "cat.mp4", frames=60, fps=12, cut_every=25)  # a cut: smoothing must reset mid-file
    write_clip(folder / "pan.mp4", frames=37, fps=10, size=(128, 96))
    return folder


@pytest.fixture(scope="module")
def local_run(clips) -> Path:
    """The reference: the local command on the same inputs, with smoothing on."""
    out = clips / "local"
    result = run("video", "cat.mp4", "pan.mp4", "-o", "local", "--smooth", "0.6", "--results", "local.parquet",
                 *SAME_RUNTIME, cwd=clips)
    assert result.returncode == 0, result.stderr
    return out


@pytest.mark.slow  # over 15 s measured on 2 cores
def test_ray_writes_what_the_local_command_writes(clips, local_run):
    # Chunks of 16 frames: each clip is split over both workers, with smoothing across chunk edges.
    result = run("video", "cat.mp4", "pan.mp4", "-o", "ray", "--smooth", "0.6", "--results", "ray.parquet",
                 "--ray", "--chunk", "16", *SAME_RUNTIME, cwd=clips)
    assert result.returncode == 0, result.stderr
    assert "97/97" in result.stderr  # the bar counted every frame of the job
    for name, count in (("cat", 60), ("pan", 37)):
        assert count_frames(clips / "ray" / f"{name}_gradcam.mp4") == count
        assert_same_video(clips / "ray" / f"{name}_gradcam.mp4", local_run / f"{name}_gradcam.mp4")
    ours = pd.read_parquet(clips / "ray.parquet").sort_values(["video", "frame"]).reset_index(drop=True)
    theirs = pd.read_parquet(clips / "local.parquet").sort_values(["video", "frame"]).reset_index(drop=True)
    assert_one_row_per_frame(ours, {"cat.mp4": 60, "pan.mp4": 37})
    assert (ours["class"] == theirs["class"]).all() and (ours["top_classes"].map(list) == theirs["top_classes"].map(list)).all()
    assert np.abs(ours["score"] - theirs["score"]).max() <= 1e-4
    assert (np.abs(ours["peak_x"] - theirs["peak_x"]) <= 1).all()
    # Stability needs the previous heatmap: also right on each chunk's first frame.
    assert np.nanmax(np.abs(ours["stability"] - theirs["stability"])) <= 1e-3
    assert not list(clips.glob("ray/.*part*"))  # no temporary file left


def test_results_table_of_a_local_run(clips, local_run):
    table = pd.read_parquet(clips / "local.parquet")
    assert_one_row_per_frame(table, {"cat.mp4": 60, "pan.mp4": 37})
    assert list(table.columns) == ["video", "frame", "t", "class", "label", "score", "peak_x", "peak_y",
                                   "top_classes", "top_labels", "top_scores", "method", "runtime", "stability"]
    cat = table[table["video"] == "cat.mp4"].sort_values("frame")
    assert np.allclose(cat["t"], np.arange(60) / 12, atol=1e-3)
    assert (cat["top_classes"].map(len) == 5).all() and (cat["method"] == "gradcam").all()
    from stream_cam.models.labels import imagenet_labels

    names = imagenet_labels()
    assert (cat["label"] == cat["class"].map(lambda index: names[index])).all()  # each label is its class's name
    assert cat["class"].iloc[0] in range(281, 286)  # the first frame: a cat (ImageNet 281-285, tabby ... Egyptian)
    assert cat["peak_x"].between(0, 159).all() and cat["peak_y"].between(0, 119).all()
    assert np.isnan(cat["stability"].iloc[0]) and cat["stability"].iloc[1:5].notna().all()


@pytest.mark.slow  # over 15 s measured on 2 cores
def test_resume_skips_complete_outputs_and_redoes_half_written_ones(clips, tmp_path):
    for name in ("cat.mp4", "pan.mp4"):
        shutil.copy(clips / name, tmp_path / name)
    (tmp_path / "out").mkdir()
    first = run("video", "cat.mp4", "-o", "out/cat_gradcam.mp4", "--results", "r.parquet", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    done = tmp_path / "out" / "cat_gradcam.mp4"
    before = (done.stat().st_ino, done.stat().st_mtime_ns)
    # A half-written output of pan (an earlier run stopped after 10 frames).
    write_clip(tmp_path / "out" / "pan_gradcam.mp4", frames=10, fps=10, size=(128, 96))
    again = run("video", "cat.mp4", "pan.mp4", "-o", "out", "--results", "r.parquet", "--resume", "--ray",
                cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "cat_gradcam.mp4 is complete; skipped (--resume)" in again.stdout
    assert (done.stat().st_ino, done.stat().st_mtime_ns) == before  # left untouched
    assert count_frames(tmp_path / "out" / "pan_gradcam.mp4") == 37  # redone
    # The table holds both videos once: cat's rows kept from the first run, pan's new.
    assert_one_row_per_frame(pd.read_parquet(tmp_path / "r.parquet"), {"cat.mp4": 60, "pan.mp4": 37})
    # Nothing left to do: both skipped, nothing rewritten.
    third = run("video", "cat.mp4", "pan.mp4", "-o", "out", "--resume", cwd=tmp_path)
    assert third.returncode == 0 and third.stdout.count("skipped (--resume)") == 2, third.stderr


@pytest.mark.slow  # over 15 s measured on 2 cores
def test_a_damaged_input_fails_alone(clips, tmp_path):
    shutil.copy(clips / "pan.mp4", tmp_path / "good.mp4")
    (tmp_path / "garbage.mp4").write_bytes(os.urandom(4096))
    writer = cv2.VideoWriter(str(tmp_path / "cut.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (96, 72))
    for i in range(40):
        writer.write(np.full((72, 96, 3), i * 6, np.uint8))
    writer.release()
    raw = (tmp_path / "cut.avi").read_bytes()
    (tmp_path / "cut.avi").write_bytes(raw[: len(raw) * 6 // 10])
    readable = count_frames(tmp_path / "cut.avi")
    result = run("video", "garbage.mp4", "cut.avi", "good.mp4", "-o", "out", "--ray", "--chunk", "8",
                 "--workers", "1", "--results", "r.parquet", cwd=tmp_path)
    assert result.returncode == 3, result.stderr  # some inputs failed
    assert "Traceback" not in result.stderr
    assert any("garbage.mp4" in line and "error" in line for line in result.stderr.splitlines())
    assert f"only {readable} of 40 frames" in result.stderr
    assert count_frames(tmp_path / "out" / "good_gradcam.mp4") == 37
    assert count_frames(tmp_path / "out" / "cut_gradcam.mp4") == readable
    assert not (tmp_path / "out" / "garbage_gradcam.mp4").exists()
    assert_one_row_per_frame(pd.read_parquet(tmp_path / "r.parquet"), {"cut.avi": readable, "good.mp4": 37})


# -- a cluster started with `ray start --head`, used by address ---------------------------------

@pytest.fixture(scope="module")
def cluster():
    ray = Path(sys.executable).with_name("ray")
    port = free_port()
    temp = tempfile.mkdtemp(prefix="rc", dir="/tmp")  # Ray's socket paths must stay short
    # Ray's default token authentication: a driver given an address sends the token only when asked to.
    env = {**os.environ, "PYTHONPATH": str(REPO), "RAY_AUTH_MODE": "token"}
    if not (Path.home() / ".ray" / "auth_token").exists():  # a fresh machine: make the token Ray's way
        subprocess.run([str(ray), "get-auth-token", "--generate"], check=True, env=env, capture_output=True,
                       timeout=60)
    subprocess.run([str(ray), "start", "--head", f"--port={port}", "--num-cpus=2", "--include-dashboard=false",
                    f"--temp-dir={temp}", "--disable-usage-stats"], check=True, env=env, capture_output=True,
                   timeout=120)
    try:
        yield f"127.0.0.1:{port}", {"RAY_AUTH_MODE": "token"}
    finally:
        subprocess.run([str(ray), "stop", "--force"], env=env, capture_output=True, timeout=120)
        shutil.rmtree(temp, ignore_errors=True)


@pytest.mark.slow  # over 15 s measured on 2 cores
def test_joining_a_token_cluster_without_token_mode_says_so(cluster, tmp_path, clips):
    """Without RAY_AUTH_MODE=token the driver cannot join: one line that says exactly that, and none of
    Ray's own lines (its core prints several before it raises)."""
    address, _ = cluster
    assert "RAY_AUTH_MODE" not in os.environ
    result = run("video", str(clips / "pan.mp4"), "-o", str(tmp_path / "o.mp4"), "--ray", address, cwd=tmp_path)
    assert result.returncode == 2
    assert_one_line_error(result, "uses token authentication and this process does not", "RAY_AUTH_MODE=token")
    assert not (tmp_path / "o.mp4").exists()


def worker_pids(state: str) -> list[int]:
    """Processes of the cluster's workers, by the title Ray gives them (``ray::ChunkWorker.explain``)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "cmdline").read_bytes().split(b"\0")[0].decode(errors="replace").startswith(state):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


@pytest.mark.slow  # over 15 s measured on 2 cores
def test_a_worker_killed_mid_job_still_gives_every_frame_once(cluster, tmp_path, clips, local_run):
    write_clip(tmp_path / "long.mp4", frames=400, fps=12, cut_every=25)
    reference = run("video", "long.mp4", "-o", "ref.mp4", "--results", "ref.parquet", *SAME_RUNTIME, cwd=tmp_path)
    assert reference.returncode == 0, reference.stderr
    address, env = cluster
    proc = start("video", "long.mp4", "-o", "out.mp4", "--results", "r.parquet", "--ray", address,
                 "--chunk", "64", *SAME_RUNTIME, cwd=tmp_path, env=env)
    killed = []
    deadline = time.monotonic() + 180
    while not killed and proc.poll() is None and time.monotonic() < deadline:
        busy = worker_pids("ray::ChunkWorker.explain")
        if busy:
            time.sleep(0.5)  # let it deliver part of its chunk first
            os.kill(busy[0], signal.SIGKILL)
            killed.append(busy[0])
        else:
            time.sleep(0.05)
    out, err = proc.communicate(timeout=300)
    assert killed, f"no worker was seen working: {proc.returncode} {err}"
    assert proc.returncode == 0, err
    assert "a worker died during frames" in err and "running them again" in err
    assert count_frames(tmp_path / "out.mp4") == 400
    ours = pd.read_parquet(tmp_path / "r.parquet").sort_values("frame").reset_index(drop=True)
    assert_one_row_per_frame(ours, {"long.mp4": 400})
    theirs = pd.read_parquet(tmp_path / "ref.parquet").sort_values("frame").reset_index(drop=True)
    assert (ours["class"] == theirs["class"]).all()
    assert_same_video(tmp_path / "out.mp4", tmp_path / "ref.mp4")


def test_ctrl_c_cancels_and_keeps_the_frames_done_as_partial(cluster, tmp_path):
    write_clip(tmp_path / "long.mp4", frames=600, fps=12)
    address, env = cluster
    proc = start("video", "long.mp4", "-o", "out", "--ray", address, "--chunk", "64", cwd=tmp_path, env=env)
    deadline = time.monotonic() + 180
    while not worker_pids("ray::ChunkWorker.explain") and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "run the same command with --resume" in err
    # Never under the final name; the frames done (in order from the first) as NAME.partial, no temporary file.
    left = [p.name for p in (tmp_path / "out").iterdir()]
    assert left in ([], ["long_gradcam.partial.mp4"]), left
    if left:
        assert 0 < count_frames(tmp_path / "out" / left[0]) < 600
    deadline = time.monotonic() + 30
    while worker_pids("ray::ChunkWorker") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not worker_pids("ray::ChunkWorker")  # the job's workers are gone


# -- refusals, before anything starts ------------------------------------------------------------

@pytest.mark.parametrize("extra, fragment", [
    (["--workers", "2"], "--workers, --chunk and --gpus-per-worker go with --ray"),
    (["--ray", "--log", "x.jsonl"], "--results FILE.parquet"),
    (["--ray", "--serve", f"127.0.0.1:{free_port()}"], "leave it out with --ray"),
    (["--results", "r.csv"], "name it r.parquet"),
])
def test_ray_and_results_flags_are_refused_clearly(clips, tmp_path, extra, fragment):
    result = run("video", str(clips / "pan.mp4"), "-o", "o.mp4", *extra, cwd=tmp_path)
    assert_one_line_error(result, fragment)
    assert not list(tmp_path.iterdir())


def test_without_ray_installed_the_flag_says_how_to_install(clips, tmp_path):
    # Python sees no 'ray' package (a finder that refuses it, as in an install without the extra).
    code = ("import sys, importlib.abc\n"
            "class NoRay(importlib.abc.MetaPathFinder):\n"
            "    def find_spec(self, name, path, target=None):\n"
            "        if name == 'ray' or name.startswith('ray.'): raise ModuleNotFoundError(name)\n"
            "sys.meta_path.insert(0, NoRay())\n"
            "from stream_cam.cli import main\n"
            f"sys.exit(main(['video', {str(clips / 'pan.mp4')!r}, '-o', 'o.mp4', '--ray']))\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    assert_one_line_error(result, 'pip install "stream-cam[ray]"')


@pytest.mark.slow  # over 15 s measured on 2 cores
def test_a_cluster_address_with_a_password_is_never_shown(clips, tmp_path):
    # Nothing listens on this port: joining fails, and the one error line masks the password.
    address = f"ray://admin:hunter2@127.0.0.1:{free_port()}"
    result = run("video", str(clips / "pan.mp4"), "-o", "o.mp4", "--ray", address, cwd=tmp_path, timeout=180)
    assert_one_line_error(result, "cannot join the Ray cluster", "ray://admin:***@127.0.0.1")
    assert "hunter2" not in result.stdout + result.stderr
    assert not (tmp_path / "o.mp4").exists()
