"""Attention blocks over an encoder memory: Bahdanau (additive) and Luong (dot, general).

The scoring itself is Keras' own `AdditiveAttention` / `Attention` layers; this
module adds the projections each paper puts around them and splits the work so
the memory side (keys) is computed once per source, not once per decoding step.
"""

from __future__ import annotations

import keras

ATTENTION_KINDS = ("none", "bahdanau", "luong_dot", "luong_general")


class MemoryAttention(keras.layers.Layer):
    """One attention mechanism whose layers are shared by the training and step graphs.

    - bahdanau: score = v^T tanh(W_q q + W_k k)  (Keras AdditiveAttention with a
      learned scale vector as v, over projected query and keys)
    - luong_dot: score = q^T k  (needs query and memory of equal width)
    - luong_general: score = q^T W k

    >>> att = MemoryAttention("bahdanau", 8, query_dim=4, memory_dim=6, name="att")
    >>> memory = keras.ops.zeros((2, 5, 6)); query = keras.ops.zeros((2, 3, 4))
    >>> query_mask = keras.ops.ones((2, 3), "bool"); mask = keras.ops.ones((2, 5), "bool")
    >>> context, weights = att(query, memory, att.keys(memory), query_mask, mask)
    >>> tuple(context.shape), tuple(weights.shape)
    ((2, 3, 6), (2, 3, 5))
    """

    def __init__(
        self, kind: str, units: int, query_dim: int, memory_dim: int, name: str, **kwargs
    ) -> None:
        super().__init__(name=name, **kwargs)
        self.units, self.query_dim, self.memory_dim = units, query_dim, memory_dim
        self.supports_masking = True  # the query's mask carries over to the context
        mechanism = kind  # one of ATTENTION_KINDS but "none"
        if mechanism not in ATTENTION_KINDS or mechanism == "none":
            raise ValueError(f"attention kind must be one of {ATTENTION_KINDS[1:]}, got {kind!r}")
        if mechanism == "luong_dot" and query_dim != memory_dim:
            raise ValueError(
                "luong_dot attention needs the decoder width to equal the encoder output "
                f"width, got {query_dim} and {memory_dim}; use luong_general instead"
            )
        self.kind = kind
        self.query_projection = None
        self.key_projection = None
        if mechanism == "bahdanau":
            self.query_projection = keras.layers.Dense(units, use_bias=False, name=f"{name}_query")
            self.key_projection = keras.layers.Dense(units, use_bias=False, name=f"{name}_key")
            self.score = keras.layers.AdditiveAttention(use_scale=True, name=f"{name}_score")
        else:
            if mechanism == "luong_general":
                self.key_projection = keras.layers.Dense(
                    query_dim, use_bias=False, name=f"{name}_key"
                )
            self.score = keras.layers.Attention(score_mode="dot", name=f"{name}_score")

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "kind": self.kind,
            "units": self.units,
            "query_dim": self.query_dim,
            "memory_dim": self.memory_dim,
        }

    def keys(self, memory):
        """Project the encoder memory once; the result is reused at every step."""
        return memory if self.key_projection is None else self.key_projection(memory)

    def call(self, query, memory, keys, query_mask, memory_mask):
        """[B, Tq, Dq] queries -> ([B, Tq, Dm] context, [B, Tq, Tm] weights)."""
        q = query if self.query_projection is None else self.query_projection(query)
        context, weights = self.score(
            [q, memory, keys], mask=[query_mask, memory_mask], return_attention_scores=True
        )
        return context, weights
