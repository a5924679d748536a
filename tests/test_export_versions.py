"""Concurrent exports of one model name land as distinct, complete versions."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import tensorflow as tf

from s2s_zoo.export.saved_model import (
    existing_versions,
    export_saved_model,
    publish_version,
    version_lock,
)
from s2s_zoo.tasks.translation.numbers import number_pair
from tests.conftest import make_tiny_inference


class Constant(tf.Module):
    """A tiny SavedModel stand-in: one variable, one signature."""

    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = tf.Variable(value)

    @tf.function(input_signature=[])
    def __call__(self):
        return {"value": self.value.read_value()}


def run_all(functions) -> list:
    """Run the callables in threads at once; return their results or exceptions."""
    results: list = [None] * len(functions)

    def run(i):
        try:
            results[i] = functions[i]()
        except Exception as error:  # noqa: BLE001 - reported to the test
            results[i] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(functions))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    return results


def hidden(model_dir: Path) -> list[str]:
    return [p.name for p in model_dir.iterdir() if p.name.startswith(".")]


def test_simultaneous_publishes_get_distinct_versions(tmp_path):
    n = 4
    barrier = threading.Barrier(n)

    def writer(value):
        def write(tmp: Path) -> None:
            tf.saved_model.save(Constant(float(value)), str(tmp))
            barrier.wait()  # everyone has finished writing: they all allocate at once

        return lambda: publish_version(tmp_path, write)

    paths = run_all([writer(i) for i in range(n)])
    assert all(isinstance(p, Path) for p in paths), paths
    assert sorted(p.name for p in paths) == ["1", "2", "3", "4"]
    assert existing_versions(tmp_path) == [1, 2, 3, 4]
    assert hidden(tmp_path) == []  # no temporary directory left behind
    values = {float(tf.saved_model.load(str(p))()["value"]) for p in paths}
    assert values == {0.0, 1.0, 2.0, 3.0}  # each version holds its own export


def test_the_version_is_chosen_under_the_lock(tmp_path):
    """A finished write waits for the lock before it takes a number."""
    written = threading.Event()

    def write(tmp: Path) -> None:
        tf.saved_model.save(Constant(7.0), str(tmp))
        written.set()

    with version_lock(tmp_path):
        result: list = []
        thread = threading.Thread(target=lambda: result.append(publish_version(tmp_path, write)))
        thread.start()
        assert written.wait(timeout=120)
        thread.join(timeout=1.0)
        assert thread.is_alive() and existing_versions(tmp_path) == []  # blocked
        (tmp_path / "1").mkdir()  # someone else takes version 1 meanwhile
    thread.join(timeout=120)
    assert result == [tmp_path / "2"]


def test_explicit_version_races_and_errors(tmp_path):
    barrier = threading.Barrier(2)

    def write(tmp: Path) -> None:
        tf.saved_model.save(Constant(1.0), str(tmp))
        barrier.wait()

    results = run_all([lambda: publish_version(tmp_path, write, version=5)] * 2)
    assert sorted(type(r).__name__ for r in results) == ["FileExistsError", "PosixPath"]
    assert existing_versions(tmp_path) == [5] and hidden(tmp_path) == []

    called = []
    with pytest.raises(FileExistsError, match="versions are never overwritten"):
        publish_version(tmp_path, called.append, version=5)
    assert called == []  # refused before the (expensive) write
    with pytest.raises(ValueError, match="positive"):
        publish_version(tmp_path, called.append, version=0)

    def broken(tmp: Path) -> None:
        tmp.mkdir()
        (tmp / "half").write_text("x")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        publish_version(tmp_path, broken)
    assert existing_versions(tmp_path) == [5] and hidden(tmp_path) == []


@pytest.mark.slow  # two exports of the GRU model: about a minute on a busy 2-core machine
def test_two_real_exports_of_one_name_at_once(tmp_path):
    pairs = [number_pair(n) for n in range(0, 90, 3)]
    inference = make_tiny_inference(pairs, seed=0)
    base = tmp_path / "tiny"
    paths = run_all([lambda: export_saved_model(inference, base)] * 2)
    assert all(isinstance(p, Path) for p in paths), paths
    assert sorted(p.name for p in paths) == ["1", "2"]
    assert sorted(p.name for p in base.iterdir()) == ["1", "2"]
    for path in paths:
        assert tf.saved_model.contains_saved_model(str(path))
        assert (path / "variables" / "variables.index").exists()
        bundle = path / "assets.extra" / "s2s_zoo"
        assert (bundle / "model.json").exists()  # the bundle: configs and vocabularies ...
        assert not (bundle / "model.weights.h5").exists()  # ... the weights once, in variables/
    loaded = tf.saved_model.load(str(paths[1]))
    out = loaded.signatures["serving_default"](inputs=tf.constant([pairs[0][0]]))
    assert out["outputs"].shape[0] == 1
