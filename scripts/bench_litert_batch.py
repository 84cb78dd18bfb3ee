#!/usr/bin/env python
"""Would a batch signature beat a loop of batch-1 calls on LiteRT? (The video job loops today.)

Converts the same Grad-CAM explainer with a fixed batch of 1, 4 and 8 frames, runs 8 frames through
each on LiteRT (2 threads, XNNPACK), alternating rounds, and prints the median ms per frame and the
ratios, measured in one run. Takes about a minute per model on 2 cores.

    python scripts/bench_litert_batch.py [--models efficientnet_lite0 mobilenet_v2] [--rounds 7]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stream_cam.tf_runtime import import_tensorflow  # noqa: E402

import_tensorflow()

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from ai_edge_litert.interpreter import Interpreter  # noqa: E402

from stream_cam.engine.gradcam import GradCAM  # noqa: E402
from stream_cam.models.loader import load_model  # noqa: E402
from stream_cam.models.preprocessing import SCALINGS  # noqa: E402

BATCHES = (1, 4, 8)
FRAMES = 8


def converted(cam: GradCAM, batch: int) -> bytes:
    """The engine's explain step with a fixed batch (as engine/export.py builds it, for batch 1)."""
    height, width = cam.model.input_size
    folder = Path(tempfile.mkdtemp(prefix="bench_litert_batch_"))
    try:
        def explain(image: Any, target: Any) -> dict:
            probabilities, classes, heatmaps = cam._compute(SCALINGS[cam.model.scaling](tf.cast(image, tf.float32)),
                                                            target, 1)
            return {"probabilities": probabilities, "classes": classes, "heatmaps": heatmaps}

        archive = keras.export.ExportArchive()
        archive.track(cam._cam_model)
        archive.add_endpoint("explain", explain, input_signature=[
            tf.TensorSpec([batch, height, width, 3], tf.uint8, name="image"),
            tf.TensorSpec([batch, 1], tf.int32, name="target")])
        archive.write_out(str(folder), verbose=False)
        return tf.lite.TFLiteConverter.from_saved_model(str(folder), signature_keys=["explain"]).convert()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["efficientnet_lite0", "mobilenet_v2"])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    print(f"| model | {' | '.join(f'batch {b} ms/frame' for b in BATCHES)} | loop / batch 4 | loop / batch 8 |")
    print("|---|" + "---|" * (len(BATCHES) + 2))
    work = Path(tempfile.mkdtemp(prefix="bench_litert_batch_"))
    try:
        for name in args.models:
            model = load_model(name) if name.startswith("efficientnet_lite") else load_model(name, weights=None)
            cam = GradCAM(model)
            frames = np.random.default_rng(0).integers(0, 256, (FRAMES, *model.input_size, 3), dtype=np.uint8)
            runners = {}
            for batch in BATCHES:
                path = work / f"{name}_{batch}.tflite"
                path.write_bytes(converted(cam, batch))
                runners[batch] = Interpreter(model_path=str(path), num_threads=2).get_signature_runner("explain")

            def run(batch: int) -> None:
                for start in range(0, FRAMES, batch):
                    runners[batch](image=frames[start:start + batch], target=np.full((batch, 1), -1, np.int32))

            times: dict[int, list[float]] = {batch: [] for batch in BATCHES}
            for batch in BATCHES:
                run(batch)  # warm-up: XNNPACK's first call
            for _ in range(args.rounds):  # alternating, so a busy moment hits every batch size
                for batch in BATCHES:
                    start = time.perf_counter()
                    run(batch)
                    times[batch].append((time.perf_counter() - start) / FRAMES * 1000)
            ms = {batch: float(np.median(t)) for batch, t in times.items()}
            print(f"| {name} | {' | '.join(f'{ms[b]:.2f}' for b in BATCHES)} | {ms[1] / ms[4]:.2f} | {ms[1] / ms[8]:.2f} |")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
