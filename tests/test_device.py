"""--device, --gpu-memory and --gpus-per-worker: parsing, the memory policy set before first use (with
TensorFlow's device list stubbed: the one thing a CPU cannot run), and every refusal on this CPU."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from helpers import assert_one_line_error, run, write_clip
from stream_cam.engine.device import DeviceRequest, check_gpu_memory, configure_devices, parse_device
from stream_cam.errors import InputError, ModelError
from stream_cam.jobs.ray_cluster import actor_resources, check_gpus_per_worker


@pytest.mark.unit
@pytest.mark.parametrize("text, kind, index", [("auto", "auto", None), ("cpu", "cpu", None), ("CPU", "cpu", None),
                                               ("gpu", "gpu", None), ("gpu:0", "gpu", 0), ("GPU:3", "gpu", 3)])
def test_device_names(text, kind, index):
    assert parse_device(text) == DeviceRequest(kind, index)


@pytest.mark.unit
@pytest.mark.parametrize("text", ["tpu", "gpu:", "gpu:-1", "gpu:x", "cuda:0", ""])
def test_bad_device_names(text):
    with pytest.raises(InputError, match="choose auto, cpu, gpu or gpu:N"):
        parse_device(text)


@pytest.mark.unit
def test_prechecks():
    with pytest.raises(TypeError):
        parse_device(0)  # type: ignore[arg-type]
    assert check_gpu_memory("2048") == 2048
    for bad in ("0", "-5", "1.5", "lots"):
        with pytest.raises(InputError, match="--gpu-memory"):
            check_gpu_memory(bad)
    assert check_gpus_per_worker("0.5") == 0.5
    for bad in ("0", "-1", "65", "one"):
        with pytest.raises(InputError, match="--gpus-per-worker"):
            check_gpus_per_worker(bad)


class StubConfig:
    """``tf.config`` with ``gpus`` fake physical GPUs: records every call, in order. Once ``started``
    (TensorFlow placed something), the policy calls raise RuntimeError as TensorFlow's do."""

    LogicalDeviceConfiguration = staticmethod(lambda memory_limit: ("logical", memory_limit))

    def __init__(self, gpus: int, started: bool = False) -> None:
        self.gpus = [SimpleNamespace(name=f"/physical_device:GPU:{i}") for i in range(gpus)]
        self.cpu = SimpleNamespace(name="/physical_device:CPU:0")
        self.calls: list[tuple] = []
        self.started = started
        self.experimental = SimpleNamespace(set_memory_growth=self._recorder("set_memory_growth"))
        self.set_visible_devices = self._recorder("set_visible_devices")
        self.set_logical_device_configuration = self._recorder("set_logical_device_configuration")

    def list_physical_devices(self, kind: str | None = None) -> list:
        return list(self.gpus) if kind == "GPU" else [self.cpu, *self.gpus]

    def _recorder(self, name: str):
        def call(*args):
            if self.started:
                raise RuntimeError("Physical devices cannot be modified after being initialized")
            self.calls.append((name, *args))
        return call


@pytest.mark.unit
def test_auto_takes_the_first_gpu_and_lets_its_memory_grow():
    config = StubConfig(gpus=2)
    assert configure_devices(config, DeviceRequest("auto")) == "gpu:0"
    gpu0 = config.gpus[0]
    assert config.calls == [("set_visible_devices", [gpu0], "GPU"), ("set_memory_growth", gpu0, True)]


@pytest.mark.unit
def test_a_named_gpu_and_a_memory_cap():
    config = StubConfig(gpus=2)
    assert configure_devices(config, DeviceRequest("gpu", 1), memory_mb=1536) == "gpu:1"
    gpu1 = config.gpus[1]
    # A cap is one logical device of that size; growth is not also set (TensorFlow refuses both on one GPU).
    assert config.calls == [("set_visible_devices", [gpu1], "GPU"),
                            ("set_logical_device_configuration", gpu1, [("logical", 1536)])]


@pytest.mark.unit
def test_cpu_hides_the_gpus_and_refusals():
    config = StubConfig(gpus=1)
    assert configure_devices(config, DeviceRequest("cpu")) == "cpu"
    assert config.calls == [("set_visible_devices", [], "GPU")]
    with pytest.raises(InputError, match="sees 1 GPU .gpu:0 to gpu:0"):
        configure_devices(StubConfig(gpus=1), DeviceRequest("gpu", 1))
    with pytest.raises(InputError, match=r"sees no GPU \(only CPU:0\).*stream-cam\[gpu\]"):
        configure_devices(StubConfig(gpus=0), DeviceRequest("gpu"))
    assert configure_devices(StubConfig(gpus=0), DeviceRequest("auto"), memory_mb=100) == "cpu"
    with pytest.raises(ModelError, match="already started"):  # too late: TensorFlow placed something
        configure_devices(StubConfig(gpus=1, started=True), DeviceRequest("gpu"))


