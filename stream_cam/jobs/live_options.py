"""What a live run is asked to do (:class:`LiveOptions`, checked before TensorFlow loads) and what
it did (:class:`LiveStats`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from .. import defaults
from ..checks import check_seconds
from ..engine.motion import METHODS as MOTION_METHODS
from ..engine.registry import DEFAULT_SCORE_CHANNELS
from ..errors import InputError
from ..sinks.files import check_not_input, check_output_path
from ..sinks.video import check_codec
from ..sources.cameras import CameraSettings
from .options import StreamOptions

DEFAULT_LIVE_SMOOTHING = 0.5
KIOSK_HUD_SCALE = 1.6
KIOSK_PAUSE_S = 30.0
MAX_SOURCES = 8


@dataclass
class LiveOptions(StreamOptions):
    source: str = "0"
    sources: Sequence[str] = ()  # several sources (up to 8); empty: just ``source``
    loop: bool = False
    record: Path | None = None  # with several sources: NAME_0.mp4, NAME_1.mp4, ...
    window: bool = True
    fullscreen: bool = False
    smooth: float = DEFAULT_LIVE_SMOOTHING
    max_frames: int | None = None  # stop after this many shown frames (of source 0; tests, benchmarks)
    hud_scale: float = 1.0
    snapshot_dir: Path = Path(".")
    kiosk: bool = False  # fullscreen, large HUD, legend, loops and reconnects; Esc twice quits
    cycle: float | None = None  # seconds between automatic class changes
    pause_timeout: float | None = None  # resume on its own after this many seconds (kiosk: 30)
    sync: bool = False  # lock-step: every shown frame waits for its own heatmap
    motion: str = defaults.MOTION  # how a stale heatmap is moved: flow, shift, off
    score_channels: int = DEFAULT_SCORE_CHANNELS  # for a live switch to scorecam
    trust: int | None = None  # every N frames, the trust meter (off by default)
    cameras: Sequence[CameraSettings] = ()  # each source's camera mode (empty: the cameras' own)

    def __post_init__(self) -> None:
        if not self.sources:
            self.sources = (self.source,)
        self.source = self.sources[0]
        if self.kiosk:
            self.fullscreen, self.loop = True, True
            self.hud_scale = max(self.hud_scale, KIOSK_HUD_SCALE)
            if self.pause_timeout is None:
                self.pause_timeout = KIOSK_PAUSE_S  # a stray space must not stop an unattended screen

    def validate(self) -> None:
        super().validate()
        if not 1 <= len(self.sources) <= MAX_SOURCES:
            raise InputError(f"give 1 to {MAX_SOURCES} sources, got {len(self.sources)}")
        if self.motion not in MOTION_METHODS:
            raise InputError(f"unknown --motion {self.motion!r}; choose one of: {', '.join(MOTION_METHODS)}")
        for path in self.record_paths():
            check_codec(self.codec, path)
            check_output_path(path, self.overwrite)
        check_not_input(self.record_paths(), self.sources, "--record")
        check_not_input([self.log] if self.log is not None else [], self.sources, "--log")
        if self.cycle is not None:
            check_seconds(self.cycle, "--cycle")

    def record_paths(self) -> list[Path]:
        """``--record`` for each source: the name itself for one source, NAME_i.ext for several."""
        if self.record is None:
            return []
        if len(self.sources) == 1:
            return [self.record]
        return [self.record.with_name(f"{self.record.stem}_{i}{self.record.suffix}") for i in range(len(self.sources))]


@dataclass
class LiveStats:
    """What a run did: frames shown and dropped, latency, heatmap ages, fps, files written."""

    shown: int = 0
    dropped: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    elapsed_s: float = 0.0
    recordings: list[tuple[Path, int]] = field(default_factory=list)
    snapshots: list[Path] = field(default_factory=list)
    stopped_by: str = ""
    log_lines: int = 0
    shown_per_stream: list[int] = field(default_factory=list)
    heatmaps: int = 0  # heatmaps the engine computed, all streams together
    ages: list[int] = field(default_factory=list)  # heatmap age (frames) of every shown frame

    @property
    def fps(self) -> float:
        """Shown frames per second, per source (the rate a viewer sees)."""
        per_stream = self.shown / max(len(self.shown_per_stream), 1)
        return per_stream / self.elapsed_s if self.elapsed_s > 0 else 0.0
