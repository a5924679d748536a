"""Translation with a bidirectional GRU encoder and a GRU decoder with Bahdanau attention.

    python recipes/translation/gru_bahdanau.py                      # embedded number task
    python recipes/translation/gru_bahdanau.py --train a.tsv --valid b.tsv
    python recipes/translation/gru_bahdanau.py --init-from exported/translation_gru_bahdanau/1 \
        --train new.tsv --valid new_valid.tsv                        # fine-tune -> version 2

Exports to exported/translation_gru_bahdanau/<next version>/ and prints held-out
exact match of the exported model's greedy and beam search.
"""

from s2s_zoo.inference import DecodingConfig
from s2s_zoo.training.fit import TrainConfig
from s2s_zoo.training.runner import Recipe, main

RECIPE = Recipe(
    task="translation",
    name="translation_gru_bahdanau",
    model="gru_bahdanau",
    model_overrides={
        "embedding_dim": 64,
        "encoder_units": 128,  # per direction: the memory is 256 wide
        "decoder_units": 256,
        "attention_units": 128,
        "dropout": 0.1,
    },
    train=TrainConfig(epochs=3, batch_size=64, learning_rate=3e-3, patience=2),
    decoding=DecodingConfig(beam_size=4, length_penalty=0.6, num_hypotheses=4),
    options={"vocab_size": 400},
)

if __name__ == "__main__":
    main(RECIPE, description=__doc__)
