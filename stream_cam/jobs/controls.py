"""The live pipeline's adjustable state, and what each key does to it."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..engine.stream import ClassChoice

COLORMAP_CYCLE = ("jet", "turbo", "inferno", "viridis", "magma", "coolwarm")
ALPHA_STEP = 0.1


@dataclass
class Controls:
    """Shared by the window's keys (and the browser view): changed between frames."""

    choice: ClassChoice
    alpha: float = 0.4
    colormap: str = "jet"
    paused: bool = False
    show_hud: bool = True
    show_keys: bool = False
    quit: bool = False
    # One-shot requests the loop carries out and clears:
    snapshot: bool = False
    toggle_record: bool = False
    toggle_fullscreen: bool = False
    messages: list[str] = field(default_factory=list)

    def handle_key(self, key: int) -> None:
        """Apply one key press (an OpenCV key code; -1 is no key)."""
        if key < 0:
            return
        char = chr(key) if key < 256 else ""
        if char in ("q", "Q", "\x1b"):
            self.quit = True
        elif char == " ":
            self.paused = not self.paused
        elif char == "c":
            self.choice.cycle()
        elif char in "12345" and char:
            self.choice.pick(int(char))
        elif char in ("+", "="):
            self.alpha = round(min(1.0, self.alpha + ALPHA_STEP), 2)
        elif char in ("-", "_"):
            self.alpha = round(max(0.0, self.alpha - ALPHA_STEP), 2)
        elif char == "m":
            self.next_colormap()
        elif char == "s":
            self.snapshot = True
        elif char == "r":
            self.toggle_record = True
        elif char == "h":
            self.show_hud = not self.show_hud
        elif char == "f":
            self.toggle_fullscreen = True
        elif char == "?":
            self.show_keys = not self.show_keys

    def next_colormap(self) -> None:
        names = COLORMAP_CYCLE if self.colormap in COLORMAP_CYCLE else (self.colormap, *COLORMAP_CYCLE)
        self.colormap = names[(names.index(self.colormap) + 1) % len(names)]
