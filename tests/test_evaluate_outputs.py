"""Two identical evaluate runs at once: both print their scores, and neither loses its files."""

from __future__ import annotations

import json

from helpers import start


def test_two_identical_evaluate_runs_both_publish_and_print(tmp_path):
    args = ("evaluate", "skimage:chelsea", "--method", "gradcam", "--steps", "8", "--draws", "2", "--json",
            "--plot", "c.png", "--per-frame", "p.jsonl", "--runtime", "tensorflow")
    runs = [start(*args, cwd=tmp_path) for _ in range(2)]
    outputs = [run.communicate(timeout=300) for run in runs]
    for run, (out, err) in zip(runs, outputs):
        assert run.returncode == 0, err
        scores = [json.loads(line) for line in out.splitlines()]
        assert {s["method"] for s in scores} >= {"gradcam", "random"}  # the scores, always
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["c-2.png", "c.png", "p-2.jsonl", "p.jsonl"], names
    later = "".join(err for _, err in outputs)
    assert "appeared while this run was writing it" in later and "c-2.png" in later
