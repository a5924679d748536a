"""Speech recognition: WAV bytes in, transcript out; default data is spoken numbers."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from s2s_zoo.data.asr_manifests import read_manifest
from s2s_zoo.data.media_pipeline import make_audio_dataset
from s2s_zoo.data.media_preprocessors import AudioPreprocessor
from s2s_zoo.data.wav_files import load_wav
from s2s_zoo.features.audio import AudioFrontEnd
from s2s_zoo.features.audio_augment import AUGMENTATIONS, AudioAugmentConfig
from s2s_zoo.metrics import error_rates
from s2s_zoo.tasks.base import (
    Example,
    FileSourceTask,
    augment_names,
    augment_settings,
    exact_match,
    register_task,
)


@register_task("speech")
class SpeechTask(FileSourceTask):
    """WAV -> transcript; reads CSV/TSV manifests with a header, or JSONL."""

    default_model = "speech_las"
    front_end_class = AudioFrontEnd
    preprocessor_class = AudioPreprocessor
    default_corpus = "spoken numbers rendered by espeak-ng and festival, test voices held out."
    default_options = {
        "vocab_size": 64,
        "max_target_length": 64,
        "front_end": {},  # AudioFrontEnd arguments
        "default_task": {},  # arguments of make_spoken_number_task
        "spec_augment": False,
        # training-waveform augmentation: comma list of speed,noise,gain,reverb or "none"
        "audio_augment": "none",
        "audio_augment_settings": {},  # other AudioAugmentConfig fields (snr_db, ...)
    }

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--path-field", default="path", help="manifest audio path column")
        parser.add_argument("--transcript-field", default="transcript", help="transcript column")
        parser.add_argument(
            "--spec-augment",
            action=argparse.BooleanOptionalAction,
            default=self.options["spec_augment"],
            help="SpecAugment masking on training batches",
        )
        parser.add_argument(
            "--audio-augment",
            type=augment_names(AudioAugmentConfig),
            default=self.options["audio_augment"],
            help="augment training waveforms: comma list of speed,noise,gain,reverb, or none "
            "(default: %(default)s)",
        )
        parser.add_argument(
            "--audio-augment-settings",
            type=augment_settings(AudioAugmentConfig, ",".join(AUGMENTATIONS)),
            default={},
            help="JSON object of augmentation settings over the recipe's, e.g. '{\"snr_db\": "
            '[0, 20], "speed_factors": [0.9, 1.1], "reverb_probability": 0.5}\'',
        )
        parser.add_argument(
            "--noise-files",
            nargs="+",
            default=[],
            metavar="WAV_OR_DIR",
            help="noise recordings (16-bit PCM WAV files, or folders of them) mixed into "
            "training waveforms beside generated white/pink noise; needs noise in "
            "--audio-augment",
        )

    def read(self, path: str, args: argparse.Namespace) -> list[Example]:
        return read_manifest(
            path, path_field=args.path_field, transcript_field=args.transcript_field
        )

    def generate_default_files(self, args: argparse.Namespace) -> dict[str, Path]:
        from s2s_zoo.tasks.speech.spoken_numbers import make_spoken_number_task

        return make_spoken_number_task(
            args.data_dir, seed=args.seed, **self.options["default_task"]
        )

    def read_split(self, path: str | Path) -> list[Example]:
        return read_manifest(path)

    def model_overrides(self, preprocessor, args: argparse.Namespace) -> dict:
        return {"feature_dim": preprocessor.front_end.feature_dim}

    def augmentation(self, args: argparse.Namespace, sample_rate: int) -> AudioAugmentConfig | None:
        """The training-waveform augmentation the flags and options ask for (None: off)."""
        settings = {
            **self.options["audio_augment_settings"],
            **getattr(args, "audio_augment_settings", {}),
        }
        config = AudioAugmentConfig.from_names(
            args.audio_augment, sample_rate=sample_rate, **settings
        )
        noise_files = getattr(args, "noise_files", [])
        if noise_files:
            if not config.noise:
                raise SystemExit(
                    f"--noise-files needs noise in --audio-augment (it is {args.audio_augment!r})"
                )
            config = config.with_noise_waveforms(
                [load_wav(path, sample_rate) for path in noise_wav_files(noise_files)]
            )
        return config if config.enabled else None

    def dataset(self, examples, preprocessor, args, training):
        rate = preprocessor.front_end.sample_rate
        return make_audio_dataset(
            examples,
            preprocessor,
            args.batch_size,
            shuffle=training,
            seed=args.seed,
            spec_augment=training and args.spec_augment,
            augment=self.augmentation(args, rate) if training else None,
        )

    def score(self, hypotheses: Sequence[str], references: Sequence[list[str]]) -> dict:
        rates = error_rates(hypotheses, [refs[0] for refs in references])
        return {"exact_match": exact_match(hypotheses, references), **rates}

    def source_groups(self, split_path: str | Path) -> dict[str, list[str]] | None:
        """The engine of each utterance, from `<split>.sources.tsv` beside the manifest."""
        from s2s_zoo.tasks.speech.sources import read_sources, sources_path

        side = sources_path(split_path)
        if not side.is_file():
            return None
        return {row.path: [row.engine] for row in read_sources(side)}


def noise_wav_files(entries: Sequence[str]) -> list[Path]:
    """The WAV files named by `--noise-files`: files as given, folders by their *.wav
    (sorted). A missing path or a folder without WAVs is an error naming it."""
    files: list[Path] = []
    for entry in entries:
        path = Path(entry)
        if path.is_dir():
            found = sorted(path.glob("*.wav")) + sorted(path.glob("*.WAV"))
            if not found:
                raise SystemExit(f"--noise-files: no .wav file in the folder {path}")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise SystemExit(f"--noise-files: {path} does not exist")
    return files
