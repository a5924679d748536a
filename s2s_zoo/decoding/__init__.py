"""Greedy and beam search, written once over the `step(token_ids, state, memory)` interface."""

from s2s_zoo.decoding.search import (
    SearchResult,
    beam_search,
    gnmt_length_penalty,
    greedy_search,
    max_output_lengths,
)

__all__ = [
    "SearchResult",
    "beam_search",
    "gnmt_length_penalty",
    "greedy_search",
    "max_output_lengths",
]
