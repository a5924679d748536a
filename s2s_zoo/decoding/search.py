"""Greedy and beam search in `tf.while_loop`, over any model's decoder step.

Written against `step(token_ids, state, memory) -> (logits, state)` (see
`s2s_zoo.models.base`), with core TF ops only, so an exported graph runs on stock
TF Serving. Beam search keeps whole prefixes and reorders them with `tf.gather`
each step, so no backtracking op (tfa's `GatherTree`, absent from TF Serving) is
needed.

Why not keras-hub's `BeamSampler`: it has no length penalty, no per-sequence
maximum length and no finished-hypothesis bookkeeping, and it re-runs a fixed-size
prompt buffer; we need all of those for n-best translation output.

Conventions shared by both searches:
- A hypothesis ends when it emits `eos_id` or reaches its own maximum length
  (`max_lengths[b]`); later positions hold `pad_id`.
- `lengths` count generated tokens including EOS; `content_lengths` exclude EOS.
- `banned_ids` (pad, bos) are never generated.
- Each batch item is decoded independently of its neighbours: same result alone
  or in any batch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import tensorflow as tf

StepFn = Callable[[tf.Tensor, dict, dict], tuple[tf.Tensor, dict]]
NEG_INF = -1e9  # finite, so that -inf arithmetic can never produce NaN


class SearchResult(NamedTuple):
    """Search output. Greedy: `ids` is [B, T]; beam: [B, N, T] with N hypotheses, best first."""

    ids: tf.Tensor
    scores: tf.Tensor  # length-normalised (equal to log_probs for greedy)
    log_probs: tf.Tensor
    lengths: tf.Tensor  # tokens including EOS
    content_lengths: tf.Tensor  # tokens excluding EOS
    # state entries recorded at every step (`record=`), [B(, N), T, ...], e.g. attention
    records: dict = {}  # noqa: RUF012  (NamedTuple default, never mutated)


def gnmt_length_penalty(lengths: tf.Tensor, alpha: float | tf.Tensor) -> tf.Tensor:
    """GNMT (Wu et al. 2016) length penalty ((5 + |Y|) / 6) ** alpha; 1 when alpha is 0."""
    return tf.pow((5.0 + tf.cast(lengths, tf.float32)) / 6.0, alpha)


def max_output_lengths(source_lengths: tf.Tensor, ratio: float, offset: int, cap: int) -> tf.Tensor:
    """Per-sequence output budget: min(cap, ceil(ratio * source_length) + offset), at least 1."""
    budget = tf.math.ceil(ratio * tf.cast(source_lengths, tf.float32)) + float(offset)
    return tf.clip_by_value(tf.cast(budget, tf.int32), 1, cap)


def _log_probs(logits: tf.Tensor, banned_ids: tuple[int, ...]) -> tf.Tensor:
    log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32), axis=-1)
    if banned_ids:
        vocab = tf.shape(log_probs)[-1]
        banned = tf.reduce_any(
            tf.equal(tf.range(vocab)[:, None], tf.constant(banned_ids, tf.int32)[None, :]), axis=1
        )
        log_probs = tf.where(banned, tf.constant(NEG_INF, tf.float32), log_probs)
    return log_probs


def _write_column(buffer: tf.Tensor, t: tf.Tensor, values: tf.Tensor) -> tf.Tensor:
    """buffer[..., t] = values, as an XLA-friendly one-hot add (buffer[..., t] is 0)."""
    column = tf.one_hot(t, tf.shape(buffer)[-1], dtype=buffer.dtype)
    return buffer + values[..., None] * column


def _record_buffers(state: dict, record: tuple[str, ...], lead: list, limit) -> dict:
    """Zero buffers [*lead, limit, ...] for the recorded state entries."""
    return {
        key: tf.zeros(lead + [limit] + tf.unstack(tf.shape(state[key])[1:]), state[key].dtype)
        for key in record
    }


def _write_step(buffer: tf.Tensor, t: tf.Tensor, values: tf.Tensor, time_axis: int) -> tf.Tensor:
    """buffer[:, (:,) t] = values for a buffer whose time axis is `time_axis`."""
    shape = [1] * len(buffer.shape)
    shape[time_axis] = -1
    step = tf.reshape(tf.one_hot(t, tf.shape(buffer)[time_axis], dtype=buffer.dtype), shape)
    return buffer + tf.expand_dims(values, time_axis) * step


def greedy_search(
    step_fn: StepFn,
    state: dict,
    memory: dict,
    max_lengths: tf.Tensor,
    bos_id: int,
    eos_id: int,
    pad_id: int = 0,
    banned_ids: tuple[int, ...] = (0, 2),
    record: tuple[str, ...] = (),
) -> SearchResult:
    """Pick the most likely token at each step; stop a sequence at EOS or its max length.

    `record` names state entries (e.g. "attention") to keep for every step.
    """
    batch = tf.shape(max_lengths)[0]
    limit = tf.reduce_max(max_lengths)
    ids = tf.zeros([batch, limit], tf.int32)
    tokens = tf.fill([batch], bos_id)
    finished = tf.zeros([batch], tf.bool)
    log_probs = tf.zeros([batch], tf.float32)
    lengths = tf.zeros([batch], tf.int32)
    records = _record_buffers(state, record, [batch], limit)

    def body(t, tokens, finished, log_probs, lengths, ids, state, records):
        logits, state = step_fn(tokens, state, memory)
        records = {k: _write_step(v, t, state[k], 1) for k, v in records.items()}
        step_log_probs = _log_probs(logits, banned_ids)
        next_tokens = tf.argmax(step_log_probs, axis=-1, output_type=tf.int32)
        best = tf.gather(step_log_probs, next_tokens, batch_dims=1)
        alive = tf.logical_not(finished)
        log_probs += tf.where(alive, best, 0.0)
        lengths += tf.cast(alive, tf.int32)
        ids = _write_column(ids, t, tf.where(alive, next_tokens, pad_id))
        finished = finished | tf.equal(next_tokens, eos_id) | (t + 1 >= max_lengths)
        next_tokens = tf.where(alive, next_tokens, eos_id)
        return t + 1, next_tokens, finished, log_probs, lengths, ids, state, records

    loop_vars = (tf.constant(0), tokens, finished, log_probs, lengths, ids, state, records)
    t, _, _, log_probs, lengths, ids, _, records = tf.while_loop(
        lambda t, tokens, finished, *_: tf.logical_and(
            t < limit, tf.logical_not(tf.reduce_all(finished))
        ),
        body,
        loop_vars,
        shape_invariants=_invariants(loop_vars),
    )
    ids = ids[:, :t]
    records = {k: v[:, :t] for k, v in records.items()}
    content = lengths - tf.cast(_ends_with_eos(ids, lengths, eos_id), tf.int32)
    return SearchResult(ids, log_probs, log_probs, lengths, content, records)


def _ends_with_eos(ids: tf.Tensor, lengths: tf.Tensor, eos_id: int) -> tf.Tensor:
    last = tf.gather(ids, tf.maximum(lengths - 1, 0), batch_dims=len(ids.shape) - 1)
    return tf.logical_and(lengths > 0, tf.equal(last, eos_id))


def _invariants(loop_vars):
    """Let every dimension but the last of tensors in state vary (batch*beam is dynamic)."""
    return tf.nest.map_structure(lambda x: tf.TensorShape([None] * len(x.shape)), loop_vars)


def _tile(tree: dict, beam_size) -> dict:
    """[B, ...] -> [B * k, ...], each item repeated k times consecutively."""
    return tf.nest.map_structure(lambda x: tf.repeat(x, beam_size, axis=0), tree)


def beam_search(
    step_fn: StepFn,
    state: dict,
    memory: dict,
    max_lengths: tf.Tensor,
    bos_id: int,
    eos_id: int,
    beam_size: int | tf.Tensor = 4,
    length_penalty: float | tf.Tensor = 0.0,
    num_hypotheses: int | tf.Tensor = 1,
    pad_id: int = 0,
    banned_ids: tuple[int, ...] = (0, 2),
    record: tuple[str, ...] = (),
) -> SearchResult:
    """Beam search with the GNMT length penalty and n-best output.

    Finished hypotheses keep their beam slot and can only be extended by a free
    EOS (their score frozen), as in tfa's BeamSearchDecoder and OpenNMT-tf; beams
    are ranked by length-normalised score. A batch item is done once its
    `num_hypotheses` best beams are finished (or all reached the maximum length);
    it is then frozen, so neighbours in the batch cannot change its result.
    With length_penalty 0 and a beam wide enough to hold every prefix, this is
    exact n-best search; with beam_size 1 it is greedy search.
    """
    k = tf.convert_to_tensor(beam_size, tf.int32)
    n = tf.minimum(tf.convert_to_tensor(num_hypotheses, tf.int32), k)
    alpha = tf.cast(length_penalty, tf.float32)
    batch = tf.shape(max_lengths)[0]
    limit = tf.reduce_max(max_lengths)
    state, memory = _tile(state, k), _tile(memory, k)
    beam_max = tf.repeat(max_lengths, k)  # [B*k]

    # Only beam 0 starts alive, so the first expansion does not pick k copies of one prefix.
    log_probs = tf.tile(tf.concat([[0.0], tf.fill([k - 1], NEG_INF)], axis=0)[None, :], [batch, 1])
    finished = tf.zeros([batch, k], tf.bool)
    lengths = tf.zeros([batch, k], tf.int32)
    ids = tf.zeros([batch, k, limit], tf.int32)
    tokens = tf.fill([batch * k], bos_id)
    batch_offsets = (tf.range(batch) * k)[:, None]
    records = _record_buffers(state, record, [batch, k], limit)

    def body(t, tokens, log_probs, finished, lengths, ids, state, records):
        logits, state = step_fn(tokens, state, memory)
        step_log_probs = _log_probs(logits, banned_ids)
        vocab = tf.shape(step_log_probs)[-1]
        step_log_probs = tf.reshape(step_log_probs, [batch, k, vocab])
        # A finished beam has exactly one continuation: EOS at no cost (stays as it is).
        eos_only = tf.where(tf.range(vocab) == eos_id, 0.0, NEG_INF)
        step_log_probs = tf.where(finished[..., None], eos_only, step_log_probs)
        totals = log_probs[..., None] + step_log_probs  # [B, k, V]
        new_lengths = tf.where(finished, lengths, lengths + 1)
        ranked = totals / gnmt_length_penalty(new_lengths, alpha)[..., None]
        _, flat = tf.math.top_k(tf.reshape(ranked, [batch, k * vocab]), k=k)
        parents, next_tokens = flat // vocab, flat % vocab  # [B, k]

        log_probs = tf.gather(tf.reshape(totals, [batch, k * vocab]), flat, batch_dims=1)
        parent_finished = tf.gather(finished, parents, batch_dims=1)
        lengths = tf.gather(new_lengths, parents, batch_dims=1)
        ids = tf.gather(ids, parents, batch_dims=1)
        ids = _write_column(ids, t, tf.where(parent_finished, pad_id, next_tokens))
        at_limit = t + 1 >= tf.reshape(beam_max, [batch, k])
        finished = parent_finished | tf.equal(next_tokens, eos_id) | at_limit
        # Freeze items whose n best are finished, so their result never depends on the batch.
        done = tf.reduce_all(finished[:, :n], axis=1, keepdims=True)
        finished = finished | done

        flat_parents = tf.reshape(parents + batch_offsets, [-1])
        state = tf.nest.map_structure(lambda x: tf.gather(x, flat_parents), state)
        tokens = tf.reshape(tf.where(finished, eos_id, next_tokens), [-1])
        records = {
            key: _write_step(
                tf.gather(buffer, parents, batch_dims=1),
                t,
                tf.reshape(state[key], tf.concat([[batch, k], tf.shape(state[key])[1:]], 0)),
                2,
            )
            for key, buffer in records.items()
        }
        return t + 1, tokens, log_probs, finished, lengths, ids, state, records

    loop_vars = (tf.constant(0), tokens, log_probs, finished, lengths, ids, state, records)
    t, _, log_probs, finished, lengths, ids, _, records = tf.while_loop(
        lambda t, tokens, log_probs, finished, *_: tf.logical_and(
            t < limit, tf.logical_not(tf.reduce_all(finished[:, :n]))
        ),
        body,
        loop_vars,
        shape_invariants=_invariants(loop_vars),
    )
    ids = ids[:, :, :t]
    scores = log_probs / gnmt_length_penalty(lengths, alpha)
    # Beams are already sorted after each step's top_k; re-sort once for safety and take n.
    scores, order = tf.math.top_k(scores, k=n)
    log_probs = tf.gather(log_probs, order, batch_dims=1)
    lengths = tf.gather(lengths, order, batch_dims=1)
    ids = tf.gather(ids, order, batch_dims=1)
    records = {k: tf.gather(v[:, :, :t], order, batch_dims=1) for k, v in records.items()}
    content = lengths - tf.cast(_ends_with_eos(ids, lengths, eos_id), tf.int32)
    return SearchResult(ids, scores, log_probs, lengths, content, records)
