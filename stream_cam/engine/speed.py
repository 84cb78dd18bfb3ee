"""Which runtime is faster for a job on this machine, measured, not assumed.

LiteRT (XNNPACK) explains one frame 1.4-3.9x faster than the TensorFlow engine at batch 1 on a
CPU, but a video job calls the engine with batches of 8, where TensorFlow uses the cores better:
ResNet50 on 2 cores ran video files slower on LiteRT than on TensorFlow (README, "Runtimes").
So ``--runtime auto`` times both at the job's batch size, once, and runs the faster one; the
figures are kept in the cache entry's record (:mod:`.runtime`), keyed by the batch size, the
threads and the CPU, so later runs decide at once.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from functools import lru_cache
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .explainer import Explains

ROUNDS = 5  # timed calls of each runtime at least, interleaved; the medians are compared
BUDGET_S = 0.5  # ... and more (up to MAX_ROUNDS) until each runtime was timed this long: close calls need it
MAX_ROUNDS = 25
MARGIN = 1.1  # TensorFlow runs only when LiteRT takes over 10% longer per frame
# Timed together the first time, whichever the job asked for: live, image, demo and evaluate run
# batch 1, video files --batch 8 by default; so moving between commands times nothing again.
TIMED_BATCHES = (1, 8)


def speed_key(batch: int, threads: int | None) -> str:
    """What the figures hold for: the batch size, LiteRT's threads, and this machine's cores and CPU
    (a cache folder shared between machines keeps each one's figures)."""
    cores = os.cpu_count()
    return f"batch {batch}, {threads or cores} threads of {cores} cores, {_cpu_name()}"


@lru_cache(maxsize=1)
def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:  # Linux: the model name
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "an unknown CPU"


@dataclass(frozen=True)
class Speeds:
    """Milliseconds per frame of each runtime at ``batch`` frames per engine call."""

    batch: int
    tensorflow_ms: float
    litert_ms: float

    @property
    def faster(self) -> str:
        """``litert`` or ``tensorflow``: TensorFlow only when it is clearly faster (by ``MARGIN``). A near
        tie goes to LiteRT, which needs less memory, and is not worth a choice a busy moment could tip
        (Lite0 at batch 8 timed 10.1 vs 10.0 ms while a test suite ran beside it)."""
        return "tensorflow" if self.tensorflow_ms * MARGIN < self.litert_ms else "litert"

    @property
    def faster_name(self) -> str:
        return {"litert": "LiteRT", "tensorflow": "TensorFlow"}[self.faster]

    def describe(self) -> str:
        return (f"LiteRT {self.litert_ms:.1f} ms, TensorFlow {self.tensorflow_ms:.1f} ms per frame "
                f"at batch {self.batch} on this machine")

    def to_json(self) -> dict:
        return {"tensorflow_ms": round(self.tensorflow_ms, 3), "litert_ms": round(self.litert_ms, 3),
                "measured": time.strftime("%Y-%m-%dT%H:%M:%S")}

    @classmethod
    def from_json(cls, batch: int, record: dict) -> "Speeds":
        """The figures kept in a cache record; ValueError when they are not two positive numbers."""
        try:
            tensorflow_ms, litert_ms = float(record["tensorflow_ms"]), float(record["litert_ms"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"a damaged speed record: {record!r}") from exc
        if not (tensorflow_ms > 0 and litert_ms > 0):
            raise ValueError(f"a damaged speed record: {record!r}")
        return cls(batch, tensorflow_ms, litert_ms)


def measure(engine: Explains, litert: Explains, image: np.ndarray, batch: int, maps: int = 1,
            rounds: int = ROUNDS) -> Speeds:
    """Time ``engine`` (TensorFlow) and ``litert`` on ``image`` (uint8 RGB) repeated ``batch`` times,
    explaining ``maps`` classes per frame as the job will: ``rounds`` calls of each at least, more
    until each was timed ``BUDGET_S`` (at most ``MAX_ROUNDS``)."""
    if batch < 1 or maps < 1 or rounds < 1:
        raise ValueError(f"batch, maps and rounds must be at least 1 (got {batch}, {maps}, {rounds})")
    # The job's targets: the top `maps` classes of every frame.
    targets = np.tile(-np.arange(1, maps + 1, dtype=np.int32), (batch, 1))
    runners = {}
    for name, runner in (("tensorflow", engine), ("litert", litert)):
        inputs = np.repeat(runner.model.preprocess(image), batch, axis=0)
        runner.explain(inputs, targets)  # the first call traces or allocates: not timed
        runners[name] = (runner, inputs)
    seconds: dict[str, list[float]] = {name: [] for name in runners}
    # Interleaved, so a busy moment of the machine slows both.
    while len(seconds["litert"]) < rounds or (min(sum(v) for v in seconds.values()) < BUDGET_S
                                               and len(seconds["litert"]) < max(rounds, MAX_ROUNDS)):
        for name, (runner, inputs) in runners.items():
            start = time.perf_counter()
            runner.explain(inputs, targets)
            seconds[name].append(time.perf_counter() - start)
    per_frame = {name: 1000 * statistics.median(values) / batch for name, values in seconds.items()}
    return Speeds(batch, per_frame["tensorflow"], per_frame["litert"])
