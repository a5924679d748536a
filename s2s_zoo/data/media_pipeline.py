"""tf.data pipelines for captioning and speech: the exported graph's front end, batched.

Images are read as file bytes and decoded by the same `ImageFrontEnd.decode` the
SavedModel runs; audio is read (and resampled, if a file's rate differs) once in
Python, then turned into features by the same `AudioFrontEnd.features` the
SavedModel runs. Augmentation (image: `features.image_augment`; audio waveforms:
`features.audio_augment`; log-mel: SpecAugment) is for training batches only: the
tasks pass it for the training split alone, and the exported front end never runs it.
Every augmentation draw is seeded per batch from `seed`, so a seed reproduces the
batches exactly.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from s2s_zoo.data.media_preprocessors import AudioPreprocessor, ImagePreprocessor
from s2s_zoo.data.readers import Pair
from s2s_zoo.features.audio_augment import AudioAugmentConfig, augment_batches
from s2s_zoo.features.image_augment import ImageAugmentConfig, augment_images, batch_seeds
from s2s_zoo.features.spec_augment import spec_augment as mask_features


def _finish(ds: tf.data.Dataset) -> tf.data.Dataset:
    options = tf.data.Options()
    options.deterministic = True
    return ds.with_options(options).prefetch(tf.data.AUTOTUNE)


def make_image_dataset(
    pairs: Sequence[Pair],
    preprocessor: ImagePreprocessor,
    batch_size: int,
    shuffle: bool = True,
    seed: int = 0,
    cache: bool = True,
    augment: ImageAugmentConfig | None = None,
) -> tf.data.Dataset:
    """`((images, target_in), target_out)` batches from (image path, caption) pairs.

    `cache=True` keeps decoded images in memory (small data sets; set False for
    COCO-sized ones); `augment` perturbs the decoded batches after the cache, with a
    new seed per batch drawn from `seed` (pass it for training data only). An
    unreadable image stops training with its path and reason.
    """
    if not pairs:
        raise ValueError("no (image, caption) pairs")
    paths = tf.constant([p for p, _ in pairs], tf.string)
    captions = tf.constant([c for _, c in pairs], tf.string)
    front_end = preprocessor.front_end

    def decode(path, caption):
        images, errors = front_end.decode(tf.io.read_file(path)[None])
        check = tf.debugging.Assert(
            tf.equal(errors[0], ""), ["unreadable training image", path, errors[0]]
        )
        with tf.control_dependencies([check]):
            return tf.identity(images[0]), caption

    ds = tf.data.Dataset.from_tensor_slices((paths, captions))
    ds = ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE)
    if cache:
        ds = ds.cache()
    if shuffle:
        ds = ds.shuffle(len(pairs), seed=seed, reshuffle_each_iteration=True)

    def tokenize(images, texts):
        target_in, target_out = preprocessor.target_in_out(texts)
        return (images, target_in), target_out

    ds = ds.batch(batch_size)
    if augment is not None and augment.enabled:
        ds = tf.data.Dataset.zip(ds, batch_seeds(seed)).map(
            lambda batch, key: (augment_images(batch[0], augment, key), batch[1]),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    ds = ds.map(tokenize, num_parallel_calls=tf.data.AUTOTUNE)
    return _finish(ds)


def load_waveforms(pairs: Sequence[Pair], sample_rate: int) -> list[np.ndarray]:
    """Every file of `pairs` as float32 mono at `sample_rate` (resampled when needed)."""
    from s2s_zoo.data.wav_files import load_wav

    return [load_wav(path, sample_rate) for path, _ in pairs]


def make_audio_dataset(
    pairs: Sequence[Pair],
    preprocessor: AudioPreprocessor,
    batch_size: int,
    shuffle: bool = True,
    seed: int = 0,
    spec_augment: bool = False,
    waveforms: Sequence[np.ndarray] | None = None,
    bucket_seconds: Sequence[float] = (1.0, 1.5, 2.0, 3.0, 5.0, 8.0),
    augment: AudioAugmentConfig | None = None,
) -> tf.data.Dataset:
    """`((features, frame_mask, target_in), target_out)` batches from (WAV path, transcript).

    Utterances are bucketed by duration so a batch pads little; `waveforms` may be
    passed when already loaded (they are the slow part). `augment` perturbs each
    padded batch of waveforms (speed, noise, gain, reverb; a new seed per batch drawn
    from `seed`) before `front_end.features`; `spec_augment` then masks the features.
    Pass both for training data only.
    """
    if not pairs:
        raise ValueError("no (audio, transcript) pairs")
    front_end = preprocessor.front_end
    if augment is not None and augment.sample_rate != front_end.sample_rate:
        raise ValueError(
            f"audio augmentation is set for {augment.sample_rate} Hz but the front end "
            f"runs at {front_end.sample_rate} Hz"
        )
    if waveforms is None:
        waveforms = load_waveforms(pairs, front_end.sample_rate)
    ragged = tf.RaggedTensor.from_row_lengths(
        np.concatenate([np.asarray(w, np.float32) for w in waveforms]),
        [len(w) for w in waveforms],
    )
    texts = tf.constant([t for _, t in pairs], tf.string)
    ds = tf.data.Dataset.from_tensor_slices((ragged, texts))
    if shuffle:
        ds = ds.shuffle(len(pairs), seed=seed, reshuffle_each_iteration=True)
    ds = ds.map(lambda w, t: (w, tf.shape(w)[0], t))
    boundaries = [int(s * front_end.sample_rate) for s in bucket_seconds]
    ds = ds.bucket_by_sequence_length(
        element_length_func=lambda w, n, t: n,
        bucket_boundaries=boundaries,
        bucket_batch_sizes=[batch_size] * (len(boundaries) + 1),
        padding_values=(0.0, 0, ""),
    )
    if augment is not None and augment.enabled:
        ds = augment_batches(ds, augment, seed)

    def featurize(waves, lengths, transcripts):
        features, frame_mask = front_end.features(waves, lengths)
        if spec_augment:
            features = mask_features(features, frame_mask, seed=seed)
        target_in, target_out = preprocessor.target_in_out(transcripts)
        return (features, frame_mask, target_in), target_out

    return _finish(ds.map(featurize, num_parallel_calls=tf.data.AUTOTUNE))
