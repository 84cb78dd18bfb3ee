"""``stream-cam video --ray``: many videos on a Ray cluster, written exactly as the local command writes them.

The data path:

    driver: plan chunks  ->  actors: read + explain + draw a chunk  ->  driver: stitch in order, encode
            (per video)      (a pool, one engine each, built once)       (one output per input, the table)

- Each worker (a Ray actor) builds the engine once and then explains chunks of frames; a chunk is
  a streaming task that hands back one packet per batch (annotated frames and their table rows),
  so the progress bar moves as the workers work and no chunk is held whole anywhere.
- The driver writes the packets in frame order into one output per input, with the local
  command's writer: same frame count, size, fps and codec. The driver needs no TensorFlow.
- A worker that dies has the rest of its chunk run again on a restarted worker: the packets already
  received are kept, so every frame lands exactly once. An input that cannot be read fails alone.
  Ctrl-C stops the workers; unfinished videos keep their frames as NAME.partial. GPUs: --gpus-per-worker.
"""

from __future__ import annotations

import logging
import sys
import time
from collections import deque
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

from ..errors import InputError, OutputError
from ..sinks.files import publish, temporary_path
from ..sinks.results import ResultsTable
from ..sinks.video import VideoSink
from ..sources.readers import VideoInfo
from .chunks import Chunk, plan_chunks, warmup_frames
from .engine_spec import EngineSpec
from .ray_cluster import LOCAL, cause_of, actor_resources, check_ray_available, connect
from .ray_worker import ChunkFailed, ChunkWorker, Packet
from .signals import StopSignals
from .video import VideoOptions, VideoResult, VideoRun, add_sound, keep_partial, progress_bar
from .video_job import open_results, prepare_job, probe_input, report

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3  # runs of one chunk's frames before its video is given up
WAIT_S = 0.5  # how often the driver looks at Ctrl-C while it waits for packets


@dataclass(frozen=True)
class RayOptions:
    address: str = LOCAL  # "local", "auto", HOST:PORT or ray://HOST:PORT
    workers: int | None = None  # default: one per CPU of the cluster (per GPU share with gpus_per_worker)
    chunk: int | None = None  # frames per chunk (default: chunks.DEFAULT_CHUNK)
    gpus_per_worker: float | None = None  # each worker an actor with this many GPUs, its engine on one


@dataclass
class _Video:
    """One input on the driver: its chunks, and its output while it is written."""

    position: int  # in the job's inputs
    spec: str
    path: Path
    info: VideoInfo
    chunks: list[Chunk]
    sink: VideoSink | None = None
    tmp: Path | None = None
    rows: list[dict] = field(default_factory=list)
    cut: bool = False  # it ended before its last planned frame: nothing after that is written
    error: str = ""  # why, when a frame could not be read (a file shorter than its header is not an error)
    result: VideoResult | None = None  # once finished and published


@dataclass
class _Task:
    """A run of (the rest of) one chunk on one worker."""

    chunk: Chunk  # the chunk as planned
    start: int  # first frame this run delivers (after a retry: where the last run stopped)
    attempt: int = 1
    worker: Any = None


@dataclass
class _ChunkState:
    packets: deque = field(default_factory=deque)
    received: int = 0
    finished: bool = False  # no more packets will come
    failure: str = ""  # why it finished early, if a frame could not be read


