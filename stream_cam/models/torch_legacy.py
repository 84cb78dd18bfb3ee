"""Read PyTorch's legacy (non-zip) ``.pth`` format with numpy alone, safely.

The legacy format is five pickles followed by raw storage bytes::

    pickle(magic number) pickle(protocol 1001) pickle(sys_info)
    pickle(state dict; tensors are persistent ids pointing at storages)
    pickle(list of storage keys in file order)
    per key: int64 little-endian element count, then the raw bytes

A pickle can run arbitrary code, so the unpickler here resolves ONLY the
globals a state dict needs (``torch._utils._rebuild_tensor_v2``, the
``torch.*Storage`` types and ``collections.OrderedDict``) and refuses every
other one before it could be called. No torch import is needed or made.
"""

from __future__ import annotations

import collections
import io
import math
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from ..errors import ModelError, UnsafeFileError

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001

# Storage type name -> numpy dtype (little-endian, as PyTorch writes them).
STORAGE_DTYPES: dict[str, np.dtype] = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}


class LegacyFormatError(ModelError):
    """The file is not a well-formed legacy PyTorch checkpoint."""


@dataclass(frozen=True)
class _StorageType:
    """Stands in for ``torch.FloatStorage`` and friends during unpickling."""

    name: str

    @property
    def dtype(self) -> np.dtype:
        return STORAGE_DTYPES[self.name]


@dataclass(frozen=True)
class _StorageRef:
    """A persistent id: which storage, of what type, how many elements."""

    key: str
    storage_type: _StorageType
    numel: int


@dataclass(frozen=True)
class _TensorRef:
    """A tensor whose bytes are read only after the whole pickle is parsed."""

    storage: _StorageRef
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor_v2(storage: Any, offset: Any, size: Any, stride: Any, *_: Any) -> _TensorRef:
    # Validate everything here: these values come straight from the file.
    if not isinstance(storage, _StorageRef):
        raise LegacyFormatError("a tensor does not point at a storage")
    ints = (offset, *size, *stride)
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in ints):
        raise LegacyFormatError("a tensor has a negative or non-integer offset, size or stride")
    if len(size) != len(stride):
        raise LegacyFormatError("a tensor's size and stride disagree")
    return _TensorRef(storage, offset, tuple(size), tuple(stride))


_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("collections", "OrderedDict"): collections.OrderedDict,
    **{("torch", name): _StorageType(name) for name in STORAGE_DTYPES},
}


