"""Translation with the classic encoder-decoder (Sutskever et al. 2014): no attention.

Two stacked LSTMs read the source backwards; their final states, through a dense
bridge, are the decoder's only view of the source.

    python recipes/translation/lstm_plain.py [--train a.tsv --valid b.tsv] [--init-from DIR]
"""

from s2s_zoo.inference import DecodingConfig
from s2s_zoo.training.fit import TrainConfig
from s2s_zoo.training.runner import Recipe, main

RECIPE = Recipe(
    task="translation",
    name="translation_lstm_plain",
    model="rnn_plain",
    model_overrides={"embedding_dim": 64, "encoder_units": 256, "decoder_units": 256},
    train=TrainConfig(epochs=8, batch_size=64, learning_rate=3e-3, patience=2),
    decoding=DecodingConfig(beam_size=4, length_penalty=0.6, num_hypotheses=4),
    options={"vocab_size": 400},
)

if __name__ == "__main__":
    main(RECIPE, description=__doc__)
