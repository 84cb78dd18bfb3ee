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
                 "--json", "--steps", "8", "--plot", "curves.png", "--per-frame", "frames.jsonl", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = {row["method"]: row for row in map(json.loads, result.stdout.splitlines())}
    assert set(rows) == {"gradcam", "eigencam", "random", "center"}
    for row in rows.values():
        assert {"deletion_auc", "insertion_auc", "average_drop", "increase_in_confidence"} <= set(row)
        assert 0 <= row["deletion_auc"] <= 1 and 0 <= row["insertion_auc"] <= 1 and row["frames"] == 2
    assert rows["random"]["draws"] == 8
    assert rows["gradcam"]["deletion_auc"] < rows["random"]["deletion_auc"]
    # Two frames are too few for a verdict, whatever the means say.
    for method in ("gradcam", "eigencam"):
        intervals = rows[method]["vs_random"]
        assert set(intervals) == {"deletion_auc", "insertion_auc", "average_drop"}
        assert all(low <= high for low, high in intervals.values())
        assert rows[method]["verdict"] == "inconclusive" and rows[method]["beats_random"] is False
    assert (tmp_path / "curves.png").stat().st_size > 10_000
    lines = [json.loads(line) for line in (tmp_path / "frames.jsonl").read_text().splitlines()]
    assert len(lines) == 2 * 4 and {line["frame"] for line in lines} == {"skimage:chelsea", "skimage:coffee"}
    assert {line["class"] for line in lines if line["frame"] == "skimage:chelsea"} == {285}
    # The summary is the mean of the per-frame lines.
    gradcam = [line["deletion_auc"] for line in lines if line["method"] == "gradcam"]
    assert np.mean(gradcam) == pytest.approx(rows["gradcam"]["deletion_auc"], abs=1e-4)
    table = run("evaluate", "skimage:coffee", "--steps", "4", cwd=tmp_path)
    assert table.returncode == 0 and "deletion AUC" in table.stdout and "random" in table.stdout
    assert "INCONCLUSIVE" in table.stdout and "1 frames are too few for a verdict" in table.stdout


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
    (["evaluate", "--per-frame", "scores.csv"], "name it scores.jsonl"),
    (["evaluate", "--per-frame", "taken.jsonl"], "already exists"),
    (["evaluate", "--draws", "0"], "--draws"),
])
def test_evaluate_bad_input(tmp_path, argv, fragment):
    (tmp_path / "empty").mkdir()
    (tmp_path / "taken.jsonl").write_text("a user's file\n")
    assert_one_line_error(run(*argv, cwd=tmp_path), fragment)
    assert (tmp_path / "taken.jsonl").read_text() == "a user's file\n"


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


@pytest.mark.unit
def test_paired_intervals():
    from stream_cam.engine.verdict import paired_interval

    rng = np.random.default_rng(5)
    better = -0.1 + 0.02 * rng.standard_normal(30)
    low, high = paired_interval(better)
    assert low < better.mean() < high < 0 and high - low < 0.03
    assert paired_interval(better) == (low, high)  # seeded
    wide = paired_interval(rng.standard_normal(30))
    assert wide[0] < 0 < wide[1]
    with pytest.raises(ValueError):
        paired_interval([])
    with pytest.raises(ValueError):
        paired_interval([0.1, 0.2], level=1.5)


@pytest.mark.unit
def test_verdicts_and_frames_needed():
    from stream_cam.engine.verdict import MIN_FRAMES, frames_needed, verdict

    assert verdict((-0.2, -0.1), (0.1, 0.3), 20) == "beats random"
    assert verdict((0.1, 0.2), (-0.3, -0.1), 20) == "worse than random"
    assert verdict((-0.2, 0.01), (0.1, 0.3), 20) == "inconclusive"  # deletion's interval reaches 0
    assert verdict((-0.2, -0.1), (0.1, 0.3), MIN_FRAMES - 1) == "inconclusive"  # too few frames
    assert frames_needed([0.0, 0.0, 0.0]) is None
    # Mean 0.1, spread 0.5: (1.96 * 0.5 / 0.1)^2 = 96 frames.
    values = np.array([0.1 + 0.5, 0.1 - 0.5] * 10)
    assert frames_needed(values) == pytest.approx(1.96 ** 2 * values.std(ddof=1) ** 2 / 0.01, abs=1)


