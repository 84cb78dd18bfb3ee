"""``stream-cam info`` (text and JSON) and the ``gpu`` extra."""

from __future__ import annotations

import importlib.metadata as metadata
import json
import os
import tomllib

import pytest

from helpers import REPO, run, run_without_tensorflow


@pytest.mark.unit
def test_the_gpu_extra_is_tensorflow_with_cuda_on_linux():
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert extras["gpu"] == ["tensorflow[and-cuda]>=2.16; sys_platform == 'linux'"]
    # The installed metadata says the same (pip install 'stream-cam[gpu]' asks for it).
    from packaging.requirements import Requirement

    gpu = [Requirement(r) for r in metadata.requires("stream-cam") or [] if 'extra == "gpu"' in r]
    assert [(r.name, r.extras) for r in gpu] == [("tensorflow", {"and-cuda"})]
    assert gpu[0].marker.evaluate({"extra": "gpu", "sys_platform": "linux"})
    assert not gpu[0].marker.evaluate({"extra": "gpu", "sys_platform": "darwin"})


def test_info_json(tmp_path):
    result = run("info", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    for distribution in ("tensorflow", "keras", "opencv-python", "ai-edge-litert", "numpy"):
        assert info["versions"][distribution] == metadata.version(distribution)
    tf = info["tensorflow"]
    assert tf["installed"] and "CPU:0" in tf["devices"] and tf["gpus"] == []  # this machine: no GPU
    assert isinstance(tf["cuda_build"], bool) and (tf["cuda"] is not None) == tf["cuda_build"]
    assert (info["gpu_usable"], info["default_device"], info["default_runtime"]) == (False, "cpu", "litert")
    assert info["extras"]["gpu"] is False and info["extras"]["test"] is True  # the tests need the test extra
    assert set(info["extras"]) == set(metadata.metadata("stream-cam").get_all("Provides-Extra"))
    assert isinstance(info["cameras"], list)
    assert info["cache"] == os.environ["STREAM_CAM_CACHE"]  # the session's cache (conftest), as the runs use


def test_info_text(tmp_path):
    result = run("info", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert f"TensorFlow {metadata.version('tensorflow')}" in text and "sees CPU:0" in text
    assert "GPU: none usable" in text and "pip install 'stream-cam[gpu]'" in text
    assert "explains by default with: LiteRT on the CPU" in text
    assert "extras installed:" in text and "not: gpu" in text and text.count("\n") >= 6


def test_info_without_tensorflow(tmp_path):
    """The light kiosk install: info works and says what runs (exported files, on LiteRT)."""
    result = run_without_tensorflow("info", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["tensorflow"] == {"installed": False} and info["gpu_usable"] is False
    text = run_without_tensorflow("info", cwd=tmp_path).stdout
    assert "exported .tflite files only (TensorFlow is not installed)" in text
