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


@pytest.mark.unit
def test_image_refuses_to_write_over_its_input(cli, picture):
    before = picture.read_bytes()
    for name in spellings(picture):
        code, _, err = cli("image", picture, "-o", name, "--overwrite")
        assert code == 2 and err.count("\n") == 1 and "is the input" in err, err
        assert picture.read_bytes() == before


@pytest.mark.unit
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
