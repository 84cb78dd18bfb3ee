"""``stream-cam export``: the explainer of a model as a file that LiteRT (or TensorFlow Serving) runs.

Written under a temporary name and published when complete, never over an existing file
without ``--overwrite``. After writing a ``.tflite`` file, it is opened with LiteRT and checked
against the engine on a built-in photo: same top class, and how far apart the heatmaps are.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import InputError, OutputError
from ..sinks.files import check_output_path, publish, temporary_path

if TYPE_CHECKING:  # the engine's modules load TensorFlow
    from ..engine.gradcam import CAM

log = logging.getLogger(__name__)

FORMATS = ("tflite", "savedmodel")
PRECISIONS = ("f32", "f16")
CHECK_PHOTO = "chelsea"

@dataclass
class ExportOptions:
    output: Path
    format: str = "tflite"
    precision: str = "f32"
    overwrite: bool = False

    def validate(self) -> None:
        """Before TensorFlow loads: the format, the precision and the output name."""
        if self.format not in FORMATS:
            raise InputError(f"--format {self.format}: choose one of {', '.join(FORMATS)}")
        if self.precision not in PRECISIONS:
            raise InputError(f"--precision {self.precision}: choose one of {', '.join(PRECISIONS)}")
        if self.format == "tflite":
            if self.output.suffix.lower() != ".tflite":
                raise OutputError(f"-o {self.output}: a LiteRT model is written as NAME.tflite")
            check_output_path(self.output, self.overwrite)
        else:
            if self.precision != "f32":
                raise InputError("--precision f16 applies to --format tflite")
            if self.output.exists():
                raise OutputError(f"-o {self.output} exists; a SavedModel is a new folder: give another name")
            if not self.output.parent.is_dir():
                raise OutputError(f"cannot write {self.output}: folder {self.output.parent} does not exist")

@dataclass
class ExportReport:
    path: Path
    size_bytes: int
    top1_engine: int | None = None
    top1_exported: int | None = None
    max_heatmap_difference: float | None = None

def run_export(cam: CAM, options: ExportOptions) -> ExportReport:
    from ..engine.export import check_exportable, save_archive, to_tflite

    options.validate()
    if options.format == "savedmodel":
        tmp = options.output.with_name(f".{options.output.name}.part")
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            save_archive(cam, tmp, "f32")
            tmp.rename(options.output)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        size = sum(f.stat().st_size for f in options.output.rglob("*") if f.is_file())
        return ExportReport(options.output, size)
    check_exportable(cam.method_name)
    blob = to_tflite(cam, options.precision)
    tmp = temporary_path(options.output)
    try:
        tmp.write_bytes(blob)
        report = check_against_engine(cam, tmp)
        report.path = publish(tmp, options.output, options.overwrite)
    finally:
        tmp.unlink(missing_ok=True)
    return report

def check_against_engine(cam: CAM, path: Path) -> ExportReport:
    """Open the written file with LiteRT and compare it with the engine on a real photo."""
    from ..engine.export import compare_with_engine
    from ..sources.images import builtin_image

    top_engine, top_file, difference = compare_with_engine(cam, path, builtin_image(CHECK_PHOTO))
    return ExportReport(path, path.stat().st_size, top_engine, top_file, difference)
