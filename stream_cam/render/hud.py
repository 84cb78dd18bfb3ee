"""The heads-up display drawn on each frame: top-k bars, explained class, FPS, source.

Sizes scale with the frame's height so the HUD reads the same at 640x480 and
1920x1080; ``scale`` enlarges it further (kiosk mode).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import cv2
import numpy as np

from ..models.labels import short_label

FONT = cv2.FONT_HERSHEY_SIMPLEX
WHITE, BLACK, YELLOW, GREY, RED = (255, 255, 255), (0, 0, 0), (0, 220, 255), (170, 170, 170), (40, 40, 230)

KEYS_HELP = (
    ("q / Esc", "quit"),
    ("space", "pause"),
    ("c", "cycle the explained class"),
    ("1-5", "explain class at that rank"),
    ("+ / -", "more / less heatmap"),
    ("m", "next colormap"),
    ("s", "save a PNG snapshot"),
    ("r", "start / stop recording"),
    ("h", "hide / show this HUD"),
    ("f", "fullscreen"),
    ("?", "show / hide these keys"),
)


@dataclass
class HudState:
    """Everything the HUD shows, apart from the frame itself."""

    top: Sequence[tuple[str, float]] = ()  # (label, probability), most likely first
    explained: int = 0  # row of ``top`` being explained, or -1 for a class not in top
    explained_label: str = ""
    fps: float = 0.0
    source: str = ""
    recording: bool = False
    paused: bool = False
    status: str = ""  # a transient message ("saved snapshot.png")
    extra: list[str] = field(default_factory=list)

    def set_classes(self, top: Sequence[tuple[int, float]], explained: int, label: Callable[[int], str]) -> None:
        """Show ``top`` ((class, probability), best first) with ``explained`` highlighted."""
        self.top = [(short_label(label(c)), p) for c, p in top]
        indices = [c for c, _ in top]
        self.explained = indices.index(explained) if explained in indices else -1
        self.explained_label = short_label(label(explained))


def _unit(frame: np.ndarray, scale: float) -> float:
    """1.0 on a 960x720 frame; follows the smaller side so the HUD fits any aspect."""
    height, width = frame.shape[:2]
    return max(min(height / 720.0, width / 960.0), 0.35) * scale


def _panel(frame: np.ndarray, x0: int, y0: int, x1: int, y1: int, opacity: float = 0.55) -> None:
    """Darken a rectangle in place so text on it reads on any picture."""
    h, w = frame.shape[:2]
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 > x0 and y1 > y0:
        region = frame[y0:y1, x0:x1]
        region[:] = (region * (1.0 - opacity)).astype(np.uint8)


def _text(frame: np.ndarray, text: str, org: tuple[int, int], size: float, color=WHITE, thick: int = 1) -> None:
    cv2.putText(frame, text, org, FONT, size, color, thick, cv2.LINE_AA)


def draw_hud(frame: np.ndarray, state: HudState, scale: float = 1.0) -> np.ndarray:
    """Draw the HUD on ``frame`` (BGR, modified in place) and return it."""
    u = _unit(frame, scale)
    size, thick = 0.75 * u, max(1, round(1.6 * u))
    line = int(34 * u)
    pad = int(12 * u)
    bar_w = int(190 * u)
    text_w = int(260 * u)

    # Top-k panel, top left: label, bar, percentage; the explained row highlighted.
    rows = list(state.top)
    if rows:
        height = pad * 2 + line * len(rows) + (line if state.explained < 0 else 0)
        _panel(frame, 0, 0, pad * 3 + text_w + bar_w + int(80 * u), height)
        for i, (label, prob) in enumerate(rows):
            y = pad + line * i + int(line * 0.72)
            chosen = i == state.explained
            color = YELLOW if chosen else WHITE
            marker = "> " if chosen else "  "
            _text(frame, marker + _fit(label, text_w, size, thick), (pad, y), size, color, thick)
            x = pad * 2 + text_w
            top = y - int(line * 0.5)
            cv2.rectangle(frame, (x, top), (x + bar_w, top + int(line * 0.55)), GREY, 1)
            cv2.rectangle(frame, (x, top), (x + int(bar_w * float(np.clip(prob, 0, 1))), top + int(line * 0.55)),
                          color, -1)
            _text(frame, f"{prob:5.1%}", (x + bar_w + pad, y), size, color, thick)
        if state.explained < 0 and state.explained_label:
            y = pad + line * len(rows) + int(line * 0.72)
            _text(frame, f"> explaining {state.explained_label}", (pad, y), size, YELLOW, thick)

    # Status line, bottom left: FPS, source, recording, pause, messages.
    parts = [f"{state.fps:4.1f} fps", state.source]
    if state.paused:
        parts.append("PAUSED")
    if state.status:
        parts.append(state.status)
    parts += state.extra
    status = "  |  ".join(p for p in parts if p)
    h = frame.shape[0]
    _panel(frame, 0, h - line - pad, frame.shape[1], h)
    _text(frame, status, (pad, h - pad - int(line * 0.2)), size, WHITE, thick)
    if state.recording:
        center = (frame.shape[1] - pad * 3, pad * 3)
        cv2.circle(frame, center, int(11 * u), RED, -1, cv2.LINE_AA)
        _text(frame, "REC", (center[0] - int(70 * u), center[1] + int(8 * u)), size, RED, thick)
    return frame


def draw_keys_help(frame: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """The key list, centred on the frame (the ``?`` key)."""
    u = _unit(frame, scale)
    size, thick, line = 0.7 * u, max(1, round(1.5 * u)), int(32 * u)
    width, height = int(520 * u), line * (len(KEYS_HELP) + 1) + line // 2
    x0 = max((frame.shape[1] - width) // 2, 0)
    y0 = max((frame.shape[0] - height) // 2, 0)
    _panel(frame, x0, y0, x0 + width, y0 + height, 0.75)
    _text(frame, "Keys", (x0 + line // 2, y0 + line), size, YELLOW, thick)
    for i, (key, what) in enumerate(KEYS_HELP, start=2):
        y = y0 + line * i
        _text(frame, key, (x0 + line // 2, y), size, YELLOW, thick)
        _text(frame, what, (x0 + int(150 * u), y), size, WHITE, thick)
    return frame


def _fit(text: str, width: int, size: float, thick: int) -> str:
    """Shorten ``text`` with an ellipsis until it fits ``width`` pixels."""
    if cv2.getTextSize(text, FONT, size, thick)[0][0] <= width:
        return text
    while len(text) > 1 and cv2.getTextSize(text + "...", FONT, size, thick)[0][0] > width:
        text = text[:-1]
    return text + "..."
