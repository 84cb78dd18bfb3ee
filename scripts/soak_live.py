#!/usr/bin/env python
"""A long run through the live pipeline: memory growth and speed drift.

Pushes N frames (default 20,000) of a low-resolution clip through the live
pipeline as fast as it goes (a 500 fps source, no window), with efficientnet_lite0,
and reports RSS growth and the fps of the first 1,000 frames after warm-up
against the last 1,000. Targets: growth < 50 MB, last/first fps within 10%.

    python scripts/soak_live.py [--frames 20000] [--size 160x120]
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stream_cam.tf_runtime import import_tensorflow, quiet_opencv  # noqa: E402

quiet_opencv()
tf = import_tensorflow()

from stream_cam.engine.gradcam import GradCAM  # noqa: E402
from stream_cam.jobs.live import LiveOptions, LiveRun  # noqa: E402
from stream_cam.models.loader import load_model  # noqa: E402
from stream_cam.sources.demo import DemoClip  # noqa: E402
from stream_cam.memory import rss_mb  # noqa: E402
from stream_cam.sources.readers import ArrayReader  # noqa: E402

WARM_UP = 500
WINDOW = 1000




def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=20_000)
    parser.add_argument("--size", default="160x120")
    args = parser.parse_args()
    width, height = map(int, args.size.split("x"))
    if args.frames < WARM_UP + 2 * WINDOW:
        parser.error(f"--frames must be at least {WARM_UP + 2 * WINDOW}")

    clip = DemoClip()
    small = [cv2.resize(clip(i), (width, height), interpolation=cv2.INTER_AREA) for i in range(clip.frame_count)]
    cam = GradCAM(load_model("efficientnet_lite0"))
    run = LiveRun(cam, LiveOptions(window=False, max_frames=args.frames),
                  # paced at 500 fps: faster than the engine, but waiting between frames like a driver
                  lambda: ArrayReader(lambda i: small[i % len(small)], 500.0, args.size))

    marks: dict[int, tuple[float, float]] = {}  # frames shown -> (time, RSS MB)
    wanted = [WARM_UP, WARM_UP + WINDOW, args.frames - WINDOW, args.frames]
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.005):
            shown = run.stats.shown
            for mark in wanted:
                if mark not in marks and shown >= mark:
                    marks[mark] = (time.perf_counter(), rss_mb())

    watcher = threading.Thread(target=watch, name="soak-watch")
    watcher.start()
    start = time.perf_counter()
    try:
        stats = run.run()
    finally:
        done.set()
        watcher.join()
    marks.setdefault(args.frames, (time.perf_counter(), rss_mb()))
    first_fps = WINDOW / (marks[WARM_UP + WINDOW][0] - marks[WARM_UP][0])
    last_fps = WINDOW / (marks[args.frames][0] - marks[args.frames - WINDOW][0])
    growth = marks[args.frames][1] - marks[WARM_UP][1]
    drift = last_fps / first_fps - 1
    print(f"{stats.shown} frames of {args.size} in {time.perf_counter() - start:.0f} s, {stats.dropped} dropped")
    print("| measure | value | target | result |")
    print("|---|---|---|---|")
    print(f"| RSS after {WARM_UP} / {args.frames} frames | {marks[WARM_UP][1]:.0f} / {marks[args.frames][1]:.0f} MB "
          f"| | |")
    print(f"| RSS growth | {growth:+.1f} MB | < 50 MB | {'met' if growth < 50 else 'NOT met'} |")
    print(f"| fps, frames {WARM_UP}-{WARM_UP + WINDOW} / last {WINDOW} | {first_fps:.1f} / {last_fps:.1f} | | |")
    print(f"| fps drift, last vs first | {drift:+.1%} | within 10% | {'met' if abs(drift) <= 0.10 else 'NOT met'} |")
    alive = [t.name for t in threading.enumerate() if t.name.startswith("stream_cam")]
    print(f"| stream_cam threads left after the run | {len(alive)} | 0 | {'met' if not alive else 'NOT met'} |")


if __name__ == "__main__":
    main()
