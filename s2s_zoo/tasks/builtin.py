"""Importing this module registers the built-in tasks."""

from s2s_zoo.tasks.captioning.task import CaptioningTask
from s2s_zoo.tasks.dialogue.task import DialogueTask
from s2s_zoo.tasks.speech.task import SpeechTask
from s2s_zoo.tasks.summarization.task import SummarizationTask
from s2s_zoo.tasks.translation.task import TranslationTask

__all__ = ["CaptioningTask", "DialogueTask", "SpeechTask", "SummarizationTask", "TranslationTask"]
