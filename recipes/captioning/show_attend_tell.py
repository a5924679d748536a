"""Image captioning, Show, Attend and Tell: a CNN feature grid and an LSTM with attention.

The backbone is Keras' MobileNetV3-Small (minimalistic), trained from scratch
(`weights=None`; pass a local file with --backbone-weights, --freeze-backbone to
train only the decoder). The export takes JPEG/PNG bytes and decodes, resizes and
normalises them in the graph.

    python recipes/captioning/show_attend_tell.py                      # embedded digits task
    python recipes/captioning/show_attend_tell.py --train a.tsv --valid b.tsv
    python recipes/captioning/show_attend_tell.py --train captions_train.json \\
        --valid captions_val.json --image-dir images/                  # COCO-style
"""

from s2s_zoo.inference import DecodingConfig
from s2s_zoo.training.fit import TrainConfig
from s2s_zoo.training.runner import Recipe, main

RECIPE = Recipe(
    task="captioning",
    name="captioning_show_attend_tell",
    model="show_attend_tell",
    model_overrides={
        "embedding_dim": 64,
        "decoder_units": 256,
        "feature_dim": 128,
        "attention_units": 128,
        "dropout": 0.1,
    },
    train=TrainConfig(epochs=30, batch_size=32, learning_rate=2e-3, patience=4),
    # captions do not scale with an input length: a fixed cap of 24 tokens
    decoding=DecodingConfig(
        beam_size=4, num_hypotheses=4, max_length_ratio=0.0, max_length_offset=24
    ),
    options={
        "vocab_size": 64,
        "max_target_length": 32,
        # the 32 x 128 digit strips are upsampled 2x: a 4 x 16 feature grid at stride 16
        "front_end": {"height": 64, "width": 256},
        "default_task": {"num_train": 6000, "num_valid": 300, "num_test": 500},
        # training batches only (--image-augment): mild geometry, blur, noise and colour,
        # so unseen handwriting and font designs look less new; JPEG is off (PNG data)
        "image_augment": "affine,blur,noise,jitter",
    },
)

if __name__ == "__main__":
    main(RECIPE, description=__doc__)
