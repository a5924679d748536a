"""Packaging for s2s-zoo. Metadata lives here (the product card fixes setup.py)."""

from setuptools import find_packages, setup

setup(
    name="s2s-zoo",
    version="0.1.0",
    description=(
        "A TensorFlow/Keras zoo of sequence-to-sequence models that train from "
        "recipes and export SavedModels with in-graph greedy and beam search "
        "for TensorFlow Serving."
    ),
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["s2s_zoo", "s2s_zoo.*"]),
    install_requires=[
        "tensorflow>=2.21,<2.22",
        "tensorflow-text>=2.21,<2.22",
        "keras>=3.10,<4",
        "keras-hub>=0.32,<0.33",
        "sentencepiece>=0.2,<0.3",
        "num2words>=0.5.13,<0.6",
        "numpy>=1.26",
    ],
    extras_require={
        # ctranslate2: tests/test_ctranslate2_export.py checks the CTranslate2 export
        "test": [
            "pytest>=8",
            "pytest-xdist>=3.5",
            "ruff>=0.6",
            "hypothesis>=6.100,<7",
            "ctranslate2>=4.5,<5",
        ],
        # ROUGE: rouge-score; its Porter stemmer (nltk) and the Unicode tokenizer's `regex`
        # are imported directly, so they are listed too
        "metrics": [
            "sacrebleu>=2.4,<3",
            "jiwer>=3.0,<5",
            "rouge-score>=0.1.2,<0.2",
            "nltk>=3.6,<4",
            "regex>=2022.1",
        ],
        "plot": ["matplotlib>=3.7,<4"],
        # `s2s-zoo export --format ctranslate2` and `predict --engine ctranslate2`
        "ctranslate2": ["ctranslate2>=4.5,<5"],
        # TensorBoard event files (--logdir); TF 2.21 does not pull TensorBoard in
        "logs": ["tensorboard>=2.21,<2.22"],
        # the gettext corpus behind benchmarks/quality.py; lz4 reads apt's compressed
        # Translation-en index for the Debian headline corpus
        "corpus": ["polib>=1.2,<2", "lz4>=4,<5"],
        # captioning's default data (bundled digits, font-rendered digits) and speech resampling
        "media": ["scikit-learn>=1.3,<2", "scipy>=1.10,<2", "Pillow>=9.1,<14"],
    },
    entry_points={"console_scripts": ["s2s-zoo=s2s_zoo.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
