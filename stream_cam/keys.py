"""The one key table: what each window key does. The CLI's help, the on-screen key list and
the controls are all made from it, so they cannot disagree."""

from __future__ import annotations

from dataclasses import dataclass

from .frames import MAX_RANK


@dataclass(frozen=True)
class Key:
    label: str  # how the key is written for people
    action: str  # what the controls do with it
    help: str
    chars: str  # the characters that trigger it (OpenCV key codes below 256)


KEYS: tuple[Key, ...] = (
    Key("q / Esc", "quit", "quit", "qQ\x1b"),
    Key("space", "pause", "pause", " "),
    Key("c", "cycle", "cycle the explained class through the top-k", "c"),
    Key(f"1-{MAX_RANK}", "rank", "explain the class at that rank", "".join(str(r) for r in range(1, MAX_RANK + 1))),
    Key("+ / -", "alpha", "more / less heatmap", "+=-_"),
    Key("m", "colormap", "next colormap", "m"),
    Key("e", "method", "next explanation method (gradcam, gradcam++, ...)", "e"),
    Key("s", "snapshot", "save a PNG snapshot", "s"),
    Key("r", "record", "start / stop recording", "r"),
    Key("h", "hud", "hide / show the HUD", "h"),
    Key("f", "fullscreen", "fullscreen", "f"),
    Key("?", "keys", "show / hide the key list", "?"),
    Key("Tab", "select", "select the next tile (several sources); keys act on it", "\t"),
)

_BY_CHAR = {char: key for key in KEYS for char in key.chars}


def key_for(code: int) -> Key | None:
    """The table row for an OpenCV key code, or None."""
    return _BY_CHAR.get(chr(code)) if 0 <= code < 256 else None


def keys_epilog() -> str:
    """The key list for ``--help``."""
    width = max(len(k.label) for k in KEYS)
    return "window keys:\n" + "\n".join(f"  {k.label:<{width}}  {k.help}" for k in KEYS)
