"""`course hint N [--all] [--reset]`: a lesson's hints, one at a time, read from the registry.

How many hints of each lesson you have seen is kept in `.course/hints.json` (not committed).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from course import registry
from course.impl import ROOT

STATE = ROOT / ".course" / "hints.json"


def seen_counts(path: Path = STATE) -> dict[str, int]:
    """Lesson number (as a string) → how many of its hints have been shown."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): int(v) for k, v in data.items() if isinstance(v, int)} if isinstance(data, dict) else {}


def save_counts(counts: dict[str, int], path: Path = STATE) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(counts, indent=2, sort_keys=True) + "\n")


def seen(lesson_id: int, path: Path = STATE) -> int:
    """How many hints of the lesson have been shown."""
    return seen_counts(path).get(str(lesson_id), 0)


def next_hint(lesson: registry.Lesson, path: Path = STATE) -> tuple[int, str] | None:
    """(number from 1, text) of the first hint not shown yet, or None when all have been; does not mark it shown."""
    count = seen(lesson.id, path)
    if count >= len(lesson.hints):
        return None
    return count + 1, lesson.hints[count]


def mark_seen(lesson: registry.Lesson, upto: int, path: Path = STATE) -> None:
    """Record that hints 1..`upto` of the lesson have been shown."""
    counts = seen_counts(path)
    counts[str(lesson.id)] = max(counts.get(str(lesson.id), 0), min(upto, len(lesson.hints)))
    save_counts(counts, path)


def reset(lesson: registry.Lesson, path: Path = STATE) -> None:
    """Forget which hints of the lesson were shown."""
    counts = seen_counts(path)
    counts.pop(str(lesson.id), None)
    save_counts(counts, path)


def format_hint(lesson: registry.Lesson, number: int) -> str:
    return f"Hint {number} of {len(lesson.hints)} for lesson {lesson.id} ({lesson.title}):\n  {lesson.hints[number - 1]}"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("lesson", help="lesson number (1-5), marker (l1) or module name")
    parser.add_argument("--all", action="store_true", help="show every hint of the lesson")
    parser.add_argument("--reset", action="store_true", help="start the lesson's hints again from the first")


def run(args: argparse.Namespace) -> int:
    try:
        lesson = registry.lesson(args.lesson)
    except KeyError as error:
        print(f"course hint: {error.args[0]}", file=sys.stderr)
        return 2
    if args.reset:
        reset(lesson)
        print(f"Lesson {lesson.id}: hints reset; `course hint {lesson.id}` starts again from hint 1.")
        if not args.all:
            return 0
    if args.all:
        print("\n\n".join(format_hint(lesson, n) for n in range(1, len(lesson.hints) + 1)))
        mark_seen(lesson, len(lesson.hints))
        return 0
    found = next_hint(lesson)
    if found is None:
        print(f"You have seen all {len(lesson.hints)} hints for lesson {lesson.id}: `course hint {lesson.id} --all` shows them again; the docs page docs/{lesson.page} explains the lesson.")
        return 0
    number, _ = found
    print(format_hint(lesson, number))
    mark_seen(lesson, number)
    if number < len(lesson.hints):
        print(f"\n(`course hint {lesson.id}` again for hint {number + 1}.)")
    return 0
