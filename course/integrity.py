"""`course verify`: the checks that make a grade mean something.

1. every test passes against `solutions/`;
2. every lesson test fails against freshly generated stubs, reported as "not done yet";
3. every known-wrong implementation in `tests/mutants.toml` is caught by its lesson's tests;
4. `lessons/` matches the stubs generated from `solutions/`, and the registry matches both.

Prints one row per check and ends with `integrity: N passed, M failed`; exits 1 if any failed.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from course import registry, stubgen
from course.impl import ROOT

MUTANTS = ROOT / "tests" / "mutants.toml"
SOLUTIONS = ROOT / "solutions"


class MutantError(Exception):
    """A mutant no longer applies to the solutions (its text is gone or ambiguous)."""


@dataclass(frozen=True)
class Edit:
    """Replace `find`, which must occur exactly once inside `function` (or the whole file), with `replace`."""

    find: str
    replace: str
    function: str | None


@dataclass(frozen=True)
class Mutant:
    """A known-wrong implementation: edits to one solution file, and the lesson whose tests must catch it."""

    name: str
    lesson: str
    file: str
    what: str
    edits: tuple[Edit, ...]


@dataclass
class Result:
    """One row of the table."""

    check: str
    ok: bool
    detail: str
    seconds: float = 0.0
    output: str = ""


@dataclass
class Run:
    """A finished pytest subprocess: exit code, parsed JSON report (if any) and combined output."""

    code: int
    report: dict | None
    output: str
    seconds: float
    tests: list[dict] = field(default_factory=list)


def load_mutants(path: Path = MUTANTS) -> list[Mutant]:
    """Every mutant in the registry, validated for shape (not yet for applying)."""
    data = tomllib.loads(path.read_text())
    mutants = []
    markers = {entry.marker for entry in registry.lessons()}
    for raw in data.get("mutant", []):
        name = raw.get("name", "?")
        if raw.get("lesson") not in markers:
            raise MutantError(f"mutant {name}: lesson must be one of {', '.join(sorted(markers))}")
        if "edit" in raw:
            edits = tuple(Edit(e["find"], e["replace"], e.get("function", raw.get("function"))) for e in raw["edit"])
        else:
            edits = (Edit(raw["find"], raw["replace"], raw.get("function")),)
        mutants.append(Mutant(name, raw["lesson"], raw["file"], raw.get("what", ""), edits))
    names = [m.name for m in mutants]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise MutantError(f"mutant names must be unique: {', '.join(duplicates)}")
    return mutants


def scope(source: str, function: str | None) -> tuple[int, int]:
    """Character offsets (start, end) of a top-level function or Class.method in `source`; the whole file for None."""
    if function is None:
        return 0, len(source)
    tree = ast.parse(source)
    nodes: list[ast.stmt] = tree.body
    node: ast.stmt | None = None
    for part in function.split("."):
        node = next((n for n in nodes if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n.name == part), None)
        if node is None:
            raise MutantError(f"no function {function}")
        nodes = node.body
    assert node is not None
    starts = [0]
    for line in source.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
    return starts[first - 1], starts[node.end_lineno]


def apply(source: str, edits: tuple[Edit, ...]) -> str:
    """The source with every edit applied in turn; MutantError unless each `find` occurs exactly once in its scope."""
    for edit in edits:
        start, end = scope(source, edit.function)
        count = source[start:end].count(edit.find)
        where = edit.function or "the file"
        if count != 1:
            raise MutantError(f"{edit.find.strip()!r} occurs {count} times in {where}, expected exactly once; update tests/mutants.toml")
        at = source.index(edit.find, start, end)
        source = source[:at] + edit.replace + source[at + len(edit.find) :]
    return source


def make_mutant(mutant: Mutant, index: int, base: Path) -> Path:
    """A copy of solutions/ with the mutant applied, under a package name of its own."""
    package = base / f"mutant_{index:02d}_{re.sub(r'[^0-9a-zA-Z]+', '_', mutant.name)}"
    shutil.copytree(SOLUTIONS, package, ignore=shutil.ignore_patterns("__pycache__"))
    target = package / mutant.file
    if not target.exists():
        raise MutantError(f"no file solutions/{mutant.file}")
    target.write_text(apply(target.read_text(), mutant.edits))
    return package


def pytest_command(impl: str, report: Path, *extra: str) -> list[str]:
    """A pytest run of this repository's tests, grading `impl`, writing the course report."""
    return [sys.executable, "-m", "pytest", f"--rootdir={ROOT}", "-c", str(ROOT / "pyproject.toml"), f"--impl={impl}", f"--course-report={report}", "-q", "-p", "no:cacheprovider", *extra]


