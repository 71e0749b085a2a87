"""The grading machinery itself: stub generation, the mutant registry, failure messages, markers and hints.

These are `machinery` tests: they check the course package, not a learner's answers, so they are
not collected when grading `lessons/` (run them with `pytest --impl solutions -m machinery`).
"""

from __future__ import annotations

import ast
import importlib.util
import uuid
from pathlib import Path

import pytest

from course import hints, registry, stubgen
from course.grading import Impl, LessonModule, LessonProblem, classify
from course.integrity import MutantError, apply, load_mutants
from course.impl import ROOT

pytestmark = pytest.mark.machinery

SOURCE = '''"""A module docstring."""

import math  # used by the answer

from torch import nn

SCALE = 2
_PRIVATE = 3


@staticmethod
def decorated(
    x: int,  # a comment inside the signature
    y: int = 2,
) -> int:
    """Add."""
    return _helper(x) + y


def _helper(x: int) -> int:
    return x * SCALE


class Model(nn.Module):
    """A model."""

    size: int = 3

    def __init__(self, n: int = 1) -> None:
        super().__init__()
        self.n = n

    def forward(self, x):
        """Forward."""
        return x * self.n

    def _secret(self):
        """Hidden."""
        return 1
'''

EXPECTED = '''"""A module docstring."""

import math  # used by the answer

from torch import nn

SCALE = 2


@staticmethod
def decorated(
    x: int,  # a comment inside the signature
    y: int = 2,
) -> int:
    """Add."""
    raise NotImplementedError("lessons/l9_demo.py: decorated() is not written yet — see `course hint 9`")


class Model(nn.Module):
    """A model."""

    size: int = 3

    def __init__(self, n: int = 1) -> None:
        raise NotImplementedError("lessons/l9_demo.py: Model.__init__() is not written yet — see `course hint 9`")

    def forward(self, x):
        """Forward."""
        raise NotImplementedError("lessons/l9_demo.py: Model.forward() is not written yet — see `course hint 9`")
'''


def test_stub_module_slices_the_source():
    assert stubgen.stub_module(SOURCE, "lessons/l9_demo.py", 9) == EXPECTED


def test_stub_module_requires_docstrings():
    with pytest.raises(stubgen.StubError, match="no docstring"):
        stubgen.stub_module('"""Doc."""\n\ndef f():\n    return 1\n', "lessons/l9_demo.py", 9)


def signature(node: ast.FunctionDef) -> str:
    return ast.unparse(node.args) + " -> " + (ast.unparse(node.returns) if node.returns else "")


def public_defs(tree: ast.Module) -> dict[str, ast.AST]:
    found: dict[str, ast.AST] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and stubgen.is_public(node.name):
            found[node.name] = node
        elif isinstance(node, ast.ClassDef) and stubgen.is_public(node.name):
            found[node.name] = node
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and stubgen.is_public(item.name):
                    found[f"{node.name}.{item.name}"] = item
    return found


def test_generated_stubs_keep_every_signature_and_docstring():
    for name, text in stubgen.generate().items():
        assert stubgen.is_untouched_stub(text), f"{name}: a stub body holds more than its raise"
        if name == "__init__.py":
            continue
        stub, solution = ast.parse(text), ast.parse((ROOT / "solutions" / name).read_text())
        assert ast.get_docstring(stub) == ast.get_docstring(solution)
        ours, theirs = public_defs(stub), public_defs(solution)
        assert ours.keys() == theirs.keys(), name
        for key, node in theirs.items():
            assert ast.get_docstring(ours[key]) == ast.get_docstring(node), f"{name}: {key} docstring"
            if isinstance(node, ast.FunctionDef):
                assert signature(ours[key]) == signature(node), f"{name}: {key} signature"


def test_lessons_match_solutions():
    assert stubgen.drift() == [], "lessons/ differs from the generated stubs: run `course stubs`"
    assert stubgen.registry_problems() == []


def test_mutants_apply_exactly_once():
    mutants = load_mutants()
    assert len(mutants) >= 14
    assert {m.lesson for m in mutants} == {entry.marker for entry in registry.lessons()}
    for mutant in mutants:
        original = (ROOT / "solutions" / mutant.file).read_text()
        changed = apply(original, mutant.edits)
        assert changed != original, mutant.name
        compile(changed, mutant.file, "exec")


