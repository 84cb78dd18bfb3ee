"""The video command's choices that need no model: what a video file can show."""

from __future__ import annotations

import pytest

from helpers import write_clip


@pytest.mark.unit
def test_several_classes_on_a_video_are_refused_in_one_line(cli, tmp_path):
    clip = write_clip(tmp_path / "clip.mp4", frames=4)
    second = write_clip(tmp_path / "second.mp4", frames=4)
    for args in (("video", clip, "-o", tmp_path / "a.mp4"), ("video", clip, second, "-o", tmp_path / "out"),
                 ("demo", "-o", tmp_path / "d.mp4")):
        code, _, err = cli(*args, "--class", "mountain bike", "--class", "streetcar")
        assert code == 2 and err.count("\n") == 1 and "--class was given 2 times" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4", "second.mp4"]


@pytest.mark.unit
def test_resume_with_nothing_left_answers_before_the_model_loads(cli, tmp_path):
    import shutil
    import sys

    clip = write_clip(tmp_path / "clip.mp4", frames=4)
    done = tmp_path / "done.mp4"
    shutil.copy(clip, done)  # the same frame count as its input: complete
    loaded = "tensorflow" in sys.modules
    code, out, err = cli("video", clip, "-o", done, "--resume")
    assert code == 0 and "is complete; skipped (--resume)" in out, err
    assert ("tensorflow" in sys.modules) == loaded  # answered without importing TensorFlow
