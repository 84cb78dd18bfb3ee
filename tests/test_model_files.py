"""Model files as an attacker crafts them: byte-mutated and reshaped .tflite exports, a .keras whose
config.json inflates to gigabytes or nests 100,000 deep, a token file that never ends. Each is one
line on stderr and exit 2, quickly, never an internal error or a hang."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile

import pytest

from helpers import REPO, free_port, tiny_cnn

# Runs each crafted file through the CLI in ONE child process (LiteRT is native code: a crash there
# must fail this test, not the test session); prints each file's exit status and last stderr line.
CHILD = """
import contextlib, io, json, sys
from stream_cam.cli import main
results = {}
for path in sys.argv[2:]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["image", "skimage:chelsea", "--model", path, "-o", sys.argv[1], "--overwrite"])
    results[path] = [code, err.getvalue().strip().splitlines()]
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def tiny_export(tmp_path_factory):
    from stream_cam.engine.gradcam import GradCAM
    from stream_cam.jobs.export import ExportOptions, run_export
    from stream_cam.models.loaded import LoadedModel

    cam = GradCAM(LoadedModel.from_keras(tiny_cnn(seed=30), scaling="0..1"))
    return run_export(cam, ExportOptions(tmp_path_factory.mktemp("export") / "tiny.tflite")).path


def test_crafted_tflite_files_are_refused_in_one_line(tiny_export, tmp_path):
    data = tiny_export.read_bytes()
    crafted = []
    # The declared input reshaped to 0x0 (it once spun forever at 100% CPU), and to 1x99999.
    for name, shape in (("zero", (1, 0, 0, 3)), ("huge", (1, 1, 99999, 3))):
        pattern = b"".join(n.to_bytes(4, "little") for n in (1, 32, 32, 3))
        assert pattern in data
        path = tmp_path / f"{name}.tflite"
        path.write_bytes(data.replace(pattern, b"".join(n.to_bytes(4, "little") for n in shape)))
        crafted.append(path)
    # 60 files with one byte changed, spread over the file (seeded: the same files every run).
    import random

    chooser = random.Random(1234)
    for i in range(60):
        offset = chooser.randrange(len(data))
        mutated = bytearray(data)
        mutated[offset] ^= chooser.randrange(1, 256)
        path = tmp_path / f"mutated_{i}.tflite"
        path.write_bytes(bytes(mutated))
        crafted.append(path)
    child = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path / "o.png"), *map(str, crafted)],
                           capture_output=True, text=True, timeout=600, cwd=tmp_path,
                           env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert child.returncode == 0, child.stderr[-2000:]
    results = json.loads(child.stdout.strip().splitlines()[-1])
    for path in crafted[:2]:
        code, lines = results[str(path)]
        assert code == 2 and "is not a stream-cam model" in lines[-1], (path.name, lines)
    for path, (code, lines) in results.items():
        # A mutation in padding may leave a working file (exit 0); anything else is one clear line.
        assert code in (0, 2), (path, code, lines)
        if code == 2:
            assert lines[-1].startswith("stream-cam: error: ") and "internal error" not in lines[-1], (path, lines)


def keras_archive(path, config: bytes) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("metadata.json", json.dumps({"keras_version": "3.15.1"}))
        archive.writestr("config.json", config)


def test_a_config_bomb_and_a_deep_config_are_refused_before_parsing(tmp_path):
    import resource

    from stream_cam.errors import ModelError
    from stream_cam.models.loader import load_model

    bomb, deep = tmp_path / "bomb.keras", tmp_path / "deep.keras"
    keras_archive(bomb, b" " * (200 << 20))  # 200 MB of spaces: a 200 KB file
    keras_archive(deep, b"[" * 100_000 + b"]" * 100_000)
    assert bomb.stat().st_size < 1 << 20
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(ModelError, match="config.json unpacks to 210 MB"):
        load_model(bomb)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100_000  # KiB: never unpacked
    with pytest.raises(ModelError, match="nests deeper than"):
        load_model(deep)


def test_a_token_file_that_never_ends_is_refused(cli, tmp_path):
    for special in ("/dev/zero", str(tmp_path)):
        code, _, err = cli("live", "--source", "demo", "--no-window", "--serve", str(free_port()),
                           "--token-file", special)
        assert code == 2 and err.count("\n") == 1 and "not a regular file" in err, err
