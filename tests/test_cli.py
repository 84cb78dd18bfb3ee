"""The stream-cam command line, run as a user runs it: in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from helpers import REPO, assert_one_line_error, run, without_notices, write_clip

def test_image_json_and_overlays(tmp_path):
    result = run("image", "skimage:chelsea", "skimage:coffee", "--json", "-o", "out", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert without_notices(result.stderr) == ""
    reports = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["path"] for r in reports] == ["skimage:chelsea", "skimage:coffee"]
    assert reports[0]["top"][0]["index"] in (281, 282, 285)
    assert reports[1]["top"][0]["label"] == "espresso"
    for report in reports:
        (explained,) = report["explained"]
        assert explained["index"] == report["top"][0]["index"]
        x, y = explained["peak_xy"]
        assert 0 <= x < report["size"][0] and 0 <= y < report["size"][1]
        overlay = cv2.imread(str(tmp_path / report["outputs"][0]))
        assert overlay.shape[:2] == (report["size"][1], report["size"][0])


def test_seed_demo_two_classes_on_a_user_file(tmp_path):
    from skimage import data

    cv2.imwrite(str(tmp_path / "cat.png"), cv2.cvtColor(data.chelsea(), cv2.COLOR_RGB2BGR))
    result = run("image", "cat.png", "--class", "260", "--class", "Egyptian cat", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert [e["index"] for e in report["explained"]] == [260, 285]
    assert sorted(p.name for p in tmp_path.glob("cat_gradcam_*.png")) == ["cat_gradcam_260.png",
                                                                        "cat_gradcam_285.png"]
    a, b = (cv2.imread(str(tmp_path / f"cat_gradcam_{i}.png")) for i in (260, 285))
    assert np.abs(a.astype(int) - b).mean() > 5  # different classes, different maps


def test_existing_output_is_never_overwritten(tmp_path):
    target = tmp_path / "mine.png"
    target.write_bytes(b"precious")
    assert_one_line_error(run("image", "-o", "mine.png", cwd=tmp_path), "already exists", "--overwrite")
    assert target.read_bytes() == b"precious"
    assert run("image", "-o", "mine.png", "--overwrite", cwd=tmp_path).returncode == 0
    assert cv2.imread(str(target)) is not None
    assert not list(tmp_path.glob(".*part"))  # no temporary files left behind
    umask = os.umask(0o022)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask  # not the temporary file's 0600


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["image", "missing.jpg"], ["missing.jpg", "no such file"]),
        (["image", "notimage.jpg"], ["not an image"]),
        (["image", "empty.png"], ["the file is empty"]),
        (["image", "--model", "nonet"], ["unknown model 'nonet'", "efficientnet_lite0"]),
        (["image", "--layer", "nope"], ["no layer named 'nope'", "head_activation"]),
        (["image", "--class", "1000"], ["out of range", "0..999"]),
        (["image", "--class", "egyptian kat"], ["unknown class name", "did you mean 'egyptian cat'"]),
        (["image", "-o", "/proc/nowhere/out.png"], ["cannot write"]),
        (["image", "--alpha", "-0.5"], ["--alpha"]),
        (["image", "--colormap", "jett"], ["unknown colormap 'jett'"]),
        (["image", "--top-k", "0"], ["--top-k"]),
        (["frobnicate"], ["invalid choice"]),
    ],
)
def test_bad_input_gives_one_clear_line(tmp_path, args, fragments):
    (tmp_path / "notimage.jpg").write_text("hello, not a JPEG")
    (tmp_path / "empty.png").write_bytes(b"")
    assert_one_line_error(run(*args, cwd=tmp_path), *fragments)


@pytest.mark.unit
def test_debug_shows_the_traceback(tmp_path):
    result = run("--debug", "image", "missing.jpg", cwd=tmp_path)
    assert result.returncode != 0 and "Traceback" in result.stderr


@pytest.mark.unit
def test_help_lists_commands_without_loading_tensorflow(tmp_path):
    result = run("--help", cwd=tmp_path)
    assert result.returncode == 0 and "image" in result.stdout
    code = ("import sys\nfrom stream_cam.cli import main\ntry:\n    main(['image', '--help'])\n"
            "except SystemExit:\n    pass\nprint('tensorflow' in sys.modules, file=sys.stderr)")
    probe = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                           env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    assert "--class" in probe.stdout and probe.stderr.strip() == "False"


# Each of these is knowable without the model: refused before TensorFlow is imported
# (scripts/bench_refusals.py measures how fast; README has the table).
REFUSED_BEFORE_TENSORFLOW = [
    (["image", "missing.png"], "no such file"),
    (["live", "--source", "missing.mp4", "--no-window"], "no such file"),
    (["video", "missing.mp4", "-o", "x.mp4"], "no such file"),
    (["image", "--class", "egyptian kat"], "did you mean 'egyptian cat'"),
    (["demo", "--no-window", "--serve", "0.0.0.0:8765"], "--token"),
    (["image", "--model", "nonet"], "unknown model"),
    (["image", "--colormap", "jett"], "unknown colormap"),
    (["video", "clip.mp4", "-o", "x.webm"], "cannot write .webm"),
    (["live", "--source", "clip.mp4", "--record", "clip.mp4", "--no-window"], "already exists"),
    (["live", "--source", "clip.mp4", "--log", "clip.mp4", "--no-window"], "already exists"),
    (["video", "clip.mp4", "-o", "y.mp4", "--codec", "h265"], "unknown codec"),
    (["image", "--labels", "missing.txt"], "cannot read label file"),
    (["image", "--preprocess", "zscore"], "unknown preprocessing"),
    (["evaluate", "missing.png"], "no such file"),
    (["evaluate", "--plot", "curves.gif"], "use a .png"),
]


@pytest.mark.parametrize("argv, fragment", REFUSED_BEFORE_TENSORFLOW, ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_bad_input_is_refused_before_tensorflow_loads(tmp_path, argv, fragment):
    write_clip(tmp_path / "clip.mp4", frames=3)  # a real video: each case refuses something else
    probe = ("import sys\nfrom stream_cam.cli import main\ncode = main(sys.argv[1:])\n"
             "print('tensorflow' in sys.modules)\nsys.exit(code)\n")
    result = subprocess.run([sys.executable, "-c", probe, *argv], cwd=tmp_path, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    assert_one_line_error(result, fragment)
    assert result.returncode == 2 and result.stdout.strip() == "False"


def test_debug_after_the_command_is_understood(tmp_path):
    result = run("image", "missing.png", "--debug", cwd=tmp_path)
    assert result.returncode != 0 and "Traceback" in result.stderr and "InputError" in result.stderr
    plain = run("image", "missing.png", cwd=tmp_path)
    assert_one_line_error(plain, "no such file")