def _red_on_the_left():
    """A classifier whose class 0 means "the left half is red" (known evidence), with fixed weights."""
    import keras

    inputs = keras.Input((32, 32, 3))
    left = keras.layers.Cropping2D(((0, 0), (0, 16)))(inputs)
    red = keras.layers.Conv2D(1, 1, activation="relu", name="redness")(left)
    scores = keras.layers.Dense(2, activation="softmax")(keras.layers.GlobalAveragePooling2D()(red))
    model = keras.Model(inputs, scores)
    model.get_layer("redness").set_weights([np.array([1.0, -0.5, -0.5]).reshape(1, 1, 3, 1), np.zeros(1)])
    model.layers[-1].set_weights([np.array([[10.0, -10.0]]), np.array([-6.0, 6.0])])
    return model


def test_the_verdict_on_maps_whose_answer_is_known():
    """Deletion/insertion and ROAD alike: the evidence beats random, its inverse is worse, noise tells nothing."""
    from stream_cam.jobs.evaluate import MethodScores
    from stream_cam.models.loaded import LoadedModel

    keras_model = _red_on_the_left()
    model = LoadedModel.from_keras(keras_model, scaling="0..1")

    def predict(batch):
        return np.asarray(keras_model(batch))

    rng = np.random.default_rng(0)
    evidence = np.zeros((8, 8), np.float32)
    evidence[:, :4] = 1.0  # the left half
    maps = {"evidence": evidence, "inverse": 1.0 - evidence}
    scores = {name: MethodScores(name) for name in (*maps, "noise", "random")}
    for frame in range(12):
        image = rng.integers(0, 256, (32, 32, 3)).astype(np.uint8)  # noise, and a red left half
        image[:, :16] = (rng.integers(200, 256), rng.integers(0, 30), rng.integers(0, 30))
        assert predict(model.preprocess(image[None]))[0, 0] > 0.5  # class 0 is the top class
        for name, heat in (*maps.items(), ("noise", random_map((8, 8), seed=1000 + frame))):
            scores[name].frames.append([score_map(model, predict, image, heat, 0, steps=8, road=True)])
        scores["random"].frames.append([score_map(model, predict, image, random_map((8, 8), seed=8 * frame + d), 0,
                                                  steps=8, road=True) for d in range(8)])
    verdicts = {name: scores[name].against(scores["random"]) for name in ("evidence", "inverse", "noise")}
    assert verdicts["evidence"]["verdict"] == "beats random" and verdicts["evidence"]["beats_random"]
    assert verdicts["inverse"]["verdict"] == "worse than random" and not verdicts["inverse"]["beats_random"]
    assert verdicts["noise"]["verdict"] == "inconclusive"
    low, high = verdicts["evidence"]["vs_random"]["deletion_auc"]
    assert low <= high < 0
    # ROAD: imputing the red half from its neighbours removes the evidence only once all of it is gone
    assert verdicts["evidence"]["road_verdict"] == "beats random"
    assert verdicts["inverse"]["road_verdict"] == "worse than random"
    assert verdicts["noise"]["road_verdict"] == "inconclusive"
    assert verdicts["evidence"]["vs_random"]["road_morf_auc"][1] < -0.3  # MoRF falls at half the pixels
    evidence_curve = scores["evidence"].frames[0][0].road.morf
    assert evidence_curve[4] > 0.9 > 0.1 > evidence_curve[5]  # 40% removed: red left; 50%: none


# -- ROAD: noisy linear imputation, against an independent dense solve --

def _impute_densely(image: np.ndarray, removed: np.ndarray) -> np.ndarray:
    """The reference: one equation per removed pixel, written pixel by pixel and solved densely.
    A removed pixel is the weighted mean of its in-image neighbours (1/6 sides, 1/12 diagonals)."""
    height, width = removed.shape
    unknown = [(y, x) for y in range(height) for x in range(width) if removed[y, x]]
    index = {p: i for i, p in enumerate(unknown)}
    a = np.zeros((len(unknown), len(unknown)))
    b = np.zeros((len(unknown), image.shape[2]))
    for i, (y, x) in enumerate(unknown):
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                ny, nx = y + dy, x + dx
                if (dy, dx) == (0, 0) or not (0 <= ny < height and 0 <= nx < width):
                    continue
                weight = 1 / 12 if dy and dx else 1 / 6
                a[i, i] += weight
                if removed[ny, nx]:
                    a[i, index[(ny, nx)]] -= weight
                else:
                    b[i] += weight * image[ny, nx]
    out = image.astype(np.float64).copy()
    solved = np.linalg.solve(a, b)
    for i, (y, x) in enumerate(unknown):
        out[y, x] = solved[i]
    return out


