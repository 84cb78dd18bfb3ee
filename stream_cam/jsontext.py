"""JSON that every reader can parse: a NaN or infinite number (a model that answers NaN) is written
as ``null``, never as the ``NaN`` that Python's json module writes and JSON does not have."""

from __future__ import annotations

import json
import math
from typing import Any


def finite(value: Any) -> Any:
    """``value`` with every non-finite float, in any list, tuple or dict, replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(item) for item in value]
    return value


def dumps(value: Any, **options: Any) -> str:
    """``json.dumps`` of :func:`finite` ``(value)``; strict: anything non-finite left is an error."""
    return json.dumps(finite(value), allow_nan=False, **options)
