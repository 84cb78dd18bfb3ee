"""The Ray side of ``stream-cam video --ray``: an actor that builds the engine once and explains
chunks of videos. A chunk is a Ray streaming task; what it hands back is typed: one
:class:`Packet` per batch, and a :class:`ChunkFailed` as the last item when a frame could not be
read. The stream's end is the chunk's end (see :mod:`.ray_video`)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterator

import cv2
import numpy as np

from ..errors import StreamCamError
from ..sinks.results import results_row
from ..sources.pumps import OrderedFrames
from ..sources.readers import open_reader
from .chunks import Chunk
from .engine_spec import EngineSpec
from .video import VideoOptions, batched, depths, video_pipeline


@dataclass
class Packet:
    """One batch of a chunk, annotated: frames ``first..first+len(images)-1``."""

    first: int
    images: np.ndarray  # (n, height, width, 3) uint8, ready to encode
    rows: list[dict]  # the results table's rows of these frames


@dataclass
class ChunkFailed:
    """The chunk's last item when reading failed: the frames before it were delivered."""

    reason: str


class ChunkWorker:
    """A Ray actor: builds the engine once, then explains chunks of videos (see the module's docstring)."""

    def __init__(self, spec: EngineSpec, options: VideoOptions, threads: int) -> None:
        from ..tf_runtime import import_tensorflow, quiet_opencv

        quiet_opencv()
        if spec.needs_tensorflow:  # an exported .tflite model runs on LiteRT, without TensorFlow
            tf = import_tensorflow()
            # One worker per core: TensorFlow's own thread pools would otherwise fight over the cores.
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(1)
        self.cam = spec.build(threads)
        self.options = options

    def pid(self) -> int:
        return os.getpid()

    def explain(self, path: str, name: str, chunk: Chunk) -> Iterator[Packet | ChunkFailed]:
        """Frames chunk.start..chunk.stop-1 of ``path``, after ``chunk.warmup`` frames run and dropped."""
        first = chunk.start - chunk.warmup
        reader = open_reader(path)
        reader.seek(first)
        pipeline, view, look = video_pipeline(self.cam, self.options, reader.info.source)
        label = self.cam.model.label
        held = depths(reader.info.width, reader.info.height, self.options.batch)  # bounded by bytes
        try:
            with OrderedFrames(reader, maxsize=held.queue, prepare=pipeline.prepare, first=first,
                               stop=chunk.stop) as frames:
                for batch in batched(frames, held.batch):
                    kept = [item for item in pipeline.process(batch, view, look)
                            if item.explanation.frame.index >= chunk.start and item.image is not None]
                    if kept:
                        yield Packet(kept[0].explanation.frame.index,
                                     np.stack([item.image for item in kept]),  # type: ignore[misc]
                                     [results_row(name, item, label) for item in kept])
        except (OSError, ValueError, RuntimeError, cv2.error) as exc:
            if isinstance(exc, StreamCamError):  # ours, not the file's: the driver reports it as a failure
                raise
            yield ChunkFailed(str(exc))
