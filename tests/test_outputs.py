"""An output is never one of the inputs, however it is spelt: not even with --overwrite."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import pytest

from helpers import write_clip
from stream_cam.errors import OutputError
from stream_cam.sinks.files import check_not_input, same_file
from stream_cam.sources.images import builtin_image


def spellings(path: Path) -> list[Path]:
    """Other names of ``path``: through a parent's ``..``, a link, a hard link."""
    (path.parent / "sub").mkdir(exist_ok=True)
    link, hard = path.parent / f"link{path.suffix}", path.parent / f"hard{path.suffix}"
    link.symlink_to(path)
    os.link(path, hard)
    return [path, path.parent / "sub" / ".." / path.name, link, hard]


@pytest.mark.unit
def test_every_spelling_of_the_input_is_the_input(tmp_path):
    picture = tmp_path / "pic.png"
    picture.write_bytes(b"x")
    for name in spellings(picture):
        assert same_file(name, picture)
        with pytest.raises(OutputError, match="is the input"):
            check_not_input([name], [str(picture)])
    check_not_input([tmp_path / "other.png", tmp_path / "new.png"], [str(picture), "0", "rtsp://host/x"])
    assert not same_file(tmp_path / "other.png", picture)


@pytest.fixture
def picture(tmp_path) -> Path:
    path = tmp_path / "pic.png"
    cv2.imwrite(str(path), cv2.cvtColor(builtin_image("chelsea"), cv2.COLOR_RGB2BGR))
    return path


def test_image_refuses_to_write_over_its_input(cli, picture):
    before = picture.read_bytes()
    for name in spellings(picture):
        code, _, err = cli("image", picture, "-o", name, "--overwrite")
        assert code == 2 and err.count("\n") == 1 and "is the input" in err, err
        assert picture.read_bytes() == before


def test_video_and_live_refuse_to_write_over_their_input(cli, tmp_path):
    clip = tmp_path / "mine.mp4"
    write_clip(clip, frames=6)
    before = clip.read_bytes()
    for args in (("video", clip, "-o", clip, "--overwrite"),
                 ("video", clip, "-o", tmp_path / "sub" / ".." / "mine.mp4", "--overwrite"),
                 ("video", clip, "-o", tmp_path / "out.mp4", "--log", clip, "--overwrite"),
                 ("live", "--source", clip, "--no-window", "--record", clip, "--overwrite")):
        (tmp_path / "sub").mkdir(exist_ok=True)
        code, _, err = cli(*args)
        assert code == 2 and err.count("\n") == 1 and "is the input" in err, err
        assert clip.read_bytes() == before
    assert not (tmp_path / "out.mp4").exists()


def test_refusals_that_need_no_model_come_before_it(cli, picture, tmp_path):
    import sys

    loaded = "tensorflow" in sys.modules
    damaged = tmp_path / "cut.png"
    damaged.write_bytes(picture.read_bytes()[: picture.stat().st_size // 2])
    code, _, err = cli("image", damaged, "-o", tmp_path / "o.png")
    assert code == 2 and err.count("\n") == 1 and "not an image OpenCV can read" in err, err
    for args in (("image", picture, "--method", "rollout"), ("evaluate", picture, "--method", "gradcam",
                                                             "--method", "relevance")):
        code, _, err = cli(*args)
        assert code == 2 and err.count("\n") == 1 and "follows a transformer's attention" in err, err
    assert ("tensorflow" in sys.modules) == loaded  # every one answered without importing TensorFlow


@pytest.mark.unit
def test_a_file_the_user_may_not_read_is_named_as_such(tmp_path):
    import shutil
    import subprocess
    import sys

    from helpers import REPO

    clip = write_clip(tmp_path / "clip.mp4", frames=4)
    clip.chmod(0o200)  # its owner may write, nobody may read
    # Root reads everything: as root, the run gives up the two capabilities that override file modes.
    drop = ["setpriv", "--inh-caps=-dac_override,-dac_read_search", "--bounding-set=-dac_override,-dac_read_search"]
    assert os.geteuid() != 0 or shutil.which("setpriv"), "setpriv (util-linux) is needed to test this as root"
    prefix = drop if os.geteuid() == 0 else []
    result = subprocess.run([*prefix, sys.executable, "-m", "stream_cam", "video", str(clip), "-o",
                             str(tmp_path / "o.mp4")], capture_output=True, text=True, cwd=tmp_path, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 2 and "no permission to read it" in result.stderr, result.stderr
    assert result.stderr.count("\n") == 1
