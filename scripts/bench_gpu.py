#!/usr/bin/env python
"""The GPU path, measured: host rendering against device rendering, per model and batch size.

For each model and batch size, in ONE process, host and device runs alternating round by round
(medians; compare the ratios, not the milliseconds):

  engine fps       the compiled CAM alone on preprocessed input (the ceiling)
  path fps         640x480 uint8 BGR frames in memory -> drawn frames out: host = OpenCV resize and
                   preprocessing, the engine, OpenCV/numpy colouring and blending; device = ONE
                   compiled call that does all of it (``--render device``, engine/device_frames.py)
  video fps        a whole ``stream-cam video`` job (decode, explain, draw, HUD, encode) with
                   ``--render host`` and ``--render device``
  host CPU         process CPU milliseconds per frame during the video job (every thread): on a GPU
                   the host's share of the work, on a CPU all of it
  peak GPU MB      ``tf.config.experimental.get_memory_info``'s peak for the model (on a GPU only)

On a GPU machine (``pip install -e ".[gpu]"``):

    python scripts/bench_gpu.py --device gpu [--mixed-precision float16]

On a CPU, the same comparison with ``--device cpu``:

    python scripts/bench_gpu.py --device cpu [--models efficientnet_lite0 mobilenet_v2 resnet50]
        [--batches 1 8] [--frames 96] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from stream_cam.tf_runtime import import_tensorflow, quiet_opencv  # noqa: E402

quiet_opencv()
tf = import_tensorflow()

from stream_cam.engine.device import configure_devices, parse_device  # noqa: E402
from stream_cam.engine.device_frames import DeviceFramePath  # noqa: E402
from stream_cam.engine.gradcam import GradCAM  # noqa: E402
from stream_cam.jobs.video import VideoOptions, process_video  # noqa: E402
from stream_cam.models.loader import load_model  # noqa: E402
from stream_cam.render.colormap import colormap_lut  # noqa: E402
from stream_cam.render.overlay import overlay_heatmap  # noqa: E402
from stream_cam.sources.demo import DemoClip  # noqa: E402
from stream_cam.sources.readers import open_reader  # noqa: E402
from bench_stream import write_demo_video  # noqa: E402 - the same 640x480 demo clip

ALPHA, COLORMAP = 0.4, "jet"


def timed(fn: Callable[[], object], frames: int) -> tuple[float, float]:
    """(frames per second, host CPU ms per frame) of one call of ``fn``."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return frames / wall, cpu * 1000 / frames


def host_path(cam: GradCAM, frames: np.ndarray, targets: np.ndarray) -> list[np.ndarray]:
    """What ``--render host`` does with a batch: OpenCV and numpy around the engine."""
    result = cam.explain(cam.model.preprocess(frames, bgr=True), targets)
    return [overlay_heatmap(frame, heatmap, ALPHA, COLORMAP, bgr=True) for frame, heatmap in zip(frames, result.heatmaps[:, 0])]


def video(cam: GradCAM, source: Path, folder: Path, batch: int, render: str) -> Callable[[], object]:
    options = VideoOptions(batch=batch, progress=False, overwrite=True, render=render)
    return lambda: process_video(cam, open_reader(str(source)), folder / f"out_{render}.mp4", options)


def bench(name: str, precision: str | None, device: str, batches: list[int], rounds: int,
          source: Path, frames: int, folder: Path) -> list[dict]:
    model = load_model(name, weights="imagenet" if name == "efficientnet_lite0" else None, precision=precision)
    cam = GradCAM(model)
    cam.device = device
    path = DeviceFramePath(cam)
    clip = DemoClip()
    lut = colormap_lut(COLORMAP)
    gpu = device.replace("gpu", "GPU") if device.startswith("gpu") else None
    rows = []
    for batch in batches:
        frames_in = np.stack([clip(i) for i in range(batch)])
        targets = np.full((batch, 1), -1, np.int32)
        x = cam.model.preprocess(frames_in, bgr=True)
        runs: dict[str, Callable[[], object]] = {
            "engine": lambda: [cam.explain(x, targets) for _ in range(8)],
            "path host": lambda: [host_path(cam, frames_in, targets) for _ in range(8)],
            "path device": lambda: [path(frames_in, targets, lut, ALPHA) for _ in range(8)],
            "video host": video(cam, source, folder, batch, "host"),
            "video device": video(cam, source, folder, batch, "device"),
        }
        counts = {key: (frames if key.startswith("video") else 8 * batch) for key in runs}
        for run in runs.values():  # warm up: trace every graph once
            run()
        if gpu is not None:
            tf.config.experimental.reset_memory_stats(gpu)
        samples: dict[str, list[tuple[float, float]]] = {key: [] for key in runs}
        for _ in range(rounds):
            for key, run in runs.items():
                samples[key].append(timed(run, counts[key]))
        fps = {key: statistics.median(s[0] for s in value) for key, value in samples.items()}
        cpu = {key: statistics.median(s[1] for s in value) for key, value in samples.items()}
        peak = tf.config.experimental.get_memory_info(gpu)["peak"] / 2 ** 20 if gpu is not None else None
        rows.append({"model": name, "precision": precision or "float32", "batch": batch, "fps": fps, "cpu": cpu,
                     "peak": peak})
        print(f"  {name} batch {batch}: done", file=sys.stderr, flush=True)
    return rows


def print_table(rows: list[dict], device: str) -> None:
    print(f"\nThe frame path on {device}: host (OpenCV) vs device (in-graph) rendering, 640x480 frames")
    print("| model | precision | batch | engine fps | path fps host / device (ratio) | video fps host / device "
          "(ratio) | host CPU ms/frame host / device | peak GPU MB |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        fps, cpu = row["fps"], row["cpu"]
        peak = f"{row['peak']:.0f}" if row["peak"] is not None else "n/a (no GPU)"
        print(f"| {row['model']} | {row['precision']} | {row['batch']} | {fps['engine']:.1f} | "
              f"{fps['path host']:.1f} / {fps['path device']:.1f} ({fps['path device'] / fps['path host']:.2f}x) | "
              f"{fps['video host']:.1f} / {fps['video device']:.1f} "
              f"({fps['video device'] / fps['video host']:.2f}x) | "
              f"{cpu['video host']:.1f} / {cpu['video device']:.1f} | {peak} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto, cpu, gpu or gpu:N (as stream-cam's --device)")
    parser.add_argument("--gpu-memory", type=int, default=None, metavar="MB")
    parser.add_argument("--models", nargs="+", default=["efficientnet_lite0", "mobilenet_v2", "resnet50"])
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 8])
    parser.add_argument("--mixed-precision", choices=("float16", "bfloat16"), default=None)
    parser.add_argument("--frames", type=int, default=96, help="frames in the video job's clip")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    # The device and its memory policy first, as the commands do: TensorFlow allows neither later.
    device = configure_devices(tf.config, parse_device(args.device), args.gpu_memory)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "in.mp4"
        write_demo_video(source, args.frames)
        for name in args.models:
            rows += bench(name, args.mixed_precision, device, args.batches, args.rounds, source, args.frames,
                          Path(folder))
    print_table(rows, device)


if __name__ == "__main__":
    main()
