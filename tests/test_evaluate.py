"""stream-cam evaluate: faithfulness scores that can fail, on the offline model and real photos."""

from __future__ import annotations

import json

import numpy as np
import pytest

from helpers import assert_one_line_error, run, write_clip
from stream_cam.engine.faithfulness import auc, center_map, random_map, score_map


@pytest.mark.unit
def test_auc_of_simple_curves():
    assert auc(np.ones(11)) == pytest.approx(1.0)
    assert auc(np.linspace(1, 0, 11)) == pytest.approx(0.5)
    assert auc(np.zeros(5)) == 0.0


def test_a_faithful_map_deletes_fast_and_inserts_fast(lite0, lite0_cam, photos):
    # Grad-CAM's own map of "Egyptian cat" against the same map turned upside down (least important first).
    cat = photos["chelsea"]
    result = lite0_cam(cat, classes=285)
    heat = result.heatmaps[0]
    good = score_map(lite0, lite0_cam.predict, cat, heat, 285, steps=10)
    inverted = score_map(lite0, lite0_cam.predict, cat, 1.0 - heat, 285, steps=10)
    assert good.deletion[0] == pytest.approx(float(result.probabilities[0, 285]), abs=0.02)  # step 0: the image
    assert good.deletion_auc < inverted.deletion_auc - 0.05
    assert good.insertion_auc > inverted.insertion_auc + 0.05
    assert 0.0 <= good.drop <= 1.0
    assert len(good.deletion) == len(good.insertion) == 11


@pytest.mark.unit
def test_baseline_maps():
    assert random_map((7, 7), seed=1).shape == (7, 7) and not np.array_equal(random_map((7, 7), 1), random_map((7, 7), 2))
    centre = center_map((7, 7))
    assert np.unravel_index(np.argmax(centre), centre.shape) == (3, 3) and centre.min() < 0.2


@pytest.mark.slow  # over 15 s measured on 2 cores
def test_evaluate_json_table_and_plot(tmp_path):
    result = run("evaluate", "skimage:chelsea", "skimage:coffee", "--method", "gradcam", "--method", "eigencam",
                 "--json", "--steps", "8", "--plot", "curves.png", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = {row["method"]: row for row in map(json.loads, result.stdout.splitlines())}
    assert set(rows) == {"gradcam", "eigencam", "random", "center"}
    for row in rows.values():
        assert {"deletion_auc", "insertion_auc", "average_drop", "increase_in_confidence"} <= set(row)
        assert 0 <= row["deletion_auc"] <= 1 and 0 <= row["insertion_auc"] <= 1 and row["frames"] == 2
    # On these photos Grad-CAM beats a random map (checked, not assumed: the field can say False).
    assert rows["gradcam"]["beats_random"] is True
    assert rows["gradcam"]["deletion_auc"] < rows["random"]["deletion_auc"]
    assert (tmp_path / "curves.png").stat().st_size > 10_000
    table = run("evaluate", "skimage:coffee", "--steps", "4", cwd=tmp_path)
    assert table.returncode == 0 and "deletion AUC" in table.stdout and "random" in table.stdout


@pytest.mark.slow  # over 15 s measured on 2 cores
def test_evaluate_takes_folders_and_videos(tmp_path):
    import cv2

    folder = tmp_path / "photos"
    folder.mkdir()
    from stream_cam.sources.images import builtin_image

    cv2.imwrite(str(folder / "rocket.png"), cv2.cvtColor(builtin_image("rocket"), cv2.COLOR_RGB2BGR))
    write_clip(folder / "clip.mp4", frames=10, fps=10)
    result = run("evaluate", "photos", "--every", "5", "--steps", "4", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert all(row["frames"] == 3 for row in rows)  # the image, and frames 0 and 5 of the clip


@pytest.mark.parametrize("argv, fragment", [
    (["evaluate", "missing.png"], "no such file"),
    (["evaluate", "--method", "nope"], "invalid choice"),
    (["evaluate", "--plot", "curves.gif"], "use a .png"),
    (["evaluate", "empty"], "no images or videos"),
])
def test_evaluate_bad_input(tmp_path, argv, fragment):
    (tmp_path / "empty").mkdir()
    assert_one_line_error(run(*argv, cwd=tmp_path), fragment)


@pytest.mark.slow  # over 15 s measured on 2 cores
def test_evaluate_reports_stability_and_smoothing_lag_on_a_video(tmp_path):
    write_clip(tmp_path / "cuts.mp4", frames=60, fps=15, cut_every=20)  # cat, coffee, cat: two scene changes
    result = run("evaluate", "cuts.mp4", "--every", "20", "--steps", "4", "--json", "--smooth", "0.8", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    row = json.loads(result.stdout.splitlines()[0])
    stability = row["stability"]
    assert stability["smooth"] == 0.8 and stability["changes"] >= 2
    assert -1 <= stability["mean"] <= 1 and stability["std"] >= 0
    assert stability["smoothed_mean"] >= stability["mean"]  # smoothing steadies the maps...
    assert stability["lag_frames"] == 0  # ...and resets at a cut instead of dragging the old scene along
    images_only = run("evaluate", "skimage:coffee", "--steps", "4", "--json", cwd=tmp_path)
    assert "stability" not in json.loads(images_only.stdout.splitlines()[0])
