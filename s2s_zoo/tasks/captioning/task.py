"""Image captioning: JPEG/PNG bytes in, caption text out; default data is digit strips."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from s2s_zoo.data.captions import read_caption_tsv, read_coco_captions
from s2s_zoo.data.media_pipeline import make_image_dataset
from s2s_zoo.data.media_preprocessors import ImagePreprocessor
from s2s_zoo.features.image import ImageFrontEnd
from s2s_zoo.features.image_augment import OPTIONS as AUGMENT_OPTIONS
from s2s_zoo.features.image_augment import ImageAugmentConfig
from s2s_zoo.metrics import corpus_bleu, error_rates
from s2s_zoo.tasks.base import (
    Example,
    FileSourceTask,
    augment_names,
    augment_settings,
    exact_match,
    register_task,
)


@register_task("captioning")
class CaptioningTask(FileSourceTask):
    """Image -> caption; reads `image_path<TAB>caption` TSV or COCO captions JSON."""

    default_model = "show_attend_tell"
    front_end_class = ImageFrontEnd
    preprocessor_class = ImagePreprocessor
    default_corpus = "strings of handwritten and typeset digits -> words."
    default_options = {
        "vocab_size": 64,
        "max_target_length": 64,
        "front_end": {"height": 32, "width": 128},  # ImageFrontEnd arguments
        "default_task": {},  # arguments of make_digit_caption_task
        # training-batch augmentation: comma list of affine,blur,noise,jitter,jpeg or "none"
        "image_augment": "none",
        "image_augment_settings": {},  # ImageAugmentConfig.from_names keywords (probability, ...)
    }

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--image-dir", help="image folder for COCO-style JSON annotations")
        parser.add_argument("--backbone-weights", help="local weights file for the CNN backbone")
        parser.add_argument("--freeze-backbone", action="store_true", help="train the decoder only")
        parser.add_argument(
            "--image-augment",
            type=augment_names(ImageAugmentConfig),
            default=self.options["image_augment"],
            help="augment training batches: comma list of affine,blur,noise,jitter,jpeg, or none "
            "(default: %(default)s)",
        )
        parser.add_argument(
            "--image-augment-settings",
            type=augment_settings(
                ImageAugmentConfig,
                ",".join(AUGMENT_OPTIONS),
                reserved={
                    f"{name}_prob": 'choose options in --image-augment and set their "probability"'
                    for name in AUGMENT_OPTIONS
                },
                extra={"probability": 0.5},
            ),
            default={},
            help="JSON object of augmentation settings over the recipe's, e.g. '{\"probability\": "
            '0.3, "max_rotation": 5, "jpeg_quality": [30, 90]}\'',
        )

    def read(self, path: str, args: argparse.Namespace) -> list[Example]:
        if path.endswith(".json"):
            if not args.image_dir:
                raise SystemExit("--image-dir is required with COCO-style JSON annotations")
            return read_coco_captions(path, args.image_dir)
        return read_caption_tsv(path)

    def generate_default_files(self, args: argparse.Namespace) -> dict[str, Path]:
        from s2s_zoo.tasks.captioning.digit_strips import make_digit_caption_task

        return make_digit_caption_task(
            args.data_dir, seed=args.seed, **self.options["default_task"]
        )

    def read_split(self, path: str | Path) -> list[Example]:
        return read_caption_tsv(path)

    def model_overrides(self, preprocessor, args: argparse.Namespace) -> dict:
        front = preprocessor.front_end
        overrides = {"image_height": front.height, "image_width": front.width}
        if args.freeze_backbone:
            overrides["backbone_trainable"] = False
        return overrides

    def after_build(self, model, args: argparse.Namespace) -> None:
        if args.backbone_weights:
            model.encoder.backbone.load_weights(args.backbone_weights)
            print(f"Backbone weights loaded from {args.backbone_weights}")

    def augmentation(self, args: argparse.Namespace) -> ImageAugmentConfig | None:
        """The training-batch augmentation the flags and options ask for (None: off)."""
        settings = {
            **self.options["image_augment_settings"],
            **getattr(args, "image_augment_settings", {}),
        }
        config = ImageAugmentConfig.from_names(args.image_augment, **settings)
        return config if config.enabled else None

    def dataset(self, examples, preprocessor, args, training):
        return make_image_dataset(
            examples,
            preprocessor,
            args.batch_size,
            shuffle=training,
            seed=args.seed,
            augment=self.augmentation(args) if training else None,
        )

    def score(self, hypotheses: Sequence[str], references: Sequence[list[str]]) -> dict:
        """Exact match (any reference), WER/CER against the first reference, BLEU-4 (all)."""
        rates = error_rates(hypotheses, [refs[0] for refs in references])
        return {
            "exact_match": exact_match(hypotheses, references),
            **rates,
            "bleu4": corpus_bleu(hypotheses, references),
        }

    def source_groups(self, split_path: str | Path) -> dict[str, list[str]] | None:
        """Digit strips: handwriting, or "fonts" and the font family (`<split>.sources.tsv`)."""
        from s2s_zoo.tasks.captioning.digit_strips import HANDWRITING, read_sources, sources_file

        if not sources_file(split_path).is_file():
            return None
        return {
            image: [source] if source == HANDWRITING else ["fonts", source]
            for image, source in read_sources(split_path).items()
        }
