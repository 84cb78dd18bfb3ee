"""The engine on a stream: which class to explain, batching, and temporal smoothing."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Sequence

import cv2
import numpy as np

from ..checks import check_smooth
from ..frames import MAX_RANK, Explanation, Frame

if TYPE_CHECKING:  # the engine's module loads TensorFlow; the checks before it must not
    from .explainer import CAMResult, Explains

log = logging.getLogger(__name__)

EngineCall = Callable[[np.ndarray], "CAMResult"]  # (N, 1) int32 targets -> the engine's result


@dataclass
class ClassChoice:
    """What to explain: the class at a rank (1 = top), one of fixed class indices, or a pinned class.

    ``cycle()`` steps through ranks 1..top_k, or through the fixed classes; ``pin(index)``
    explains one class whatever its rank (the browser's class click) until the next cycle/pick.
    """

    top_k: int = 5
    classes: Sequence[int] = ()
    position: int = 0
    pinned: int | None = None

    def target(self) -> int:
        """The engine's target value: a class index, or -rank."""
        if self.pinned is not None:
            return self.pinned
        if self.classes:
            return int(self.classes[self.position % len(self.classes)])
        return -(self.position + 1)

    def _limit(self) -> int:
        return len(self.classes) or min(self.top_k, MAX_RANK)

    def cycle(self) -> None:
        self.pinned = None
        self.position = (self.position + 1) % self._limit()

    def pick(self, n: int) -> None:
        """Explain the class at rank n (1-based), or the n-th fixed class."""
        if 1 <= n <= self._limit():
            self.pinned, self.position = None, n - 1

    def pin(self, index: int) -> None:
        self.pinned = int(index)

    def describe(self) -> dict:
        """JSON-ready: {"class": index, "pinned": bool} for a pinned or fixed class, {"rank": r} otherwise."""
        target = self.target()
        return {"class": target, "pinned": self.pinned is not None} if target >= 0 else {"rank": -target}


@dataclass
class TemporalSmoother:
    """Exponential smoothing of heatmaps across frames, so live video does not flicker.

    ``strength`` 0 is off; 0.6 keeps 60% of the previous map. It resets when the
    explained class changes or the scene cuts (mean absolute difference of small
    grayscale thumbnails above ``cut_threshold`` levels).
    """

    strength: float = 0.0
    cut_threshold: float = 25.0
    _heat: np.ndarray | None = field(default=None, repr=False)
    _class: int | None = None
    _thumb: np.ndarray | None = field(default=None, repr=False)
    resets: int = 0

    def __post_init__(self) -> None:
        self.strength = check_smooth(self.strength)

    def is_cut(self, image: np.ndarray) -> bool:
        gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        thumb = cv2.resize(gray, (32, 24), interpolation=cv2.INTER_AREA).astype(np.int16)
        previous, self._thumb = self._thumb, thumb
        return previous is not None and float(np.abs(thumb - previous).mean()) > self.cut_threshold

    def __call__(self, heat: np.ndarray, class_index: int, image: np.ndarray) -> tuple[np.ndarray, bool]:
        """Return the smoothed map and whether it was blended with the past."""
        cut = self.is_cut(image) if self.strength > 0 else False
        if (self.strength == 0 or cut or class_index != self._class or self._heat is None
                or self._heat.shape != heat.shape):
            self.resets += self.strength > 0
            self._heat, self._class = heat, class_index
            return heat, False
        self._heat = self.strength * self._heat + (1.0 - self.strength) * heat
        return self._heat, True

    def reset(self) -> None:
        self._heat = self._class = self._thumb = None


TRUST_KEEP = 0.2  # the trust meter shows the model only the hottest 20% of the frame


@dataclass
class StreamChoice:
    """One stream's own explanation state: which class, its temporal smoother, and its trust meter
    (every ``trust_every`` frames: how much of the class's probability survives when only the
    hottest 20% of the frame is shown)."""

    choice: ClassChoice
    smoother: TemporalSmoother
    trust_every: int | None = None
    since_trust: int = 0
    last: tuple[int, np.ndarray] | None = field(default=None, repr=False)  # (class, raw map) of the last frame

    def trust_due(self) -> bool:
        return self.trust_every is not None and self.last is not None and self.since_trust + 1 >= self.trust_every


class StreamExplainer:
    """Explains batches of :class:`Frame` (BGR) with one engine call per batch.

    ``explain(frames)`` treats them as consecutive frames of one stream; ``explain_streams``
    takes one frame from each of several streams, each with its own class choice and
    smoother, still in ONE engine call.
    """

    def __init__(self, cam: Explains, choice: ClassChoice | None = None, top_k: int = 5, smooth: float = 0.0) -> None:
        self.cam = cam
        self.choice = choice or ClassChoice(top_k=top_k)
        self.top_k = top_k
        self.smoother = TemporalSmoother(smooth)
        self.warned_nan = False

    def use(self, cam: Explains, streams: Sequence[StreamChoice] = ()) -> None:
        """Explain with ``cam`` from now on (a method switch); the smoothers start afresh."""
        if cam is self.cam:
            return
        self.cam = cam
        for stream in (StreamChoice(self.choice, self.smoother), *streams):
            stream.smoother.reset()

    def explain(self, frames: Sequence[Frame], call: EngineCall | None = None) -> list[Explanation]:
        """``call``: the engine call to make instead of ``cam.explain`` on the preprocessed frames
        (the frame path on the device takes the targets and the frames as they are)."""
        own = StreamChoice(self.choice, self.smoother)
        return self.explain_streams(frames, [own] * len(frames), call)

    def explain_streams(self, frames: Sequence[Frame], streams: Sequence[StreamChoice],
                        call: EngineCall | None = None) -> list[Explanation]:
        """``frames[i]`` explained with ``streams[i]``'s class choice and smoothing (one engine call)."""
        if not frames:
            return []
        start = time.perf_counter()
        targets = [[stream.choice.target()] for stream in streams]
        if call is not None:
            result = call(np.array(targets, np.int32))
            return self._explanations(frames, streams, result, {}, start)
        batch = self._preprocess(frames)
        # Trust meters due now ride in the SAME engine call: the frame with only the hottest 20% of
        # the stream's previous map shown, explained for that map's class.
        trust_rows: dict[int, tuple[int, int]] = {}  # frame i -> (row in the batch, class)
        extra: list[np.ndarray] = []
        for i, (frame, stream) in enumerate(zip(frames, streams)):
            if stream.trust_due() and stream.last is not None:
                class_index, heat = stream.last
                trust_rows[i] = (len(frames) + len(extra), class_index)
                extra.append(self._hottest_only(frame.image, heat))
                targets.append([class_index])
        if extra:
            batch = np.concatenate([batch, *extra])
        result = self.cam.explain(batch, np.array(targets, np.int32))
        return self._explanations(frames, streams, result, trust_rows, start)

    def _explanations(self, frames: Sequence[Frame], streams: Sequence[StreamChoice], result: CAMResult,
                      trust_rows: dict[int, tuple[int, int]], start: float) -> list[Explanation]:
        """The engine's numbers as one :class:`Explanation` per frame: top-k, smoothing, trust."""
        engine_ms = (time.perf_counter() - start) * 1000 / len(frames)
        if not self.warned_nan and not np.isfinite(result.probabilities).all():
            self.warned_nan = True  # once per run: the outputs stay whole, the scores show as n/a / null
            log.warning("the model answers NaN (or inf) for some frames: their scores are shown as n/a and "
                        "written as null; is the model (or its --preprocess) right?")
        tops = result.top_indices(self.top_k)
        explanations = []
        for i, (frame, stream) in enumerate(zip(frames, streams)):
            index = int(result.class_indices[i, 0])
            trust = None
            if i in trust_rows:
                row, class_index = trust_rows[i]
                original = float(result.probabilities[i, class_index])
                trust = float(result.probabilities[row, class_index]) / original if original > 0 else None
                stream.since_trust = 0
            else:
                stream.since_trust += 1
            stream.last = (index, result.heatmaps[i, 0])
            heat, smoothed = stream.smoother(result.heatmaps[i, 0], index, frame.image)
            top = [(int(c), float(result.probabilities[i, c])) for c in tops[i]]
            explanations.append(Explanation(frame, heat, index, top, engine_ms, smoothed, self.cam.method_name,
                                            trust, self.cam.runtime, self.cam.device,
                                            probability=float(result.probabilities[i, index])))
        return explanations

    def _hottest_only(self, image: np.ndarray, heat: np.ndarray) -> np.ndarray:
        """The model input of ``image`` (BGR) with everything but the hottest 20% of ``heat`` black."""
        height, width = self.cam.model.input_size
        small = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
        level = cv2.resize(np.asarray(heat, np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
        keep = level >= np.quantile(level, 1.0 - TRUST_KEEP)
        return self.prepare(small * keep[..., None].astype(np.uint8))

    def prepare(self, image: np.ndarray) -> np.ndarray:
        """One BGR frame -> its model input (1, h, w, 3); safe to call from another thread."""
        return self.cam.model.preprocess(image, bgr=True)

    def _preprocess(self, frames: Sequence[Frame]) -> np.ndarray:
        # Frames may differ in size (a camera changing resolution): each is resized alone.
        return np.concatenate([f.prepared if f.prepared is not None else self.prepare(f.image) for f in frames])
