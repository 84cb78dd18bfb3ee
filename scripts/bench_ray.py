#!/usr/bin/env python
"""The same four videos through the local ``video`` command and through ``--ray`` on this machine.

Both run in this one process, alternating, on the same inputs and options: the local job with
the engine already loaded, the Ray job from ``ray.init`` on (a local cluster on this machine's
cores, one worker per core). Printed: total fps of each and their ratio (goal: Ray >= 0.8 x
local), Ray's start-up (cluster, workers with their engines), the time per chunk, the driver's
encoding rate, and, on paper, the expected fps for N nodes of C cores from the measured
per-worker rate.

    python scripts/bench_ray.py [--frames 300] [--size 640x480] [--rounds 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from stream_cam.tf_runtime import import_tensorflow, quiet_opencv  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300, help="frames per video (default 300: 10 s at 30 fps)")
    parser.add_argument("--size", default="640x480")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))

    quiet_opencv()
    import_tensorflow()
    from helpers import write_clip
    from stream_cam.jobs.engine_spec import EngineSpec
    from stream_cam.jobs.ray_video import RayOptions, run_videos_on_ray
    from stream_cam.jobs.video import VideoOptions
    from stream_cam.jobs.video_job import run_videos

    folder = Path(tempfile.mkdtemp(prefix="bench_ray_"))
    inputs = [str(write_clip(folder / f"v{i}.mp4", frames=args.frames, fps=30, size=(width, height), cut_every=90))
              for i in range(4)]
    total = 4 * args.frames
    spec = EngineSpec()
    cam = spec.build()
    local_s, ray_total_s, ray_run_s, connect_s, workers_s, chunks, write_s = [], [], [], [], [], [], []
    workers = 0
    for round_ in range(args.rounds):
        out = folder / f"local{round_}"
        began = time.perf_counter()
        run_videos(cam, inputs, out, VideoOptions(progress=False))
        local_s.append(time.perf_counter() - began)

        out = folder / f"ray{round_}"
        timings: dict = {}
        began = time.perf_counter()
        run_videos_on_ray(spec, inputs, out, VideoOptions(progress=False), RayOptions(), timings)
        ray_total_s.append(time.perf_counter() - began)
        ray_run_s.append(timings["run"])
        connect_s.append(timings["connect"])
        workers_s.append(timings["workers"])
        write_s.append(timings["write"])
        chunks.extend(timings["chunks"])
        workers = timings["worker_count"]

    local_fps = total / statistics.median(local_s)
    ray_fps = total / statistics.median(ray_run_s)
    ray_all_fps = total / statistics.median(ray_total_s)
    per_worker = ray_fps / workers
    driver_fps = total / statistics.median(write_s)
    chunk_s = statistics.median(chunks)
    print(f"4 videos x {args.frames} frames, {width}x{height}, EfficientNet-Lite0 Grad-CAM, batch 8, "
          f"{args.rounds} rounds (medians), {workers} Ray workers")
    print()
    print("| run | fps | ratio to local |")
    print("|---|---|---|")
    print(f"| local `video` (engine loaded) | {local_fps:.1f} | 1.00 |")
    print(f"| `--ray`, processing (workers ready) | {ray_fps:.1f} | {ray_fps / local_fps:.2f} |")
    print(f"| `--ray`, including start-up | {ray_all_fps:.1f} | {ray_all_fps / local_fps:.2f} |")
    print()
    print(f"Ray start-up: cluster {statistics.median(connect_s):.1f} s, workers with their engines "
          f"{statistics.median(workers_s):.1f} s")
    print(f"Chunks: {len(chunks)} (median {chunk_s:.2f} s each, {args.frames // 240 + 1} per video at the "
          f"default 240 frames); driver encoding alone: {driver_fps:.0f} fps")
    print()
    print("On paper (per worker = one core: "
          f"{per_worker:.1f} fps; the driver writes at most {driver_fps:.0f} fps per job):")
    print()
    print("| nodes x cores | expected fps | 1 day of 30 fps video (2.59 M frames) |")
    print("|---|---|---|")
    for nodes, cores in ((1, 2), (4, 2), (1, 16), (4, 16), (16, 16)):
        fps = min(nodes * cores * per_worker, driver_fps)
        hours = 2_592_000 / fps / 3600
        limit = " (driver-bound)" if fps == driver_fps else ""
        print(f"| {nodes} x {cores} | {fps:.0f}{limit} | {hours:.1f} h |")


if __name__ == "__main__":
    main()
