"""Shared fixtures: tiny seeded Keras models, the offline ImageNet model, real photos.

No test downloads anything: the models here are built from seeds, and the
EfficientNet-Lite0 weights ship inside a pip package.
"""

from __future__ import annotations

import dis
import os
import shutil
import tempfile
import types

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pytest

from helpers import tiny_cnn, write_clip  # noqa: E402

# The tiers (pyproject.toml's markers): `python -m pytest -m unit` runs the tests marked
# @pytest.mark.unit, which need no TensorFlow, and collects only the modules that have some (their
# top-level imports are TensorFlow-free), so it runs where TensorFlow cannot be imported at all
# (tests/test_tiers.py proves it). The full suite runs everything.
UNIT_MARK = "pytest.mark.unit"


def _unit_only(config: pytest.Config) -> bool:
    return config.option.markexpr.strip() == "unit"


def pytest_ignore_collect(collection_path, config):
    if _unit_only(config) and collection_path.suffix == ".py" and collection_path.name.startswith("test_"):
        return UNIT_MARK not in collection_path.read_text()
    return None


def pytest_configure(config):
    # The LiteRT runtime cache (engine/runtime.py) of this session, shared by the CLI runs the tests
    # start (they inherit the environment); never the user's own ~/.cache/stream_cam.
    if not os.environ.get("STREAM_CAM_CACHE"):
        folder = tempfile.mkdtemp(prefix="stream_cam_test_cache_")
        os.environ["STREAM_CAM_CACHE"] = folder
        config.add_cleanup(lambda: shutil.rmtree(folder, ignore_errors=True))
    if not _unit_only(config):  # the rest import TensorFlow: once, quietly, before any test module does
        from stream_cam.tf_runtime import import_tensorflow

        import_tensorflow()


# `e2e`: the tests that run the stream-cam command itself (through the helpers below, directly or in
# a fixture they use), marked here so no test can forget it: python -m pytest -m e2e (or "not e2e").
E2E_HELPERS = {"run", "start", "run_without_tensorflow", "start_without_tensorflow"}


def _runs_the_command(code: types.CodeType) -> bool:
    """Whether ``code`` (or a function defined inside it) calls one of the helpers that start stream-cam."""
    called = {i.argval for i in dis.get_instructions(code) if i.opname == "LOAD_GLOBAL"}
    return bool(called & E2E_HELPERS) or any(_runs_the_command(c) for c in code.co_consts
                                             if isinstance(c, types.CodeType))


def pytest_collection_modifyitems(config, items):
    for item in items:
        function = getattr(item, "function", None)
        fixtures = getattr(item, "_fixtureinfo", None)
        codes = [function.__code__] if function is not None else []
        if fixtures is not None:
            codes += [d.func.__code__ for defs in fixtures.name2fixturedefs.values() for d in defs
                      if hasattr(d.func, "__code__")]
        if any(_runs_the_command(code) for code in codes):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture
def tiny_model():
    return tiny_cnn()


@pytest.fixture(scope="session")
def lite0():
    """The real offline ImageNet model (built once per test session)."""
    from stream_cam.models.loader import load_model

    return load_model("efficientnet_lite0")


@pytest.fixture(scope="session")
def lite0_cam(lite0):
    from stream_cam.engine.gradcam import GradCAM

    return GradCAM(lite0)


@pytest.fixture(scope="session")
def lite0_tflite(lite0_cam, tmp_path_factory):
    """The offline model's Grad-CAM exported for LiteRT (f32), once per session."""
    from stream_cam.jobs.export import ExportOptions, run_export

    report = run_export(lite0_cam, ExportOptions(tmp_path_factory.mktemp("export") / "lite0.tflite"))
    assert report.top1_engine == report.top1_exported == 285
    return report.path


@pytest.fixture(scope="session")
def photos():
    """Real photos shipped inside scikit-image, as uint8 RGB."""
    from stream_cam.sources.images import builtin_image

    return {name: builtin_image(name) for name in ("chelsea", "coffee", "rocket")}


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def clip(tmp_path):
    return write_clip(tmp_path / "clip.mp4")


@pytest.fixture
def tiny_cam():
    from stream_cam.engine.gradcam import GradCAM

    return GradCAM(tiny_cnn(classes=8))


@pytest.fixture
def cli(capsys):
    """``stream-cam ARGS`` called in this process (no interpreter to start): returns
    ``(exit status, stdout, stderr)``. The signal handlers main() installs are put back after."""
    import signal

    from stream_cam.cli import main

    def call(*args: str) -> tuple[int, str, str]:
        handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
        capsys.readouterr()
        try:
            code = main([str(a) for a in args])
        finally:
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
        out, err = capsys.readouterr()
        return code, out, err

    return call
