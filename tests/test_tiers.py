"""The test tiers: the unit tier runs with TensorFlow (and Keras) not importable at all."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from helpers import NO_TENSORFLOW, REPO

# pytest, in a process where importing TensorFlow, Keras, JAX or torch fails (as on the light install).
PYTEST_WITHOUT_TENSORFLOW = NO_TENSORFLOW.split("from stream_cam")[0] + "import pytest\nsys.exit(pytest.main(sys.argv[1:]))\n"


@pytest.mark.slow  # over 15 s measured on 2 cores
def test_the_unit_tier_runs_without_tensorflow(tmp_path):
    result = subprocess.run([sys.executable, "-c", PYTEST_WITHOUT_TENSORFLOW, "-m", "unit", "-q", "-p",
                             "no:cacheprovider", str(REPO / "tests")], cwd=tmp_path, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    passed = int(re.search(r"(\d+) passed", result.stdout).group(1))
    assert passed >= 100, result.stdout[-500:]  # the tier is real, not a handful
    assert "error" not in result.stdout.splitlines()[-1]


def test_the_e2e_marker_finds_the_tests_that_run_the_command(tmp_path):
    """conftest marks e2e every test that starts stream-cam, itself or through a fixture; nothing else."""
    result = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-m", "e2e", "-p", "no:cacheprovider",
                             str(REPO / "tests")], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    collected = {line.split("::")[1].split("[")[0] for line in result.stdout.splitlines() if "::" in line}
    assert "test_image_json_and_overlays" in collected  # calls run() itself
    assert "test_page_in_headless_chromium" in collected  # through the demo_server fixture
    assert "test_a_stream_cam_fed_by_a_stream_cam_shows_no_secret" in collected  # through the upstream fixture
    assert "test_top_k_maps_come_from_one_call_and_equal_k_single_calls" not in collected  # the engine alone
    assert "test_every_flag_is_taken_by_its_commands_and_refused_by_the_others" not in collected
    assert len(collected) >= 60