class RayJob:
    """The driver's loop: hand chunks to idle workers, receive packets, write them in order."""

    def __init__(self, ray: Any, spec: EngineSpec, options: VideoOptions, cluster: RayOptions,
                 videos: list[_Video], table: ResultsTable | None, stop: StopSignals) -> None:
        self.ray, self.options, self.videos, self.table, self.stop = ray, options, videos, table, stop
        count, gpus = actor_resources(ray, cluster.workers, cluster.gpus_per_worker)
        spec = replace(spec, device="gpu") if gpus else spec  # Ray gives each actor its GPUs (CUDA_VISIBLE_DEVICES)
        actor = ray.remote(ChunkWorker).options(num_cpus=1, num_gpus=gpus, max_restarts=MAX_ATTEMPTS, max_task_retries=0)
        started = time.perf_counter()
        self.workers = [actor.remote(spec, options, 1) for _ in range(count)]
        self._check_workers()
        self.ready_s, self.idle = time.perf_counter() - started, deque(self.workers)
        self.active: dict[Any, _Task] = {}  # a running chunk's packet stream -> its task
        self.reviving: dict[Any, Any] = {}  # a ping answered once a restarted worker is back -> the worker
        self.states: dict[Chunk, _ChunkState] = {}
        self.chunk_seconds: list[float] = []  # each chunk, from its start to its last packet
        self.write_s = 0.0  # the driver's time spent encoding
        self._began: dict[Chunk, float] = {}

    def _check_workers(self) -> None:
        """Every worker built its engine, or one clear error (a model that cannot load, ...)."""
        try:
            self.ray.get([worker.pid.remote() for worker in self.workers])
        except self.ray.exceptions.RayError as exc:
            self.close()
            raise OutputError(f"the Ray workers could not build the engine: {cause_of(exc)}") from exc

    def run(self, bar: Any) -> str:
        """Process every video; returns the stop signal's name if stopped, else ''."""
        order = [chunk for video in self.videos for chunk in video.chunks]
        position = {chunk: i for i, chunk in enumerate(order)}
        queue: deque[_Task] = deque(_Task(chunk, chunk.start) for chunk in order)
        head = 0  # the next chunk (in ``order``) to write
        ahead = 2 * len(self.workers) + 1  # chunks running or waiting to be written, at most
        while head < len(order):
            if self.stop.requested:
                return self.stop.requested
            while queue and self.idle and position[queue[0].chunk] < head + ahead:
                self._start(queue.popleft())
            waiting = [*self.active, *self.reviving]
            if not waiting and not self.idle:
                raise OutputError("every Ray worker died; the finished videos are kept, run again with --resume")
            if waiting:
                ready, _ = self.ray.wait(waiting, num_returns=1, timeout=WAIT_S)
                for item in ready:
                    if item in self.reviving:
                        self._revived(item)
                        continue
                    retry = self._receive(item, bar)
                    if retry is not None:
                        queue.appendleft(retry)
            head = self._write(order, head, queue)
        return ""

    def _start(self, task: _Task) -> None:
        chunk = task.chunk
        warmup = chunk.warmup if task.start == chunk.start else min(
            warmup_frames(self.options.smooth, self.options.batch), task.start)
        video = self.videos[chunk.video]
        task.worker = self.idle.popleft()  # it may run elsewhere (another node, folder): it gets the absolute path
        generator = task.worker.explain.remote(str(Path(video.spec).resolve()), video.spec,
                                               Chunk(chunk.video, task.start, chunk.stop, warmup))
        self.active[generator] = task
        self.states.setdefault(chunk, _ChunkState())
        self._began.setdefault(chunk, time.perf_counter())

    def _receive(self, generator: Any, bar: Any) -> _Task | None:
        """Take the next packet of a chunk; returns a task to run again when its worker died."""
        task = self.active[generator]
        # A chunk of a video that already ended (an earlier frame could not be read): dropped.
        state = self.states.get(task.chunk) or _ChunkState()
        try:
            item = self.ray.get(next(generator))
        except StopIteration:
            self._free(generator, task)
            state.finished = True
            self.chunk_seconds.append(time.perf_counter() - self._began[task.chunk])
            return None
        except self.ray.exceptions.RayTaskError as exc:  # our code failed: the input cannot be read on
            self._free(generator, task)
            state.finished, state.failure = True, cause_of(exc)
            return None
        except self.ray.exceptions.RayError as exc:  # the worker died (killed, out of memory, node lost)
            # It is restarted by Ray (max_restarts); it takes work again once it answers a ping.
            self._free(generator, task, alive=False)
            if task.chunk not in self.states:
                return None
            if task.attempt >= MAX_ATTEMPTS:
                state.finished, state.failure = True, f"a worker died {MAX_ATTEMPTS} times on it ({cause_of(exc)})"
                return None
            log.warning("a worker died during frames %d-%d of %s; running them again",
                        task.chunk.start + state.received, task.chunk.stop - 1, self.videos[task.chunk.video].spec)
            return _Task(task.chunk, task.chunk.start + state.received, task.attempt + 1)
        if isinstance(item, ChunkFailed):  # the last item: the stream ends right after it
            state.failure = item.reason
            return None
        packet: Packet = item
        if packet.first != (due := task.chunk.start + state.received):  # in order, each once
            raise OutputError(f"internal error: frame {packet.first} arrived where frame {due} was due")
        state.packets.append(packet)
        state.received += len(packet.images)
        if bar is not None:
            bar.update(len(packet.images))
        return None

    def _free(self, generator: Any, task: _Task, alive: bool = True) -> None:
        del self.active[generator]
        if alive:
            self.idle.append(task.worker)
        else:
            self._ping(task.worker)

    def _ping(self, worker: Any) -> None:
        """Ask a restarting worker for its pid; Ray holds the call until the worker is back."""
        self.reviving[worker.pid.options(max_task_retries=-1).remote()] = worker

    def _revived(self, ping: Any) -> None:
        worker = self.reviving.pop(ping)
        try:
            self.ray.get(ping)
        except self.ray.exceptions.ActorUnavailableError:
            self._ping(worker)
            return
        except self.ray.exceptions.RayError as exc:  # out of restarts: the pool goes on without it
            log.warning("a Ray worker is gone for good (%s); %d left", cause_of(exc),
                        len(self.idle) + len(self.active) + len(self.reviving))
            return
        self.idle.append(worker)

    def _write(self, order: list[Chunk], head: int, queue: deque) -> int:
        """Write every packet that is next in line; finish each video after its last chunk."""
        while head < len(order):
            chunk = order[head]
            state = self.states.get(chunk)
            if state is None:
                return head
            video = self.videos[chunk.video]
            while state.packets:
                packet = state.packets.popleft()
                if not video.cut:
                    self._append(video, packet)
            if not state.finished:
                return head
            del self.states[chunk]
            head += 1
            known = video.info.frame_count is not None
            if not video.cut and (state.failure or (known and state.received < chunk.frames)):
                # The video ends here: nothing after its first unreadable frame is written.
                video.cut, video.error = True, state.failure
                for later in order[head:]:
                    if later.video == chunk.video:
                        self.states.setdefault(later, _ChunkState()).finished = True
                for task in [task for task in queue if task.chunk.video == chunk.video]:
                    queue.remove(task)
            if chunk is video.chunks[-1]:
                self._finish(video)
        return head

    def _append(self, video: _Video, packet: Packet) -> None:
        if video.sink is None:
            video.tmp = temporary_path(video.path)
            video.sink = VideoSink(video.tmp, video.info.width, video.info.height, video.info.fps,
                                   self.options.codec, overwrite=True).open()
        began = time.perf_counter()
        for image in packet.images:
            video.sink.write(image)
        self.write_s += time.perf_counter() - began
        video.rows.extend(packet.rows)

    def _finish(self, video: _Video) -> None:
        """Close the video's file and give it its final name; its rows go to the table."""
        written, final = 0, video.path
        if video.sink is not None:
            video.sink.close()
            written = video.sink.frames_written
            if video.tmp is not None:
                video.tmp = add_sound(video.tmp, video.spec, video.path)
                final = publish(video.tmp, video.path, self.options.overwrite or self.options.resume, elsewhere=True)
            video.tmp = None
        if self.table is not None:
            self.table.add(video.rows)
        video.rows, info, error = [], video.info, ""
        if video.error:
            error = (f"{info.source}: reading failed after frame {written - 1}: {video.error}; "
                     f"the {written} frames before it are in {final}") if written else \
                f"{info.source}: cannot be read: {video.error}"
        sink = video.sink
        video.result = VideoResult(info.source, final, written, info.fps, expected=info.frame_count,
                                   requested=video.path, error=error,
                                   padded_to=sink.encoded_size if sink is not None and sink.padded else None)

    def close(self) -> None:
        """Stop the workers; an unfinished video keeps its frames done as NAME.partial, as locally."""
        for worker in self.workers:
            self.ray.kill(worker)
        for video in self.videos:
            if video.result is None and video.sink is not None:
                video.sink.close()
            if video.tmp is not None and video.sink is not None and video.sink.frames_written:  # in order
                keep_partial(add_sound(video.tmp, video.spec, video.path), video.path, video.sink.frames_written)
            elif video.tmp is not None:
                video.tmp.unlink(missing_ok=True)
            video.tmp = None


