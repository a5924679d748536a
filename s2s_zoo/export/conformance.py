"""Serving conformance: run a SavedModel the way TF Serving does, and compare.

TF Serving loads SavedModels through the TF1 graph/Session loader, with the tf-text
ops linked in and nothing else. A model that only works through `tf.saved_model.load`
is not servable. So the check runs in a fresh Python process that imports only
tensorflow and tensorflow_text, loads with `tf.compat.v1.saved_model.loader.load`,
feeds every signature by its tensor names and returns what it fetched.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

# Runs in the child process. It must import nothing but tensorflow, tensorflow_text
# and the standard library: that is all TF Serving has.
_SESSION_SCRIPT = r"""
import base64, json, sys
import numpy as np
import tensorflow as tf
import tensorflow_text  # noqa: F401  registers tf-text ops, which TF Serving links

request = json.load(sys.stdin)
assert not any(m.startswith("s2s_zoo") for m in sys.modules), "must not import s2s_zoo"

def from_json(value):
    # bytes travel as {"b64": ...}, as in TF Serving's REST API
    if isinstance(value, list):
        return [from_json(v) for v in value]
    if isinstance(value, dict) and set(value) == {"b64"}:
        return base64.b64decode(value["b64"])
    return value

def feed(value, info):
    # JSON cannot spell an empty batch of rank-2 inputs ([0, turns]); gRPC clients send
    # a TensorProto of shape [0, 0], which this reproduces
    rank = len(info.tensor_shape.dim)
    if value == [] and rank > 1:
        return np.zeros((0,) * rank, dtype=object)
    return value

def to_json(value):
    value = np.asarray(value)
    if value.dtype.kind in "OS" and value.size:
        value = np.vectorize(lambda b: b.decode("utf-8", "replace"), otypes=[object])(value)
    return value.tolist()

tf.compat.v1.disable_eager_execution()
results = []
with tf.compat.v1.Session(graph=tf.Graph()) as sess:
    meta = tf.compat.v1.saved_model.loader.load(sess, ["serve"], request["export_dir"])
    for call in request["calls"]:
        if call["signature"] not in meta.signature_def:
            results.append(None)
            continue
        signature = meta.signature_def[call["signature"]]
        missing = sorted(set(signature.inputs) - set(call["inputs"]))
        if missing:
            raise SystemExit(f"signature {call['signature']} needs inputs {missing}")
        feeds = {
            signature.inputs[k].name: feed(from_json(v), signature.inputs[k])
            for k, v in call["inputs"].items()
        }
        fetches = {k: t.name for k, t in signature.outputs.items()}
        out = sess.run(fetches, feeds)
        results.append({k: to_json(v) for k, v in out.items()})
    signatures = sorted(meta.signature_def)
