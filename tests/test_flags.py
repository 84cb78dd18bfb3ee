"""The flag table: every flag is taken by exactly the commands it names, with one default."""

from __future__ import annotations

import argparse

import pytest

from stream_cam import defaults
from stream_cam.cli.flags import COMMANDS, FLAGS, fixed_by_tflite_given
from stream_cam.cli.parser import build_parser
from stream_cam.errors import InputError

pytestmark = pytest.mark.unit

VALUES = {"--alpha": "0.7", "--smooth": "0.3", "--device": "gpu:1"}  # where "2" is not a value
REQUIRED = {"video": ["in.mp4", "-o", "out.mp4"], "export": ["-o", "x.tflite"]}


def _argv(flag_name: str, options: dict) -> list[str]:
    action = options.get("action")
    if action in ("store_true", "store_false"):
        return [flag_name]
    if "choices" in options:
        return [flag_name, list(options["choices"])[-1]]
    if options.get("nargs") == "?":
        return [flag_name]
    return [flag_name, VALUES.get(flag_name, "2")]  # no flag defaults to 2 (or to these)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_flag_is_taken_by_its_commands_and_refused_by_the_others(command):
    parser = build_parser()
    taken = {f.names[-1] for f in FLAGS if command in f.on}
    for f in FLAGS:
        name, options = f.names[-1], f.keywords(command)
        if not name.startswith("--") or options.get("help") == argparse.SUPPRESS:
            continue
        if command in f.on:
            args = parser.parse_args([command, *REQUIRED.get(command, []), *_argv(name, options)])
            assert getattr(args, f.dest) != options.get("default", None), (command, name)
        elif name not in taken:
            with pytest.raises(InputError, match="unrecognized arguments"):
                parser.parse_args([command, *REQUIRED.get(command, []), *_argv(name, f.options)])

def test_shared_defaults_come_from_one_place():
    parser = build_parser()
    for command in ("image", "live", "video", "demo"):
        args = parser.parse_args([command, *REQUIRED.get(command, [])])
        assert (args.alpha, args.colormap) == (defaults.ALPHA, defaults.COLORMAP)
    for command in ("live", "demo"):
        assert parser.parse_args([command]).motion == defaults.MOTION
    # The one per-command difference: video smooths nothing by default, live and demo do.
    assert parser.parse_args(["video", *REQUIRED["video"]]).smooth == 0.0
    assert parser.parse_args(["live"]).smooth == 0.5


def test_the_flags_a_tflite_file_fixes_are_read_from_the_table():
    parser = build_parser()
    assert fixed_by_tflite_given(parser.parse_args(["image", "--model", "m.tflite"])) == []
    given = fixed_by_tflite_given(parser.parse_args(["image", "--model", "m.tflite", "--layer", "x",
                                                     "--weights", "random", "--labels", "l.txt"]))
    assert given == ["--layer", "--weights", "--labels"]


def test_limits_are_the_jobs_own():
    from stream_cam.jobs.video import MAX_BATCH

    parser = build_parser()
    assert parser.parse_args(["video", *REQUIRED["video"], "--batch", str(MAX_BATCH)]).batch == MAX_BATCH
    with pytest.raises(InputError, match="--batch"):
        parser.parse_args(["video", *REQUIRED["video"], "--batch", str(MAX_BATCH + 1)])


@pytest.mark.parametrize("argv, batch", [
    (["video", "in.mp4", "-o", "out.mp4"], 8),  # the default --batch
    (["video", "in.mp4", "-o", "out.mp4", "--batch", "3"], 3),
    (["live", "--source", "a.mp4", "--source", "b.mp4", "--source", "0"], 3),  # a frame of each per call
    (["live"], 1),
    (["image"], 1),
    (["demo"], 1),
])
def test_the_engine_is_timed_at_the_batch_size_each_command_calls_it_with(argv, batch):
    from stream_cam.jobs.engine_spec import EngineSpec

    assert EngineSpec.from_args(build_parser().parse_args(argv)).batch == batch
