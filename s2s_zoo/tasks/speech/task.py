"""Speech recognition: WAV bytes in, transcript out; default data is spoken numbers."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np

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
            type=augment_settings(
                AudioAugmentConfig,
                ",".join(AUGMENTATIONS),
                reserved={
                    **{name: "choose it in --audio-augment" for name in AUGMENTATIONS},
                    "sample_rate": "the front end's rate is used",
                    "noise_waveforms": "pass recordings with --noise-files",
                },
                # noise_kinds may name "waveforms": --noise-files supplies them
                validation={"noise_waveforms": (np.zeros(1, np.float32),)},
            ),
            default={},
            help="JSON object of augmentation settings over the recipe's, e.g. '{\"snr_db\": "
            '[0, 20], "speed_factors": [0.9, 1.1], "reverb_probability": 0.5}\'',
        )
        parser.add_argument(
            "--noise-files",
            nargs="+",
            default=[],
            metavar="WAV_OR_DIR",
            type=existing_path,
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
        noise_files = getattr(args, "noise_files", [])
        if noise_files:
            if "noise" not in args.audio_augment.split(","):
                raise SystemExit(
                    f"--noise-files needs noise in --audio-augment (it is {args.audio_augment!r})"
                )
            kinds = settings.get("noise_kinds", AudioAugmentConfig.noise_kinds)
            settings["noise_kinds"] = tuple(dict.fromkeys((*kinds, "waveforms")))
            settings["noise_waveforms"] = load_noise(noise_wav_files(noise_files), sample_rate)
        elif "waveforms" in settings.get("noise_kinds", ()):
            raise SystemExit("noise kind 'waveforms' needs recordings: pass --noise-files")
        config = AudioAugmentConfig.from_names(
            args.audio_augment, sample_rate=sample_rate, **settings
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


# Noise recordings live in the training graph as one constant: each clip is cut to its
# first MAX_NOISE_SECONDS (utterances are seconds long) and the total is capped.
MAX_NOISE_SECONDS = 30.0
MAX_NOISE_TOTAL_MINUTES = 60.0


def existing_path(value: str) -> str:
    """argparse `type`: a path that exists (checked when the command line is read)."""
    if not Path(value).exists():
        raise argparse.ArgumentTypeError(f"{value} does not exist")
    return value


def noise_wav_files(entries: Sequence[str]) -> list[Path]:
    """The WAV files named by `--noise-files`: files as given, folders by their .wav files
    (any case, sorted). A missing path or a folder without WAVs is an error naming it."""
    files: list[Path] = []
    for entry in entries:
        path = Path(entry)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() == ".wav")
            if not found:
                raise SystemExit(f"--noise-files: no .wav file in the folder {path}")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise SystemExit(f"--noise-files: {path} does not exist")
    return files


def load_noise(files: Sequence[Path], sample_rate: int) -> tuple[np.ndarray, ...]:
    """The recordings at `sample_rate`, each cut to MAX_NOISE_SECONDS (said once); empty
    files and more than MAX_NOISE_TOTAL_MINUTES in all are errors naming the cause."""
    limit = int(MAX_NOISE_SECONDS * sample_rate)
    clips, cut = [], 0
    for path in files:
        clip = load_wav(path, sample_rate)
        if clip.size == 0:
            raise SystemExit(f"--noise-files: {path} holds no samples")
        cut += clip.size > limit
        clips.append(clip[:limit])
    if cut:
        print(f"--noise-files: {cut} of {len(clips)} recordings cut to their first "
              f"{MAX_NOISE_SECONDS:g} s")  # fmt: skip
    minutes = sum(c.size for c in clips) / sample_rate / 60
    if minutes > MAX_NOISE_TOTAL_MINUTES:
        raise SystemExit(
            f"--noise-files: {minutes:.0f} minutes of noise after cutting; pass at most "
            f"{MAX_NOISE_TOTAL_MINUTES:g} (a sample of the recordings)"
        )
    return tuple(clips)