class _SafeUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the allow-listed globals."""

    def __init__(self, file: BinaryIO, storages: dict[str, _StorageRef]) -> None:
        super().__init__(file)
        self._storages = storages

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise UnsafeFileError(
                f"refusing to load: the weights file asks for '{module}.{name}', which a "
                "PyTorch state dict never needs (the file may be malicious or not a state dict)"
            ) from None

    def persistent_load(self, pid: Any) -> _StorageRef:
        # ('storage', storage_type, key, location, numel[, view_metadata])
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"):
            raise LegacyFormatError(f"unknown persistent id in weights file: {pid!r:.80}")
        _, storage_type, key, _location, numel = pid[:5]
        if len(pid) == 6 and pid[5] is not None:
            raise LegacyFormatError("storage views are not supported")
        if not isinstance(storage_type, _StorageType) or not isinstance(key, str):
            raise LegacyFormatError("malformed storage reference in weights file")
        if not isinstance(numel, int) or isinstance(numel, bool) or numel < 0:
            raise LegacyFormatError("a storage has a negative or non-integer size")
        ref = self._storages.setdefault(key, _StorageRef(key, storage_type, numel))
        if ref != _StorageRef(key, storage_type, numel):
            raise LegacyFormatError(f"storage {key!r} is declared twice with different types")
        return ref


def _load_pickle(stream: BinaryIO, storages: dict[str, _StorageRef]) -> Any:
    try:
        return _SafeUnpickler(stream, storages).load()
    except (UnsafeFileError, LegacyFormatError):
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            IndexError, KeyError, MemoryError, OverflowError, RecursionError,
            struct.error, UnicodeDecodeError) as exc:
        raise LegacyFormatError(f"corrupt weights file ({type(exc).__name__}: {exc})") from exc


def _materialize(ref: _TensorRef, data: dict[str, np.ndarray]) -> np.ndarray:
    storage = data[ref.storage.key]
    # The last element the tensor touches must lie inside its storage.
    if any(s == 0 for s in ref.size):
        return np.zeros(ref.size, dtype=storage.dtype)
    last = ref.offset + sum((n - 1) * s for n, s in zip(ref.size, ref.stride))
    if last >= storage.size:
        raise LegacyFormatError("a tensor reaches past the end of its storage")
    if math.prod(ref.size) > storage.size:
        # Zero or overlapping strides could make a small storage into a huge copy.
        raise LegacyFormatError("a tensor has more elements than its storage")
    itemsize = storage.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(
        storage[ref.offset:],
        shape=ref.size,
        strides=tuple(s * itemsize for s in ref.stride),
        writeable=False,
    )
    return np.array(view, copy=True)


def _resolve(obj: Any, data: dict[str, np.ndarray]) -> Any:
    if isinstance(obj, _TensorRef):
        return _materialize(obj, data)
    if isinstance(obj, dict):
        return collections.OrderedDict((k, _resolve(v, data)) for k, v in obj.items())
    return obj


def read_state_dict(source: str | Path | bytes) -> collections.OrderedDict[str, np.ndarray]:
    """Return the state dict in a legacy ``.pth`` file as numpy arrays.

    Raises :class:`UnsafeFileError` if the file asks for any global outside the
    allow-list, and :class:`LegacyFormatError` if it is malformed in any way.
    Never allocates more than the file's own size implies.
    """
    raw = source if isinstance(source, bytes) else Path(source).read_bytes()
    stream = io.BytesIO(raw)
    storages: dict[str, _StorageRef] = {}

    # 1-3. Header pickles: magic number, protocol version, system info.
    if _load_pickle(stream, storages) != MAGIC_NUMBER:
        raise LegacyFormatError("not a legacy PyTorch file (bad magic number)")
    if _load_pickle(stream, storages) != PROTOCOL_VERSION:
        raise LegacyFormatError("unsupported legacy PyTorch protocol version")
    sys_info = _load_pickle(stream, storages)
    if not isinstance(sys_info, dict) or not sys_info.get("little_endian", True):
        raise LegacyFormatError("only little-endian checkpoints are supported")

    # 4. The state dict itself; tensors are references to storages read below.
    state = _load_pickle(stream, storages)
    if not isinstance(state, dict):
        raise LegacyFormatError("the weights file does not hold a state dict")

    # 5. Storage keys in file order, then each storage's bytes.
    keys = _load_pickle(stream, storages)
    if not isinstance(keys, list) or sorted(map(str, keys)) != sorted(storages):
        raise LegacyFormatError("the storage list does not match the tensors")
    data: dict[str, np.ndarray] = {}
    for key in keys:
        ref = storages[key]
        header = stream.read(8)
        if len(header) != 8:
            raise LegacyFormatError(f"truncated weights file (storage {key!r} is missing)")
        (numel,) = struct.unpack("<q", header)
        nbytes = numel * ref.storage_type.dtype.itemsize
        # Check the size against what is left BEFORE reading anything.
        if numel != ref.numel or nbytes > len(raw) - stream.tell():
            raise LegacyFormatError(f"truncated or inconsistent storage {key!r}")
        data[key] = np.frombuffer(stream.read(nbytes), dtype=ref.storage_type.dtype)
    if stream.read(1):
        raise LegacyFormatError("unexpected bytes after the last storage")
    return _resolve(state, data)
