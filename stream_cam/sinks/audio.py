"""Keep the input's soundtrack: copy its audio streams, unchanged, beside the annotated video.

The video is written without sound (OpenCV's writers and the H.264 path carry pictures only); once
it is finalized, :func:`with_audio` remuxes it with the input's audio packets (no re-encoding),
cut to the video's length. It needs PyAV; a container that cannot hold the audio's codec (AAC in
an AVI, for one) keeps the video alone, and the caller says so once.
"""

from __future__ import annotations

import heapq
import logging
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterator

from ..checks import installed

log = logging.getLogger(__name__)


def audio_codecs(source: str) -> list[str]:
    """The codec names of ``source``'s audio streams ([] without any, for a camera or URL, or without PyAV)."""
    if "://" in source or not Path(source).is_file() or not installed("av"):
        return []
    import av

    try:
        with av.open(source) as container:
            return [stream.codec_context.name for stream in container.streams.audio]
    except (OSError, ValueError, av.FFmpegError):
        return []


def _packets(container: Any, stream: Any, out_stream: Any, limit: float | None) -> Iterator[tuple[float, int, Any]]:
    """(seconds, order, packet) of one stream, retargeted to ``out_stream``; up to ``limit`` seconds."""
    for packet in container.demux(stream):
        if packet.dts is None or packet.size == 0:
            continue  # the demuxer's flush packet
        seconds = float(packet.dts * stream.time_base)
        if limit is not None and packet.pts is not None and float(packet.pts * stream.time_base) >= limit:
            break
        packet.stream = out_stream
        yield seconds, id(out_stream), packet


def with_audio(video: Path, source: str, out: Path) -> str:
    """Write ``out``: ``video``'s pictures and ``source``'s audio, both copied as they are.

    Returns "" on success, else why the audio could not be kept (``out`` is then removed)."""
    import av

    try:
        with av.open(str(video)) as pictures, av.open(source) as sound, av.open(str(out), "w") as target:
            picture_stream = pictures.streams.video[0]
            duration = _seconds(picture_stream)
            outputs: list[tuple[Any, Any, Any, float | None]] = [
                (pictures, picture_stream, target.add_stream_from_template(picture_stream), None)]
            for stream in sound.streams.audio:
                outputs.append((sound, stream, target.add_stream_from_template(stream), duration))
            # Interleaved by time, as players expect; each stream is read once, in order.
            merged = heapq.merge(*(_packets(container, stream, copy, limit)
                                   for container, stream, copy, limit in outputs), key=lambda item: item[:2])
            for _, _, packet in merged:
                target.mux(packet)
    except (OSError, ValueError, av.FFmpegError) as exc:
        out.unlink(missing_ok=True)
        return str(exc).split(";")[0][:160]
    return ""


def _seconds(stream: Any) -> float | None:
    """A video stream's length in seconds (None when the container does not say)."""
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if stream.frames and stream.average_rate:
        return float(Fraction(stream.frames) / stream.average_rate)
    return None
