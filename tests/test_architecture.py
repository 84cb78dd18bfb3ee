"""The one-way rule of the data path, read from the source: sources, models, render, sinks and web
import no other part of the package; engine imports only models; jobs and the CLI wire them.
Importing the light parts loads no TensorFlow or Keras."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import REPO

PACKAGE = REPO / "stream_cam"
PARTS = sorted(p.name for p in PACKAGE.iterdir() if p.is_dir() and any(p.rglob("*.py")))
ALLOWED = {"sources": set(), "models": set(), "render": set(), "sinks": set(), "web": set(), "engine": {"models"}}


def imported_parts(path: Path, package: Path = PACKAGE) -> list[tuple[str, int]]:
    """(part, line) for every import of another part of stream_cam in ``path`` (type-only imports too)."""
    tree = ast.parse(path.read_text())
    here = path.relative_to(package).parts[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(here[: len(here) - (node.level - 1)]) if node.level > 1 else list(here)
                target = base + (node.module.split(".") if node.module else [])
                names = [target[0]] if target else [alias.name for alias in node.names]
            elif (node.module or "").startswith("stream_cam."):
                names = [node.module.split(".")[1]]
            else:
                continue
        elif isinstance(node, ast.Import):
            names = [a.name.split(".")[1] for a in node.names if a.name.startswith("stream_cam.")]
        else:
            continue
        found += [(name, node.lineno) for name in names if name in PARTS]
    return found


@pytest.mark.unit
def test_the_parts_exist():
    assert set(ALLOWED) <= set(PARTS) and {"jobs", "cli"} <= set(PARTS)


@pytest.mark.parametrize("part", sorted(ALLOWED))
@pytest.mark.unit
def test_imports_run_one_way(part):
    wrong = [f"{path.relative_to(REPO)}:{line} imports {name}"
             for path in sorted((PACKAGE / part).rglob("*.py"))
             for name, line in imported_parts(path) if name != part and name not in ALLOWED[part]]
    assert not wrong, "\n".join(wrong)


@pytest.mark.unit
def test_the_rule_checker_sees_a_wrong_import(tmp_path):
    # The checker itself must be able to fail: a file in render importing models and sinks is caught.
    bad = tmp_path / "stream_cam" / "render" / "probe.py"
    bad.parent.mkdir(parents=True)
    bad.write_text("from ..models.labels import resolve_class\nfrom stream_cam.sinks import files\n"
                   "from .overlay import overlay_heatmap\nfrom ..errors import InputError\n")
    found = [n for n, _ in imported_parts(bad, tmp_path / "stream_cam")]
    assert [n for n in found if n != "render"] == ["models", "sinks"] and "render" in found


@pytest.mark.unit
def test_light_parts_load_no_tensorflow():
    code = ("import sys\n"
            "import stream_cam.sources.readers, stream_cam.sources.latest, stream_cam.sources.pumps\n"
            "import stream_cam.sources.images, stream_cam.sources.demo\n"
            "import stream_cam.render.overlay, stream_cam.render.hud, stream_cam.render.frame, stream_cam.render.screens\n"
            "import stream_cam.sinks.video, stream_cam.sinks.worker, stream_cam.sinks.recorder, stream_cam.sinks.window\n"
            "import stream_cam.sinks.files, stream_cam.web.server, stream_cam.web.app, stream_cam.web.state\n"
            "import stream_cam.cli, stream_cam.cli.plan, stream_cam.jobs.evaluate, stream_cam.engine.faithfulness\n"
            "heavy = [m for m in ('tensorflow', 'keras') if m in sys.modules]\n"
            "print(heavy)\n"
            "sys.exit(1 if heavy else 0)\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


MAX_MODULE_LINES = 350


@pytest.mark.unit
def test_no_module_is_longer_than_a_newcomer_reads_at_once():
    long = {str(path.relative_to(REPO)): n for path in PACKAGE.rglob("*.py")
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES}
    assert not long, f"split these modules (over {MAX_MODULE_LINES} lines): {long}"
