"""Joining a Ray cluster (or starting a local one) for ``stream-cam video --ray``, with one clear
line when it cannot be joined: no Ray, no cluster at the address, or token authentication that this
process does not have. A password in a ``ray://`` address is never shown."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import warnings
from typing import Any, Iterator

from ..checks import installed
from ..errors import InputError
from ..redact import redact

log = logging.getLogger(__name__)

RAY_MISSING = 'the Ray scale-out needs Ray: pip install "stream-cam[ray]" (or pip install "ray[data]")'
LOCAL = "local"  # --ray without an address


def check_gpus_per_worker(text: str | float) -> float:
    """``--gpus-per-worker``: a number of GPUs above 0; a fraction shares one GPU between workers."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise InputError(f"--gpus-per-worker {text}: give a number of GPUs, e.g. 1 or 0.5") from None
    if not 0 < value <= 64:
        raise InputError(f"--gpus-per-worker {text}: give more than 0 and at most 64 GPUs per worker")
    return value


def actor_resources(ray: Any, workers: int | None, gpus_per_worker: float | None) -> tuple[int, float]:
    """How many workers, and the GPUs each asks Ray for: one worker per CPU of the cluster, or with
    ``--gpus-per-worker`` as many as its GPUs hold (and its CPUs allow). A cluster without the GPUs
    is refused before any worker starts."""
    resources = ray.cluster_resources()
    cpus = max(1, int(resources.get("CPU", 1)))
    if gpus_per_worker is None:
        return workers or cpus, 0.0
    have = resources.get("GPU", 0)
    if have < gpus_per_worker:
        said = f"{have:g} GPUs" if have else "no GPU"
        raise InputError(f"--gpus-per-worker {gpus_per_worker:g}: the Ray cluster has {said} (and "
                         f"{resources.get('CPU', 0):g} CPUs); leave --gpus-per-worker out to run the workers on "
                         "CPUs, or start the cluster's nodes with their GPUs")
    return workers or max(1, min(cpus, int(have / gpus_per_worker + 1e-9))), gpus_per_worker


def check_ray_available() -> None:
    if not installed("ray"):
        raise InputError(RAY_MISSING)


@contextlib.contextmanager
def _stderr_captured() -> Iterator[Any]:
    """Route this process's stderr (file descriptor 2: Ray's C++ core writes there) to a temporary
    file while joining a cluster; yields the file, read back after."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield captured
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def _read_back(captured: Any) -> str:
    captured.seek(0)
    return captured.read(64 * 1024).decode(errors="replace")


AUTH_WORDS = ("authentication", "auth_token", "auth token", "unauthenticated", "auth mode")


@contextlib.contextmanager
def connect(address: str) -> Iterator[Any]:
    """Join the cluster at ``address``, or start a local one on this machine's cores; leave it after."""
    import ray

    settings: dict[str, Any] = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    # A ray:// address may carry a password: neither it nor Ray's message (which repeats it) is shown as is.
    shown = redact(address)
    said = ""
    try:
        with warnings.catch_warnings():  # Ray's own warnings would repeat, in several lines, the one we give
            warnings.simplefilter("ignore")
            if address == LOCAL:
                ray.init(num_cpus=os.cpu_count() or 1, **settings)
            else:
                with _stderr_captured() as captured:  # Ray's core prints its own lines before it raises
                    try:
                        ray.init(address=address, **settings)
                    finally:
                        said = _read_back(captured)
                if said.strip():
                    log.debug("Ray said while joining %s: %s", shown, said.replace(address, shown))
    except (ConnectionError, RuntimeError, ValueError) as exc:
        reason = str(exc).replace(address, shown)
        if any(word in (said + reason).lower() for word in AUTH_WORDS) \
                and os.environ.get("RAY_AUTH_MODE", "").lower() != "token":
            raise InputError(f"--ray {shown}: the cluster uses token authentication and this process does not: "
                             "set RAY_AUTH_MODE=token, with the cluster's token in ~/.ray/auth_token or "
                             "RAY_AUTH_TOKEN, and run again") from exc
        hint = ("start one with 'ray start --head' and give the address it prints, or use --ray alone; a cluster "
                "with token authentication (Ray's default) also needs RAY_AUTH_MODE=token here, and its token "
                "in ~/.ray/auth_token or RAY_AUTH_TOKEN")
        raise InputError(f"--ray {shown}: cannot join the Ray cluster ({reason}); {hint}") from exc
    try:
        yield ray
    finally:
        ray.shutdown()


def cause_of(exc: Exception) -> str:
    """The last line of what went wrong in a worker (its traceback stays in Ray's logs)."""
    cause = getattr(exc, "cause", None)
    text = str(cause if cause is not None else exc).strip()
    return text.splitlines()[-1] if text else type(exc).__name__
