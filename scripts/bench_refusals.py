#!/usr/bin/env python
"""How long bad input takes to be refused: wall time from starting ``stream-cam`` to its exit,
for the mistakes a new user makes, each run as a fresh process (median of N runs).

Every case here is knowable without the model, so it is refused before TensorFlow is imported.
Target: under 1 s each. Also prints whether TensorFlow got imported (it must not).

    python scripts/bench_refusals.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


CASES = [
    ("image missing.png", ["image", "missing.png"]),
    ("live --source missing.mp4", ["live", "--source", "missing.mp4", "--no-window"]),
    ("video missing.mp4 -o x.mp4", ["video", "missing.mp4", "-o", "x.mp4"]),
    ("image --class 'egyptian kat'", ["image", "--class", "egyptian kat"]),
    ("demo --serve 0.0.0.0:PORT (no --token)", ["demo", "--no-window", "--serve", "0.0.0.0:{port}"]),
    ("image --model nonet", ["image", "--model", "nonet"]),
    ("video a.mp4 -o out/x.webm", ["video", "a.mp4", "-o", "out/x.webm"]),
    ("live --record exists.mp4", ["live", "--source", "a.mp4", "--record", "a.mp4", "--no-window"]),
    ("live --source 7 (no such camera)", ["live", "--source", "7", "--no-window"]),
    ("live --source /dev/video9 (missing)", ["live", "--source", "/dev/video9", "--no-window"]),
    ("video notes.txt -o x.mp4", ["video", "notes.txt", "-o", "x.mp4"]),
    ("image notes.txt", ["image", "notes.txt"]),
    ("live without a display or --no-window", ["live", "--source", "a.mp4"]),
    ("video a.mp4 -o link (a dangling link)", ["video", "a.mp4", "-o", "link.mp4"]),
]

# Runs the CLI in-process, then reports whether TensorFlow was imported on the way to the error.
PROBE = ("import sys\nfrom stream_cam.cli import main\ncode = main(sys.argv[1:])\n"
         "sys.stderr.write('TF=%s\\n' % ('tensorflow' in sys.modules))\nsys.exit(code)\n")


def write_small_video(path: Path) -> None:
    import cv2
    import numpy as np

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (64, 48))
    for i in range(3):
        writer.write(np.full((48, 64, 3), 40 * i, np.uint8))
    writer.release()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": str(REPO), "DISPLAY": ""}  # no display: as on a server
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        write_small_video(Path(folder) / "a.mp4")  # a real video: the cases refuse something else
        (Path(folder) / "notes.txt").write_text("shopping list\n")  # a text file given as a video or image
        (Path(folder) / "link.mp4").symlink_to("/nonexistent/x.mp4")
        for name, argv in CASES:
            times, tf_loaded, line, code = [], False, "", 0
            for _ in range(args.runs):
                command = [a.format(port=free_port()) for a in argv]
                start = time.perf_counter()
                result = subprocess.run([sys.executable, "-c", PROBE, *command], cwd=folder, env=env,
                                        capture_output=True, text=True, timeout=120)
                times.append(time.perf_counter() - start)
                tf_loaded |= "TF=True" in result.stderr
                line = next((l for l in result.stderr.splitlines() if l.startswith("stream-cam")), "")
                code = result.returncode
            rows.append((name, statistics.median(times), max(times), code, tf_loaded, line))
    print(f"{'bad input':42} {'median s':>9} {'max s':>7} {'exit':>5} {'TF':>4}  first line on stderr")
    for name, median, worst, code, tf_loaded, line in rows:
        print(f"{name:42} {median:9.2f} {worst:7.2f} {code:5d} {'yes' if tf_loaded else 'no':>4}  {line[:90]}")
    slow = [r for r in rows if r[1] >= 1.0 or r[4]]
    print(f"\n{len(rows) - len(slow)} of {len(rows)} refused in under 1 s without TensorFlow")


if __name__ == "__main__":
    main()
