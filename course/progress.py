"""`course check`: run the lesson tests and show where you stand.

Prints one row per lesson (passed / total and a status: done, not started, in progress, syntax
error), then for the first lesson not done its first failure and a hint. The tests run in a
subprocess, so a lesson file that does not even parse shows up as a row, not as a crash.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from course import hints, registry
from course.impl import ROOT, resolve


@dataclass
class Row:
    """One lesson's line of the table, with its first failure."""

    lesson: registry.Lesson
    passed: int
    total: int
    status: str
    first_failure: str | None


def syntax_error(path: Path) -> str | None:
    """`line N: message` if the file does not parse, else None."""
    try:
        compile(path.read_text(), str(path), "exec")
    except SyntaxError as error:
        return f"line {error.lineno}: {error.msg}"
    except (OSError, UnicodeDecodeError) as error:
        return str(error)
    return None


def impl_folder(impl: str) -> Path:
    """The folder that holds the graded lesson files."""
    return ROOT / impl if impl in ("lessons", "solutions") else Path(impl).resolve()


def lesson_test_files() -> list[str]:
    """Test files that use a lesson marker."""
    markers = [entry.marker for entry in registry.lessons()]
    return [str(p.relative_to(ROOT)) for p in sorted((ROOT / "tests").glob("test_*.py")) if any(f"mark.{m}(" in p.read_text() for m in markers)]


def run_tests(impl: str) -> tuple[dict | None, str]:
    """Run every lesson test against `impl` in a subprocess; returns the JSON report (None if pytest broke) and its output."""
    markers = " or ".join(entry.marker for entry in registry.lessons())
    with tempfile.TemporaryDirectory(prefix="course-check-") as work:
        report = Path(work) / "report.json"
        command = [
            sys.executable, "-m", "pytest", f"--rootdir={ROOT}", "-c", str(ROOT / "pyproject.toml"),
            f"--impl={impl}", f"--course-report={report}", "-q", "-p", "no:cacheprovider", "-m", markers, *lesson_test_files(),
        ]  # fmt: skip
        env = dict(os.environ)
        env.pop("COURSE_IMPL", None)
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
        data = json.loads(report.read_text()) if report.exists() else None
    return data, done.stdout + done.stderr


def build_rows(report: dict, folder: Path) -> list[Row]:
    """Tally the report per lesson and decide each lesson's status."""
    rows = []
    for lesson in registry.lessons():
        tests = [t for t in report["tests"] if t["lesson"] == lesson.marker]
        passed = sum(t["outcome"] == "passed" for t in tests)
        failures = [t for t in tests if t["outcome"] in ("failed", "error")]
        broken = syntax_error(folder / f"{lesson.module}.py")
        blocked = next((t for t in failures if t["kind"] == "syntax-error"), None)
        if broken:
            status = "syntax error"
        elif tests and passed == len(tests):
            status = "done"
        elif blocked is not None:
            status = f"blocked: {Path(blocked['path'] or '?').name} has a syntax error"
        elif passed == 0 and all(t["kind"] == "not-done" for t in failures):
            status = "not started"
        else:
            status = "in progress"
        first = None
        if broken:
            first = f"{folder.name}/{lesson.module}.py has a syntax error at {broken}"
        elif failures:
            first = failures[0]["message"]
        rows.append(Row(lesson, passed, len(tests), status, first))
    return rows


def print_table(rows: list[Row]) -> None:
    width = max(len(r.lesson.title) for r in rows)
    print(f"{'lesson':<7} {'title':<{width}}  {'passed':>7}  status")
    for r in rows:
        print(f"{r.lesson.id:<7} {r.lesson.title:<{width}}  {f'{r.passed}/{r.total}':>7}  {r.status}")


def print_next(row: Row) -> None:
    """The first failure of the first unfinished lesson, and a hint: the next unseen one, or a reminder of the last."""
    lesson = row.lesson
    print(f"\nNext: lesson {lesson.id}, {lesson.title} ({lesson.path}; docs/{lesson.page}).")
    if row.first_failure:
        print(f"  {row.first_failure}")
    upcoming = hints.next_hint(lesson)
    shown = hints.seen(lesson.id)
    if upcoming is not None and shown == 0:
        number, text = upcoming
        hints.mark_seen(lesson, number)
    elif shown:
        number, text = shown, lesson.hints[shown - 1]
    else:
        return
    print(f"\nHint {number} of {len(lesson.hints)}: {text}")
    if number < len(lesson.hints):
        print(f"(`course hint {lesson.id}` shows hint {number + 1}.)")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--impl", default=None, help="what to check: lessons (default), solutions, or a folder")


def run(args: argparse.Namespace) -> int:
    try:
        impl = resolve(args.impl)
    except ValueError as error:
        print(f"course check: {error}", file=sys.stderr)
        return 2
    print(f"Running the lesson tests on {impl}/ ...", flush=True)
    report, output = run_tests(impl)
    if report is None:
        print(output[-4000:])
        print("course check: the tests could not run (see pytest's output above)", file=sys.stderr)
        return 2
    for error in report.get("collect_errors", []):
        print(f"collection error in {error['nodeid']}: {error['message']}", file=sys.stderr)
    rows = build_rows(report, impl_folder(impl))
    print()
    print_table(rows)
    unfinished = next((r for r in rows if r.status != "done"), None)
    if unfinished is None:
        print("\nEvery lesson is done. The docs' experiments pages show what to try next: `course reproduce --impl lessons`.")
        return 0
    print_next(unfinished)
    return 0
