"""What the browser view shows and what it may change: one state object and one control parser,
used by every command that serves a page (live, demo, video)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .. import defaults
from ..checks import check_alpha, check_count, check_name, shown
from ..errors import InputError
from ..frames import MAX_RANK


@dataclass
class ViewState:
    """The page's view of the pipeline, sent as ``/state`` and over ``/events``."""

    frame: int | None = None
    fps: float = 0.0
    latency_ms: float | None = None
    top: list[dict] = field(default_factory=list)  # {"index", "label", "score"}, best first
    explained: dict | None = None  # {"index", "label", "score"}
    alpha: float = defaults.ALPHA
    colormap: str = defaults.COLORMAP
    paused: bool = False
    recording: bool = False
    source: str = ""
    status: str = ""
    controls: bool = True  # False where settings are fixed (video files)
    choice: dict = field(default_factory=dict)  # what is explained: {"rank": r} or {"class": i, "label": ...}
    stream: int = 0  # which source
    method: str = ""  # the CAM method of the heatmap shown
    runtime: str = ""  # what ran it: tensorflow or litert
    device: str = ""  # where: cpu or gpu:N
    methods: list[str] = field(default_factory=list)  # what the model offers (an exported file: one); [] = all
    heatmap_frame: int | None = None  # the frame the shown heatmap was computed on

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ControlChange:
    """A validated ``/control`` request; None means "leave as it is"."""

    alpha: float | None = None
    colormap: str | None = None
    rank: int | None = None
    class_: int | str | None = None  # "class": an index or a name; pins that class whatever its rank
    cycle: bool = False
    pause: bool | None = None
    stream: int | None = None  # which source the class controls act on (default: the selected one)
    method: str | None = None  # the CAM method (checked against the engine's names where it applies)


CONTROL_FIELDS = ("alpha", "colormap", "rank", "class", "cycle", "pause", "stream", "method")


def parse_control(body: object) -> ControlChange:
    """Check a decoded JSON body's names, types and ranges; raise InputError with the reason."""
    if not isinstance(body, dict):
        raise InputError("expected a JSON object")
    unknown = sorted(set(body) - set(CONTROL_FIELDS))
    if unknown:
        raise InputError(f"unknown control {shown(unknown[0])}; use {', '.join(CONTROL_FIELDS)}")
    for key in ("colormap", "method", "class"):
        if isinstance(body.get(key), str):
            check_name(body[key], key)
    alpha = body.get("alpha")
    if alpha is not None and (isinstance(alpha, (bool, str)) or not isinstance(alpha, (int, float))):
        raise InputError("alpha must be a number from 0 to 1")
    colormap = body.get("colormap")
    if colormap is not None and not isinstance(colormap, str):
        raise InputError("colormap must be a name")
    rank = body.get("rank")
    if rank is not None and not isinstance(rank, int):
        raise InputError(f"rank must be a whole number from 1 to {MAX_RANK}")
    class_ = body.get("class")
    if class_ is not None and (isinstance(class_, bool) or not isinstance(class_, (int, str))
                               or (isinstance(class_, int) and class_ < 0) or class_ == ""):
        raise InputError("class must be a class index (0, 1, ...) or a class name")
    pause = body.get("pause")
    if pause is not None and not isinstance(pause, bool):
        raise InputError("pause must be true or false")
    method = body.get("method")
    if method is not None and not isinstance(method, str):
        raise InputError("method must be a name such as gradcam")
    stream = body.get("stream")
    if stream is not None and (isinstance(stream, bool) or not isinstance(stream, int) or stream < 0):
        raise InputError("stream must be a source number (0, 1, ...)")
    cycle = body.get("cycle", False)
    if not isinstance(cycle, bool):
        raise InputError("cycle must be true or false")
    return ControlChange(
        alpha=None if alpha is None else check_alpha(alpha),
        colormap=colormap,
        rank=None if rank is None else check_count(rank, MAX_RANK, "rank"),
        class_=class_,
        cycle=cycle,
        pause=pause,
        stream=stream,
        method=method,
    )
