"""Greedy and beam search in `tf.while_loop`, over any model's decoder step.

Written against `step(token_ids, state, memory) -> (logits, state)` (see
`s2s_zoo.models.base`), with core TF ops only, so an exported graph runs on stock
TF Serving (and, with a step whose state keeps its shape, compiles under XLA,
`tf.function(jit_compile=True)`). Beam search keeps whole prefixes and reorders them
with `tf.gather` each step, so no backtracking op (tfa's `GatherTree`, absent from TF
Serving) is needed.

Why not keras-hub's `BeamSampler`: it has no length penalty, no per-sequence
maximum length and no finished-hypothesis bookkeeping, and it re-runs a fixed-size
prompt buffer; we need all of those for n-best translation output. Why hand-written
`min_length` / `no_repeat_ngram_size` / coverage rules instead of HF's logits
processors: those are PyTorch/NumPy code that cannot run inside a SavedModel graph.

Conventions shared by both searches:
- A hypothesis ends when it emits `eos_id` or reaches its own maximum length
  (`max_lengths[b]`); later positions hold `pad_id`. A maximum length of 0 (an
  unreadable request item) gives an empty hypothesis with score 0 and no step run
  for it; a batch of such items runs no step at all.
- `lengths` count generated tokens including EOS; `content_lengths` exclude EOS.
- `banned_ids` (default pad, unk, bos) are never generated.
- Optional controls, all off by default:
  `min_length` bans EOS until that many tokens were generated (per item, capped at
  `max_lengths[b] - 1`); `no_repeat_ngram_size` bans a token that would complete an
  n-gram already in the hypothesis (the HF/fairseq rule); beam search's
  `coverage_penalty` adds the GNMT coverage penalty to the ranking score. If these
  rules leave a hypothesis no token at all, EOS is allowed (it ends there).
- Each batch item is decoded independently of its neighbours: same result alone
  or in any batch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import tensorflow as tf

from s2s_zoo.data.tokenizer import BOS_ID, PAD_ID, UNK_ID

StepFn = Callable[[tf.Tensor, dict, dict], tuple[tf.Tensor, dict]]
NEG_INF = -1e9  # finite, so that -inf arithmetic can never produce NaN
DEFAULT_BANNED_IDS = (PAD_ID, UNK_ID, BOS_ID)
# Coverage below this counts as this (log 0 would be -inf): GNMT's log(min(coverage, 1)).
MIN_COVERAGE = 1e-10


class SearchResult(NamedTuple):
    """Search output. Greedy: `ids` is [B, T]; beam: [B, N, T] with N hypotheses, best first."""

    ids: tf.Tensor
    scores: tf.Tensor  # length-normalised (+ coverage penalty); equal to log_probs for greedy
    log_probs: tf.Tensor
    lengths: tf.Tensor  # tokens including EOS
    content_lengths: tf.Tensor  # tokens excluding EOS
    # state entries recorded at every step (`record=`), [B(, N), T, ...], e.g. attention
    records: dict = {}  # noqa: RUF012  (NamedTuple default, never mutated)


def gnmt_length_penalty(lengths: tf.Tensor, alpha: float | tf.Tensor) -> tf.Tensor:
    """GNMT (Wu et al. 2016) length penalty ((5 + |Y|) / 6) ** alpha; 1 when alpha is 0."""
    return tf.pow((5.0 + tf.cast(lengths, tf.float32)) / 6.0, alpha)


def gnmt_coverage_penalty(
    coverage: tf.Tensor, beta: float | tf.Tensor, source_mask: tf.Tensor | None = None
) -> tf.Tensor:
    """GNMT coverage penalty beta * sum_i log(min(coverage_i, 1)) over the last axis.

    `coverage` is the attention summed over decoding steps, [..., source_len].
    Positions where `source_mask` is False are left out; without a mask, positions
    never attended (coverage exactly 0: masked softmax gives padding exactly 0) are
    taken for padding and left out. Coverage is floored at MIN_COVERAGE.
    """
    if source_mask is None:
        source_mask = coverage > 0.0
    logs = tf.math.log(tf.clip_by_value(coverage, MIN_COVERAGE, 1.0))
    return tf.cast(beta, tf.float32) * tf.reduce_sum(tf.where(source_mask, logs, 0.0), axis=-1)


def max_output_lengths(source_lengths: tf.Tensor, ratio: float, offset: int, cap: int) -> tf.Tensor:
    """Per-sequence output budget: min(cap, ceil(ratio * source_length) + offset), at least 1."""
    budget = tf.math.ceil(ratio * tf.cast(source_lengths, tf.float32)) + float(offset)
    return tf.clip_by_value(tf.cast(budget, tf.int32), 1, cap)


def decode_steps(max_lengths: tf.Tensor) -> tf.Tensor:
    """Steps a search over `max_lengths` can take: their maximum, and 0 for an empty batch.

    (`tf.reduce_max` of an empty tensor is the dtype's minimum, which no buffer size takes.)
    """
    return tf.maximum(tf.reduce_max(max_lengths), 0)


def _log_probs(logits: tf.Tensor, banned_ids: tuple[int, ...]) -> tf.Tensor:
    log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32), axis=-1)
    if banned_ids:
        vocab = tf.shape(log_probs)[-1]
        banned = tf.reduce_any(
            tf.equal(tf.range(vocab)[:, None], tf.constant(banned_ids, tf.int32)[None, :]), axis=1
        )
        log_probs = tf.where(banned, tf.constant(NEG_INF, tf.float32), log_probs)
    return log_probs


def repeated_ngram_bans(ids: tf.Tensor, t: tf.Tensor, n: int, vocab: tf.Tensor) -> tf.Tensor:
    """[R, V] bool: tokens that would repeat an n-gram of `ids[:, :t]` as the next token.

    For every earlier start j whose first n - 1 tokens equal the last n - 1 generated
    tokens, the token that followed them (ids[j + n - 1]) is banned. `ids` is [R, T]
    with T >= t (positions from t on are ignored); one scatter instead of a [R, T, V]
    one-hot, so memory stays O(R * (T + V)).
    """
    rows, width = tf.shape(ids)[0], tf.shape(ids)[1]
    starts = tf.range(width)
    offsets = tf.range(n - 1)
    last = width - 1
    windows = tf.gather(ids, tf.minimum(starts[:, None] + offsets[None, :], last), axis=1)
    suffix = tf.gather(ids, tf.maximum(t - (n - 1) + offsets, 0), axis=1)  # [R, n - 1]
    match = tf.reduce_all(tf.equal(windows, suffix[:, None, :]), axis=2)  # [R, T]
    match = tf.logical_and(match, (starts <= t - n)[None, :])
    following = tf.gather(ids, tf.minimum(starts + n - 1, last), axis=1)  # [R, T]
    row_ids = tf.broadcast_to(tf.range(rows)[:, None], tf.shape(following))
    hits = tf.scatter_nd(
        tf.stack([row_ids, following], axis=-1), tf.cast(match, tf.int32), tf.stack([rows, vocab])
    )
    return hits > 0


def _apply_controls(
    log_probs: tf.Tensor,
    ids: tf.Tensor,
    t: tf.Tensor,
    min_lengths: tf.Tensor | None,
    no_repeat_ngram_size: int,
    eos_id: int,
) -> tf.Tensor:
    """Ban EOS before `min_lengths` ([R]) and repeated n-grams, for rows that generated t tokens.

    Rows left with no allowed token may still end: their EOS keeps its log-prob.
    """
    if min_lengths is None and not no_repeat_ngram_size:
        return log_probs
    vocab = tf.shape(log_probs)[-1]
    is_eos = tf.equal(tf.range(vocab), eos_id)[None, :]
    banned = tf.zeros_like(log_probs, tf.bool)
    if min_lengths is not None:
        banned = banned | (is_eos & (t < min_lengths)[:, None])
    if no_repeat_ngram_size:
        banned = banned | repeated_ngram_bans(ids, t, no_repeat_ngram_size, vocab)
    controlled = tf.where(banned, NEG_INF, log_probs)
    stuck = tf.reduce_max(controlled, axis=-1, keepdims=True) <= NEG_INF / 2
    return tf.where(stuck & is_eos, log_probs, controlled)


TOP_K_CHUNK = 128  # logits per chunk in `_row_top_k`


def _row_top_k(logits: tf.Tensor, k: int | tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """`tf.math.top_k(logits, k)` per row, plus each row's maximum ([R, 1]).

    Why not top_k alone: TF's CPU TopK over [128, 16000] took 4.8 ms, as long as the
    16k-way output projection feeding it. The k largest logits of a row lie in the k
    chunks (of TOP_K_CHUNK) with the largest maxima, so one vectorised max per chunk
    and two small top_k calls find them (ties keep the lower id first, as top_k
    does). Short rows, and the tail past the last whole chunk, go to top_k directly.
    """
    vocab = tf.shape(logits)[-1]
    whole = vocab // TOP_K_CHUNK * TOP_K_CHUNK
    small = tf.logical_or(tf.less(vocab, 8 * TOP_K_CHUNK), tf.greater(k, vocab // TOP_K_CHUNK))

    def direct():
        values, ids = tf.math.top_k(logits, k=k)
        return values, ids, tf.reduce_max(logits, axis=-1, keepdims=True)

    def chunked():
        rows = tf.shape(logits)[0]
        chunks = tf.reshape(logits[:, :whole], [rows, whole // TOP_K_CHUNK, TOP_K_CHUNK])
        maxima = tf.reduce_max(chunks, axis=-1)  # [R, C]
        _, best_chunks = tf.math.top_k(maxima, k=tf.minimum(k, whole // TOP_K_CHUNK))
        best_chunks = tf.sort(best_chunks, axis=-1)  # ascending ids, for top_k's tie order
        picked = tf.reshape(tf.gather(chunks, best_chunks, batch_dims=1), [rows, -1])
        offsets = best_chunks[..., None] * TOP_K_CHUNK + tf.range(TOP_K_CHUNK)
        tail = logits[:, whole:]
        pool = tf.concat([picked, tail], axis=-1)
        pool_ids = tf.concat(
            [tf.reshape(offsets, [rows, -1]), whole + tf.zeros_like(tail, tf.int32)
             + tf.range(vocab - whole)], axis=-1,
        )  # fmt: skip
        values, where = tf.math.top_k(pool, k=k)
        row_max = tf.maximum(
            tf.reduce_max(maxima, axis=-1, keepdims=True),
            tf.reduce_max(tail, axis=-1, keepdims=True),
        )
        return values, tf.gather(pool_ids, where, batch_dims=1), row_max

    static_vocab, static_k = logits.shape[-1], tf.get_static_value(k)
    if static_vocab is not None and static_vocab < 8 * TOP_K_CHUNK:
        return direct()  # decided while tracing (XLA compiles both branches of a cond)
    if static_vocab is not None and static_k is not None:
        return direct() if static_k > static_vocab // TOP_K_CHUNK else chunked()
    return tf.cond(small, direct, chunked)


def _top_candidates(
    logits: tf.Tensor,
    m: int | tf.Tensor,
    banned_ids: tuple[int, ...],
    controls: Callable[[tf.Tensor], tf.Tensor] | None,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Each row's `m` best allowed tokens: ([R, m] log-probs, [R, m] ids), by id.

    The same tokens and log-probs as `top_k` of the full, controlled log-softmax (ties
    to the lower id; up to ties that only float rounding creates), returned in id
    order, so that a later top_k over several rows' candidates breaks ties by (row, id)
    as it would over the full rows. Why not
    materialise that: at a 16k vocabulary and 128 beam rows, every pass over [R, V]
    (log-softmax, bans, finished rows, totals, length penalty, one flat top_k) cost
    about a millisecond a step, more than the model's recurrent cells. Without
    controls, the log-softmax is monotone per row, so the top `m + len(banned_ids)`
    raw logits hold the answer, and one logsumexp turns the few kept into log-probs.
    Controls (`min_length`, n-gram bans) depend on the hypothesis, so with them the
    full row is controlled first.
    """
    logits = tf.cast(logits, tf.float32)
    static_m, static_vocab = tf.get_static_value(m), logits.shape[-1]
    vocab = static_vocab if static_vocab is not None else tf.shape(logits)[-1]
    if static_m is not None and static_vocab is not None:  # static sizes: XLA-friendly
        keep, wider = (
            min(int(static_m), static_vocab),
            min(int(static_m) + len(banned_ids), static_vocab),
        )
    else:
        keep, wider = tf.minimum(m, vocab), tf.minimum(m + len(banned_ids), vocab)
    if controls is not None:
        values, ids = tf.math.top_k(controls(_log_probs(logits, banned_ids)), k=keep)
        return _by_id(values, ids)
    values, ids, row_max = _row_top_k(logits, wider)
    # (x - max) - log sum exp(x - max): tf.nn.log_softmax's rounding
    log_sum = tf.math.log(tf.reduce_sum(tf.exp(logits - row_max), -1, keepdims=True))
    values = (values - row_max) - log_sum
    if banned_ids:
        banned = tf.reduce_any(tf.equal(ids[..., None], tf.constant(banned_ids, tf.int32)), -1)
        values = tf.where(banned, tf.constant(NEG_INF, tf.float32), values)
        values, ids = _by_id(values, ids)  # banned ones tie at NEG_INF: lower id first
        values, order = tf.math.top_k(values, k=keep)
        ids = tf.gather(ids, order, batch_dims=1)
    return _by_id(values[:, :keep], ids[:, :keep])


def _by_id(values: tf.Tensor, ids: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Candidates reordered by ascending id (rows of [R, m])."""
    order = tf.argsort(ids, axis=-1, stable=True)
    return tf.gather(values, order, batch_dims=1), tf.gather(ids, order, batch_dims=1)


def _controls_at(
    ids: tf.Tensor,
    t: tf.Tensor,
    min_lengths: tf.Tensor | None,
    no_repeat_ngram_size: int,
    eos_id: int,
) -> Callable[[tf.Tensor], tf.Tensor] | None:
    """`_apply_controls` for this step's hypotheses, or None when every control is off."""
    if min_lengths is None and not no_repeat_ngram_size:
        return None
    return lambda log_probs: _apply_controls(
        log_probs, ids, t, min_lengths, no_repeat_ngram_size, eos_id
    )


def _min_lengths(min_length: int | tf.Tensor, max_lengths: tf.Tensor) -> tf.Tensor | None:
    """Per-item EOS ban length: min(min_length, max_length - 1); None when off."""
    if isinstance(min_length, int):
        if min_length < 0:
            raise ValueError(f"min_length must be >= 0 (0 = off), got {min_length}")
        if min_length == 0:
            return None
    return tf.minimum(tf.cast(min_length, tf.int32), max_lengths - 1)


def _check_ngram_size(no_repeat_ngram_size: int) -> None:
    if not isinstance(no_repeat_ngram_size, int) or no_repeat_ngram_size < 0:
        raise ValueError(
            "no_repeat_ngram_size must be a Python int >= 0 (0 = off), "
            f"got {no_repeat_ngram_size!r}"
        )


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
    pad_id: int = PAD_ID,
    banned_ids: tuple[int, ...] = DEFAULT_BANNED_IDS,
    record: tuple[str, ...] = (),
    min_length: int | tf.Tensor = 0,
    no_repeat_ngram_size: int = 0,
) -> SearchResult:
    """Pick the most likely allowed token at each step; stop a sequence at EOS or its max length.

    `record` names state entries (e.g. "attention") to keep for every step.
    `min_length` bans EOS until that many tokens were generated (capped per item at
    max_length - 1); `no_repeat_ngram_size` n bans any token that would complete an
    n-gram already in the hypothesis (n = 1: no token twice); 0 turns either off.
    """
    _check_ngram_size(no_repeat_ngram_size)
    batch = tf.shape(max_lengths)[0]
    limit = decode_steps(max_lengths)
    min_lengths = _min_lengths(min_length, max_lengths)
    ids = tf.zeros([batch, limit], tf.int32)
    tokens = tf.fill([batch], bos_id)
    finished = max_lengths <= 0  # nothing to generate
    log_probs = tf.zeros([batch], tf.float32)
    lengths = tf.zeros([batch], tf.int32)
    records = _record_buffers(state, record, [batch], limit)

    def body(t, tokens, finished, log_probs, lengths, ids, state, records):
        logits, state = step_fn(tokens, state, memory)
        records = {k: _write_step(v, t, state[k], 1) for k, v in records.items()}
        controls = _controls_at(ids, t, min_lengths, no_repeat_ngram_size, eos_id)
        best, next_tokens = _top_candidates(logits, 1, banned_ids, controls)
        best, next_tokens = best[:, 0], next_tokens[:, 0]
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
    # one pad column, so the gather is in range when no step ran (ids has width 0)
    ids = tf.pad(ids, [[0, 0]] * (len(ids.shape) - 1) + [[0, 1]])
    last = tf.gather(ids, tf.maximum(lengths - 1, 0), batch_dims=len(ids.shape) - 1)
    return tf.logical_and(lengths > 0, tf.equal(last, eos_id))


def _invariants(loop_vars):
    """Let every dimension but the last of tensors in state vary (batch*beam is dynamic)."""
    return tf.nest.map_structure(lambda x: tf.TensorShape([None] * len(x.shape)), loop_vars)


def _tile(tree: dict, beam_size) -> dict:
    """[B, ...] -> [B * k, ...], each item repeated k times consecutively."""
    return tf.nest.map_structure(lambda x: tf.repeat(x, beam_size, axis=0), tree)


def _coverage_on(coverage_penalty: float | tf.Tensor) -> bool:
    return not (isinstance(coverage_penalty, int | float) and coverage_penalty == 0)


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
    pad_id: int = PAD_ID,
    banned_ids: tuple[int, ...] = DEFAULT_BANNED_IDS,
    record: tuple[str, ...] = (),
    min_length: int | tf.Tensor = 0,
    no_repeat_ngram_size: int = 0,
    coverage_penalty: float | tf.Tensor = 0.0,
    source_mask: tf.Tensor | None = None,
) -> SearchResult:
    """Beam search with the GNMT length (and optional coverage) penalty and n-best output.

    Finished hypotheses keep their beam slot and can only be extended by a free
    EOS (their score frozen), as in tfa's BeamSearchDecoder and OpenNMT-tf; beams
    are ranked by score = log_prob / length_penalty (+ coverage penalty).

    Stopping: log-probs only fall, the length penalty only grows and the coverage
    penalty is at most 0, so an alive beam with log-prob L can at best finish with
    L / lp(max_length of its item). An item is done once its `num_hypotheses`-th best
    finished score reaches that bound for all its alive beams (or every beam is
    finished); nothing found later could enter its n best, so the n-best list (and
    any prefix of it) is the same for every `num_hypotheses`. A done item is frozen,
    so neighbours in the batch cannot change its result. With a beam wide enough to
    hold every prefix this is exact n-best search; with beam_size 1 it is greedy.

    `coverage_penalty` (beta, GNMT; 0 = off, a tensor counts as on) needs the model
    to leave each step's attention in `state["attention"]` ([batch, source_len]); it
    is summed over the steps of each hypothesis (EOS step included). `source_mask`
    ([batch, source_len] bool) marks real source positions; without it, positions
    never attended count as padding (see `gnmt_coverage_penalty`).

    `min_length` (int or scalar tensor) and `no_repeat_ngram_size` (Python int) work
    as in `greedy_search`.
    """
    _check_ngram_size(no_repeat_ngram_size)
    use_coverage = _coverage_on(coverage_penalty)
    if use_coverage and "attention" not in state:
        raise ValueError(
            "coverage_penalty needs the decoder state to carry 'attention' weights "
            "(a model with attention); this model's state has: " + ", ".join(sorted(state))
        )
    k = tf.convert_to_tensor(beam_size, tf.int32)
    n = tf.minimum(tf.convert_to_tensor(num_hypotheses, tf.int32), k)
    alpha = tf.cast(length_penalty, tf.float32)
    batch = tf.shape(max_lengths)[0]
    limit = decode_steps(max_lengths)
    state, memory = _tile(state, k), _tile(memory, k)
    item_max = tf.reshape(max_lengths, [batch, 1])
    beam_max = tf.repeat(max_lengths, k)  # [B*k]
    min_lengths = _min_lengths(min_length, beam_max)
    # The best length penalty any alive beam can still reach (the bound's denominator).
    best_penalty = gnmt_length_penalty(item_max, alpha)  # [B, 1]
    mask = None if source_mask is None else tf.cast(source_mask, tf.bool)[:, None, :]

    def cover(coverage):
        if not use_coverage:
            return 0.0
        return gnmt_coverage_penalty(coverage, coverage_penalty, mask)

    # Only beam 0 starts alive, so the first expansion does not pick k copies of one prefix.
    log_probs = tf.tile(tf.concat([[0.0], tf.fill([k - 1], NEG_INF)], axis=0)[None, :], [batch, 1])
    finished = tf.tile((max_lengths <= 0)[:, None], [1, k])  # nothing to generate
    lengths = tf.zeros([batch, k], tf.int32)
    ids = tf.zeros([batch, k, limit], tf.int32)
    tokens = tf.fill([batch * k], bos_id)
    batch_offsets = (tf.range(batch) * k)[:, None]
    records = _record_buffers(state, record, [batch, k], limit)
    # Summed attention per beam, [B, k, source_len] (an empty stand-in when off).
    coverage = (
        tf.zeros_like(tf.reshape(state["attention"], [batch, k, -1]), tf.float32)
        if use_coverage
        else tf.zeros([batch, k, 0], tf.float32)
    )

    def body(t, tokens, log_probs, finished, lengths, ids, coverage, state, records):
        logits, state = step_fn(tokens, state, memory)
        controls = _controls_at(
            tf.reshape(ids, [batch * k, -1]), t, min_lengths, no_repeat_ngram_size, eos_id
        )
        # Each beam's k best continuations hold the k best of the whole item: the
        # ranking below is monotone in a token's log-prob within a beam.
        step_log_probs, step_ids = _top_candidates(logits, k, banned_ids, controls)
        width = tf.shape(step_log_probs)[-1]  # k, or the vocabulary if that is smaller
        step_log_probs = tf.reshape(step_log_probs, [batch, k, width])
        step_ids = tf.reshape(step_ids, [batch, k * width])
        # A finished beam has exactly one continuation: EOS at no cost (stays as it is).
        first = tf.equal(tf.range(width), 0)
        step_log_probs = tf.where(
            finished[..., None], tf.where(first, 0.0, NEG_INF), step_log_probs
        )
        step_ids = tf.where(
            tf.reshape(tf.repeat(finished, width, axis=1), [batch, k * width]), eos_id, step_ids
        )
        totals = log_probs[..., None] + step_log_probs  # [B, k, width]
        new_lengths = tf.where(finished, lengths, lengths + 1)
        if use_coverage:
            attention = tf.reshape(tf.cast(state["attention"], tf.float32), tf.shape(coverage))
            coverage = tf.where(finished[..., None], coverage, coverage + attention)
        ranked = totals / gnmt_length_penalty(new_lengths, alpha)[..., None]
        if use_coverage:
            ranked += cover(coverage)[..., None]
        _, flat = tf.math.top_k(tf.reshape(ranked, [batch, k * width]), k=k)
        parents = flat // width
        next_tokens = tf.gather(step_ids, flat, batch_dims=1)  # [B, k]

        log_probs = tf.gather(tf.reshape(totals, [batch, k * width]), flat, batch_dims=1)
        parent_finished = tf.gather(finished, parents, batch_dims=1)
        lengths = tf.gather(new_lengths, parents, batch_dims=1)
        coverage = tf.gather(coverage, parents, batch_dims=1)
        ids = tf.gather(ids, parents, batch_dims=1)
        ids = _write_column(ids, t, tf.where(parent_finished, pad_id, next_tokens))
        finished = parent_finished | tf.equal(next_tokens, eos_id) | (t + 1 >= item_max)

        # Done: the n-th best finished score is at least every alive beam's best reachable
        # score. Freeze done items, so their result never depends on the batch.
        scores = log_probs / gnmt_length_penalty(lengths, alpha) + cover(coverage)
        finished_scores = tf.where(finished, scores, float("-inf"))
        nth_best = tf.math.top_k(finished_scores, k=n).values[:, -1]
        reachable = tf.where(finished, float("-inf"), tf.minimum(log_probs, 0.0) / best_penalty)
        done = tf.logical_or(
            nth_best >= tf.reduce_max(reachable, axis=1), tf.reduce_all(finished, axis=1)
        )
        finished = finished | done[:, None]

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
        return t + 1, tokens, log_probs, finished, lengths, ids, coverage, state, records

    buffers = (ids, coverage, state, records)
    loop_vars = (tf.constant(0), tokens, log_probs, finished, lengths, *buffers)
    t, _, log_probs, finished, lengths, ids, coverage, _, records = tf.while_loop(
        lambda t, tokens, log_probs, finished, *_: tf.logical_and(
            t < limit, tf.logical_not(tf.reduce_all(finished))
        ),
        body,
        loop_vars,
        shape_invariants=_invariants(loop_vars),
    )
    ids = ids[:, :, :t]
    scores = log_probs / gnmt_length_penalty(lengths, alpha) + cover(coverage)
    # Rank complete hypotheses (EOS or max length) first: a done item's frozen alive beams
    # score no better than its n best, and must not win a tie against them.
    ends = _ends_with_eos(ids, lengths, eos_id)
    complete = ends | (lengths >= item_max)
    _, order = tf.math.top_k(tf.where(complete, scores, float("-inf")), k=n)
    scores = tf.gather(scores, order, batch_dims=1)
    log_probs = tf.gather(log_probs, order, batch_dims=1)
    lengths = tf.gather(lengths, order, batch_dims=1)
    ids = tf.gather(ids, order, batch_dims=1)
    ends = tf.gather(ends, order, batch_dims=1)
    records = {k: tf.gather(v[:, :, :t], order, batch_dims=1) for k, v in records.items()}
    return SearchResult(ids, scores, log_probs, lengths, lengths - tf.cast(ends, tf.int32), records)
