"""The LiteRT cache as an attacker or a broken disk meets it: links planted at its names, a foreign
file with a matching digest, records that are not tables, folders and FIFOs where files should be,
a cache folder that is a file, abandoned conversions. Each is rebuilt, or TensorFlow explains with
one warning naming the file; nothing outside the cache is written, nothing hangs."""

from __future__ import annotations

import json
import logging
import os
import stat
from pathlib import Path

import numpy as np
import pytest

from helpers import tiny_cnn


@pytest.fixture
def cache(tmp_path, photos):
    from stream_cam.engine.litert_cache import LiteRTCache

    return LiteRTCache(tmp_path / "cache", photos["chelsea"])


def cam_of(seed: int):
    from stream_cam.engine.gradcam import GradCAM
    from stream_cam.models.loaded import LoadedModel

    return GradCAM(LoadedModel.from_keras(tiny_cnn(seed=seed), scaling="0..1"))


def choose(cam, cache, runtime: str = "auto"):
    from stream_cam.engine.runtime import choose_runtime

    return choose_runtime(cam, runtime, cache)


def test_the_folder_is_private_and_links_at_its_temporary_names_are_never_followed(cache, tmp_path):
    cam = cam_of(20)
    cache.folder.mkdir(parents=True)
    os.chmod(cache.folder, 0o777)  # as a shared folder would be
    key, pid = cache.key(cam, 1), os.getpid()
    thesis, notes, elsewhere = tmp_path / "thesis.pdf", tmp_path / "notes.txt", tmp_path / "anywhere"
    thesis.write_bytes(b"the thesis")
    notes.write_text("my notes")
    (cache.folder / f".{key}.{pid}.part").symlink_to(thesis)
    (cache.folder / f".{key}.json.{pid}.part").symlink_to(notes)
    (cache.folder / f"{key}.lock").symlink_to(elsewhere)
    assert choose(cam, cache).runtime == "litert"
    assert thesis.read_bytes() == b"the thesis" and notes.read_text() == "my notes" and not elsewhere.exists()
    assert stat.S_IMODE(os.stat(cache.folder).st_mode) == 0o700
    for path in cache.folder.iterdir():
        assert stat.S_ISREG(os.lstat(path).st_mode) and stat.S_IMODE(os.lstat(path).st_mode) == 0o600, path


def test_a_foreign_file_is_rebuilt_whatever_digest_its_record_claims(cache, photos):
    import hashlib

    cam, other = cam_of(21), cam_of(22)
    choose(other, cache, "litert")
    choose(cam, cache, "litert")
    ours, theirs = (cache.folder / f"{cache.key(c, 1)}.tflite" for c in (cam, other))
    # Someone puts another model's file in place, and writes its true digest into the record.
    ours.write_bytes(theirs.read_bytes())
    record = json.loads(ours.with_suffix(".json").read_text())
    record["sha256"] = hashlib.sha256(theirs.read_bytes()).hexdigest()
    record["speeds"] = {key: {"tensorflow_ms": 0.001, "litert_ms": 99.0} for key in record.get("speeds", {})}
    ours.with_suffix(".json").write_text(json.dumps(record))
    said: list[str] = []
    cache.announce = said.append
    fast = choose(cam, cache)
    assert said and said[0].startswith("preparing")  # rebuilt, not used
    assert fast.runtime == "litert"  # the forged figures did not move the run to TensorFlow
    np.testing.assert_allclose(fast(photos["coffee"]).heatmaps, cam(photos["coffee"]).heatmaps, atol=1e-4)


@pytest.mark.parametrize("damage", ["record []", "record text", "record folder", "entry folder", "lock folder",
                                    "entry to /dev/zero", "entry fifo", "record fifo"])
def test_anything_that_is_not_a_healthy_entry_is_rebuilt_without_hanging(cache, photos, damage, caplog):
    cam = cam_of(23)
    choose(cam, cache, "litert")
    entry = cache.folder / f"{cache.key(cam, 1)}.tflite"
    record, lock = entry.with_suffix(".json"), entry.with_suffix(".lock")
    target = {"record": record, "entry": entry, "lock": lock}[damage.split()[0]]
    target.unlink(missing_ok=True)
    if damage == "record []":
        record.write_text("[]")
    elif damage == "record text":
        record.write_text('"x"')
    elif damage.endswith("folder"):
        target.mkdir()
        (target / "inside").write_text("x")
    elif damage.endswith("/dev/zero"):
        target.symlink_to("/dev/zero")
    else:
        os.mkfifo(target)
    said: list[str] = []
    cache.announce = said.append
    with caplog.at_level(logging.WARNING):
        fast = choose(cam, cache, "litert")
    assert fast.runtime == "litert"
    np.testing.assert_allclose(fast(photos["coffee"]).heatmaps, cam(photos["coffee"]).heatmaps, atol=1e-4)
    if damage != "lock folder":
        assert said and said[0].startswith("preparing") and entry.name in caplog.text
    assert stat.S_ISREG(os.lstat(entry).st_mode) and stat.S_ISREG(os.lstat(record).st_mode)


def test_a_cache_that_cannot_be_used_is_one_warning_and_tensorflow_explains(tmp_path, photos, caplog, monkeypatch):
    from stream_cam.engine import litert_cache
    from stream_cam.engine.litert_cache import LiteRTCache
    from stream_cam.errors import ModelError

    cam = cam_of(24)
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the cache folder should be")
    for cache in (LiteRTCache(blocked, photos["chelsea"]), LiteRTCache(blocked / "deeper", photos["chelsea"])):
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            assert choose(cam, cache) is cam
        assert len(caplog.records) == 1 and "LiteRT cache cannot be used" in caplog.text and "blocked" in caplog.text
        with pytest.raises(ModelError, match="--runtime litert: the LiteRT cache cannot be used"):
            choose(cam, cache, "litert")

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device", str(args[0]))

    monkeypatch.setattr(litert_cache, "write_new", full)  # the disk fills while converting
    cache = LiteRTCache(tmp_path / "cache", photos["chelsea"])
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert choose(cam, cache) is cam
    assert "No space left on device" in caplog.text
    assert not [p for p in cache.folder.iterdir() if p.name.endswith(".part")]


def test_a_cache_of_another_user_is_not_used(tmp_path, photos, caplog):
    from stream_cam.engine.litert_cache import LiteRTCache

    cache = LiteRTCache(tmp_path / "cache", photos["chelsea"])
    cache.folder.mkdir(parents=True)
    os.chown(cache.folder, 65534, 65534)  # the tests run as root, who may give a folder away
    cam = cam_of(25)
    with caplog.at_level(logging.WARNING):
        assert choose(cam, cache) is cam
    assert "belongs to another user" in caplog.text and not list(cache.folder.iterdir())


def test_conversions_whose_maker_is_gone_are_removed_and_counted(cache):
    cam = cam_of(26)
    cache.folder.mkdir(parents=True, mode=0o700)
    killed = cache.folder / ".0123abcd.999999999.part"  # a pid no process has
    killed.write_bytes(b"x" * 1000)
    running = cache.folder / f".4567ef.{os.getpid()}.part"  # this process: still converting
    running.write_bytes(b"x" * 1000)
    fast = choose(cam, cache, "litert")
    assert not killed.exists() and running.exists()
    # The running conversion's 1000 bytes count: with them the cache is over its cap.
    cache.max_bytes = fast.model.path.stat().st_size + 500
    assert cache.prune() == [fast.model.path.name] and running.exists()
