#!/usr/bin/env python
"""Views of the seven photos that ship in scikit-image, for ``stream-cam evaluate``: each photo whole,
its four corner crops (two thirds of each side) and its mirror image: 42 frames, no download.

The views of one photo are not independent samples of the world; they give the verdict's bootstrap
enough frames to say something about THESE photos, and README says so.

    python scripts/evaluation_views.py views/ && stream-cam evaluate views/ --method all --road
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stream_cam.sources.images import BUILTIN_IMAGES, builtin_image  # noqa: E402


def views(name: str) -> dict[str, np.ndarray]:
    """The photo, its four corners (2/3 of each side) and its mirror image, as uint8 RGB."""
    image = builtin_image(name)
    height, width = image.shape[:2]
    h, w = 2 * height // 3, 2 * width // 3
    return {"whole": image, "top_left": image[:h, :w], "top_right": image[:h, width - w:],
            "bottom_left": image[height - h:, :w], "bottom_right": image[height - h:, width - w:],
            "mirror": image[:, ::-1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="where to write the PNG files (made if missing)")
    folder = parser.parse_args().folder
    folder.mkdir(parents=True, exist_ok=True)
    for name in BUILTIN_IMAGES:
        for view, rgb in views(name).items():
            cv2.imwrite(str(folder / f"{name}_{view}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    print(f"wrote {6 * len(BUILTIN_IMAGES)} views to {folder}")


if __name__ == "__main__":
    main()
