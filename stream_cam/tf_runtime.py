"""Quiet start-up for native libraries (TensorFlow, OpenCV), so the CLI's stderr stays readable.

TensorFlow's C++ runtime writes banner lines (oneDNN, missing CUDA drivers) to
file descriptor 2 before its logging is configured, where no Python setting
reaches them. The CLI imports TensorFlow through :func:`import_tensorflow`,
which parks fd 2 on a temporary file during the import and replays what was
written there only when asked to be verbose or when the import fails.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
from types import ModuleType
from typing import Iterator

log = logging.getLogger(__name__)


def import_tensorflow(verbose: bool = False) -> ModuleType:
    """Return the ``tensorflow`` module, importing it without C++ start-up noise."""
    if "tensorflow" in sys.modules or verbose:
        import tensorflow as tf

        return tf
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as parked:
        os.dup2(parked.fileno(), 2)
        try:
            import tensorflow as tf
        except Exception:
            os.dup2(saved, 2)
            parked.seek(0)
            sys.stderr.write(parked.read().decode(errors="replace"))  # it may say why
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        parked.seek(0)
        log.debug("tensorflow start-up output:\n%s", parked.read().decode(errors="replace"))
    return tf


@contextlib.contextmanager
def quiet_stderr(verbose: bool = False) -> Iterator[None]:
    """Park file descriptor 2 while native code starts up (LiteRT announces its XNNPACK delegate
    there); what it wrote goes to the debug log."""
    if verbose:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as parked:
        os.dup2(parked.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            parked.seek(0)
            text = parked.read().decode(errors="replace").strip()
            if text:
                log.debug("native start-up output:\n%s", text)


def quiet_opencv(verbose: bool = False) -> None:
    """Keep OpenCV's and FFmpeg's own warnings off stderr; the CLI says what went wrong.

    Must run before ``cv2`` is imported."""
    if not verbose:
        os.environ.setdefault("OPENCV_LOG_LEVEL", "OFF")
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
