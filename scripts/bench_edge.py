#!/usr/bin/env python
"""The TensorFlow engine against its LiteRT export (f32 and f16), per offline model, in ONE run.

1. Per model (Lite0, Lite1, Lite2): ms per frame at batch 1 of the compiled Grad-CAM engine in
   TensorFlow and of the exported file on LiteRT (round-robin, medians), their ratio, and the
   agreement on real photos: top-1 equal, largest heatmap difference.
2. ``stream-cam live`` on a clip until its first explained frame: the time from launch and the
   peak RSS, for the full install with the Keras model, the full install with the .tflite file,
   and (``--edge-venv DIR``) a virtualenv made from requirements-edge.txt, without TensorFlow.
3. Installed size of TensorFlow's part of this install and of the edge virtualenv.

    python -m venv /tmp/edge && /tmp/edge/bin/pip install -r requirements-edge.txt \\
        && /tmp/edge/bin/pip install --no-deps -e .
    python scripts/bench_edge.py --edge-venv /tmp/edge [--rounds 30]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from stream_cam.tf_runtime import import_tensorflow  # noqa: E402

MODELS = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")
PHOTOS = ("chelsea", "coffee", "rocket", "astronaut", "cat")


def ms_per_call(fn, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def engine_table(folder: Path, rounds: int) -> dict[str, Path]:
    from stream_cam.engine.gradcam import GradCAM
    from stream_cam.engine.litert import LiteRTExplainer
    from stream_cam.jobs.export import ExportOptions, run_export
    from stream_cam.models.loader import load_model
    from stream_cam.sources.images import builtin_image

    photos = [builtin_image(name) for name in PHOTOS]
    files = {}
    print("| model | input | TF engine ms | LiteRT f32 ms | f32 speed-up | f32 max map diff | f32 top-1 | "
          "LiteRT f16 ms | f16 speed-up | f16 max map diff | f16 top-1 | file f32 / f16 MB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name in MODELS:
        cam = GradCAM(load_model(name))
        lite = {}
        for precision in ("f32", "f16"):
            path = folder / f"{name}_{precision}.tflite"
            run_export(cam, ExportOptions(path, precision=precision, overwrite=True))
            lite[precision] = LiteRTExplainer(path)
        files[name] = folder / f"{name}_f32.tflite"
        x_tf = cam.model.preprocess(photos[0][None])
        x_lite = lite["f32"].model.preprocess(photos[0][None])
        target = np.array([[-1]], np.int32)
        cam.warm_up()
        calls = {"tf": lambda: cam.explain(x_tf, target),
                 "f32": lambda: lite["f32"].explain(x_lite, target),
                 "f16": lambda: lite["f16"].explain(x_lite, target)}
        results: dict[str, list[float]] = {key: [] for key in calls}
        for _ in range(rounds):  # round-robin: machine noise hits all three alike
            for key, call in calls.items():
                results[key].append(ms_per_call(call, 1))
        ms = {key: statistics.median(values) for key, values in results.items()}
        row = [name, str(cam.model.input_size[0]), f"{ms['tf']:.1f}"]
        for precision in ("f32", "f16"):
            diffs, agree = [], 0
            for photo in photos:
                ours, theirs = cam(photo), lite[precision](photo)
                diffs.append(float(np.abs(ours.heatmaps - theirs.heatmaps).max()))
                agree += int(ours.class_indices[0] == theirs.class_indices[0])
            row += [f"{ms[precision]:.1f}", f"{ms['tf'] / ms[precision]:.2f}x", f"{max(diffs):.1e}",
                    f"{agree}/{len(photos)}"]
        sizes = [(folder / f"{name}_{p}.tflite").stat().st_size / 1e6 for p in ("f32", "f16")]
        row.append(f"{sizes[0]:.1f} / {sizes[1]:.1f}")
        print("| " + " | ".join(row) + " |", flush=True)
    return files


def first_frame(python: str, model: str, clip: Path, folder: Path) -> tuple[float, float]:
    """Seconds from launch to the first explained frame of `stream-cam live`, and the peak RSS (MiB)."""
    log = folder / f"first_{time.monotonic_ns()}.jsonl"
    probe = ("import resource, subprocess, sys, time, json\n"
             "start = time.time()\n"
             "code = subprocess.run(sys.argv[1:], capture_output=True).returncode\n"
             "print(json.dumps({'start': start, 'code': code, "
             "'rss_kib': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))\n")
    command = [python, "-m", "stream_cam", "live", "--source", str(clip), "--no-window", "--max-frames", "1",
               "--model", model, "--log", str(log)]
    out = subprocess.run([sys.executable, "-c", probe, *command], capture_output=True, text=True, cwd=folder,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if result["code"] != 0:
        raise SystemExit(f"live failed with {model}: {out.stderr}")
    wall = json.loads(log.read_text().splitlines()[0])["wall"]
    return wall - result["start"], result["rss_kib"] / 1024


def site_size_mb(paths: list[Path]) -> float:
    total = 0
    for path in paths:
        for file in path.rglob("*") if path.is_dir() else [path]:
            if file.is_file() and not file.is_symlink():
                total += file.stat().st_size
    return total / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--edge-venv", type=Path, help="a virtualenv made from requirements-edge.txt")
    args = parser.parse_args()
    import_tensorflow()
    from helpers import write_clip

    folder = Path(tempfile.mkdtemp(prefix="bench_edge_"))
    files = engine_table(folder, args.rounds)
    clip = write_clip(folder / "clip.mp4", frames=60, fps=30, size=(640, 480))
    print()
    print("| `stream-cam live` until the first explained frame | seconds | peak RSS MiB |")
    print("|---|---|---|")
    runs = [("full install, Keras model (TensorFlow)", sys.executable, "efficientnet_lite0"),
            ("full install, exported .tflite (LiteRT)", sys.executable, str(files["efficientnet_lite0"]))]
    if args.edge_venv is not None:
        runs.append(("edge install (no TensorFlow), .tflite", str(args.edge_venv / "bin" / "python"),
                     str(files["efficientnet_lite0"])))
    for label, python, model in runs:
        seconds, rss = first_frame(python, model, clip, folder)
        print(f"| {label} | {seconds:.2f} | {rss:.0f} |", flush=True)
    import tensorflow as tf

    site = Path(tf.__file__).parents[1]
    heavy = [site / name for name in os.listdir(site)
             if name.split("-")[0].split(".")[0].lower() in {"tensorflow", "keras", "tensorboard", "jax", "jaxlib",
                                                             "ml_dtypes", "h5py", "grpcio", "grpc", "tf_keras",
                                                             "libclang", "tensorflow_io_gcs_filesystem"}]
    print()
    print(f"Installed: TensorFlow and its own packages {site_size_mb(heavy):.0f} MB (site-packages {site})")
    if args.edge_venv is not None:
        edge_site = next((args.edge_venv / "lib").glob("python*/site-packages"))
        print(f"Installed: the whole edge virtualenv's site-packages {site_size_mb([edge_site]):.0f} MB")


if __name__ == "__main__":
    main()
