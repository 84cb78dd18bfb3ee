#!/usr/bin/env python
"""Streaming speed, latency and memory, measured in ONE run on efficientnet_lite0.

1. Video files: end-to-end fps (decode -> engine at batch 8 -> overlay + HUD ->
   mp4v encode) divided by the engine's own throughput at batch 8. Target >= 0.85.
2. Live: a 640x480 source delivering 30 fps (the demo clip, paced like a camera):
   achieved fps, stale frames dropped, capture-to-display latency (mean, p95).
   Target: 30 fps, or at least 0.9 x the engine's batch-1 throughput; p95 <= 2
   frame intervals (66.7 ms).
3. Memory: RSS after 5,000 live frames minus RSS after 500. Target < 50 MB.
4. Real time with heavy models (ResNet50, Xception, random weights), a 30 fps 640x480
   source, heatmaps in the background: shown fps (goal 30), heatmap updates per second
   next to the engine's own batch-1 rate (goal within 10%), capture-to-display latency
   p50/p95 (goal p95 <= 2 frame intervals), heatmap age p50/p95; lock-step for contrast.
5. Several sources (EfficientNet-Lite0, 1, 2 and 4 sources of 30 fps 640x480): shown fps
   per source, explained frames per second in total next to the engine's batch-N throughput.
6. Motion compensation on a panning clip: mean absolute difference between a stale
   heatmap (k frames old) and the fresh one of the shown frame, as it is, moved by
   optical flow, and moved by one global shift; and the cost per frame of each.
7. Runtimes (``--runtime``): EfficientNet-Lite0, MobileNetV2 and ResNet50 on the TensorFlow
   engine and on LiteRT with 1 and 2 threads: engine ms per frame, live heatmaps per second and
   shown fps from a 30 fps source, video end-to-end fps; then what ``--runtime auto`` runs live
   (batch 1) and on video (batch 8), as timed once on this machine, and its gain over TensorFlow.
   Goals: live >= 2x on Lite0 and MobileNetV2, video end to end >= 1.3x on Lite0.

    python scripts/bench_stream.py [--sections video,live,memory,heavy,sources,motion,runtimes]
        [--video-frames 600] [--live-seconds 20] [--memory-frames 5000] [--heavy-seconds 15]
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


def paced_demo(seconds: float, offset: int = 0, name: str = "640x480 @ 30 fps"):
    """A reader factory: the demo clip delivered at 30 fps for ``seconds``, like a camera."""
    clip = DemoClip()
    frames = int(seconds * clip.fps)
    return lambda: ArrayReader(lambda i: clip((i + offset) % clip.frame_count) if i < frames else None,
                               clip.fps, name)


def bench_heavy(seconds: float) -> None:
    """Section 4: ResNet50 and Xception (random weights) live from a 30 fps source."""
    print("\n| model | engine b=1 | mode | shown fps | heatmaps/s | heatmaps / engine | latency p50 / p95 ms "
          "| heatmap age p50 / p95 frames |")
    print("|---|---|---|---|---|---|---|---|")
    for name in ("resnet50", "xception"):
        cam = GradCAM(load_model(name, weights=None))
        cam.warm_up()
        engine1 = engine_fps(cam, 1, seconds=8.0)
        for sync in (False, True):
            run = LiveRun(cam, LiveOptions(window=False, sync=sync), paced_demo(seconds if not sync else 8.0))
            stats = run.run()
            rate = stats.heatmaps / stats.elapsed_s
            lat50, lat95 = np.percentile(stats.latencies_ms, [50, 95])
            age50, age95 = np.percentile(stats.ages, [50, 95])
            print(f"| {name} | {engine1:.1f} fps | {'lock-step' if sync else 'async'} | {stats.fps:.1f} | {rate:.1f} | "
                  f"{rate / engine1:.2f} | {lat50:.1f} / {lat95:.1f} | {age50:.0f} / {age95:.0f} |", flush=True)


def bench_sources(cam: GradCAM, seconds: float) -> None:
    """Section 5: 1, 2 and 4 sources through one engine."""
    print("\n| sources | shown fps per source | explained frames/s, total | engine b=N | explained / engine "
          "| explained / offered |")
    print("|---|---|---|---|---|---|")
    for count in (1, 2, 4):
        readers = [paced_demo(seconds, offset=37 * i, name=f"source {i}") for i in range(count)]
        stats = LiveRun(cam, LiveOptions(window=False, sources=tuple(f"s{i}" for i in range(count))), readers).run()
        engine = engine_fps(cam, count, seconds=5.0)
        explained = stats.heatmaps / stats.elapsed_s
        offered = 30.0 * count
        per_source = ", ".join(f"{n / stats.elapsed_s:.1f}" for n in stats.shown_per_stream)
        print(f"| {count} | {per_source} | {explained:.1f} | {engine:.1f} fps | {explained / engine:.2f} | "
              f"{explained / offered:.2f} |", flush=True)


def pan_clip(frames: int, step: int = 4) -> list[np.ndarray]:
    """A pure horizontal pan across the astronaut photo at 640x480, ``step`` px per frame, back and forth."""
    from stream_cam.sources.images import builtin_image

    photo = cv2.cvtColor(builtin_image("astronaut"), cv2.COLOR_RGB2BGR)
    photo = cv2.resize(photo, (1280, 1280), interpolation=cv2.INTER_CUBIC)[280:1000]  # 1280x720
    source_step = step * 960 // 640  # a 960x720 window shown at 640x480
    out = []
    for i in range(frames):
        x = (source_step * i) % 640
        x = x if x <= 320 else 640 - x
        out.append(cv2.resize(photo[:, x:x + 960], (640, 480), interpolation=cv2.INTER_AREA))
    return out


def moving_object_clip(frames: int, step: int = 12) -> list[np.ndarray]:
    """The cat (300x200) crossing a still, textured 640x480 background, ``step`` px per frame."""
    from stream_cam.sources.images import builtin_image

    cat = cv2.resize(cv2.cvtColor(builtin_image("chelsea"), cv2.COLOR_RGB2BGR), (300, 200))
    noise = np.random.default_rng(0).integers(60, 200, (480, 640, 3), dtype=np.uint8)
    background = cv2.GaussianBlur(noise, (0, 0), 3)
    out = []
    for i in range(frames):
        frame = background.copy()
        x = 20 + (step * i) % 320
        frame[140:340, x:x + 300] = cat
        out.append(frame)
    return out


def bench_motion(cam: GradCAM) -> None:
    """Section 6: how far a stale heatmap is from the fresh one, moved or not; and the cost."""
    from stream_cam.engine.motion import MotionCompensator

    clips = {"object crossing (12 px/frame)": moving_object_clip(27), "pan (4 px/frame)": pan_clip(120),
             "demo (pan + zoom)": [DemoClip()(i) for i in range(0, 90)]}
    print("\n| clip | age (frames) | MAE as it is | MAE moved by flow | MAE moved by shift |")
    print("|---|---|---|---|---|")
    costs: dict[str, list[float]] = {"flow": [], "shift": []}
    for name, frames in clips.items():
        maps = []
        for i in range(0, len(frames), 8):
            batch = np.concatenate([cam.model.preprocess(f, bgr=True) for f in frames[i:i + 8]])
            maps += list(cam.explain(batch, np.full((len(batch), 1), -1, np.int32)).heatmaps[:, 0])
        compensators = {m: MotionCompensator(m) for m in ("off", "flow", "shift")}
        thumbs = {m: [c.thumbnail(f) for f in frames] for m, c in compensators.items() if m != "off"}
        size = (160, 120)
        fresh = [cv2.resize(h, size, interpolation=cv2.INTER_LINEAR) for h in maps]
        for age in (1, 3, 6, 10):
            if age >= len(frames) - 2:
                continue
            errors = {m: [] for m in compensators}
            for i in range(age, len(frames)):
                errors["off"].append(np.abs(cv2.resize(maps[i - age], size) - fresh[i]).mean())
                for m in ("flow", "shift"):
                    start = time.perf_counter()
                    thumb = compensators[m].thumbnail(frames[i])
                    moved = compensators[m].warp(maps[i - age], thumbs[m][i - age], thumb)
                    costs[m].append((time.perf_counter() - start) * 1000)
                    errors[m].append(np.abs(moved - fresh[i]).mean())
            print(f"| {name} | {age} | {np.mean(errors['off']):.4f} | {np.mean(errors['flow']):.4f} | "
                  f"{np.mean(errors['shift']):.4f} |", flush=True)
    print(f"\ncost per shown frame (thumbnail + warp), median: flow {np.median(costs['flow']):.2f} ms, "
          f"shift {np.median(costs['shift']):.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sections", default="video,live,memory,heavy,sources,motion,runtimes")
    parser.add_argument("--video-frames", type=int, default=600)
    parser.add_argument("--live-seconds", type=float, default=20.0)
    parser.add_argument("--memory-frames", type=int, default=5000)
    parser.add_argument("--heavy-seconds", type=float, default=15.0)
    args = parser.parse_args()
    sections = set(args.sections.split(","))

    cam = GradCAM(load_model("efficientnet_lite0"))
    cam.warm_up()
    print(f"tensorflow {tf.__version__}, efficientnet_lite0, 640x480 frames")
    if "heavy" in sections:
        bench_heavy(args.heavy_seconds)
    if "sources" in sections:
        bench_sources(cam, args.heavy_seconds)
    if "motion" in sections:
        bench_motion(cam)
    if "runtimes" in sections:
        bench_runtimes(args.live_seconds, args.video_frames)
    if not sections & {"video", "live", "memory"}:
        return
    print("\n| measure | value | target | result |")
    print("|---|---|---|---|")

    if "video" in sections:
        engine8 = engine_fps(cam, 8)
        with tempfile.TemporaryDirectory() as folder:
            video_fps, n = bench_video(cam, args.video_frames, Path(folder))
        ratio = video_fps / engine8
        print(f"| video: engine only, batch 8 | {engine8:.1f} fps | | |")
        print(f"| video: end to end, batch 8 ({n} frames, decode + engine + render + mp4v) | {video_fps:.1f} fps "
              "| | |")
        print(f"| video: end-to-end / engine | {ratio:.2f} | >= 0.85 | {'met' if ratio >= 0.85 else 'NOT met'} |",
              flush=True)
    if "live" in sections:
        bench_live_table(cam, args.live_seconds)
    if "memory" in sections:
        bench_memory_table(cam, args.memory_frames)


RUNTIME_MODELS = (("efficientnet_lite0", "imagenet"), ("mobilenet_v2", "random"), ("resnet50", "random"))


def live_engine(runner, seconds: float) -> tuple[float, float, float, float]:
    """A live run from a 30 fps source: (median engine ms per heatmap in the run, heatmaps per second,
    shown fps, process CPU ms per shown frame)."""
    import json

    with tempfile.TemporaryDirectory() as folder:
        log = Path(folder) / "log.jsonl"
        cpu = time.process_time()
        stats = LiveRun(runner, LiveOptions(window=False, log=log), paced_demo(seconds)).run()
        cpu_ms = (time.process_time() - cpu) * 1000 / max(stats.shown, 1)
        per_heatmap = {}
        for line in log.read_text().splitlines():
            record = json.loads(line)
            per_heatmap[record["heatmap_frame"]] = record["ms"]["engine"]
    return statistics.median(per_heatmap.values()), stats.heatmaps / stats.elapsed_s, stats.fps, cpu_ms


def bench_runtimes(seconds: float, video_frames: int) -> None:
    """Section "runtimes": the TensorFlow engine vs the same explainer on LiteRT (--runtime), per model:
    engine ms per frame (batch 1, alone), and in a live run from a 30 fps source the engine's ms per
    heatmap, heatmaps per second, shown fps and the process's CPU per shown frame; video end to end
    (batch 8; LiteRT runs a batch frame by frame). LiteRT with 2 and 1 threads."""
    from stream_cam.engine.runtime import choose_runtime
    from stream_cam.jobs.engine_spec import runtime_cache

    print("\n| model | runtime | engine ms/frame | live: engine ms/heatmap | live: heatmaps/s | live: shown fps "
          "| live: CPU ms/frame | video e2e fps |")
    print("|---|---|---|---|---|---|---|---|")
    ratios, picks = [], []
    for name, weights in RUNTIME_MODELS:
        cam = GradCAM(load_model(name, weights=None if weights == "random" else weights))
        runners = {"tensorflow": cam}
        for threads in (2, 1):
            runners[f"litert, {threads} thread{'s' if threads > 1 else ''}"] = choose_runtime(
                cam, "litert", runtime_cache(), threads=threads)
        rows = {}
        for label, runner in runners.items():
            runner.warm_up()
            engine_ms = 1000 / engine_fps(runner, 1, seconds=min(seconds, 5.0))
            live_ms, live_rate, shown_fps, cpu_ms = live_engine(runner, seconds)
            with tempfile.TemporaryDirectory() as folder:
                video_fps, _ = bench_video(runner, video_frames, Path(folder))
            rows[label] = (engine_ms, live_ms, video_fps)
            print(f"| {name} ({weights}) | {label} | {engine_ms:.1f} | {live_ms:.1f} | {live_rate:.1f} | "
                  f"{shown_fps:.1f} | {cpu_ms:.1f} | {video_fps:.1f} |", flush=True)
        base = rows["tensorflow"]
        for label in (k for k in rows if k != "tensorflow"):
            ratios.append((name, label, base[0] / rows[label][0], base[1] / rows[label][1],
                           rows[label][2] / base[2]))
        # What --runtime auto runs for each job here (timed once at the job's batch size), and its gain.
        live_pick = choose_runtime(cam, "auto", runtime_cache(), batch=1).runtime
        video_pick = choose_runtime(cam, "auto", runtime_cache(), batch=8).runtime
        picked = {"tensorflow": "tensorflow", "litert": "litert, 2 threads"}
        picks.append((name, live_pick, base[1] / rows[picked[live_pick]][1], video_pick,
                      rows[picked[video_pick]][2] / base[2]))
    print("\n| model | LiteRT | engine speed-up | live engine speed-up | video e2e speed-up |")
    print("|---|---|---|---|---|")
    for name, label, engine, live, video in ratios:
        print(f"| {name} | {label} | {engine:.2f}x | {live:.2f}x | {video:.2f}x |")
    print("\n| model | auto runs live (batch 1) | live engine speed-up | auto runs video (batch 8) | "
          "video e2e speed-up |")
    print("|---|---|---|---|---|")
    for name, live_pick, live, video_pick, video in picks:
        print(f"| {name} | {live_pick} | {live:.2f}x | {video_pick} | {video:.2f}x |")
    print("goals: live engine >= 2x on efficientnet_lite0 and mobilenet_v2; video e2e >= 1.3x on efficientnet_lite0")


def bench_live_table(cam: GradCAM, seconds: float) -> None:
    engine1 = engine_fps(cam, 1)
    stats = bench_live(cam, seconds)
    lat = stats.latencies_ms
    p95 = float(np.percentile(lat, 95))
    fps_ok = stats.fps >= 29.5 or stats.fps >= 0.9 * engine1
    print(f"| live: engine only, batch 1 | {engine1:.1f} fps | | |")
    print(f"| live: achieved ({stats.shown} frames shown, {stats.dropped} dropped) | {stats.fps:.1f} fps | "
          f"30, or >= 0.9 x {engine1:.0f} | {'met' if fps_ok else 'NOT met'} |")
    print(f"| live: capture-to-display latency, mean / p95 | {statistics.mean(lat):.1f} / {p95:.1f} ms | "
          f"p95 <= 66.7 ms | {'met' if p95 <= 66.7 else 'NOT met'} |", flush=True)


def bench_memory_table(cam: GradCAM, frames: int) -> None:
    before, after, fps = bench_memory(cam, frames, frames // 10)
    growth = after - before
    print(f"| memory: RSS after {frames // 10} / {frames} frames ({fps:.0f} fps) | "
          f"{before:.0f} / {after:.0f} MB | | |")
    print(f"| memory: growth | {growth:+.1f} MB | < 50 MB | {'met' if growth < 50 else 'NOT met'} |", flush=True)


if __name__ == "__main__":
    main()
