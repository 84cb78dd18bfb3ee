"""The live pipeline's adjustable state, and what each key and each browser control does to it."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from .. import defaults
from ..engine.registry import DEFAULT_METHOD, METHOD_NAMES
from ..engine.stream import ClassChoice
from ..errors import InputError
from ..keys import key_for
from ..render.colormap import colormap_lut
from ..web.state import ControlChange

COLORMAP_CYCLE = (defaults.COLORMAP, "turbo", "inferno", "viridis", "magma", "coolwarm")
ALPHA_STEP = 0.1


@dataclass
class Controls:
    """Shared by the window's keys and the browser view: changed between frames.

    With several sources each has its own class choice; keys act on the ``selected`` one
    (Tab selects the next)."""

    choices: list[ClassChoice]
    alpha: float = defaults.ALPHA
    colormap: str = defaults.COLORMAP
    paused: bool = False
    show_hud: bool = True
    show_keys: bool = False
    quit: bool = False
    # One-shot requests the loop carries out and clears:
    snapshot: bool = False
    toggle_record: bool = False
    toggle_fullscreen: bool = False
    # Turns a class name or index from the browser into an index (the model's labels); None: indices only.
    resolve_class: Callable[[int | str], int] | None = None
    paused_at: float | None = None  # time.monotonic() when paused (a kiosk resumes on its own)
    selected: int = 0
    method: str = DEFAULT_METHOD  # the CAM method; the engine switches to it before its next call
    methods: tuple[str, ...] = METHOD_NAMES  # what the model offers (an exported file: its one method)

    @property
    def choice(self) -> ClassChoice:
        return self.choices[self.selected]

    def resume_if_paused_longer_than(self, seconds: float | None) -> bool:
        """Unpause after ``seconds`` (None: never); True when it did."""
        if seconds is None or not self.paused or self.paused_at is None:
            return False
        if time.monotonic() - self.paused_at < seconds:
            return False
        self.paused, self.paused_at = False, None
        return True

    def handle_key(self, code: int) -> None:
        """Apply one key press (an OpenCV key code; -1 is no key), as the key table says."""
        key = key_for(code)
        if key is None:
            return
        char = chr(code)
        action = key.action
        if action == "quit":
            self.quit = True
        elif action == "pause":
            self.paused = not self.paused
            self.paused_at = time.monotonic() if self.paused else None
        elif action == "cycle":
            self.choice.cycle()
        elif action == "rank":
            self.choice.pick(int(char))
        elif action == "alpha":
            step = ALPHA_STEP if char in "+=" else -ALPHA_STEP
            self.alpha = round(min(1.0, max(0.0, self.alpha + step)), 2)
        elif action == "colormap":
            self.next_colormap()
        elif action == "method":
            self.method = self.methods[(self.methods.index(self.method) + 1) % len(self.methods)]
        elif action == "snapshot":
            self.snapshot = True
        elif action == "record":
            self.toggle_record = True
        elif action == "hud":
            self.show_hud = not self.show_hud
        elif action == "fullscreen":
            self.toggle_fullscreen = True
        elif action == "keys":
            self.show_keys = not self.show_keys
        elif action == "select":
            self.selected = (self.selected + 1) % len(self.choices)

    def apply(self, change: ControlChange, stream: int | None = None) -> None:
        """Apply a browser control (already checked for types and ranges by the web part) to
        ``stream``'s class choice (default: the selected stream)."""
        choice = self.choices[self.selected if stream is None else stream]
        # Everything that can fail is checked before anything changes.
        if change.colormap is not None:
            colormap_lut(change.colormap)
        if change.method is not None and change.method not in self.methods:
            known = "unknown method" if change.method not in METHOD_NAMES else "this model does not offer"
            raise InputError(f"{known} {change.method!r}; choose one of: {', '.join(self.methods)}")
        pinned = None
        if change.class_ is not None:
            pinned = self.resolve_class(change.class_) if self.resolve_class else int(change.class_)
        if change.alpha is not None:
            self.alpha = change.alpha
        if change.method is not None:
            self.method = change.method
        if change.colormap is not None:
            self.colormap = change.colormap
        if pinned is not None:
            choice.pin(pinned)
        if change.rank is not None:
            choice.pick(change.rank)
        if change.cycle:
            choice.cycle()
        if change.pause is not None:
            self.paused = change.pause
            self.paused_at = time.monotonic() if change.pause else None

    def next_colormap(self) -> None:
        names = COLORMAP_CYCLE if self.colormap in COLORMAP_CYCLE else (self.colormap, *COLORMAP_CYCLE)
        self.colormap = names[(names.index(self.colormap) + 1) % len(names)]