@pytest.mark.unit
@pytest.mark.parametrize("shape, fraction, seed", [((9, 12), 0.3, 0), ((16, 11), 0.7, 1), ((5, 5), 0.96, 2),
                                                   ((12, 12), 0.5, 3)])
def test_road_imputation_matches_a_dense_solve(shape, fraction, seed):
    from stream_cam.engine.road import NOISE_GREY, impute

    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (*shape, 3)).astype(np.float64)
    removed = rng.random(shape) < fraction
    removed[0, 0] = False  # something to impute from
    filled = impute(image, removed, noise=0.0)
    np.testing.assert_allclose(filled, _impute_densely(image, removed), atol=1e-8)
    np.testing.assert_array_equal(filled[~removed], image[~removed])  # known pixels untouched
    # The property itself: a removed pixel inside the image is its eight neighbours' weighted mean
    inside = np.zeros(shape, bool)
    inside[1:-1, 1:-1] = True
    y, x = np.argwhere(removed & inside)[0]
    weights = np.array([[1, 2, 1], [2, 0, 2], [1, 2, 1]]) / 12
    np.testing.assert_allclose((filled[y - 1:y + 2, x - 1:x + 2] * weights[..., None]).sum((0, 1)), filled[y, x],
                               atol=1e-8)
    # Noise: seeded, on the removed pixels only, about ROAD's size
    noisy = impute(image, removed, seed=4)
    np.testing.assert_array_equal(noisy, impute(image, removed, seed=4))
    assert np.array_equal(noisy[~removed], image[~removed])
    assert np.std((noisy - filled)[removed]) == pytest.approx(NOISE_GREY, rel=0.35)


@pytest.mark.unit
def test_road_removes_the_most_and_least_relevant_pixels_in_order():
    from stream_cam.engine.road import FRACTIONS, impute, removal_masks, road_images

    heat = np.arange(100, dtype=np.float32).reshape(10, 10)  # hottest at the bottom right
    masks = removal_masks(heat)
    assert len(masks) == 2 * len(FRACTIONS)
    morf, lerf = masks[:len(FRACTIONS)], masks[len(FRACTIONS):]
    for fraction, most, least in zip(FRACTIONS, morf, lerf):
        assert most.sum() == least.sum() == round(fraction * 100)
    assert morf[1][9, 9] and not morf[1][0, 0] and lerf[1][0, 0] and not lerf[1][9, 9]
    assert all((a <= b).all() for a, b in zip(morf, morf[1:]))  # each step removes more, never less
    image = np.full((10, 10, 3), 100, np.uint8)
    images = road_images(image, heat)
    assert images.shape == (20, 10, 10, 3) and images.dtype == np.uint8
    assert np.abs(images.astype(int) - 100).max() <= 4  # a flat image stays flat, up to the noise
    with pytest.raises(ValueError, match="nothing to impute"):
        impute(image.astype(float), np.ones((10, 10), bool))
    with pytest.raises(ValueError, match="does not match"):
        impute(image.astype(float), np.ones((5, 10), bool))


# -- an exported .tflite file scores itself, through its own uint8 input --

@pytest.mark.slow  # over 15 s measured on 2 cores (ROAD on eight maps, twice)
def test_an_exported_file_scores_what_the_engine_scores(lite0_tflite, lite0_cam):
    from stream_cam.engine.litert import LiteRTExplainer
    from stream_cam.jobs.evaluate import EvaluateOptions, evaluate

    options = EvaluateOptions(steps=6, draws=2, progress=False, road=True)
    paths = ["skimage:chelsea", "skimage:coffee"]
    exported_file = LiteRTExplainer(lite0_tflite)
    exported = {s["method"]: s for s in evaluate({"gradcam": exported_file}, paths, options, scorer=exported_file)}
    engine = {s["method"]: s for s in evaluate({"gradcam": lite0_cam}, paths, options)}
    assert set(exported) == set(engine) == {"gradcam", "random", "center"}
    for method, row in exported.items():
        for metric in ("deletion_auc", "insertion_auc", "road_morf_auc", "road_lerf_auc"):
            assert row[metric] == pytest.approx(engine[method][metric], abs=0.01), (method, metric)
        assert row["average_drop"] == pytest.approx(engine[method]["average_drop"], abs=1.0)  # in %
    assert exported["gradcam"]["vs_random"].keys() == engine["gradcam"]["vs_random"].keys()


