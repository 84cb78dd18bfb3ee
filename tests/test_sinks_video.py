"""The video writer keeps the input's exact frame rate in the file's header (read back with PyAV)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from stream_cam.sinks.video import VideoSink

av = pytest.importorskip("av")  # a test dependency (pyproject's test extra): present in CI


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
