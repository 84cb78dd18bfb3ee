"""The value rules every part shares, written once: the CLI's parser, the jobs, the engine's
smoother, the overlay and the browser's controls all check a value with the same function,
so a value means the same and fails with the same words everywhere."""

from __future__ import annotations

import importlib.util

import math

from .errors import InputError


def _number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise InputError(f"{name} must be a number, got {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise InputError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise InputError(f"{name} must be a finite number, got {value!r}")
    return number


def check_alpha(value: object, name: str = "alpha") -> float:
    """The heatmap's weight in the blend: 0 to 1."""
    alpha = _number(name, value)
    if not 0.0 <= alpha <= 1.0:
        raise InputError(f"{name} must be from 0 to 1, got {value}")
    return alpha


def check_smooth(value: object, name: str = "smooth") -> float:
    """Temporal smoothing: 0 (off) to below 1 (1 would never change again)."""
    smooth = _number(name, value)
    if not 0.0 <= smooth < 1.0:
        raise InputError(f"{name} must be from 0 to below 1, got {value}")
    return smooth


def check_seconds(value: object, name: str = "seconds") -> float:
    """A positive duration of at most a day."""
    seconds = _number(name, value)
    if not 0.0 < seconds <= 86400.0:
        raise InputError(f"{name} must be above 0 seconds (and at most a day), got {value}")
    return seconds


def check_count(value: object, upper: int, name: str = "value") -> int:
    """A whole number from 1 to ``upper``."""
    if isinstance(value, bool):
        raise InputError(f"{name} must be a whole number from 1 to {upper}, got {value!r}")
    try:
        number = int(value) if isinstance(value, (int, str)) else None
    except ValueError:
        number = None
    if number is None or not 1 <= number <= upper:
        raise InputError(f"{name} must be a whole number from 1 to {upper}, got {value!r}")
    return number


def installed(package: str) -> bool:
    """Whether ``package`` can be imported here, without importing it."""
    try:
        return importlib.util.find_spec(package) is not None
    except (ImportError, ValueError):
        return False
