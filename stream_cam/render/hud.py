"""The heads-up display drawn on each frame: top-k bars, explained class, FPS, source.

Sizes scale with the frame's height so the HUD reads the same at 640x480 and
1920x1080; ``scale`` enlarges it further (kiosk mode).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import cv2
import numpy as np

from ..frames import percent, short_label
from ..keys import KEYS
from .draw import FONT, GREY, RED, WHITE, YELLOW, fit, panel, put_text, unit

STATUS_SECONDS = 3.0  # how long a status message stays on screen
PANEL_WIDTH_UNITS = 3 * 12 + 260 + 190 + 80  # pads, label, bar, percentage: the top-k panel at unit 1


@dataclass
class HudState:
    """Everything the HUD shows, apart from the frame itself."""

    top: Sequence[tuple[str, float]] = ()  # (label, probability), most likely first
    explained: int = 0  # row of ``top`` being explained, or -1 for a class not in top
    explained_label: str = ""
    explained_score: float | None = None  # the explained class's probability (shown when it is not in top)
    fps: float = 0.0
    time_code: float | None = None  # a video file's own time (seconds): shown instead of the fps
    source: str = ""
    method: str = ""  # the CAM method, shown when it is not plain Grad-CAM
    runtime: str = ""  # what runs the explainer (tensorflow, litert)
    device: str = ""  # where it runs (cpu, gpu:N)
    trust: float | None = None  # the trust meter (--trust): drawn as a small gauge
    recording: bool = False
    paused: bool = False
    status: str = ""  # a transient message ("saved snapshot.png"); see say()
    status_until: float = float("inf")  # time.monotonic() when the message expires
    extra: list[str] = field(default_factory=list)

    def say(self, message: str, seconds: float = STATUS_SECONDS) -> None:
        """Show ``message`` on the status line for ``seconds`` (then it goes away by itself)."""
        self.status, self.status_until = message, time.monotonic() + seconds

    def current_status(self) -> str:
        if self.status and time.monotonic() > self.status_until:
            self.status = ""
        return self.status

    def set_classes(self, top: Sequence[tuple[int, float]], explained: int, label: Callable[[int], str],
                    score: float | None = None) -> None:
        """Show ``top`` ((class, probability), best first) with ``explained`` (its probability
        ``score``) highlighted."""
        self.top = [(short_label(label(c)), p) for c, p in top]
        indices = [c for c, _ in top]
        self.explained = indices.index(explained) if explained in indices else -1
        self.explained_label = short_label(label(explained))
        self.explained_score = score


def format_time_code(seconds: float) -> str:
    """'1:02.50' for 62.5 s: a video's own time, for the HUD of a video file."""
    minutes, rest = divmod(max(seconds, 0.0), 60.0)
    return f"{int(minutes)}:{rest:05.2f}"


# The top-k panel never covers more than this share of the frame's width and height, in any mode.
PANEL_COVER = (0.5, 0.3)
MIN_UNIT = 0.42  # below this the text is no longer readable: fewer rows and shorter labels instead


@dataclass(frozen=True)
class PanelLayout:
    """Where the top-k panel's parts go, in pixels, for one frame size."""

    unit: float
    rows: int  # how many classes are listed (the explained one always among them)
    pad: int
    line: int
    text_w: int  # label column
    bar_w: int  # 0: no bar (a small frame)
    percent_w: int
    compact: bool  # '72%' rather than ' 72.3%'

    @property
    def width(self) -> int:
        return self.pad * (3 if self.bar_w else 2) + self.text_w + self.bar_w + self.percent_w

    def height(self, rows: int) -> int:
        return self.pad * 2 + self.line * rows


