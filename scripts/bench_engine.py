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

``--methods`` measures the CAM family instead: every method at batch 1 and 8 (ms per frame,
round-robin, medians) with its ratio to Grad-CAM and to the plain forward pass; Score-CAM
with several channel limits, and the largest limit that still runs at 10 fps at batch 1.

    python scripts/bench_engine.py --methods [--models efficientnet_lite0 xception] [--rounds 9]

``--vit`` measures a transformer: ViT-Ti/16 at 224 px (random weights, keras-hub config), the plain
forward pass and each transformer method at batch 1 and 8. Goal: the default method (rollout) at
most 1.6x the forward pass at batch 1.

    python scripts/bench_engine.py --vit [--rounds 9]

``--runtimes`` measures the same explainer on the TensorFlow engine and on LiteRT (``--runtime``):

    python scripts/bench_engine.py --runtimes --models efficientnet_lite0 mobilenet_v2 resnet50 [--rounds 9]
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


def bench_methods(name: str, rounds: int, score_limits: list[int]) -> None:
    from stream_cam.engine.methods import METHODS, ScoreCAM

    model = load_model(name, weights=None if name != "efficientnet_lite0" else "imagenet")
    x1 = model.preprocess(builtin_image("chelsea"))
    x8 = np.repeat(x1, 8, axis=0)
    t1, t8 = np.full((1, 1), -1, np.int32), np.full((8, 1), -1, np.int32)
    forward = tf.function(lambda x: model.keras_model(x, training=False), autograph=False)
    engines = {method: (METHODS[method](model) if method != "scorecam" else None) for method in METHODS}
    engines.pop("scorecam")
    for limit in score_limits:
        engines[f"scorecam/{limit or 'all'}"] = ScoreCAM(model, max_channels=limit or None)
    variants: dict[str, Callable[[], object]] = {"forward b=1": lambda: forward(x1).numpy(),
                                                 "forward b=8": lambda: forward(x8).numpy()}
    for method, cam in engines.items():
        variants[f"{method} b=1"] = lambda cam=cam: cam.explain(x1, t1)
        if not method.startswith("scorecam"):  # Score-CAM at batch 8 is 8x its batch-1 cost
            variants[f"{method} b=8"] = lambda cam=cam: cam.explain(x8, t8)
    for fn in variants.values():
        fn(), fn()
    samples: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(rounds):
        for key, fn in variants.items():
            median_ms(fn, samples[key])
    ms = {k: statistics.median(v) / (8 if k.endswith("b=8") else 1) for k, v in samples.items()}
    print(f"\n{name}: median ms per frame ({rounds} rounds, round-robin)")
    print("| method | b=1 ms | b=8 ms | b=1 / Grad-CAM | b=8 / Grad-CAM | b=1 / forward |")
    print("|---|---|---|---|---|---|")
    for method in engines:
        one, eight = ms[f"{method} b=1"], ms.get(f"{method} b=8")
        eight_ms = "" if eight is None else f"{eight:.1f}"
        eight_ratio = "" if eight is None else f"{eight / ms['gradcam b=8']:.2f}"
        print(f"| {method} | {one:.1f} | {eight_ms} | {one / ms['gradcam b=1']:.2f} | {eight_ratio} | "
              f"{one / ms['forward b=1']:.2f} |", flush=True)
    print(f"| (plain forward pass) | {ms['forward b=1']:.1f} | {ms['forward b=8']:.1f} | | | 1.00 |")
    fast = [limit for limit in score_limits if limit and ms[f"scorecam/{limit} b=1"] <= 100.0]
    print(f"Score-CAM's largest channel limit at >= 10 fps (batch 1): {max(fast) if fast else 'none measured'}")


def vit_tiny() -> object:
    """ViT-Ti/16 at 224 px (12 blocks, 3 heads, width 192), random weights, from its keras-hub config."""
    import keras_hub

    backbone = keras_hub.models.ViTBackbone(image_shape=(224, 224, 3), patch_size=16, num_layers=12, num_heads=3,
                                            hidden_dim=192, mlp_dim=768, use_class_token=True)
    return keras_hub.models.ViTImageClassifier(backbone=backbone, num_classes=1000, pooling="token")


def bench_vit(rounds: int, methods: list[str]) -> None:
    """Each method on ViT-Ti/16 at batch 1 and 8 beside the plain forward pass (round-robin medians)."""
    from stream_cam.engine.methods import METHODS
    from stream_cam.models.loaded import LoadedModel

    model = LoadedModel.from_keras(vit_tiny(), scaling="-1..1", name="vit_tiny_16")
    x1 = model.preprocess(builtin_image("chelsea"))
    x8 = np.repeat(x1, 8, axis=0)
    forward = tf.function(lambda x: model.keras_model(x, training=False))
    cams = {name: METHODS[name](model) for name in methods}
    runs: dict[str, Callable[[], object]] = {"forward b=1": lambda: forward(x1).numpy(),
                                              "forward b=8": lambda: forward(x8).numpy()}
    for name, cam in cams.items():
        runs[f"{name} b=1"] = lambda cam=cam: cam.explain(x1, np.full((1, 1), -1, np.int32))
        runs[f"{name} b=8"] = lambda cam=cam: cam.explain(x8, np.full((8, 1), -1, np.int32))
    samples: dict[str, list[float]] = {k: [] for k in runs}
    for fn in runs.values():  # trace and warm up
        fn()
    for _ in range(rounds):
        for key, fn in runs.items():
            median_ms(fn, samples[key])
    ms = {k: statistics.median(v) for k, v in samples.items()}
    print(f"ViT-Ti/16 224 px, random weights, {rounds} rounds, median ms per frame (batch 8: per frame)")
    print("| method | b=1 ms | b=8 ms/frame | b=1 / forward | b=8 / forward |")
    print("|---|---|---|---|---|")
    print(f"| forward | {ms['forward b=1']:.1f} | {ms['forward b=8'] / 8:.1f} | 1.00 | 1.00 |")
    for name in methods:
        one, eight = ms[f"{name} b=1"], ms[f"{name} b=8"] / 8
        print(f"| {name} | {one:.1f} | {eight:.1f} | {one / ms['forward b=1']:.2f} | "
              f"{eight / (ms['forward b=8'] / 8):.2f} |", flush=True)


