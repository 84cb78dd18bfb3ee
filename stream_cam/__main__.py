"""``python -m stream_cam`` is the same as ``stream-cam``."""

import sys

from .cli import main

sys.exit(main())
