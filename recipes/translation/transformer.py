"""Translation with a small Transformer (keras-hub encoder/decoder layers, pre-LN).

Sinusoidal positions, target embedding tied to the output layer, incremental
decoding cache in the exported greedy and beam search.

    python recipes/translation/transformer.py [--train a.tsv --valid b.tsv] [--init-from DIR]
"""

from s2s_zoo.inference import DecodingConfig
from s2s_zoo.training.fit import TrainConfig
from s2s_zoo.training.runner import Recipe, main

RECIPE = Recipe(
    task="translation",
    name="translation_transformer",
    model="transformer_tiny",
    model_overrides={
        "hidden_dim": 128,
        "intermediate_dim": 256,
        "num_heads": 4,
        "encoder_layers": 2,
        "decoder_layers": 2,
        "dropout": 0.1,
    },
    # linear warmup over 200 updates, then inverse square root decay from the peak rate
    train=TrainConfig(epochs=6, batch_size=64, learning_rate=1.5e-3, patience=2, warmup_steps=200),
    decoding=DecodingConfig(beam_size=4, length_penalty=0.6, num_hypotheses=4),
    options={"vocab_size": 400},
)

if __name__ == "__main__":
    main(RECIPE, description=__doc__)
