"""Translation with LSTMs and Luong attention (general score) with input feeding.

The previous step's attentional vector is fed into the next decoder step (Luong
et al. 2015), so training runs the decoder step by step.

    python recipes/translation/lstm_luong.py [--train a.tsv --valid b.tsv] [--init-from DIR]
"""

from s2s_zoo.inference import DecodingConfig
from s2s_zoo.training.fit import TrainConfig
from s2s_zoo.training.runner import Recipe, main

RECIPE = Recipe(
    task="translation",
    name="translation_lstm_luong",
    model="lstm_luong",
    model_overrides={
        "embedding_dim": 64,
        "encoder_units": 128,
        "decoder_units": 256,
        "dropout": 0.1,
    },
    train=TrainConfig(epochs=3, batch_size=64, learning_rate=3e-3, patience=2),
    decoding=DecodingConfig(beam_size=4, length_penalty=0.6, num_hypotheses=4),
    options={"vocab_size": 400},
)

if __name__ == "__main__":
    main(RECIPE, description=__doc__)
