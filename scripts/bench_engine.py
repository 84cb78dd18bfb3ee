#!/usr/bin/env python
"""Grad-CAM engine speed, all variants in ONE process on the same model and frames.

    (a) plain forward pass in tf.function           (the floor)
    (b) the keras.io example's make_gradcam_heatmap  (eager, builds its model per call)
    (c) stream_cam's engine at batch 1
    (d) stream_cam's engine at batch 8, per frame
    (e) the engine at batch 1 with BatchNorm folding off: what Grad-CAM itself
        adds over a forward pass, without the engine's own speed-up

Variants run round-robin and each figure is a median, so machine noise hits
them alike; compare the ratios, not the milliseconds. Targets on a 2-core CPU
with efficientnet_lite0: c/a <= 1.05 and b/c >= 15.

    python scripts/bench_engine.py [--models efficientnet_lite0 xception] [--rounds 15]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from stream_cam.tf_runtime import import_tensorflow  # noqa: E402

tf = import_tensorflow()

from reference_keras_io import make_gradcam_heatmap, without_softmax  # noqa: E402
from stream_cam.engine.gradcam import GradCAM  # noqa: E402
from stream_cam.models.loader import load_model  # noqa: E402
from stream_cam.sources.images import builtin_image  # noqa: E402


def median_ms(fn: Callable[[], object], samples: list[float]) -> None:
    start = time.perf_counter()
    fn()
    samples.append((time.perf_counter() - start) * 1000)


def bench(name: str, rounds: int) -> dict[str, float]:
    model = load_model(name, weights=None if name != "efficientnet_lite0" else "imagenet")
    cam = GradCAM(model)
    unfolded = GradCAM(model, fold_batchnorm=False)
    x1 = model.preprocess(builtin_image("chelsea"))
    x8 = np.repeat(x1, 8, axis=0)
    plain = without_softmax(model.keras_model)  # the example's own preparation
    forward = tf.function(lambda x: model.keras_model(x, training=False), autograph=False)
    layer = model.layer_name
    t1, t8 = np.full((1, 1), -1, np.int32), np.full((8, 1), -1, np.int32)

    variants: dict[str, Callable[[], object]] = {
        "a": lambda: forward(x1).numpy(),
        "b": lambda: make_gradcam_heatmap(x1, plain, layer),
        "c": lambda: cam.explain(x1, t1),
        "d": lambda: cam.explain(x8, t8),
        "e": lambda: unfolded.explain(x1, t1),
    }
    for fn in variants.values():  # warm up: trace, compile, allocate
        fn(), fn()
    samples: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(rounds):
        for key, fn in variants.items():
            median_ms(fn, samples[key])
    ms = {k: statistics.median(v) for k, v in samples.items()}
    ms["d"] /= 8  # per frame
    return ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["efficientnet_lite0", "xception"])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--intra-op", type=int, default=0, help="TF intra-op threads (0: TF's default)")
    parser.add_argument("--inter-op", type=int, default=0, help="TF inter-op threads (0: TF's default)")
    args = parser.parse_args()
    tf.config.threading.set_intra_op_parallelism_threads(args.intra_op)
    tf.config.threading.set_inter_op_parallelism_threads(args.inter_op)
    warnings.simplefilter("ignore")  # the example warns about its input structure on Keras 3

    print(f"tensorflow {tf.__version__}, {len(tf.config.list_physical_devices('GPU'))} GPU(s), "
          f"threads intra {args.intra_op or 'default'} inter {args.inter_op or 'default'}, "
          f"{args.rounds} rounds, median ms per frame")
    print("| model | (a) forward | (b) keras.io example | (c) engine b=1 | (d) engine b=8 "
          "| (e) engine b=1, no BN folding | c/a | b/c | c/d | e/a |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name in args.models:
        ms = bench(name, args.rounds)
        print(f"| {name} | {ms['a']:.1f} | {ms['b']:.1f} | {ms['c']:.1f} | {ms['d']:.1f} | {ms['e']:.1f} | "
              f"{ms['c'] / ms['a']:.2f} | {ms['b'] / ms['c']:.1f} | {ms['c'] / ms['d']:.2f} | "
              f"{ms['e'] / ms['a']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
