"""The video writer keeps the input's exact frame rate in the file's header (read back with PyAV)."""

from __future__ import annotations

from fractions import Fraction

import av  # a test dependency (pyproject's test extra): its absence is a failure, not a skip
import numpy as np
import pytest

from stream_cam.sinks.video import VideoSink


def stored_rate(path) -> Fraction:
    with av.open(str(path)) as container:
        return Fraction(container.streams.video[0].average_rate)


@pytest.mark.unit
@pytest.mark.parametrize("codec, suffix", [("mp4v", ".mp4"), ("h264", ".mp4")])
@pytest.mark.parametrize("fps, expected", [(24.0, Fraction(24)), (24000 / 1001, Fraction(24000, 1001)),
                                           (30000 / 1001, Fraction(30000, 1001)), (25.0, Fraction(25)),
                                           (60000 / 1001, Fraction(60000, 1001)), (12.5, Fraction(25, 2))])
def test_the_file_says_the_inputs_exact_rate(tmp_path, codec, suffix, fps, expected):
    path = tmp_path / f"out{suffix}"
    with VideoSink(path, 64, 48, fps, codec) as sink:
        for value in range(0, 250, 25):
            sink.write(np.full((48, 64, 3), value, np.uint8))
    assert stored_rate(path) == expected
    assert sink.frames_written == 10


def streams_of(path) -> dict[str, tuple[str, float]]:
    """{type: (codec, seconds)} of a file's first video and audio streams."""
    found = {}
    with av.open(str(path)) as container:
        for stream in container.streams:
            seconds = float(stream.duration * stream.time_base) if stream.duration else 0.0
            found.setdefault(stream.type, (stream.codec_context.name, seconds))
    return found


@pytest.mark.unit
def test_the_inputs_sound_is_copied_beside_the_pictures(tmp_path):
    import cv2

    from helpers import write_clip_with_sound
    from stream_cam.sinks.audio import audio_codecs, with_audio

    source = write_clip_with_sound(tmp_path / "talk.mp4")
    assert audio_codecs(str(source)) == ["aac"]
    silent = tmp_path / "silent.mp4"
    with VideoSink(silent, 160, 120, 12.0) as sink:
        for value in range(0, 240, 10):
            sink.write(np.full((120, 160, 3), value, np.uint8))
    assert audio_codecs(str(silent)) == []
    joined = tmp_path / "joined.mp4"
    assert with_audio(silent, str(source), joined) == ""
    found = streams_of(joined)
    assert found["audio"][0] == "aac" and abs(found["audio"][1] - found["video"][1]) < 0.1
    # The pictures are copied, not re-encoded: every frame decodes to the same pixels.
    a, b = cv2.VideoCapture(str(silent)), cv2.VideoCapture(str(joined))
    for _ in range(24):
        (ok_a, frame_a), (ok_b, frame_b) = a.read(), b.read()
        assert ok_a and ok_b and np.array_equal(frame_a, frame_b)
    assert not b.read()[0]


def test_video_keeps_the_soundtrack(cli, tmp_path):
    from helpers import write_clip_with_sound

    source = write_clip_with_sound(tmp_path / "talk.mp4")
    code, out, err = cli("video", source, "-o", tmp_path / "out.mp4", "--runtime", "tensorflow")
    assert code == 0, err
    found = streams_of(tmp_path / "out.mp4")
    assert found["audio"][0] == "aac" and abs(found["audio"][1] - found["video"][1]) < 0.1
    assert "(24 frames at 12.00 fps)" in out and "no sound" not in err
