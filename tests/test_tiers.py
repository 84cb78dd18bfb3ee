"""The test tiers: the unit tier runs with TensorFlow (and Keras) not importable at all."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from helpers import NO_TENSORFLOW, REPO

# pytest, in a process where importing TensorFlow, Keras, JAX or torch fails (as on the light install).
PYTEST_WITHOUT_TENSORFLOW = NO_TENSORFLOW.split("from stream_cam")[0] + "import pytest\nsys.exit(pytest.main(sys.argv[1:]))\n"


def test_the_unit_tier_runs_without_tensorflow(tmp_path):
    result = subprocess.run([sys.executable, "-c", PYTEST_WITHOUT_TENSORFLOW, "-m", "unit", "-q", "-p",
                             "no:cacheprovider", str(REPO / "tests")], cwd=tmp_path, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    passed = int(re.search(r"(\d+) passed", result.stdout).group(1))
    assert passed >= 100, result.stdout[-500:]  # the tier is real, not a handful
    assert "error" not in result.stdout.splitlines()[-1]
