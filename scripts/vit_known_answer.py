#!/usr/bin/env python
"""Which transformer explanation points at the evidence? A ViT trained here on a task where the
evidence's place is known: the class is the quadrant of a red disk; a blue disk lies anywhere else
(its place says nothing about the class). Prints, for each method, the share of unseen images whose
hottest patch holds red-disk pixels, the map's mass in the class's quadrant, and how much the map
changes when another class is explained (1.0: the same map for every class). Writes overlays.

    python scripts/vit_known_answer.py [--seeds 0 1 2] [--epochs 8] [--png docs/vit_known_answer.png]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from stream_cam.tf_runtime import import_tensorflow  # noqa: E402

import_tensorflow()

import cv2  # noqa: E402
import keras  # noqa: E402

from stream_cam.engine.methods import METHODS  # noqa: E402
from stream_cam.models.loaded import LoadedModel  # noqa: E402
from stream_cam.render.overlay import overlay_heatmap  # noqa: E402
from test_transformers import hub_vit, on_evidence, quadrant_scenes  # noqa: E402

METHOD_ORDER = ("rollout", "relevance", "gradcam", "layercam", "xgradcam", "hirescam", "eigencam")


def train(seed: int, epochs: int) -> LoadedModel:
    images, classes, _ = quadrant_scenes(2000, seed=seed)
    clf = hub_vit(seed=seed)
    clf.compile(optimizer=keras.optimizers.Adam(1e-3),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    clf.fit(images.astype(np.float32) / 127.5 - 1, classes, epochs=epochs, batch_size=64, verbose=0)
    return LoadedModel.from_keras(clf, scaling="-1..1", labels=["top left", "top right", "bottom left",
                                                               "bottom right"], name=f"quadrants_{seed}")


def scores(model: LoadedModel, images: np.ndarray, classes: np.ndarray) -> dict[str, tuple[float, float, float]]:
    wrong = ((classes + 1) % 4).tolist()
    out = {}
    for name in METHOD_ORDER:
        cam = METHODS[name](model)
        maps = cam(images, classes=classes.tolist()).heatmaps
        other = cam(images, classes=wrong).heatmaps
        mass = np.mean([m[(q // 2) * 4:(q // 2) * 4 + 4, (q % 2) * 4:(q % 2) * 4 + 4].sum() / max(m.sum(), 1e-9)
                        for m, q in zip(maps, classes)])
        same = np.nanmean([np.corrcoef(a.ravel(), b.ravel())[0, 1] for a, b in zip(maps, other)])
        out[name] = (on_evidence(maps, images), float(mass), float(same))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--png", type=Path, default=None, help="write overlays of four unseen scenes here")
    args = parser.parse_args()
    images, classes, _ = quadrant_scenes(200, seed=99)
    table: dict[str, list[tuple[float, float, float]]] = {name: [] for name in METHOD_ORDER}
    model = None
    for seed in args.seeds:
        model = train(seed, args.epochs)
        accuracy = float((METHODS["gradcam"](model)(images).class_indices == classes).mean())
        print(f"seed {seed}: test accuracy {accuracy:.3f}", flush=True)
        for name, value in scores(model, images, classes).items():
            table[name].append(value)
    print(f"\n{len(args.seeds)} ViTs (keras-hub, 64 px, patch 8, 2 blocks), 200 unseen images each; mean (min-max)")
    print("| method | peak on the red disk | map mass in its quadrant (chance 0.25) | same map for another class (corr) |")
    print("|---|---|---|---|")
    for name, values in table.items():
        peak, mass, same = (np.array(v) for v in zip(*values))
        print(f"| {name} | {peak.mean():.2f} ({peak.min():.2f}-{peak.max():.2f}) | {mass.mean():.2f} | "
              f"{same.mean():.2f} |")
    if args.png is not None and model is not None:
        tiles = []
        for image, quadrant in zip(images[:4], classes[:4]):
            row = [cv2.resize(cv2.cvtColor(image, cv2.COLOR_RGB2BGR), (192, 192), interpolation=cv2.INTER_NEAREST)]
            for name in ("rollout", "relevance", "gradcam"):
                heat = METHODS[name](model)(image, classes=int(quadrant)).heatmaps[0]
                row.append(overlay_heatmap(row[0], heat, 0.5, "jet", bgr=True))
            tiles.append(np.hstack(row))
        grid = np.vstack(tiles)
        for i, label in enumerate(("scene", "rollout", "relevance", "gradcam (tokens)")):
            cv2.putText(grid, label, (i * 192 + 6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1,
                        cv2.LINE_AA)
        cv2.imwrite(str(args.png), grid)
        print(f"overlays: {args.png}")


if __name__ == "__main__":
    main()
