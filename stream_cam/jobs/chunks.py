"""Splitting a video into chunks that can be explained apart and stitched back without a seam.

A chunk is frames ``start..stop-1`` of one video. Its worker first runs ``warmup`` frames before
``start`` (explained, not kept) so that what carries from frame to frame is already in the state
the whole-file run would have at ``start``:

- temporal smoothing (``--smooth s``) mixes in the past with weight s**k after k frames: the
  warm-up is long enough that s**k < half a grey level of the 8-bit heatmap (1/510), so a chunk's
  first frame differs from the whole-file run's by less than the video can show;
- the stability score needs the previous heatmap: at least one frame;
- the engine's batches: starts and warm-ups are multiples of ``--batch``, so every frame goes
  through the engine in the same batch as in the local run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

INVISIBLE = 1 / 510  # half of one step of an 8-bit heatmap
DEFAULT_CHUNK = 240  # frames: 8 s of 30 fps video


@dataclass(frozen=True)
class Chunk:
    video: int  # position of the input in the job
    start: int
    stop: int
    warmup: int  # frames before ``start`` to run first

    @property
    def frames(self) -> int:
        return self.stop - self.start


def warmup_frames(smooth: float, batch: int) -> int:
    """Frames to run before a chunk so its first kept frame matches the whole-file run."""
    needed = 1  # the previous heatmap, for the stability score
    if smooth > 0:
        needed = max(needed, math.ceil(math.log(INVISIBLE) / math.log(smooth)))
    return math.ceil(needed / batch) * batch


def chunk_size(chunk: int | None, batch: int, smooth: float) -> int:
    """Frames per chunk: a multiple of ``batch``; by default at least 4 warm-ups long, so the
    warm-up costs at most a quarter more work."""
    if chunk is None:
        chunk = max(DEFAULT_CHUNK, 4 * warmup_frames(smooth, batch))
    return max(batch, chunk // batch * batch)


def plan_chunks(video: int, frame_count: int, chunk: int | None, batch: int, smooth: float) -> list[Chunk]:
    """Chunks covering frames 0..frame_count-1 (see :func:`chunk_size`)."""
    size = chunk_size(chunk, batch, smooth)
    warmup = warmup_frames(smooth, batch)
    return [Chunk(video, start, min(start + size, frame_count), min(warmup, start))
            for start in range(0, frame_count, size)]