def run_videos_on_ray(spec: EngineSpec, inputs: Sequence[str], output: Path, options: VideoOptions,
                      cluster: RayOptions, timings: dict | None = None) -> VideoRun:
    """``stream-cam video IN... -o OUT --ray``: the local command's outputs, made by a Ray cluster.

    ``timings`` (benchmarks) receives seconds: connect, workers (ready), run, write, and the chunks'."""
    check_ray_available()
    paths, done = prepare_job(inputs, output, options)
    results: dict[int, VideoResult] = {}
    videos: list[_Video] = []
    for position, (spec_, path, skip) in enumerate(zip(inputs, paths, done)):
        if skip:
            results[position] = VideoResult(spec_, path, 0, 0.0, skipped=True)
            continue
        try:
            info = probe_input(spec_)
        except (InputError, ConnectionError) as exc:
            if len(inputs) == 1:
                raise
            results[position] = VideoResult(spec_, path, 0, 0.0, error=str(exc))
            continue
        chunks = plan_chunks(len(videos), info.frame_count or 0, cluster.chunk, options.batch, options.smooth)
        videos.append(_Video(position, spec_, path, info, chunks))
    table = open_results(options, [spec_ for spec_, skip in zip(inputs, done) if skip])
    stopped = ""
    timings = {} if timings is None else timings
    try:
        began = time.perf_counter()
        with StopSignals() as stop, connect(cluster.address) as ray:
            timings["connect"] = time.perf_counter() - began
            job = RayJob(ray, spec, options, cluster, videos, table, stop)
            timings["workers"] = job.ready_s
            bar = progress_bar(sum(video.info.frame_count or 0 for video in videos) or None, "ray", options.progress)
            began = time.perf_counter()
            try:
                stopped = job.run(bar)
            finally:
                if bar is not None:
                    bar.close()
                with stop.shield():  # no signal cuts the partial outputs short
                    job.close()
            timings.update(run=time.perf_counter() - began, write=job.write_s, chunks=sorted(job.chunk_seconds),
                           worker_count=len(job.workers))
            log.info("workers ready in %.1f s; %d chunks", job.ready_s, len(job.chunk_seconds))
    finally:
        if table is not None:
            print(f"results: {table.rows} rows in {table.close()}", flush=True)
    results.update({video.position: video.result for video in videos if video.result is not None})
    ordered = [results[i] for i in sorted(results)]
    for result in ordered:
        report(result.source, result)
    if stopped:
        unfinished = sum(video.result is None for video in videos)
        print(f"stream-cam: stopped by {stopped}; {unfinished} video(s) unfinished (their frames done are "
              "in NAME.partial files); run the same command with --resume to finish them", file=sys.stderr, flush=True)
    return VideoRun(ordered, stopped)
