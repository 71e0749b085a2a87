"""The lessons, their functions and hints, read from `lessons.toml`."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

REGISTRY = Path(__file__).with_name("lessons.toml")


@dataclass(frozen=True)
class Lesson:
    id: int
    marker: str
    module: str
    title: str
    page: str
    functions: tuple[str, ...]
    hints: tuple[str, ...]

    @property
    def path(self) -> str:
        """The learner's file, relative to the repository root."""
        return f"lessons/{self.module}.py"


@cache
def lessons() -> tuple[Lesson, ...]:
    """Every lesson, in course order."""
    data = tomllib.loads(REGISTRY.read_text())
    return tuple(
        Lesson(
            id=entry["id"],
            marker=entry["marker"],
            module=entry["module"],
            title=entry["title"],
            page=entry["page"],
            functions=tuple(entry["functions"]),
            hints=tuple(entry["hints"]),
        )
        for entry in data["lesson"]
    )


def lesson(key: int | str) -> Lesson:
    """A lesson by number (1), marker ("l1") or module name ("l1_conv_stack")."""
    for entry in lessons():
        if key in (entry.id, str(entry.id), entry.marker, entry.module):
            return entry
    raise KeyError(f"no lesson {key!r}: choose one of {', '.join(str(e.id) for e in lessons())}")
