"""Start the output layer at the targets' unigram distribution (log-prior output bias).

Why: with a zero output bias the first thing a decoder learns is the unigram
distribution of target tokens. Adam moves every output-kernel column at full
learning rate, even the tiny but consistent gradients of thousands of rare pieces,
so that distribution is fitted faster through the decoder's last hidden vector
(used as a constant input) than through the bias. That vector is a tanh (Luong's
attentional vector, the LSTM output): it is pushed to the same saturated +-1
pattern at every position, its gradient vanishes, and training stalls at the
unigram entropy predicting EOS everywhere (issue 12: LSTM 2x256 at a 16k
vocabulary). Starting the bias at log p(token) leaves nothing for the hidden
vector to absorb, so it keeps carrying the source and the prefix.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from s2s_zoo.data.preprocessor import TargetText


def target_log_prior(
    preprocessor: TargetText,
    targets: Sequence[str],
    smoothing: float = 1.0,
    batch_size: int = 4096,
) -> np.ndarray:
    """[vocab] log unigram probabilities of the ids the loss sees (pieces + EOS).

    Add-`smoothing` counts keep pieces absent from `targets` finite.
    """
    counts = np.zeros(preprocessor.target_vocab_size, np.float64)
    for i in range(0, len(targets), batch_size):
        _, target_out = preprocessor.target_in_out_ragged(
            tf.constant(list(targets[i : i + batch_size]), tf.string)
        )
        counts += np.bincount(target_out.flat_values.numpy(), minlength=counts.size)
    counts += smoothing
    return np.log(counts / counts.sum()).astype("float32")


def init_output_bias(decoder, preprocessor: TargetText, targets: Sequence[str]) -> bool:
    """Set the decoder's output bias (its `output_bias()` hook) to the log prior of
    `targets`.

    Returns False, changing nothing (and counting nothing: that costs a pass over the
    targets), for decoders without such a bias.
    """
    bias = decoder.output_bias()
    if bias is None:
        return False
    log_prior = target_log_prior(preprocessor, targets)
    if tuple(bias.shape) != tuple(log_prior.shape):
        raise ValueError(f"output bias {tuple(bias.shape)} vs prior {tuple(log_prior.shape)}")
    bias.assign(log_prior)
    return True
