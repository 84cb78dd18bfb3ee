"""Kiosk key policy: an unattended screen ignores stray keys; only Esc twice within 2 s quits."""

from __future__ import annotations

import time

from ..keys import key_for

QUIT_WINDOW_S = 2.0


class KioskKeys:
    """Filters keys before they reach the controls. ``hint`` is what to show after one Esc."""

    def __init__(self, window_s: float = QUIT_WINDOW_S) -> None:
        self.window_s = window_s
        self._last_escape = -1e9

    def filter(self, code: int) -> tuple[int, bool, str]:
        """(key to pass on or -1, quit now?, a hint to show or "")."""
        key = key_for(code)
        if key is None or key.action != "quit":
            return code, False, ""
        if code != 27:
            return -1, False, ""  # q in a kiosk: ignored
        now = time.monotonic()
        if now - self._last_escape <= self.window_s:
            return -1, True, ""
        self._last_escape = now
        return -1, False, "press Esc again to quit"
