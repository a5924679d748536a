"""Former home of the spoken-number task, kept so existing imports work.

The task now mixes synthesizers (espeak-ng and festival); it lives in
`s2s_zoo.tasks.speech.spoken_numbers`, the engines in `s2s_zoo.tasks.speech.engines`.
"""

from __future__ import annotations

from s2s_zoo.tasks.speech.engines import EspeakEngine
from s2s_zoo.tasks.speech.spoken_numbers import make_spoken_number_task, number_words

__all__ = [
    "ACCENTS",
    "TEST_VARIANTS",
    "TRAIN_VARIANTS",
    "make_spoken_number_task",
    "number_words",
]

ACCENTS = EspeakEngine.ACCENTS
TRAIN_VARIANTS = EspeakEngine.TRAIN_VARIANTS
TEST_VARIANTS = EspeakEngine.TEST_VARIANTS