def test_evaluate_runs_an_exported_file_without_tensorflow(lite0_tflite, tmp_path):
    from helpers import run_without_tensorflow

    model = str(lite0_tflite)
    result = run_without_tensorflow("evaluate", "skimage:chelsea", "--model", model, "--road", "--json", "--steps",
                                    "4", "--draws", "2", "--per-frame", "frames.jsonl", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = {row["method"]: row for row in map(json.loads, result.stdout.splitlines())}
    assert set(rows) == {"gradcam", "random", "center"}  # the file's one method and the baselines
    assert {"road_morf_auc", "road_lerf_auc"} <= set(rows["gradcam"]["vs_random"])
    assert rows["gradcam"]["road_verdict"] == "inconclusive"  # one frame is too few
    assert 0 <= rows["gradcam"]["road_morf_auc"] <= 1 and rows["random"]["draws"] == 2
    lines = [json.loads(line) for line in (tmp_path / "frames.jsonl").read_text().splitlines()]
    assert len(lines) == 3 and all("road_lerf_auc" in line for line in lines)
    table = run_without_tensorflow("evaluate", "skimage:coffee", "--model", model, "--road", "--steps", "4",
                                   "--draws", "2", cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    assert "ROAD MoRF (lower)" in table.stdout and "ROAD LeRF" in table.stdout.split("bootstrap intervals")[1]
    # The file holds one method: another is refused before any work, in one line
    assert_one_line_error(run_without_tensorflow("evaluate", "--model", model, "--method", "gradcam++",
                                                 cwd=tmp_path), "exported with --method gradcam")


def test_roads_threads_stop_when_a_method_fails_mid_run(tmp_path):
    """The imputation pool and the progress bar are closed even when explaining a frame raises."""
    import threading

    import cv2

    from stream_cam.engine.explainer import CAMResult
    from stream_cam.jobs.evaluate import EvaluateOptions, evaluate
    from stream_cam.models.loaded import LoadedModel

    keras_model = _red_on_the_left()

    class FailsOnTheSecondFrame:
        model = LoadedModel.from_keras(keras_model, scaling="0..1")
        calls = 0

        def predict(self, batch):
            return np.asarray(keras_model(batch))

        def __call__(self, rgb, classes=None):
            self.calls += 1
            if self.calls == 2:
                raise RuntimeError("the engine failed")
            evidence = np.zeros((1, 8, 8), np.float32)
            evidence[:, :, :4] = 1.0
            return CAMResult(evidence, np.array([[0.9, 0.1]], np.float32), np.array([0]))

    image = np.zeros((32, 32, 3), np.uint8)
    image[:, :16] = (0, 0, 255)  # BGR red on the left
    for name in ("a.png", "b.png"):
        cv2.imwrite(str(tmp_path / name), image)
    failing = FailsOnTheSecondFrame()
    with pytest.raises(RuntimeError, match="the engine failed"):
        evaluate({"fails": failing}, [str(tmp_path)], EvaluateOptions(steps=4, draws=2, road=True, progress=False))
    assert failing.calls == 2  # the first frame was scored with ROAD, the second raised
    assert not [t for t in threading.enumerate() if t.name.startswith("road")]


@pytest.mark.unit
def test_the_table_says_when_a_video_had_no_change_to_lag_behind():
    import io

    from stream_cam.jobs.evaluate import print_summaries

    row = {"method": "gradcam", "frames": 2, "deletion_auc": 0.1, "insertion_auc": 0.4, "average_drop": 7.0,
           "increase_in_confidence": 0.0, "stability": {"mean": 0.97, "std": 0.01, "smooth": 0.5, "smoothed_mean": 0.99,
                                                       "smoothed_std": 0.003, "lag_frames": None, "changes": 0}}
    out = io.StringIO()
    print_summaries([row], as_json=False, out=out)
    assert "no change in the video to lag behind" in out.getvalue() and "None" not in out.getvalue()
    row["stability"].update(lag_frames=3, changes=2)
    out = io.StringIO()
    print_summaries([row], as_json=False, out=out)
    assert "smoothing lags 3 frames behind a change (2 changes)" in out.getvalue()
