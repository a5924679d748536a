"""Speech recognition, Listen-Attend-Spell style: log-mel frames, 4x convolutional
subsampling, a bidirectional LSTM encoder and an LSTM decoder with attention.

Features (log-mel, per-utterance normalisation) are computed in the graph with
tf.signal, by the training pipeline and by the export alike; the export takes
16-bit PCM WAV bytes at any rate from 4 to 192 kHz (resampled to 16 kHz in the
graph). Training waveforms are augmented (speed, noise, gain, reverberation;
--audio-augment none turns it off) and SpecAugment masks their features.

    python recipes/speech/las.py                                 # espeak-ng + festival task
    python recipes/speech/las.py --train train.csv --valid dev.csv   # path,transcript
"""

from s2s_zoo.inference import DecodingConfig
from s2s_zoo.training.fit import TrainConfig
from s2s_zoo.training.runner import Recipe, main

RECIPE = Recipe(
    task="speech",
    name="speech_las",
    model="speech_las",
    model_overrides={
        "embedding_dim": 64,
        "encoder_units": 128,
        "decoder_units": 256,
        "encoder_layers": 2,
        "attention_units": 128,
        "dropout": 0.1,
    },
    train=TrainConfig(epochs=20, batch_size=32, learning_rate=2e-3, patience=3),
    # the limit scales with encoder memory positions: 40 ms each after the 4x subsampling
    # of 10 ms frames; one token per position (as 0.25 per 10 ms frame), plus 10
    decoding=DecodingConfig(
        beam_size=4, num_hypotheses=4, max_length_ratio=1.0, max_length_offset=10
    ),
    options={
        "vocab_size": 64,
        "max_target_length": 64,
        "front_end": {"sample_rate": 16000, "num_mel_bins": 40},
        "spec_augment": True,
        # training waveforms only (--audio-augment): tempo/pitch, noise, level and room,
        # so a voice or engine never heard is less new
        "audio_augment": "speed,noise,gain,reverb",
    },
)

if __name__ == "__main__":
    main(RECIPE, description=__doc__)
