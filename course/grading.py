"""The pytest plugin that grades an implementation of the lessons (loaded by `-p course.grading` in pyproject.toml).

It chooses what is graded (`--impl lessons|solutions|FOLDER`, default $COURSE_IMPL or `lessons`),
loads lesson modules lazily so one broken file fails only the tests that use it, rewrites failures
into one line a learner can act on (`--raw` keeps pytest's tracebacks), insists that every test
carries exactly one lesson marker (or `machinery`), fixes Hypothesis to a derandomized profile so a
grade never changes from run to run, and can write a JSON report (`--course-report PATH`) for
`course check` and `course verify`.
"""

from __future__ import annotations

import difflib
import json
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any, Callable

import pytest
from hypothesis import HealthCheck, Phase, settings

from course import registry
from course.impl import ROOT, load, package_name, resolve

MACHINERY = "machinery"
PROFILE = "course"

settings.register_profile(
    PROFILE,
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=20,
    print_blob=False,
    report_multiple_bugs=False,
    phases=(Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(PROFILE)


def lesson_markers() -> tuple[str, ...]:
    """The lesson markers, l1 … l5, in course order."""
    return tuple(entry.marker for entry in registry.lessons())


class LessonProblem(Exception):
    """A lesson file cannot be used as it is: a syntax error, a failed import, or a missing function."""

    def __init__(self, message: str, kind: str = "error", path: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.path = path


class MissingFunction(LessonProblem, AttributeError):
    """A lesson module lacks a function the tests call (an AttributeError, so `getattr(m, name, default)` still works)."""


@dataclass(frozen=True)
class Impl:
    """The graded implementation: its name as given, its import package and its folder."""

    name: str
    package: str
    folder: Path

    @classmethod
    def from_option(cls, option: str | None) -> Impl:
        """Resolve `--impl` (or $COURSE_IMPL, or `lessons`) into a package and folder."""
        name = resolve(option)
        package = package_name(name)
        folder = (ROOT / name) if name in ("lessons", "solutions") else Path(name).resolve()
        return cls(name, package, folder.resolve())

    def owns(self, filename: str) -> bool:
        """True when `filename` is one of this implementation's lesson files."""
        try:
            return Path(filename).resolve().parent == self.folder
        except (OSError, ValueError):
            return False

    def lesson_path(self, module: str) -> str:
        """The file of a lesson module, as displayed: lessons/l1_conv_stack.py."""
        return self.display(str(self.folder / f"{module}.py"))

    def display(self, filename: str) -> str:
        """A lesson file as the learner knows it, e.g. lessons/l1_conv_stack.py."""
        path = Path(filename).resolve()
        for base in (ROOT, Path.cwd()):
            try:
                return path.relative_to(base).as_posix()
            except ValueError:
                continue
        return str(path)


def hint_command(lesson_file: str | None) -> str:
    """`course hint N` for the lesson a file belongs to, or "" when it is not a lesson file."""
    if lesson_file is None:
        return ""
    try:
        return f"course hint {registry.lesson(Path(lesson_file).stem).id}"
    except KeyError:
        return ""


def describe_exception(error: BaseException) -> str:
    """`Type: first line of the message`, at most 300 characters."""
    text = str(error).strip().splitlines()
    line = f"{type(error).__name__}: {text[0]}" if text else type(error).__name__
    return line if len(line) <= 300 else line[:297] + "..."


def load_problem(impl: Impl, module: str, error: BaseException) -> LessonProblem:
    """Turn an exception raised while importing a lesson module into a learner-facing LessonProblem."""
    if isinstance(error, SyntaxError):
        path = impl.display(error.filename) if error.filename else f"{impl.name}/{module}.py"
        detail = error.msg or "invalid syntax"
        return LessonProblem(f"{path} has a syntax error at line {error.lineno}: {detail}", "syntax-error", path)
    frame = deepest_frame(error.__traceback__, impl)
    where = f"{impl.display(frame[0])}:{frame[1]}" if frame else f"{impl.name}/{module}.py"
    path = impl.display(frame[0]) if frame else f"{impl.name}/{module}.py"
    return LessonProblem(f"{where} could not be imported: {describe_exception(error)}", "error", path)


class LessonModule:
    """A lazy view of one lesson module: importing happens on first attribute access, inside the test."""

    def __init__(self, impl: Impl, module: str) -> None:
        self._impl = impl
        self._module_name = module
        self._module: ModuleType | None = None
        self._problem: LessonProblem | None = None

    @property
    def path(self) -> str:
        """The lesson file, e.g. lessons/l1_conv_stack.py."""
        return self._impl.lesson_path(self._module_name)

    def module(self) -> ModuleType:
        """The imported module; raises LessonProblem if the file cannot be imported."""
        if self._module is None and self._problem is None:
            try:
                self._module = load(self._impl.name, self._module_name)
            except Exception as error:  # noqa: BLE001 - any import failure is the learner's to see
                self._problem = load_problem(self._impl, self._module_name, error)
        if self._problem is not None:
            raise self._problem
        assert self._module is not None
        return self._module

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        module = self.module()
        try:
            return getattr(module, name)
        except AttributeError:
            public = [n for n in vars(module) if not n.startswith("_")]
            close = difflib.get_close_matches(name, public, n=1)
            found = f" (found {close[0]})" if close else ""
            raise MissingFunction(f"function {name} is missing from {self.path} — did you misname it?{found}", "error", self.path) from None

    def __repr__(self) -> str:
        return f"<lesson module {self.path}>"


def deepest_frame(tb: TracebackType | None, impl: Impl) -> tuple[str, int, str] | None:
    """(file, line, qualified function name) of the deepest traceback frame inside a lesson file."""
    found = None
    while tb is not None:
        code = tb.tb_frame.f_code
        if impl.owns(code.co_filename):
            found = (code.co_filename, tb.tb_lineno, getattr(code, "co_qualname", code.co_name))
        tb = tb.tb_next
    return found


def raised_in(tb: TracebackType | None) -> str | None:
    """The file of the frame that raised (the last traceback entry)."""
    last = None
    while tb is not None:
        last = tb.tb_frame.f_code.co_filename
        tb = tb.tb_next
    return last


def first_leaf(error: BaseException) -> BaseException:
    """The first plain exception inside (possibly nested) exception groups."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return error


@dataclass
class Verdict:
    """How one failure reads to a learner: its kind, the one-line message, and the lesson file it is about."""

    kind: str
    message: str
    path: str | None = None


def classify(error: BaseException, impl: Impl, lesson_path: str, function: str) -> Verdict:
    """Sort a failure into not-done / wrong / error / syntax-error and word it in one line."""
    error = first_leaf(error)
    tb = error.__traceback__
    frame = deepest_frame(tb, impl)
    if isinstance(error, LessonProblem):
        hint = hint_command(error.path) if error.kind != "syntax-error" else ""
        return Verdict(error.kind, str(error) + (f" — run `{hint}`" if hint else ""), error.path)
    if isinstance(error, NotImplementedError) and frame is not None and impl.owns(raised_in(tb) or ""):
        path = impl.display(frame[0])
        return Verdict("not-done", f"not done yet: {path} · {frame[2]}() — run `{hint_command(path)}`", path)
    if isinstance(error, AssertionError) and frame is None:
        lines = str(error).strip().splitlines()
        text = lines[0] if lines else "the test's check failed"
        return Verdict("wrong", f"wrong: {lesson_path} · {function}(): {text} — run `{hint_command(lesson_path)}`", lesson_path)
    if frame is not None:
        path = impl.display(frame[0])
        return Verdict("error", f"error in {path}:{frame[1]} ({frame[2]}): {describe_exception(error)} — run `{hint_command(path)}`", path)
    where = raised_in_test(tb)
    return Verdict("error", f"error: {lesson_path} · {function}(): {describe_exception(error)}{where} — run `{hint_command(lesson_path)}`", lesson_path)


def raised_in_test(tb: TracebackType | None) -> str:
    """` (at tests/test_x.py:N)` for the deepest test-file frame, to show where the test tripped."""
    entries = [e for e in traceback.extract_tb(tb) if Path(e.filename).name.startswith("test_")]
    if not entries:
        return ""
    entry = entries[-1]
    try:
        name = Path(entry.filename).resolve().relative_to(ROOT).as_posix()
    except ValueError:
        name = Path(entry.filename).name
    return f" (at {name}:{entry.lineno})"


def lesson_of(item: pytest.Item) -> tuple[registry.Lesson, str] | None:
    """The lesson an item grades and the function it names in its marker, or None for machinery tests."""
    for marker in item.iter_markers():
        if marker.name in lesson_markers():
            entry = registry.lesson(marker.name)
            function = str(marker.args[0]) if marker.args else entry.functions[0]
            return entry, function
    return None


def marker_problem(item: pytest.Item) -> str | None:
    """Why an item's markers break the one-marker rule, or None if they are fine."""
    allowed = (*lesson_markers(), MACHINERY)
    names = sorted({m.name for m in item.iter_markers() if m.name in allowed})
    if len(names) != 1:
        found = ", ".join(names) if names else "none"
        return f"{item.nodeid}: needs exactly one of the markers {', '.join(allowed)}; found {found}"
    if names[0] == MACHINERY:
        return None
    entry = registry.lesson(names[0])
    args = [a for m in item.iter_markers(names[0]) for a in m.args]
    if not args:
        return f"{item.nodeid}: give the function it grades, e.g. @pytest.mark.{entry.marker}({entry.functions[0]!r})"
    unknown = [a for a in args if a not in entry.functions]
    if unknown:
        return f"{item.nodeid}: @pytest.mark.{entry.marker}({unknown[0]!r}) names no function of lesson {entry.id} ({', '.join(entry.functions)})"
    return None


@dataclass
class ReportEntry:
    """One test's line in the JSON report.

    `outcome` is pytest's (passed, failed, error, skipped); `kind` is the grade's reading of it:
    passed, not-done (a stub still raises NotImplementedError), wrong (a check failed), error (an
    exception), syntax-error (a lesson file does not parse), or skipped.
    """

    nodeid: str
    lesson: str | None
    function: str | None
    outcome: str = "passed"
    kind: str = "passed"
    message: str = ""
    path: str | None = None


@dataclass
class CourseState:
    """What the plugin keeps for one session."""

    impl: Impl
    raw: bool
    report_path: Path | None
    entries: dict[str, ReportEntry] = field(default_factory=dict)
    collect_errors: list[dict[str, str]] = field(default_factory=list)


STATE_KEY = pytest.StashKey[CourseState]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("course", "grading the course's lessons")
    group.addoption("--impl", default=None, help="what to grade: lessons (default, or $COURSE_IMPL), solutions, or a folder (write --impl=FOLDER)")
    group.addoption("--raw", action="store_true", help="show pytest's full tracebacks instead of one-line learner messages")
    group.addoption("--course-report", default=None, metavar="PATH", help="write a JSON report of every test's outcome to PATH")


def pytest_configure(config: pytest.Config) -> None:
    try:
        impl = Impl.from_option(config.getoption("--impl"))
    except ValueError as error:
        raise pytest.UsageError(str(error)) from None
    report = config.getoption("--course-report")
    course = CourseState(impl, bool(config.getoption("--raw")), Path(report) if report else None)
    config.stash[STATE_KEY] = course
    config.pluginmanager.register(CourseReporter(course), "course-reporter")


def state(config: pytest.Config) -> CourseState:
    return config.stash[STATE_KEY]


def pytest_report_header(config: pytest.Config) -> str:
    impl = state(config).impl
    other = "pytest --impl solutions grades the reference answers" if impl.name == "lessons" else "plain pytest grades lessons/"
    return f"course: grading {impl.name}/ ({other}); Hypothesis profile '{PROFILE}' (derandomized)"


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """When grading lessons/, skip importing test files without a lesson marker: their machinery tests would be deselected anyway."""
    if state(config).impl.name != "lessons" or collection_path.suffix != ".py" or not collection_path.name.startswith("test_"):
        return None
    if (config.rootpath / "tests").resolve() not in collection_path.resolve().parents:
        return None
    text = collection_path.read_text(errors="replace")
    return True if not any(f"mark.{marker}(" in text for marker in lesson_markers()) else None


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    tests_dir = (config.rootpath / "tests").resolve()
    problems = [p for item in items if tests_dir in item.path.resolve().parents for p in [marker_problem(item)] if p]
    if problems:
        raise pytest.UsageError("every test grades exactly one lesson:\n  " + "\n  ".join(problems))
    if state(config).impl.name == "lessons":
        machinery = [item for item in items if item.get_closest_marker(MACHINERY)]
        if machinery:
            config.hook.pytest_deselected(items=machinery)
            items[:] = [item for item in items if not item.get_closest_marker(MACHINERY)]


@pytest.fixture(scope="session")
def impl(request: pytest.FixtureRequest) -> Impl:
    """The implementation being graded."""
    return state(request.config).impl


@pytest.fixture(scope="session")
def lesson(impl: Impl) -> Callable[[str], LessonModule]:
    """`lesson("l1_conv_stack")` (or "l1", or 1): a lazy view of that lesson module of the graded implementation."""
    cache: dict[str, LessonModule] = {}

    def open_lesson(key: str | int) -> LessonModule:
        module = registry.lesson(key).module
        if module not in cache:
            cache[module] = LessonModule(impl, module)
        return cache[module]

    return open_lesson


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    found = lesson_of(item)
    if found is None:
        return report
    entry, function = found
    report.course_lesson = entry.marker
    report.course_function = function
    if not report.failed or call.excinfo is None:
        return report
    course = state(item.config)
    verdict = classify(call.excinfo.value, course.impl, course.impl.lesson_path(entry.module), function)
    report.course_kind = verdict.kind
    report.course_message = verdict.message
    report.course_path = verdict.path
    if not course.raw:
        report.longrepr = verdict.message
    return report


def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config) -> tuple[str, str, Any] | None:
    if report.when == "call" and report.failed and getattr(report, "course_kind", None) == "not-done" and not state(config).raw:
        return "not done", "N", ("NOT DONE", {"yellow": True})
    return None


class CourseReporter:
    """Gathers every test's final outcome for the JSON report and the not-done summary."""

    def __init__(self, course: CourseState) -> None:
        self.course = course

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        lesson = getattr(report, "course_lesson", None)
        entry = self.course.entries.setdefault(report.nodeid, ReportEntry(report.nodeid, lesson, getattr(report, "course_function", None)))
        if report.skipped and report.when in ("setup", "call"):
            entry.outcome, entry.kind = "skipped", "skipped"
        if not report.failed:
            return
        if entry.outcome == "failed":
            return
        entry.outcome = "failed" if report.when == "call" else "error"
        entry.kind = getattr(report, "course_kind", "error")
        message = getattr(report, "course_message", None)
        if message is None:
            message = str(report.longrepr).strip().splitlines()[-1] if report.longrepr else "failed"
        entry.message = message
        entry.path = getattr(report, "course_path", None)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            text = str(report.longrepr).strip().splitlines()
            self.course.collect_errors.append({"nodeid": report.nodeid, "message": text[-1] if text else "collection failed"})

    def pytest_deselected(self, items: list[pytest.Item]) -> None:
        for item in items:
            self.course.entries.pop(item.nodeid, None)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.course.raw:
            return
        not_done = [e for e in self.course.entries.values() if e.kind == "not-done"]
        if not not_done:
            return
        counts: dict[str, int] = {}
        for entry in not_done:
            counts[entry.message] = counts.get(entry.message, 0) + 1
        terminalreporter.section("not done yet", sep="-", yellow=True)
        for message, count in counts.items():
            tests = "test" if count == 1 else "tests"
            terminalreporter.line(f"{message.removeprefix('not done yet: ')} ({count} {tests})")

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.course.report_path is None:
            return
        data = {
            "impl": self.course.impl.name,
            "exitstatus": int(exitstatus),
            "tests": [asdict(e) for e in self.course.entries.values()],
            "collect_errors": self.course.collect_errors,
        }
        self.course.report_path.parent.mkdir(parents=True, exist_ok=True)
        self.course.report_path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
