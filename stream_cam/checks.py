"""The value rules every part shares, written once: the CLI's parser, the jobs, the engine's
smoother, the overlay and the browser's controls all check a value with the same function,
so a value means the same and fails with the same words everywhere."""

from __future__ import annotations

import importlib.util

import math

from .errors import InputError

MAX_NAME_LENGTH = 200  # a class, colormap or method name; longer text is refused before any lookup


def shown(value: object, limit: int = 40) -> str:
    """``repr(value)`` cut to ``limit`` characters: an error message never echoes a huge value."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        return "a number with too many digits"
    text = repr(value) if not isinstance(value, (list, dict)) else type(value).__name__
    return text if len(text) <= limit else text[:limit] + "..."


def check_name(value: str, name: str) -> str:
    """A name typed by a person (class, colormap, method): at most :data:`MAX_NAME_LENGTH` characters."""
    if len(value) > MAX_NAME_LENGTH:
        raise InputError(f"{name} is {len(value)} characters long; names have at most {MAX_NAME_LENGTH}")
    return value


def _number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise InputError(f"{name} must be a number, got {shown(value)}")
    try:
        number = float(value)
    except (ValueError, OverflowError):
        raise InputError(f"{name} must be a number from a sensible range, got {shown(value)}") from None
    if not math.isfinite(number):
        raise InputError(f"{name} must be a finite number, got {shown(value)}")
    return number


def check_alpha(value: object, name: str = "alpha") -> float:
    """The heatmap's weight in the blend: 0 to 1."""
    alpha = _number(name, value)
    if not 0.0 <= alpha <= 1.0:
        raise InputError(f"{name} must be from 0 to 1, got {shown(value)}")
    return alpha


def check_smooth(value: object, name: str = "smooth") -> float:
    """Temporal smoothing: 0 (off) to below 1 (1 would never change again)."""
    smooth = _number(name, value)
    if not 0.0 <= smooth < 1.0:
        raise InputError(f"{name} must be from 0 to below 1, got {shown(value)}")
    return smooth


def check_seconds(value: object, name: str = "seconds") -> float:
    """A positive duration of at most a day."""
    seconds = _number(name, value)
    if not 0.0 < seconds <= 86400.0:
        raise InputError(f"{name} must be above 0 seconds (and at most a day), got {shown(value)}")
    return seconds


def check_count(value: object, upper: int, name: str = "value") -> int:
    """A whole number from 1 to ``upper``."""
    if isinstance(value, bool):
        raise InputError(f"{name} must be a whole number from 1 to {upper}, got {shown(value)}")
    try:
        number = int(value) if isinstance(value, int) or (isinstance(value, str) and len(value) < 20) else None
    except ValueError:
        number = None
    if number is None or not 1 <= number <= upper:
        raise InputError(f"{name} must be a whole number from 1 to {upper}, got {shown(value)}")
    return number


def installed(package: str) -> bool:
    """Whether ``package`` can be imported here, without importing it."""
    try:
        return importlib.util.find_spec(package) is not None
    except (ImportError, ValueError):
        return False