def bench_runtimes(names: list[str], rounds: int) -> None:
    """``--runtimes``: the same explainer on the TensorFlow engine and on LiteRT (2 and 1 threads),
    round-robin on the photo, batch 1 and 8 (LiteRT runs a batch frame by frame); median ms per frame.
    Also the process's CPU ms per frame at batch 8: a video job keeps every core busy (decoding,
    drawing, encoding beside the engine), so its end-to-end speed-up cannot exceed TF's CPU per frame
    over LiteRT's (the last column)."""
    from stream_cam.engine.runtime import choose_runtime
    from stream_cam.jobs.engine_spec import runtime_cache

    print("| model | TF b=1 | LiteRT 2 thr b=1 | LiteRT 1 thr b=1 | TF b=8 | LiteRT 2 thr b=8 | speed-up b=1 | "
          "speed-up b=8 | CPU ms/frame b=8: TF, LiteRT 2 thr, 1 thr | CPU ratio b=8 (TF / best LiteRT) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    photo = builtin_image("chelsea")
    for name in names:
        weights = "imagenet" if name.startswith("efficientnet") else None
        cam = GradCAM(load_model(name, weights=weights))
        runners = {"tf": cam, "lite2": choose_runtime(cam, "litert", runtime_cache(), threads=2),
                   "lite1": choose_runtime(cam, "litert", runtime_cache(), threads=1)}
        inputs = {key: runner.model.preprocess(photo) for key, runner in runners.items()}
        samples: dict[str, list[float]] = {f"{k}{b}": [] for k in runners for b in (1, 8)}
        cpu: dict[str, list[float]] = {key: [] for key in runners}
        for _ in range(rounds):
            for key, runner in runners.items():
                for batch in (1, 8):
                    x = np.repeat(inputs[key], batch, axis=0)
                    targets = np.full((batch, 1), -1, np.int32)
                    runner.explain(x, targets)  # the first call of each shape is not timed
                    start_cpu = time.process_time()
                    median_ms(lambda: runner.explain(x, targets), samples[f"{key}{batch}"])
                    samples[f"{key}{batch}"][-1] /= batch
                    if batch == 8:
                        cpu[key].append((time.process_time() - start_cpu) * 1000 / batch)
        ms = {k: statistics.median(v) for k, v in samples.items()}
        cpu_ms = {k: statistics.median(v) for k, v in cpu.items()}
        print(f"| {name} ({weights or 'random'}) | {ms['tf1']:.1f} | {ms['lite21']:.1f} | {ms['lite11']:.1f} | "
              f"{ms['tf8']:.1f} | {ms['lite28']:.1f} | {ms['tf1'] / ms['lite21']:.2f}x | "
              f"{ms['tf8'] / ms['lite28']:.2f}x | {cpu_ms['tf']:.1f}, {cpu_ms['lite2']:.1f}, {cpu_ms['lite1']:.1f} | "
              f"{cpu_ms['tf'] / min(cpu_ms['lite2'], cpu_ms['lite1']):.2f}x |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["efficientnet_lite0", "xception"])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--intra-op", type=int, default=0, help="TF intra-op threads (0: TF's default)")
    parser.add_argument("--inter-op", type=int, default=0, help="TF inter-op threads (0: TF's default)")
    parser.add_argument("--methods", action="store_true", help="measure the CAM family instead")
    parser.add_argument("--score-limits", type=int, nargs="+", default=[8, 16, 32, 64, 128, 0],
                        help="Score-CAM channel limits to measure (0: every channel)")
    parser.add_argument("--runtimes", action="store_true",
                        help="TensorFlow vs LiteRT (--runtime), e.g. --models efficientnet_lite0 mobilenet_v2 resnet50")
    parser.add_argument("--vit", action="store_true", help="ViT-Ti/16: the transformer methods beside the forward")
    parser.add_argument("--vit-methods", nargs="+", default=["rollout", "relevance", "gradcam", "layercam"])
    args = parser.parse_args()
    tf.config.threading.set_intra_op_parallelism_threads(args.intra_op)
    tf.config.threading.set_inter_op_parallelism_threads(args.inter_op)
    warnings.simplefilter("ignore")  # the example warns about its input structure on Keras 3
    if args.runtimes:
        bench_runtimes(args.models, args.rounds)
        return
    if args.vit:
        bench_vit(args.rounds, args.vit_methods)
        return
    if args.methods:
        for name in args.models:
            bench_methods(name, args.rounds, args.score_limits)
        return

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
