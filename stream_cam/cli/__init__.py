"""The ``stream-cam`` command line: ``parser`` (the flags), ``plan`` (every check that needs no
model, run before TensorFlow is imported), ``main`` (load the model, run the job, report)."""

import sys

from ..tf_runtime import quiet_opencv

quiet_opencv(verbose="--debug" in sys.argv)  # before anything below imports cv2

from .main import main  # noqa: E402

__all__ = ["main"]