def run_pytest(impl: str, work: Path, label: str, *extra: str, threads: int = 1, timeout: float = 900) -> Run:
    """Run pytest in a subprocess and read back its JSON report."""
    report = work / f"{label}.json"
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), PYTHONDONTWRITEBYTECODE="1")
    env.pop("COURSE_IMPL", None)
    started = time.monotonic()
    try:
        done = subprocess.run(pytest_command(impl, report, *extra), cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
        code, output = done.returncode, done.stdout + done.stderr
    except subprocess.TimeoutExpired as expired:
        code, output = -1, f"timed out after {timeout:.0f} s\n{expired.stdout or ''}"
    seconds = time.monotonic() - started
    data = json.loads(report.read_text()) if report.exists() else None
    return Run(code, data, output, seconds, data["tests"] if data else [])


def test_files(markers: list[str]) -> list[str]:
    """The test files that use any of these lesson markers (collecting only those keeps each run short)."""
    files = []
    for path in sorted((ROOT / "tests").glob("test_*.py")):
        text = path.read_text()
        if any(f"mark.{marker}(" in text for marker in markers):
            files.append(str(path.relative_to(ROOT)))
    return files


def lesson_expr() -> str:
    """`l1 or l2 or ...`: every lesson test."""
    return " or ".join(entry.marker for entry in registry.lessons())


def check_solutions(work: Path, threads: int) -> Result:
    """Every test, lesson and machinery, passes against solutions/."""
    run = run_pytest("solutions", work, "solutions", threads=threads)
    failed = [t for t in run.tests if t["outcome"] != "passed" and t["outcome"] != "skipped"]
    if run.code != 0 or failed or not run.tests:
        first = failed[0]["nodeid"] + ": " + failed[0]["message"] if failed else f"pytest exited with {run.code}"
        return Result("solutions pass every test", False, f"{len(failed)} failed; first: {first}", run.seconds, run.output)
    return Result("solutions pass every test", True, f"{len(run.tests)} passed", run.seconds)


def check_stubs(work: Path, threads: int) -> Result:
    """Every lesson test fails, as not done yet, against stubs generated afresh from solutions/."""
    stubs = work / "untouched_stubs"
    stubgen.write(stubs, stubgen.generate())
    markers = [entry.marker for entry in registry.lessons()]
    run = run_pytest(str(stubs), work, "stubs", "-m", lesson_expr(), *test_files(markers), threads=threads)
    name = "stubs: every lesson test is not done yet"
    if run.report is None:
        return Result(name, False, f"no report (pytest exited with {run.code})", run.seconds, run.output)
    wrong = [t for t in run.tests if t["kind"] != "not-done"]
    per_lesson = {entry.marker: sum(1 for t in run.tests if t["lesson"] == entry.marker) for entry in registry.lessons()}
    empty = [marker for marker, count in per_lesson.items() if count == 0]
    if wrong:
        first = wrong[0]
        return Result(name, False, f"{len(wrong)} lesson tests not reported as not done; first: {first['nodeid']} ({first['kind']}) {first['message']}", run.seconds, run.output)
    if empty:
        return Result(name, False, f"no tests for {', '.join(empty)}", run.seconds, run.output)
    if run.code != 1 or run.report.get("collect_errors"):
        return Result(name, False, f"pytest exited with {run.code}", run.seconds, run.output)
    counts = ", ".join(f"{marker} {count}" for marker, count in per_lesson.items())
    return Result(name, True, f"{len(run.tests)} not done ({counts})", run.seconds)


def check_mutant(mutant: Mutant, index: int, work: Path, threads: int) -> Result:
    """The mutant's lesson tests fail (exit 1) with at least one wrong or error verdict."""
    name = f"mutant {mutant.lesson} {mutant.name}"
    try:
        package = make_mutant(mutant, index, work)
    except MutantError as error:
        return Result(name, False, f"does not apply: {error}")
    run = run_pytest(str(package), work, package.name, "-m", mutant.lesson, "-x", *test_files([mutant.lesson]), threads=threads, timeout=600)
    caught = [t for t in run.tests if t["kind"] in ("wrong", "error")]
    if run.code == 1 and caught:
        test = caught[0]["nodeid"].split("::", 1)[-1]
        return Result(name, True, f"caught by {test}", run.seconds)
    if run.code == 0:
        return Result(name, False, f"NOT CAUGHT: every {mutant.lesson} test passes although it {mutant.what}", run.seconds, run.output)
    return Result(name, False, f"pytest exited with {run.code} without a wrong-answer verdict", run.seconds, run.output)


def check_drift() -> list[Result]:
    """lessons/ equals the generated stubs, and the registry names exactly the solutions' public functions."""
    try:
        diffs = stubgen.drift()
    except stubgen.StubError as error:
        return [Result("drift: lessons/ matches generated stubs", False, str(error))]
    changed = [d.splitlines()[0].removeprefix("--- ") for d in diffs]
    drift = Result("drift: lessons/ matches generated stubs", not diffs, "run `course stubs`: " + ", ".join(changed) if diffs else "identical", output="".join(diffs))
    problems = stubgen.registry_problems()
    reg = Result("drift: registry matches solutions/", not problems, problems[0] if problems else "same lessons and functions")
    return [drift, reg]


def print_table(results: list[Result]) -> None:
    """One row per check: name, ok/FAIL, seconds, detail."""
    width = max(len(r.check) for r in results)
    print()
    print(f"{'check':<{width}}  result  {'time':>6}  detail")
    for r in results:
        seconds = f"{r.seconds:5.1f}s" if r.seconds else ""
        print(f"{r.check:<{width}}  {'ok' if r.ok else 'FAIL':<6}  {seconds:>6}  {r.detail}")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--jobs", type=int, default=2, help="pytest runs at a time (default 2)")
    parser.add_argument("--skip-solutions", action="store_true", help="do not run the whole suite against solutions/ first")
    parser.add_argument("--only", action="append", choices=["solutions", "stubs", "mutants", "drift"], help="run only these checks (repeatable)")
    parser.add_argument("--mutant", action="append", metavar="NAME", help="run only these mutants (repeatable)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder with the mutants and reports")
    parser.add_argument("--verbose", "-v", action="store_true", help="print pytest's output for every failed check")


def run(args: argparse.Namespace) -> int:
    wanted = set(args.only or ["solutions", "stubs", "mutants", "drift"])
    if args.skip_solutions:
        wanted.discard("solutions")
    if args.mutant:
        wanted = {"mutants"} | (wanted & set(args.only or []))
    jobs = max(1, args.jobs)
    threads = max(1, (os.cpu_count() or 2) // jobs)
    results: list[Result] = []
    mutants: list[Mutant] = []
    if "mutants" in wanted:
        try:
            mutants = load_mutants()
        except (MutantError, KeyError, tomllib.TOMLDecodeError) as error:
            results.append(Result("mutants registry", False, f"tests/mutants.toml: {error}"))
        if args.mutant:
            unknown = set(args.mutant) - {m.name for m in mutants}
            if unknown:
                results.append(Result("mutants registry", False, f"no mutant named {', '.join(sorted(unknown))}"))
            mutants = [m for m in mutants if m.name in args.mutant]
    if "drift" in wanted:
        results.extend(check_drift())
    work = Path(tempfile.mkdtemp(prefix="course-verify-"))
    jobs_list: list[Callable[[], Result]] = []
    if "solutions" in wanted:
        jobs_list.append(lambda: check_solutions(work, threads))
    if "stubs" in wanted:
        jobs_list.append(lambda: check_stubs(work, threads))
    for index, mutant in enumerate(mutants):
        jobs_list.append(lambda mutant=mutant, index=index: check_mutant(mutant, index, work, threads))
    print(f"course verify: {len(jobs_list)} pytest runs, {jobs} at a time, in {work}", flush=True)
    started = time.monotonic()
    try:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            futures = {pool.submit(job): position for position, job in enumerate(jobs_list)}
            finished: dict[int, Result] = {}
            for future in as_completed(futures):
                result = future.result()
                print(f"  {'ok  ' if result.ok else 'FAIL'}  {result.check}: {result.detail}", flush=True)
                finished[futures[future]] = result
        results.extend(finished[position] for position in sorted(finished))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    if args.verbose:
        for result in results:
            if not result.ok and result.output:
                print(f"\n----- {result.check} -----\n{result.output[-6000:]}")
    print_table(results)
    passed = sum(r.ok for r in results)
    failed = len(results) - passed
    print(f"\n{len(jobs_list)} pytest runs in {time.monotonic() - started:.0f} s")
    print(f"integrity: {passed} passed, {failed} failed")
    return 1 if failed or not results else 0
