"""Write a `Seq2SeqInference` as a TF Serving SavedModel: `BASE/NAME/VERSION/`.

Uses `keras.export.ExportArchive` because a plain `tf.saved_model.save` of Keras 3
layers loads in TF2 Python but fails on TF Serving's Session loader ("Could not
find variable ..."). The version is written to a hidden temporary directory and
renamed into place, so a server polling the model directory never sees a
half-written version (TF Serving ignores names that are not integers).

Several runs may export the same model name at once (a sweep, two recipes). The
version number is therefore chosen only when the files are complete, under an
exclusive `flock` on the model directory itself (no lock file is left beside
the versions), and the choice and the rename happen while it is held: two
exports can no longer both pick version N. Where `flock` is unavailable (not
POSIX), a rename that finds its version taken moves on to the next number.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import keras

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None

from s2s_zoo.bundle import BUNDLE_IN_EXPORT, WEIGHTS_COLLECTION, save_bundle
from s2s_zoo.inference import Seq2SeqInference


def existing_versions(model_dir: str | Path) -> list[int]:
    """Integer version directories under `model_dir`, ascending."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        return []
    return sorted(int(p.name) for p in model_dir.iterdir() if re.fullmatch(r"\d+", p.name))


def next_version(model_dir: str | Path) -> int:
    versions = existing_versions(model_dir)
    return versions[-1] + 1 if versions else 1


@contextmanager
def version_lock(model_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on `model_dir` (released on exit or process death)."""
    if fcntl is None:  # pragma: no cover - not POSIX
        yield
        return
    fd = os.open(model_dir, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def publish_version(
    model_dir: str | Path, write: Callable[[Path], None], version: int | None = None
) -> Path:
    """Run `write(tmp_dir)` outside any lock, then move the result to `model_dir/VERSION`.

    VERSION is the next free number, chosen under `version_lock` at the moment of
    the rename, or `version` if given (FileExistsError if taken). The temporary
    directory is removed whatever happens.
    """
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    if version is not None:
        version = int(version)
        if version < 1:
            raise ValueError("SavedModel versions are positive integers")
        if (model_dir / str(version)).exists():  # fail before the expensive write
            raise FileExistsError(
                f"{model_dir / str(version)} exists; versions are never overwritten"
            )
    tmp = model_dir / f".tmp-{uuid.uuid4().hex}"
    try:
        write(tmp)
        with version_lock(model_dir):
            return _rename_into_place(tmp, model_dir, version)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def _rename_into_place(tmp: Path, model_dir: Path, version: int | None) -> Path:
    while True:
        final = model_dir / str(next_version(model_dir) if version is None else version)
        if final.exists() and version is not None:
            raise FileExistsError(f"{final} exists; versions are never overwritten")
        try:
            if not final.exists():
                os.rename(tmp, final)  # atomic on one filesystem
                return final
        except OSError as error:
            if version is not None or error.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
        # Taken between the listing and the rename (possible only without flock): next.


def export_saved_model(
    inference: Seq2SeqInference,
    model_dir: str | Path,
    version: int | None = None,
    task: str | None = None,
) -> Path:
    """Export to `model_dir/VERSION` (next free version by default); never overwrite.

    Safe to run concurrently for one `model_dir`: see `publish_version`.
    """

    def write(tmp: Path) -> None:
        archive = keras.export.ExportArchive()
        archive.track(inference.model.training_model)  # all weights; the views share them
        archive.track(inference.preprocessor)  # the tokenizer resources
        # in model order, so fine-tuning from an export restores the same weights
        archive.add_variable_collection(
            WEIGHTS_COLLECTION, list(inference.model.training_model.weights)
        )
        for name, function in inference.signatures.items():
            archive.add_endpoint(name, function)
        archive.write_out(str(tmp), verbose=False)
        # the weights are in variables/ already: the bundle holds configs and vocabularies
        save_bundle(inference, tmp / BUNDLE_IN_EXPORT, weights=False, task=task)

    return publish_version(model_dir, write, version)