def test_the_policy_is_set_before_the_model_is_loaded(monkeypatch, tmp_path):
    """EngineSpec.build, on a machine with two (stubbed) GPUs: device calls first, then the model."""
    import tensorflow as tf

    import stream_cam.models.loader as loader
    from stream_cam.jobs.engine_spec import EngineSpec

    config = StubConfig(gpus=2)
    for name in ("list_physical_devices", "set_visible_devices", "set_logical_device_configuration",
                 "LogicalDeviceConfiguration"):
        monkeypatch.setattr(tf.config, name, getattr(config, name))
    monkeypatch.setattr(tf.config.experimental, "set_memory_growth", config.experimental.set_memory_growth)
    real_load = loader.load_model

    def load_model(*args, **kwargs):
        config.calls.append(("load_model",))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(loader, "load_model", load_model)
    cam = EngineSpec(model="efficientnet_lite0", runtime="tensorflow", device="gpu:1", gpu_memory=512).build()
    assert [c[0] for c in config.calls] == ["set_visible_devices", "set_logical_device_configuration", "load_model"]
    assert cam.device == "gpu:1" and cam.runtime == "tensorflow"


def test_this_cpu_for_real(tmp_path):
    """Real TensorFlow here: no GPU. --device cpu runs (on LiteRT by default); gpu is refused in one line."""
    result = run("image", "--json", "--device", "cpu", "-o", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    assert (report["device"], report["runtime"], report["top"][0]["index"]) == ("cpu", "litert", 285)
    for device in ("gpu", "gpu:0", "gpu:1"):
        assert_one_line_error(run("image", "--device", device, "-o", "refused", cwd=tmp_path), f"--device {device}",
                              "TensorFlow sees no GPU (only CPU:0)", "pip install 'stream-cam[gpu]'")
    assert not (tmp_path / "refused").exists()  # the refused runs made nothing


REFUSED = [  # refused before TensorFlow loads, on every command that takes the flags
    (["--device", "cpu", "--gpu-memory", "100"], "does not apply to --device cpu"),
    (["--device", "gpu", "--runtime", "litert"], "--runtime litert runs on the CPU"),
    (["--gpu-memory", "100", "--runtime", "litert"], "--runtime litert runs on the CPU"),
    (["--device", "npu"], "choose auto, cpu, gpu or gpu:N"),
    (["--gpu-memory", "0"], "give at least 1 MB"),
]
COMMAND_ARGS = {"image": [], "live": ["--no-window", "--source", "clip.mp4"], "video": ["clip.mp4", "-o", "o.mp4"],
                "demo": ["--no-window"], "evaluate": [], "export": ["-o", "x.tflite"]}


@pytest.mark.parametrize("command", list(COMMAND_ARGS))
def test_refusals_on_every_command(command, tmp_path):
    write_clip(tmp_path / "clip.mp4", frames=4)
    for extra, fragment in REFUSED:
        if command == "export" and "--runtime" in extra:
            continue  # export always makes the TensorFlow engine's file: it has no --runtime
        assert_one_line_error(run(command, *COMMAND_ARGS[command], *extra, cwd=tmp_path), fragment)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]  # nothing made


def test_a_tflite_file_runs_on_the_cpu(lite0_tflite, tmp_path):
    for extra in (["--device", "gpu"], ["--gpu-memory", "256"]):
        assert_one_line_error(run("image", "--model", str(lite0_tflite), *extra, cwd=tmp_path),
                              "a .tflite file runs on LiteRT, on the CPU")
    result = run("image", "--model", str(lite0_tflite), "--device", "cpu", "--json", "-o", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 0 and json.loads(result.stdout.splitlines()[-1])["device"] == "cpu"


@pytest.mark.unit
def test_ray_workers_per_gpu():
    def cluster(**resources):
        return SimpleNamespace(cluster_resources=lambda: resources)

    assert actor_resources(cluster(CPU=8.0), None, None) == (8, 0.0)
    assert actor_resources(cluster(CPU=8.0, GPU=2.0), None, 0.5) == (4, 0.5)  # 4 halves of 2 GPUs
    assert actor_resources(cluster(CPU=2.0, GPU=4.0), None, 1) == (2, 1)  # no more workers than CPUs
    assert actor_resources(cluster(CPU=8.0, GPU=2.0), 3, 0.25) == (3, 0.25)  # --workers wins
    with pytest.raises(InputError, match="the Ray cluster has no GPU"):
        actor_resources(cluster(CPU=8.0), None, 1)
    with pytest.raises(InputError, match="has 1 GPUs"):
        actor_resources(cluster(CPU=8.0, GPU=1.0), None, 2)


def test_ray_flags_refused_before_the_cluster(tmp_path):
    write_clip(tmp_path / "clip.mp4", frames=4)
    for extra, fragment in ((["--gpus-per-worker", "1"], "go with --ray"),
                            (["--ray", "--device", "gpu"], "add --gpus-per-worker"),
                            (["--ray", "--gpus-per-worker", "1", "--device", "cpu"], "leave out --device cpu")):
        assert_one_line_error(run("video", "clip.mp4", "-o", "out.mp4", *extra, cwd=tmp_path), fragment)


@pytest.mark.ray
def test_gpus_per_worker_on_a_cluster_without_gpus(tmp_path):
    """A real local Ray cluster (this machine: CPUs only): refused in one line, nothing written."""
    write_clip(tmp_path / "clip.mp4", frames=8)
    result = run("video", "clip.mp4", "-o", "out.mp4", "--ray", "--gpus-per-worker", "0.5", cwd=tmp_path)
    assert_one_line_error(result, "--gpus-per-worker 0.5: the Ray cluster has no GPU", "CPUs")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]
