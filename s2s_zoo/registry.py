"""Registration by name: tasks, encoders, decoders and preprocessors are found by the
names saved in configs and given on the command line, and a new one is one decorated class."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T", bound=type)


def registrar(table: dict[str, type], attribute: str) -> Callable[[str], Callable[[T], T]]:
    """A `@register(name)` class decorator that records the class in `table` under `name`
    and stores the name on the class as `attribute`."""

    def register(name: str) -> Callable[[T], T]:
        def add(cls: T) -> T:
            setattr(cls, attribute, name)
            table[name] = cls
            return cls

        return add

    return register
