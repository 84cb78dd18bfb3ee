"""Rendering: matplotlib colormaps through cv2.LUT, overlays, peaks."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib import colormaps

from helpers import resized_map
from stream_cam.errors import InputError
from stream_cam.pixels import peak_xy
from stream_cam.render.overlay import colorize, overlay_heatmap


@pytest.mark.parametrize("name", ["jet", "viridis", "inferno", "coolwarm"])
@pytest.mark.unit
def test_lut_matches_matplotlib_indexing(name, rng):
    # The keras.io example: jet_colors = jet(np.arange(256))[:, :3]; jet_colors[uint8 heatmap]
    heat = rng.uniform(0, 1, (40, 50)).astype(np.float32)
    reference = np.round(colormaps[name](np.arange(256))[:, :3] * 255).astype(np.uint8)
    expected_rgb = reference[np.uint8(np.round(heat * 255))]
    np.testing.assert_array_equal(colorize(heat, name, bgr=False), expected_rgb)
    np.testing.assert_array_equal(colorize(heat, name, bgr=True), expected_rgb[..., ::-1])


@pytest.mark.unit
def test_jet_is_matplotlibs_not_opencvs():
    import cv2

    levels = np.arange(256, dtype=np.uint8).reshape(16, 16)
    ours = colorize(levels / 255.0, "jet")
    theirs = cv2.applyColorMap(levels, cv2.COLORMAP_JET)
    assert np.abs(ours.astype(int) - theirs).max() > 10  # the tables really differ


@pytest.mark.unit
def test_overlay_keeps_the_frame_size_and_blends(rng):
    frame = rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)
    heat = np.zeros((7, 7), np.float32)
    heat[3, 3] = 1.0
    out = overlay_heatmap(frame, heat, alpha=0.5)
    assert out.shape == frame.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(overlay_heatmap(frame, heat, alpha=0.0), frame)
    full = overlay_heatmap(frame, heat, alpha=1.0, bgr=True)
    # Equal, up to the 8-bit quantisation before the resize, to colouring the resized float map.
    exact = colorize(resized_map(heat, 480, 640)).astype(int)
    assert np.abs(full - exact).max() <= 12 and np.abs(full - exact).mean() < 1
    # Hot centre is dark red in BGR (jet(1) = (0.5, 0, 0)), the cold corner dark blue.
    assert full[240, 320, 2] > 120 and full[240, 320, 0] < 10
    assert full[0, 0, 0] > 120 and full[0, 0, 2] < 10
    # The Python API's frames are RGB (as GradCAM takes them): the same heat is red in channel 0.
    rgb = overlay_heatmap(frame, heat, alpha=1.0)
    np.testing.assert_array_equal(rgb, full[..., ::-1])
    assert rgb[240, 320, 0] > 120 and rgb[240, 320, 2] < 10


@pytest.mark.unit
def test_overlay_survives_nan_and_inf(rng):
    frame = rng.integers(0, 255, (5, 9, 3), dtype=np.uint8)
    heat = np.array([[np.nan, np.inf], [-np.inf, 0.5]], np.float32)
    out = overlay_heatmap(frame, heat)
    assert out.shape == frame.shape and out.dtype == np.uint8


@pytest.mark.unit
def test_overlay_rejects_bad_arguments():
    frame = np.zeros((10, 10, 3), np.uint8)
    with pytest.raises(InputError, match="alpha"):
        overlay_heatmap(frame, np.zeros((2, 2)), alpha=1.5)
    with pytest.raises(InputError, match="colormap 'jetz'.*jet"):
        overlay_heatmap(frame, np.zeros((2, 2)), colormap="jetz")
    with pytest.raises(InputError, match="unsupported image shape"):
        overlay_heatmap(np.zeros((10, 10, 5), np.uint8), np.zeros((2, 2)))
    with pytest.raises(InputError, match="2-D"):
        overlay_heatmap(frame, np.zeros((2, 2, 2)))


@pytest.mark.unit
def test_peak_maps_to_original_pixels():
    heat = np.zeros((7, 7), np.float32)
    heat[6, 0] = 1.0  # bottom-left cell
    x, y = peak_xy(heat, 300, 451)
    assert x < 451 / 7 and y > 300 * 6 / 7
    assert peak_xy(np.full((7, 7), np.nan), 10, 10) == (0, 0)


@pytest.mark.unit
def test_the_status_line_says_when_not_every_top_k_row_fits():
    from stream_cam.render.hud import HudState, draw_hud, panel_layout, status_line

    top = [(f"class {i}", 0.1 - i / 200) for i in range(10)]
    state = HudState(top=top, explained=0, explained_label="class 0")
    rows = panel_layout(640, 480, 1.0, len(top)).rows
    assert rows < len(top)  # --top-k 10 on a 640x480 frame: not every row fits
    assert f"top {rows} of 10 shown" in status_line(state, rows)
    assert "shown" not in status_line(state, 10)
    draw_hud(np.zeros((480, 640, 3), np.uint8), state)


@pytest.mark.unit
def test_a_class_outside_the_top_k_shows_its_probability():
    from stream_cam.render.hud import HudState, draw_hud

    top = [("tabby", 0.5), ("tiger cat", 0.2)]
    frames = []
    for score in (None, 0.013):
        state = HudState(top=top, explained=-1, explained_label="chow", explained_score=score)
        frames.append(draw_hud(np.zeros((480, 640, 3), np.uint8), state))
    # The same panel, with the percentage drawn at the right of the explained row only when known.
    differs = np.argwhere((frames[0] != frames[1]).any(axis=2))
    assert len(differs) and differs[:, 1].min() > 200


@pytest.mark.unit
def test_a_label_too_long_is_cut_between_words():
    import cv2

    from stream_cam.render.draw import fit

    width = cv2.getTextSize("Windsor t...", cv2.FONT_HERSHEY_SIMPLEX, 0.4, 1)[0][0]
    assert fit("Windsor tie", width, 0.4, 1) == "Windsor..."  # never "Windsor t..."
    assert fit("Windsor tie", 10_000, 0.4, 1) == "Windsor tie"
    one_word = fit("Chihuahua", width // 2, 0.4, 1)  # a first word alone too wide: cut within it
    assert one_word.endswith("...") and "Chihuahua".startswith(one_word[:-3]) and len(one_word) < 12


@pytest.mark.unit
def test_recordings_carry_the_hud_but_not_the_operators_overlays(rng):
    from stream_cam.frames import Explanation, Frame
    from stream_cam.jobs.live_stream import shown_source
    from stream_cam.jobs.pipeline import FramePipeline, Look, StreamView
    from stream_cam.render.hud import HudState

    image = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    heat = rng.random((7, 7)).astype(np.float32)
    frame = Frame(3, image, 0.1, 0.0)
    explanation = Explanation(frame, heat, 1, [(1, 0.8), (0, 0.2)], 5.0, probability=0.8)
    pipeline = FramePipeline(explainer=None, label=lambda c: f"class {c}")  # type: ignore[arg-type]

    def drawn(operator: bool, busy: bool):
        hud = HudState(source=shown_source("/home/me/private/phone.mp4"), recording=busy)
        if busy:
            hud.say("saved /home/me/private/stream_cam_1.png")
        look = Look(keys=busy, operator=operator)
        return pipeline.annotate(Frame(3, image.copy(), 0.1, 0.0), explanation, heat, StreamView(hud), look, {})

    quiet = drawn(operator=False, busy=False)
    busy = drawn(operator=True, busy=True)
    # The recorded/saved/served picture is the same whether the operator pressed ?, s or r ...
    np.testing.assert_array_equal(busy.image, quiet.image)
    assert quiet.screen is None
    # ... while the window's picture shows the key list, REC and the message.
    assert busy.screen is not None and (busy.screen != busy.image).any(axis=2).mean() > 0.05
    assert shown_source("/home/me/private/phone.mp4") == "phone.mp4" and shown_source("0") == "0"
    assert shown_source("rtsp://cam.local/stream") == "rtsp://cam.local/stream"


@pytest.mark.unit
@pytest.mark.parametrize("size", [(176, 144), (640, 480), (1280, 720)])
def test_the_key_list_never_covers_the_top_k_panel(size):
    from stream_cam.render.frame import decorate
    from stream_cam.render.hud import HudState, panel_bottom

    width, height = size
    top = [("Windsor tie", 0.62), ("suit", 0.2), ("bow tie", 0.05), ("lab coat", 0.03), ("jersey", 0.01)]
    state = HudState(top=top, explained=0, explained_label="Windsor tie", fps=29.9, source="phone.mp4")
    blank = np.full((height, width, 3), 120, np.uint8)
    plain = decorate(blank.copy(), state, operator=True)
    keys = decorate(blank.copy(), state, operator=True, show_keys=True)
    bottom = panel_bottom(blank, state)
    assert bottom > 0
    np.testing.assert_array_equal(keys[:bottom], plain[:bottom])  # the percentages stay readable
    assert (keys[bottom:] != plain[bottom:]).any()  # and the list is drawn
