"""Per-frame results as one Parquet table (``--results FILE.parquet``), readable with pandas and pyarrow.

One row per frame of every video in the job: which video, the frame's index and time, the top-k
classes with their labels and probabilities, the explained class, where its heatmap peaks (pixels
of the frame), the CAM method, and the heatmap's stability (correlation with the previous one of
the same class). Rows are built from the same record as the JSONL log's lines (``frame_record``).

The table is written under a temporary name, in row groups as frames arrive, and published when
the job ends: never half a table under the final name, never over a file without ``overwrite``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable, Iterable

from ..checks import installed
from ..errors import InputError, OutputError
from .files import check_output_path, publish, temporary_path
from .worker import Annotated, frame_record

log = logging.getLogger(__name__)

ROW_GROUP = 4096
PARQUET_SUFFIXES = (".parquet", ".pq")


def _schema() -> Any:
    import pyarrow as pa

    return pa.schema([
        ("video", pa.string()), ("frame", pa.int64()), ("t", pa.float64()),
        ("class", pa.int32()), ("label", pa.string()), ("score", pa.float32()),
        ("peak_x", pa.int32()), ("peak_y", pa.int32()),
        ("top_classes", pa.list_(pa.int32())), ("top_labels", pa.list_(pa.string())),
        ("top_scores", pa.list_(pa.float32())),
        ("method", pa.string()), ("runtime", pa.string()), ("stability", pa.float32()),
    ])


COLUMNS = ("video", "frame", "t", "class", "label", "score", "peak_x", "peak_y",
           "top_classes", "top_labels", "top_scores", "method", "runtime", "stability")


def check_results_path(path: Path, overwrite: bool) -> None:
    """Before any work: pyarrow is there, the name ends in .parquet, and nothing is overwritten."""
    if path.suffix.lower() not in PARQUET_SUFFIXES:
        raise OutputError(f"--results {path}: the table is written as Parquet; name it {path.stem}.parquet")
    if not installed("pyarrow"):
        raise InputError('--results needs pyarrow: pip install "stream-cam[results]" (or pip install pyarrow)')
    check_output_path(path, overwrite)


def results_row(video: str, item: Annotated, label: Callable[[int], str]) -> dict:
    """One frame's row (see the module's docstring)."""
    record = frame_record(item, label)
    explained = record["explained"]
    peak_x, peak_y = explained["peak_xy"]
    return {
        "video": video, "frame": record["frame"], "t": record["t"],
        "class": explained["index"], "label": explained["label"], "score": explained["score"],
        "peak_x": peak_x, "peak_y": peak_y,
        "top_classes": [entry["index"] for entry in record["top"]],
        "top_labels": [entry["label"] for entry in record["top"]],
        "top_scores": [entry["score"] for entry in record["top"]],
        "method": record["method"], "runtime": record["runtime"], "stability": record["stability"],
    }


def read_rows_of(path: Path, videos: Iterable[str]) -> Any:
    """The rows of ``videos`` in an earlier table at ``path`` (``--resume`` keeps them), or None."""
    import pyarrow.parquet as pq
    import pyarrow.compute as pc

    wanted = sorted(set(videos))
    if not wanted or not path.is_file():
        return None
    try:
        table = pq.read_table(path)
    except (OSError, ValueError) as exc:
        raise InputError(f"--resume: cannot read the earlier results {path}: {exc}") from exc
    if table.schema.names != list(COLUMNS):
        raise InputError(f"--resume: {path} is not a stream-cam results table; give another --results name")
    return table.filter(pc.is_in(table["video"], value_set=_string_array(wanted)))


def _string_array(values: list[str]) -> Any:
    import pyarrow as pa

    return pa.array(values, pa.string())


class ResultsTable:
    """The Parquet table of a job: ``add(rows)`` as frames come, ``close()`` publishes it.

    ``keep``: rows of an earlier table carried over (the videos ``--resume`` skipped)."""

    def __init__(self, path: Path, overwrite: bool = False, keep: Any = None) -> None:
        import pyarrow.parquet as pq

        self.path = Path(path)
        self.rows = 0
        self._overwrite = overwrite
        self._schema = _schema()
        self._pending: list[dict] = []
        self._tmp = temporary_path(self.path)
        try:
            self._writer: Any = pq.ParquetWriter(self._tmp, self._schema)
        except OSError as exc:
            self._tmp.unlink(missing_ok=True)
            raise OutputError(f"cannot write {self.path}: {exc}") from exc
        if keep is not None and keep.num_rows:
            self._writer.write_table(keep.cast(self._schema))
            self.rows += keep.num_rows

    def add(self, rows: Iterable[dict]) -> None:
        before = len(self._pending)
        self._pending.extend(rows)
        self.rows += len(self._pending) - before
        if len(self._pending) >= ROW_GROUP:
            self._flush()

    def _flush(self) -> None:
        import pyarrow as pa

        if self._pending and self._writer is not None:
            self._writer.write_table(pa.Table.from_pylist(self._pending, schema=self._schema))
        self._pending = []

    def close(self) -> Path | None:
        """Finish the file and give it its final name; returns where it is."""
        if self._writer is None:
            return None
        try:
            self._flush()
        finally:
            writer, self._writer = self._writer, None
            writer.close()
        return publish(self._tmp, self.path, self._overwrite)


class VideoRows:
    """A sink for the writer thread: each annotated frame of one video becomes a row."""

    def __init__(self, table: ResultsTable, video: str, label: Callable[[int], str]) -> None:
        self.table, self.video, self._label = table, video, label

    def write_annotated(self, item: Annotated) -> None:
        self.table.add([results_row(self.video, item, self._label)])

    def close(self) -> None:
        pass  # the table spans the job's videos; the job closes it
