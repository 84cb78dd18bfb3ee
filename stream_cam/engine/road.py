"""ROAD: remove pixels without leaving the image's distribution (Rong et al., ICML 2022).

Deleting pixels to black (:mod:`.faithfulness`) shows the model shapes it never saw, so a drop
in its score may come from the mask's outline rather than from the evidence removed. ROAD
fills every removed pixel by *noisy linear imputation*: each removed pixel is the weighted
mean of its eight neighbours (1/6 for the four that share a side, 1/12 for the diagonals),
removed neighbours included, which is one sparse linear system per image, plus a little
Gaussian noise. MoRF removes the most relevant pixels first (a faithful map makes the class's
probability fall: low AUC), LeRF the least relevant first (it should hold: high AUC).
"""

from __future__ import annotations

from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import numpy as np

# The removed fractions of a ROAD curve: none, then 10% to 90% as in the paper and pytorch-grad-cam
# (removing everything leaves nothing to impute from).
FRACTIONS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
# (dy, dx, weight): the reference implementation's neighbour weights.
NEIGHBOURS = ((-1, -1, 1 / 12), (-1, 0, 1 / 6), (-1, 1, 1 / 12), (0, -1, 1 / 6),
              (0, 1, 1 / 6), (1, -1, 1 / 12), (1, 0, 1 / 6), (1, 1, 1 / 12))
# ROAD's noise is 0.01 on ImageNet-normalised inputs (std about 0.226): about 0.58 grey levels.
NOISE_GREY = 0.01 * 0.226 * 255


@dataclass(frozen=True)
class Road:
    """A map's two ROAD curves: the class's probability at each of :data:`FRACTIONS` removed."""

    morf: np.ndarray  # most relevant first
    lerf: np.ndarray  # least relevant first


def impute_system(image: np.ndarray, removed: np.ndarray) -> tuple[Any, np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """The sparse system ``A x = b`` whose solution fills ``removed`` (symmetric, positive definite).

    Row of a removed pixel i: (sum of its in-image neighbours' weights) x_i - sum over removed
    neighbours j of w_ij x_j = sum over known neighbours j of w_ij v_j. Returns the sparse matrix
    (CSC), the right-hand sides (one column per channel) and the removed pixels' rows and columns."""
    import scipy.sparse

    height, width = removed.shape
    ys, xs = np.nonzero(removed)
    count = len(ys)
    number = np.full((height, width), -1, np.int64)
    number[ys, xs] = np.arange(count)
    diagonal = np.zeros(count)
    rhs = np.zeros((count, image.shape[2]))
    rows, cols, values = [], [], []
    # One step per neighbour direction: every removed pixel at once
    for dy, dx, weight in NEIGHBOURS:
        ny, nx = ys + dy, xs + dx
        inside = (ny >= 0) & (ny < height) & (nx >= 0) & (nx < width)
        which, ny, nx = np.nonzero(inside)[0], ny[inside], nx[inside]
        diagonal[which] += weight
        unknown = removed[ny, nx]
        rows.append(which[unknown])
        cols.append(number[ny[unknown], nx[unknown]])
        values.append(np.full(int(unknown.sum()), -weight))
        rhs[which[~unknown]] += weight * image[ny[~unknown], nx[~unknown]]
    rows.append(np.arange(count))
    cols.append(np.arange(count))
    values.append(diagonal)
    matrix = scipy.sparse.csc_matrix((np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))),
                                     shape=(count, count))
    return matrix, rhs, (ys, xs)


def impute(image: np.ndarray, removed: np.ndarray, seed: int = 0, noise: float = NOISE_GREY) -> np.ndarray:
    """``image`` (H, W, C float) with the ``removed`` pixels (H, W bool) filled by noisy linear imputation."""
    import scipy.sparse.linalg

    if removed.shape != image.shape[:2]:
        raise ValueError(f"mask {removed.shape} does not match image {image.shape[:2]}")
    out = np.array(image, np.float64)
    if not removed.any():
        return out
    if removed.all():
        raise ValueError("every pixel is removed: there is nothing to impute from")
    matrix, rhs, (ys, xs) = impute_system(out, removed)
    # Minimum degree on A + A^T suits this symmetric grid system (2-3x faster than the default order)
    solver = scipy.sparse.linalg.splu(matrix, permc_spec="MMD_AT_PLUS_A", options={"SymmetricMode": True})
    filled = solver.solve(rhs)
    out[ys, xs] = filled + np.random.default_rng(seed).normal(0.0, noise, filled.shape)
    return out


def hottest_first(heat: np.ndarray) -> np.ndarray:
    """The flat indices of ``heat``'s pixels, hottest first (ties keep their order): every curve's order."""
    return np.argsort(-heat.ravel(), kind="stable")


def removal_masks(heat: np.ndarray, order: np.ndarray | None = None) -> list[np.ndarray]:
    """The removed pixels of every ROAD image of ``heat``: MoRF's fractions, then LeRF's
    (``order``: :func:`hottest_first` of ``heat``, when the caller has it already)."""
    order = hottest_first(heat) if order is None else order
    masks = []
    for reverse in (False, True):
        ranked = order[::-1] if reverse else order
        for fraction in FRACTIONS:
            flat = np.zeros(order.size, bool)
            flat[ranked[:int(round(fraction * order.size))]] = True
            masks.append(flat.reshape(heat.shape))
    return masks


def road_images(image: np.ndarray, heat: np.ndarray, pool: Executor | None = None, seed: int = 0,
                order: np.ndarray | None = None) -> np.ndarray:
    """Every ROAD image of ``heat`` on ``image`` (uint8, MoRF then LeRF), imputed in ``pool`` when given."""
    masks = removal_masks(heat, order)
    seeds = [seed * len(masks) + i for i in range(len(masks))]
    filled = list(pool.map(impute, [image] * len(masks), masks, seeds)) if pool is not None else \
        [impute(image, m, s) for m, s in zip(masks, seeds)]
    return np.stack(filled).round().clip(0, 255).astype(np.uint8)


def split_curves(probabilities: np.ndarray) -> Road:
    """The class's probabilities on :func:`road_images`' batch, as the two curves."""
    n = len(FRACTIONS)
    return Road(np.asarray(probabilities[:n]), np.asarray(probabilities[n:2 * n]))
