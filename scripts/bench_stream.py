#!/usr/bin/env python
"""Streaming speed, latency and memory, measured in ONE run on efficientnet_lite0.

1. Video files: end-to-end fps (decode -> engine at batch 8 -> overlay + HUD ->
   mp4v encode) divided by the engine's own throughput at batch 8. Target >= 0.85.
2. Live: a 640x480 source delivering 30 fps (the demo clip, paced like a camera):
   achieved fps, stale frames dropped, capture-to-display latency (mean, p95).
   Target: 30 fps, or at least 0.9 x the engine's batch-1 throughput; p95 <= 2
   frame intervals (66.7 ms).
3. Memory: RSS after 5,000 live frames minus RSS after 500. Target < 50 MB.

    python scripts/bench_stream.py [--video-frames 600] [--live-seconds 20] [--memory-frames 5000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stream_cam.tf_runtime import import_tensorflow, quiet_opencv  # noqa: E402

quiet_opencv()
tf = import_tensorflow()

import cv2  # noqa: E402

from stream_cam.engine.gradcam import GradCAM  # noqa: E402
from stream_cam.jobs.live import LiveOptions, LiveRun  # noqa: E402
from stream_cam.jobs.video import VideoOptions, process_video  # noqa: E402
from stream_cam.models.loader import load_model  # noqa: E402
from stream_cam.sources.demo import DemoClip  # noqa: E402
from stream_cam.memory import rss_mb  # noqa: E402
from stream_cam.sources.readers import ArrayReader, open_reader  # noqa: E402




def engine_fps(cam: GradCAM, batch: int, seconds: float = 5.0) -> float:
    """Frames per second of the engine alone on preprocessed input."""
    frame = DemoClip()(0)
    x = np.repeat(cam.model.preprocess(frame, bgr=True), batch, axis=0)
    targets = np.full((batch, 1), -1, np.int32)
    cam.explain(x, targets)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        cam.explain(x, targets)
        count += batch
    return count / (time.perf_counter() - start)


def write_demo_video(path: Path, frames: int) -> None:
    clip = DemoClip()
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), clip.fps, (640, 480))
    for i in range(frames):
        writer.write(clip(i % clip.frame_count))
    writer.release()


def bench_video(cam: GradCAM, frames: int, folder: Path) -> tuple[float, int]:
    source = folder / "in.mp4"
    write_demo_video(source, frames)
    start = time.perf_counter()
    result = process_video(cam, open_reader(str(source)), folder / "out.mp4",
                           VideoOptions(batch=8, progress=False, overwrite=True))
    return result.frames / (time.perf_counter() - start), result.frames


def bench_live(cam: GradCAM, seconds: float):
    clip = DemoClip()
    frames = int(seconds * clip.fps)

    def camera(i: int):
        return clip(i % clip.frame_count) if i < frames else None

    run = LiveRun(cam, LiveOptions(window=False), lambda: ArrayReader(camera, clip.fps, "640x480 @ 30 fps"))
    return run.run()


def bench_memory(cam: GradCAM, total: int, first: int) -> tuple[float, float, float]:
    clip = DemoClip()
    # A 500 fps source: faster than the engine, waiting between frames as a camera driver does.
    run = LiveRun(cam, LiveOptions(window=False, max_frames=total),
                  lambda: ArrayReader(lambda i: clip(i % clip.frame_count), 500.0, "fast source"))
    samples: dict[str, float] = {}
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.05):
            if "first" not in samples and run.stats.shown >= first:
                samples["first"] = rss_mb()

    watcher = threading.Thread(target=watch, name="bench-rss")
    watcher.start()
    try:
        stats = run.run()
    finally:
        done.set()
        watcher.join()
    return samples["first"], rss_mb(), stats.fps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video-frames", type=int, default=600)
    parser.add_argument("--live-seconds", type=float, default=20.0)
    parser.add_argument("--memory-frames", type=int, default=5000)
    args = parser.parse_args()

    cam = GradCAM(load_model("efficientnet_lite0"))
    cam.warm_up()
    print(f"tensorflow {tf.__version__}, efficientnet_lite0, 640x480 frames")
    print("| measure | value | target | result |")
    print("|---|---|---|---|")

    engine8 = engine_fps(cam, 8)
    with tempfile.TemporaryDirectory() as folder:
        video_fps, n = bench_video(cam, args.video_frames, Path(folder))
    ratio = video_fps / engine8
    print(f"| video: engine only, batch 8 | {engine8:.1f} fps | | |")
    print(f"| video: end to end, batch 8 ({n} frames, decode + engine + render + mp4v) | {video_fps:.1f} fps | | |")
    print(f"| video: end-to-end / engine | {ratio:.2f} | >= 0.85 | {'met' if ratio >= 0.85 else 'NOT met'} |",
          flush=True)

    engine1 = engine_fps(cam, 1)
    stats = bench_live(cam, args.live_seconds)
    lat = stats.latencies_ms
    p95 = float(np.percentile(lat, 95))
    fps_ok = stats.fps >= 29.5 or stats.fps >= 0.9 * engine1
    print(f"| live: engine only, batch 1 | {engine1:.1f} fps | | |")
    print(f"| live: achieved ({stats.shown} frames shown, {stats.dropped} dropped) | {stats.fps:.1f} fps | "
          f"30, or >= 0.9 x {engine1:.0f} | {'met' if fps_ok else 'NOT met'} |")
    print(f"| live: capture-to-display latency, mean / p95 | {statistics.mean(lat):.1f} / {p95:.1f} ms | "
          f"p95 <= 66.7 ms | {'met' if p95 <= 66.7 else 'NOT met'} |", flush=True)

    before, after, fps = bench_memory(cam, args.memory_frames, args.memory_frames // 10)
    growth = after - before
    print(f"| memory: RSS after {args.memory_frames // 10} / {args.memory_frames} frames ({fps:.0f} fps) | "
          f"{before:.0f} / {after:.0f} MB | | |")
    print(f"| memory: growth | {growth:+.1f} MB | < 50 MB | {'met' if growth < 50 else 'NOT met'} |", flush=True)


if __name__ == "__main__":
    main()
