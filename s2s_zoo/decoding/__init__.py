"""Greedy and beam search, written once over the `step(token_ids, state, memory)` interface."""

from s2s_zoo.decoding.search import (
    DEFAULT_BANNED_IDS,
    SearchResult,
    beam_search,
    decode_steps,
    gnmt_coverage_penalty,
    gnmt_length_penalty,
    greedy_search,
    max_output_lengths,
    repeated_ngram_bans,
)

__all__ = [
    "DEFAULT_BANNED_IDS",
    "SearchResult",
    "beam_search",
    "decode_steps",
    "gnmt_coverage_penalty",
    "gnmt_length_penalty",
    "greedy_search",
    "max_output_lengths",
    "repeated_ngram_bans",
]