def test_mutant_that_no_longer_applies_fails_loudly():
    mutant = load_mutants()[0]
    with pytest.raises(MutantError, match="occurs 0 times"):
        apply("def conv_output_size():\n    return 0\n", mutant.edits)


def fake_impl(tmp_path: Path, files: dict[str, str]) -> Impl:
    """An implementation folder under a unique package name, holding the given lesson files."""
    folder = tmp_path / f"fake_{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    (folder / "__init__.py").write_text("")
    for name, text in files.items():
        (folder / name).write_text(text)
    return Impl.from_option(str(folder))


def import_file(path: Path):
    spec = importlib.util.spec_from_file_location(f"m_{uuid.uuid4().hex[:8]}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def caught(function) -> BaseException:
    try:
        function()
    except BaseException as error:  # noqa: BLE001
        return error
    raise AssertionError("expected an exception")


def test_failure_messages(tmp_path):
    impl = fake_impl(tmp_path, {"l1_conv_stack.py": 'def stub():\n    raise NotImplementedError("todo")\n\n\ndef boom():\n    return 1 / 0\n'})
    module = import_file(impl.folder / "l1_conv_stack.py")
    path = impl.lesson_path("l1_conv_stack")

    verdict = classify(caught(module.stub), impl, path, "stub")
    assert verdict.kind == "not-done"
    assert verdict.message == f"not done yet: {path} · stub() — run `course hint 1`"

    verdict = classify(caught(module.boom), impl, path, "boom")
    assert verdict.kind == "error"
    assert verdict.message == f"error in {path}:6 (boom): ZeroDivisionError: division by zero — run `course hint 1`"

    def wrong():
        raise AssertionError("layer 3 should be X, found Y\nassert False")

    verdict = classify(caught(wrong), impl, path, "alexnet_features")
    assert verdict.kind == "wrong"
    assert verdict.message == f"wrong: {path} · alexnet_features(): layer 3 should be X, found Y — run `course hint 1`"

    def torch_not_implemented():
        raise NotImplementedError("an operator this backend lacks")

    assert classify(caught(torch_not_implemented), impl, path, "stub").kind == "error", "a NotImplementedError outside the lesson file is not a stub"


def test_syntax_error_and_missing_function(tmp_path):
    impl = fake_impl(tmp_path, {"l2_classifier_head.py": "def alexnet_head(:\n    pass\n", "l3_train_step.py": "def evaluat():\n    pass\n"})
    with pytest.raises(LessonProblem) as broken:
        LessonModule(impl, "l2_classifier_head").alexnet_head  # noqa: B018
    assert broken.value.kind == "syntax-error"
    assert str(broken.value).startswith(f"{impl.lesson_path('l2_classifier_head')} has a syntax error at line 1:")
    with pytest.raises(LessonProblem) as missing:
        LessonModule(impl, "l3_train_step").evaluate  # noqa: B018
    assert str(missing.value) == f"function evaluate is missing from {impl.lesson_path('l3_train_step')} — did you misname it? (found evaluat)"


def test_every_test_needs_one_marker(pytester):
    pytester.makeini("[pytest]\nmarkers =\n    l1: lesson 1\n    machinery: machinery\n")
    pytester.mkdir("tests")
    pytester.path.joinpath("tests", "test_unmarked.py").write_text("def test_nothing():\n    pass\n")
    result = pytester.runpytest_inprocess("-p", "course.grading", "--impl", "solutions", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*test_unmarked.py::test_nothing: needs exactly one of the markers*found none*"])


def test_hints_one_at_a_time(tmp_path):
    state = tmp_path / "hints.json"
    lesson = registry.lesson(1)
    assert hints.next_hint(lesson, state) == (1, lesson.hints[0])
    hints.mark_seen(lesson, 1, state)
    assert hints.next_hint(lesson, state) == (2, lesson.hints[1])
    hints.mark_seen(lesson, 99, state)
    assert hints.next_hint(lesson, state) is None
    hints.reset(lesson, state)
    assert hints.seen(lesson.id, state) == 0
