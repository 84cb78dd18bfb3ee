"""Drawing primitives shared by the HUD and the kiosk screens: sizes, panels, text."""

from __future__ import annotations

import cv2
import numpy as np

FONT = cv2.FONT_HERSHEY_SIMPLEX
WHITE, BLACK, YELLOW, GREY, RED = (255, 255, 255), (0, 0, 0), (0, 220, 255), (170, 170, 170), (40, 40, 230)


def unit(frame: np.ndarray, scale: float) -> float:
    """1.0 on a 960x720 frame; follows the smaller side so the HUD fits any aspect."""
    height, width = frame.shape[:2]
    return max(min(height / 720.0, width / 960.0), 0.35) * scale


def panel(frame: np.ndarray, x0: int, y0: int, x1: int, y1: int, opacity: float = 0.55) -> None:
    """Darken a rectangle in place so text on it reads on any picture."""
    h, w = frame.shape[:2]
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 > x0 and y1 > y0:
        region = frame[y0:y1, x0:x1]
        region[:] = (region * (1.0 - opacity)).astype(np.uint8)


def put_text(frame: np.ndarray, text: str, org: tuple[int, int], size: float, color=WHITE, thick: int = 1) -> None:
    cv2.putText(frame, text, org, FONT, size, color, thick, cv2.LINE_AA)


def fit(text: str, width: int, size: float, thick: int) -> str:
    """Shorten ``text`` with an ellipsis until it fits ``width`` pixels: whole words first
    ("Windsor tie" -> "Windsor..."), letters only when its first word alone is too wide."""
    def fits(candidate: str) -> bool:
        return cv2.getTextSize(candidate, FONT, size, thick)[0][0] <= width

    if fits(text):
        return text
    words = text.split(" ")
    for end in range(len(words) - 1, 0, -1):
        shorter = " ".join(words[:end]).rstrip(" |,")
        if shorter and fits(shorter + "..."):
            return shorter + "..."
    while len(text) > 1 and not fits(text + "..."):
        text = text[:-1]
    return text + "..."