json.dump({"signatures": signatures, "results": results}, sys.stdout)
"""


REQUIRED_SIGNATURES = ("serving_default", "beam", "greedy", "nbest")


class ServingError(RuntimeError):
    """The SavedModel failed to load or run on the Session (TF Serving) path."""


def run_in_session(
    export_dir: str | Path, calls: Sequence[Mapping[str, Any]], timeout: float = 600
) -> dict[str, Any]:
    """Run `calls` ([{"signature": name, "inputs": {name: value}}]) in a fresh process.

    Input values may hold bytes (sent as {"b64": ...}, TF Serving's REST convention).
    Returns {"signatures": [...], "results": [{output name: nested lists} or None when the
    SavedModel has no such signature, ...]}.
    """
    calls = [{**call, "inputs": {k: _wire(v) for k, v in call["inputs"].items()}} for call in calls]
    request = json.dumps({"export_dir": str(Path(export_dir).resolve()), "calls": calls})
    proc = subprocess.run(
        [sys.executable, "-c", _SESSION_SCRIPT],
        input=request,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=Path(export_dir).resolve().parent,  # not the repo, so nothing local is importable
        env=_child_env(),
    )
    if proc.returncode != 0:
        raise ServingError(
            f"Session-path load/run of {export_dir} failed (exit {proc.returncode}):\n"
            f"{proc.stderr[-4000:]}"
        )
    return json.loads(proc.stdout)


def _child_env() -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


@dataclass
class ConformanceReport:
    """What the Session-path check saw; `ok` is False when any mismatch was found."""

    export_dir: str
    signatures: list[str]
    mismatches: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches


Sample = str | bytes | Mapping[str, Any]  # one request item: a value, or input name -> value


def _wire(value: Any) -> Any:
    """Text as is; bytes (images, WAV) as {"b64": ...}, TF Serving's REST convention;
    lists (rank-2 inputs such as dialogue turns) item by item."""
    if isinstance(value, bytes):
        return {"b64": base64.b64encode(value).decode("ascii")}
    if isinstance(value, list | tuple):
        return [_wire(v) for v in value]
    return value


def _unwire(value: Any) -> Any:
    if isinstance(value, list):
        return [_unwire(v) for v in value]
    return base64.b64decode(value["b64"]) if isinstance(value, dict) else value


def batch_inputs(samples: Sequence[Sample], input_names: str | Sequence[str]) -> dict[str, list]:
    """Request items -> {input name: batch}, the shape every signature takes.

    An item is a plain value (str or bytes) for a single-input model, or a dict holding
    every input name (e.g. {"context": [turns], "kb": [facts]}). List values become
    rank-2 rows padded at the end with "" (b"" for bytes): the padding convention of
    multi-input models, whose empty strings mean "nothing here".
    """
    names = [input_names] if isinstance(input_names, str) else list(input_names)
    columns: dict[str, list] = {name: [] for name in names}
    for i, sample in enumerate(samples):
        if isinstance(sample, Mapping):
            if set(sample) != set(names):
                raise ValueError(f"request item {i} has inputs {sorted(sample)}, expected {names}")
            for name in names:
                columns[name].append(sample[name])
        elif len(names) == 1:
            columns[names[0]].append(sample)
        else:
            raise ValueError(f"request item {i}: this model takes inputs {names}; send a dict")
    for name, column in columns.items():
        if column and all(isinstance(v, list | tuple) for v in column):
            # at least one column: JSON [[]] would reach TF as a float array, not strings
            width = max(1, max(len(v) for v in column))
            fill = b"" if any(isinstance(x, bytes) for v in column for x in v) else ""
            columns[name] = [list(v) + [fill] * (width - len(v)) for v in column]
        elif any(isinstance(v, list | tuple) for v in column):
            raise ValueError(f"input {name!r}: mixes lists and single values across the batch")
    return columns


def default_calls(
    samples: Sequence[Sample], input_names: str | Sequence[str] = "inputs"
) -> list[dict[str, Any]]:
    """One call per exported signature, with the sample inputs (text, image/WAV bytes, or
    dicts of several inputs, see `batch_inputs`)."""
    batch = {name: _wire(values) for name, values in batch_inputs(samples, input_names).items()}
    return [
        {"signature": "serving_default", "inputs": dict(batch)},
        {"signature": "beam", "inputs": dict(batch)},
        {"signature": "greedy", "inputs": dict(batch)},
        {"signature": "alignment", "inputs": dict(batch)},
        {"signature": "preprocess", "inputs": dict(batch)},
        {
            "signature": "nbest",
            "inputs": {**batch, "beam_size": 3, "num_hypotheses": 2, "max_length": 0},
        },
    ]


def _in_process(inference, call: Mapping[str, Any]) -> dict[str, Any]:
    import tensorflow as tf

    inputs = dict(call["inputs"])
    ranks = {spec.name: len(spec.shape) for spec in inference.preprocessor.input_specs()}
    tensors = []
    for name in inference.input_names:
        value = _unwire(inputs.pop(name))
        shape = (0,) * ranks[name] if value == [] else None  # an empty batch of any rank
        tensors.append(tf.constant(value, tf.string, shape=shape))
    fn = inference.signatures[call["signature"]]
    extra = [
        tf.constant(inputs[k], tf.int32)
        for k in ("beam_size", "num_hypotheses", "max_length")
        if k in inputs
    ]
    out = fn(*tensors, *extra)
    return {k: _to_json(v.numpy()) for k, v in out.items()}


def _to_json(value: np.ndarray) -> list:
    """The same conversion the child process applies (bytes -> str), for comparison."""
    if value.dtype.kind in "OS" and value.size:
        value = np.vectorize(lambda b: b.decode("utf-8", "replace"), otypes=[object])(value)
    return value.tolist()


def check_serving(
    export_dir: str | Path,
    inference=None,
    texts: Sequence[Sample] = ("hello", ""),
    score_tolerance: float = 1e-4,
    input_name: str | Sequence[str] | None = None,
    batches: Sequence[Sequence[Sample]] | None = None,
) -> ConformanceReport:
    """Load `export_dir` on the Session path, run every signature, compare with `inference`.

    `texts` are the sample inputs: strings for text models, encoded image or WAV
    bytes for captioning and speech models, dicts of input name -> value for models
    with several inputs (dialogue: {"context": [turns], "kb": [facts]}). `batches`
    (instead of `texts`) checks several requests in the same child process, e.g. good
    items and an all-bad batch. With `inference=None` only loading and running are
    checked (plus output shapes: one output row per input).
    """
    batches = [list(texts)] if batches is None else [list(b) for b in batches]
    if input_name is None:
        first = next((b[0] for b in batches if b), None)
        if inference is not None:
            input_name = inference.input_names
        elif isinstance(first, Mapping):
            input_name = sorted(first)
        else:
            input_name = "inputs"
    calls, sizes, labels = [], [], []
    for i, batch in enumerate(batches):
        batch_calls = default_calls(batch, input_name)
        calls += batch_calls
        sizes += [len(batch)] * len(batch_calls)
        labels += [f"[batch {i}]" if len(batches) > 1 else ""] * len(batch_calls)
    served = run_in_session(export_dir, calls)
    report = ConformanceReport(str(export_dir), served["signatures"])
    expected = set(inference.signatures) if inference is not None else set(REQUIRED_SIGNATURES)
    if not expected <= set(served["signatures"]):
        report.mismatches.append(
            f"missing signatures: {sorted(expected - set(served['signatures']))}"
        )
    for call, size, label, got in zip(calls, sizes, labels, served["results"], strict=True):
        name = call["signature"] + label
        if got is None:
            continue
        for key, value in got.items():
            if len(value) != size:
                report.mismatches.append(f"{name}.{key}: {len(value)} rows for {size} inputs")
        if inference is None:
            continue
        want = _in_process(inference, call)
        if set(want) != set(got):
            report.mismatches.append(f"{name}: outputs {sorted(got)} != {sorted(want)}")
            continue
        for key in want:
            a, b = np.asarray(want[key], dtype=object), np.asarray(got[key], dtype=object)
            if a.shape != b.shape:
                report.mismatches.append(f"{name}.{key}: shape {b.shape} != in-process {a.shape}")
            elif a.size and isinstance(a.flat[0], float):
                diff = np.max(np.abs(a.astype(float) - b.astype(float)))
                if diff > score_tolerance:
                    report.mismatches.append(f"{name}.{key}: max difference {diff:g}")
            elif a.tolist() != b.tolist():
                report.mismatches.append(
                    f"{name}.{key}: {b.tolist()!r} != in-process {a.tolist()!r}"
                )
    return report
