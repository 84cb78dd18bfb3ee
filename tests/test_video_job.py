"""The video command's choices that need no model: what a video file can show."""

from __future__ import annotations

import pytest

from helpers import write_clip


def test_several_classes_on_a_video_are_refused_in_one_line(cli, tmp_path):
    clip = write_clip(tmp_path / "clip.mp4", frames=4)
    second = write_clip(tmp_path / "second.mp4", frames=4)
    for args in (("video", clip, "-o", tmp_path / "a.mp4"), ("video", clip, second, "-o", tmp_path / "out"),
                 ("demo", "-o", tmp_path / "d.mp4")):
        code, _, err = cli(*args, "--class", "mountain bike", "--class", "streetcar")
        assert code == 2 and err.count("\n") == 1 and "--class was given 2 times" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4", "second.mp4"]


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


@pytest.mark.unit
def test_the_frames_held_at_once_are_bounded_by_bytes():
    from stream_cam.jobs.video import FRAME_MEMORY_BYTES, depths

    assert depths(640, 480, 8) == depths(1280, 720, 8)  # everyday sizes keep the usual depths
    assert depths(640, 480, 8).batch == 8 and depths(640, 480, 8).queue == 16
    for width, height, batch in ((7680, 4320, 8), (3840, 2160, 64), (15360, 8640, 8), (1920, 1080, 256)):
        held = depths(width, height, batch)
        frame = width * height * 3
        assert 1 <= held.batch <= batch and held.queue >= 2
        # Two queues and the batch with its drawn copies, within the budget (two frames over, at worst).
        assert (2 * held.queue + 2 * held.batch) * frame <= max(FRAME_MEMORY_BYTES, 6 * frame)