def panel_layout(frame_w: int, frame_h: int, scale: float, rows_wanted: int) -> PanelLayout:
    """The largest layout (up to ``scale``) that lists as many rows as fit within :data:`PANEL_COVER`."""
    max_w, max_h = PANEL_COVER[0] * frame_w, PANEL_COVER[1] * frame_h
    natural = min(frame_h / 720.0, frame_w / 960.0) * scale
    full_h = 24 + 34 * max(rows_wanted, 1)
    u = max(MIN_UNIT, min(max(natural, 0.35 * scale), max_h / full_h, max_w / PANEL_WIDTH_UNITS))
    pad, line = max(2, int(12 * u)), max(8, int(34 * u))
    rows = max(1, min(rows_wanted, int((max_h - 2 * pad) // line)))
    compact = u <= MIN_UNIT
    size, thick = 0.75 * u, max(1, round(1.6 * u))
    percent_w = cv2.getTextSize("100%" if compact else "100.0%", cv2.FONT_HERSHEY_SIMPLEX, size, thick)[0][0]
    room = int(max_w) - 3 * pad - percent_w
    bar_w = min(int(190 * u), room // 3) if room >= int(150 * u) else 0
    text_w = max(0, min(int(260 * u), room - bar_w + (pad if not bar_w else 0)))
    return PanelLayout(u, rows, pad, line, text_w, bar_w, percent_w, compact)


def _listed(state: HudState, rows: int) -> list[tuple[int, str, float]]:
    """(rank, label, probability) of the rows shown: the first ``rows``, the explained one kept."""
    listed = [(i, label, prob) for i, (label, prob) in enumerate(state.top)]
    if len(listed) <= rows:
        return listed
    shown = listed[:rows]
    if state.explained >= rows:
        shown[-1] = listed[state.explained]
    return shown


def _panel(frame: np.ndarray, state: HudState, scale: float) -> tuple[PanelLayout, list[tuple[int, str, float]], bool]:
    """The top-k panel's layout on ``frame``, the rows it lists, and whether the explained class
    (not in the top-k) gets a row of its own."""
    height_px, width_px = frame.shape[:2]
    extra_row = state.explained < 0 and bool(state.explained_label)
    layout = panel_layout(width_px, height_px, scale, len(state.top) + extra_row)
    room = layout.rows - (1 if extra_row else 0)
    return layout, _listed(state, room) if room > 0 else [], extra_row


def panel_bottom(frame: np.ndarray, state: HudState, scale: float = 1.0) -> int:
    """Where the top-k panel ends (pixels from the top): what the key list must stay below."""
    layout, listed, extra_row = _panel(frame, state, scale)
    return layout.height(len(listed) + extra_row) if listed or extra_row else 0


def draw_hud(frame: np.ndarray, state: HudState, scale: float = 1.0, operator: bool = False) -> np.ndarray:
    """Draw the HUD on ``frame`` (BGR, modified in place) and return it.

    ``operator``: also what only the person at the window needs: "REC", and passing messages
    ("saved stream_cam_....png", kiosk hints). Recordings, snapshots and the browser view get the
    HUD without them (no local file names burned into a shared video).

    The top-k panel stays within half the frame's width and 30% of its height (:data:`PANEL_COVER`),
    whatever ``scale`` (> 1 enlarges it: the kiosk) and whatever the frame's size: on a small frame it
    lists fewer classes, with shorter labels and no bars, so most of the picture stays visible."""
    layout, listed, extra_row = _panel(frame, state, scale)
    u = layout.unit
    size, thick = 0.75 * u, max(1, round(1.6 * u))
    line, pad, bar_w, text_w = layout.line, layout.pad, layout.bar_w, layout.text_w

    # Top-k panel, top left: label, bar, percentage; the explained row highlighted.
    if listed or extra_row:
        shown_rows = len(listed) + (1 if extra_row else 0)
        panel(frame, 0, 0, layout.width, layout.height(shown_rows))
        for row, (rank, label, prob) in enumerate(listed):
            y = pad + line * row + int(line * 0.72)
            chosen = rank == state.explained
            color = YELLOW if chosen else WHITE
            marker = "> " if chosen else ("" if layout.compact else "  ")
            put_text(frame, fit(marker + label, text_w, size, thick), (pad, y), size, color, thick)
            x = pad * 2 + text_w
            if bar_w:
                top = y - int(line * 0.5)
                cv2.rectangle(frame, (x, top), (x + bar_w, top + int(line * 0.55)), GREY, 1)
                cv2.rectangle(frame, (x, top), (x + int(bar_w * float(np.clip(np.nan_to_num(prob), 0, 1))), top + int(line * 0.55)),
                              color, -1)
                x += bar_w + pad
            put_text(frame, percent(prob, layout.compact), (x, y), size, color, thick)
        if extra_row:  # the explained class is not in the top-k: it gets the last row, with its probability
            y = pad + line * len(listed) + int(line * 0.72)
            score = state.explained_score
            shown = "" if score is None else percent(score, layout.compact)
            room = layout.width - pad - (layout.percent_w + pad if shown else 0)
            put_text(frame, fit(f"> {'' if layout.compact else 'explaining '}{state.explained_label}", room, size,
                                thick), (pad, y), size, YELLOW, thick)
            if shown:
                put_text(frame, shown, (layout.width - pad - layout.percent_w, y), size, YELLOW, thick)

    # Status line, bottom left: FPS, source, recording, pause, messages.
    status = status_line(state, len(listed), operator)
    h = frame.shape[0]
    gauge_room = int(120 * u) + 2 * pad + cv2.getTextSize("trust 100%", cv2.FONT_HERSHEY_SIMPLEX, size, thick)[0][0] \
        if state.trust is not None else 0
    panel(frame, 0, h - line - pad, frame.shape[1], h)
    put_text(frame, fit(status, frame.shape[1] - 2 * pad - gauge_room, size, thick),
             (pad, h - pad - int(line * 0.2)), size, WHITE, thick)
    if state.trust is not None:  # the trust gauge, bottom right of the status bar
        gauge_w, gauge_h = int(120 * u), int(line * 0.4)
        x1, y1 = frame.shape[1] - pad, h - pad - int(line * 0.3)
        x0, y0 = x1 - gauge_w, y1 - gauge_h
        share = float(np.clip(state.trust, 0.0, 1.0))
        cv2.rectangle(frame, (x0, y0), (x1, y1), GREY, 1)
        cv2.rectangle(frame, (x0, y0), (x0 + int(gauge_w * share), y1), YELLOW if share >= 0.5 else RED, -1)
        label = f"trust {state.trust:.0%}"
        (label_w, _), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, size, thick)
        put_text(frame, label, (x0 - pad - label_w, y1), size, WHITE, thick)
    if state.recording and operator:
        center = (frame.shape[1] - pad * 3, pad * 3)
        cv2.circle(frame, center, int(11 * u), RED, -1, cv2.LINE_AA)
        put_text(frame, "REC", (center[0] - int(70 * u), center[1] + int(8 * u)), size, RED, thick)
    return frame


def status_line(state: HudState, listed: int, operator: bool = False) -> str:
    """The status bar's text: FPS (or a video's time code), source, method, runtime, pause,
    the operator's passing messages (``operator``); and how many of the top-k rows the panel
    could list, when not all of them."""
    clock = f"{state.fps:4.1f} fps" if state.time_code is None else format_time_code(state.time_code)
    parts = [clock, state.source, state.method if state.method not in ("", "gradcam") else "",
             f"{state.runtime} {state.device}".strip()]
    if state.paused:
        parts.append("PAUSED")
    if operator:
        parts.append(state.current_status())
    if listed < len(state.top):  # --top-k asked for more rows than fit: say so
        parts.append(f"top {listed} of {len(state.top)} shown")
    parts += state.extra
    return "  |  ".join(p for p in parts if p)


def draw_keys_help(frame: np.ndarray, scale: float = 1.0, top: int = 0) -> np.ndarray:
    """The key list (the ``?`` key), centred on the frame below ``top`` (the top-k panel's end) and
    above the status bar; smaller where it would not fit, so it never covers the percentages."""
    u = unit(frame, scale)
    frame_h, frame_w = frame.shape[:2]
    bottom = frame_h - int(46 * u)  # the status bar's height at this unit
    rows = len(KEYS) + 1
    u = min(u, max(bottom - top, 1) / (32 * rows + 16))  # shrink to the room between panel and status bar
    size, thick, line = 0.7 * u, max(1, round(1.5 * u)), max(int(32 * u), 1)
    help_w = max(cv2.getTextSize(key.help, FONT, size, thick)[0][0] for key in KEYS)
    width, height = int(150 * u) + help_w + line, line * rows + line // 2
    x0 = max((frame_w - width) // 2, 0)
    y0 = max(min((frame_h - height) // 2, bottom - height), top)
    panel(frame, x0, y0, x0 + width, y0 + height, 0.75)
    put_text(frame, "Keys", (x0 + line // 2, y0 + line), size, YELLOW, thick)
    for i, key in enumerate(KEYS, start=2):
        y = y0 + line * i
        put_text(frame, key.label, (x0 + line // 2, y), size, YELLOW, thick)
        put_text(frame, key.help, (x0 + int(150 * u), y), size, WHITE, thick)
    return frame
