"""`course stubs [--check]`: generate the learner's `lessons/` from `solutions/`, or check that they match.

Each stub keeps the module docstring, the imports, and every public function and class with its
signature and docstring exactly as written in the solution; the body becomes one `raise
NotImplementedError(...)` line. Private helpers (a leading underscore) are dropped. Because the
stubs are generated, `lessons/` and `solutions/` cannot drift apart.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import io
import sys
import tokenize
from dataclasses import dataclass
from pathlib import Path

from course import registry
from course.impl import ROOT

SOLUTIONS = ROOT / "solutions"
LESSONS = ROOT / "lessons"
INIT_DOC = '"""Your answers to the lessons: fill in each function, then run `pytest -m l1` (or `course check`)."""\n'


class StubError(Exception):
    """The solutions contain something the stub generator cannot turn into a stub."""


@dataclass(frozen=True)
class Piece:
    """One kept top-level block of a module and where it started in the solution."""

    text: str
    line: int
    end_line: int
    is_def: bool


def not_written(path: str, qualname: str, lesson_id: int | None) -> str:
    """The one line a stub body holds."""
    hint = f"see `course hint {lesson_id}`" if lesson_id is not None else "see the lesson's docs page"
    message = f"{path}: {qualname}() is not written yet — {hint}"
    quoted = message.replace("\\", "\\\\").replace('"', '\\"')
    return f'raise NotImplementedError("{quoted}")'


def is_public(name: str) -> bool:
    """Public names and dunder methods are kept; `_private` helpers are dropped."""
    return not name.startswith("_") or (name.startswith("__") and name.endswith("__"))


def header_end(source_lines: list[str], node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> tuple[int, int]:
    """(line, column just after) of the colon that closes a def or class header, found with tokenize."""
    start = node.lineno
    segment = "".join(source_lines[start - 1 : node.body[0].end_lineno])
    depth = 0
    seen_keyword = False
    for token in tokenize.generate_tokens(io.StringIO(segment).readline):
        if token.type == tokenize.NAME and token.string in ("def", "class") and depth == 0:
            seen_keyword = True
        elif token.type == tokenize.OP and token.string in "([{":
            depth += 1
        elif token.type == tokenize.OP and token.string in ")]}":
            depth -= 1
        elif token.type == tokenize.OP and token.string == ":" and depth == 0 and seen_keyword:
            return start + token.end[0] - 1, token.end[1]
    raise StubError(f"line {start}: could not find the end of the header of {node.name}")


def docstring_node(node: ast.AST) -> ast.Expr | None:
    """The docstring statement of a module, class or function, if it has one."""
    body = getattr(node, "body", [])
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
        return body[0]
    return None


def lines_of(source_lines: list[str], first: int, last: int) -> str:
    """Lines `first`..`last` (1-based, inclusive) of the source, as written."""
    return "".join(source_lines[first - 1 : last])


def header_text(source_lines: list[str], node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> str:
    """Decorators and the def/class header up to its colon, with the docstring if there is one."""
    first = min([node.lineno] + [d.lineno for d in node.decorator_list])
    end_line, end_col = header_end(source_lines, node)
    text = lines_of(source_lines, first, end_line - 1) + source_lines[end_line - 1][:end_col] + "\n"
    doc = docstring_node(node)
    if doc is not None:
        text += lines_of(source_lines, doc.lineno, doc.end_lineno)
    return text


def stub_function(source_lines: list[str], node: ast.FunctionDef | ast.AsyncFunctionDef, path: str, qualname: str, lesson_id: int | None) -> str:
    """A function's header and docstring with the body replaced by the not-written line."""
    indent = " " * node.body[0].col_offset
    if docstring_node(node) is None and node.name != "__init__" and not node.name.startswith("__"):
        raise StubError(f"{path}:{node.lineno}: public function {qualname} has no docstring; the stub would not tell the learner what to do")
    return header_text(source_lines, node) + indent + not_written(path, qualname, lesson_id) + "\n"


def stub_class(source_lines: list[str], node: ast.ClassDef, path: str, lesson_id: int | None) -> str:
    """A class line and docstring, its class-level fields, and a stub for every public method."""
    if docstring_node(node) is None:
        raise StubError(f"{path}:{node.lineno}: public class {node.name} has no docstring")
    parts = [header_text(source_lines, node)]
    doc = docstring_node(node)
    previous_end = doc.end_lineno if doc is not None else header_end(source_lines, node)[0]
    for item in node.body:
        if item is doc:
            continue
        if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if is_public(item.name):
                parts.append("\n" + stub_function(source_lines, item, path, f"{node.name}.{item.name}", lesson_id))
        elif isinstance(item, (ast.Assign, ast.AnnAssign)):
            blank = any(not line.strip() for line in source_lines[previous_end : item.lineno - 1])
            parts.append("\n" * blank + lines_of(source_lines, item.lineno, item.end_lineno))
        else:
            raise StubError(f"{path}:{item.lineno}: stubgen does not know how to stub a {type(item).__name__} inside class {node.name}")
        previous_end = item.end_lineno
    return "".join(parts)


def assigned_names(node: ast.Assign | ast.AnnAssign) -> list[str]:
    """Names bound by a top-level assignment."""
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    return [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]


def stub_module(source: str, path: str, lesson_id: int | None) -> str:
    """The stub text of one solution module; `path` is the learner's file, e.g. lessons/l1_conv_stack.py."""
    tree = ast.parse(source)
    source_lines = source.splitlines(keepends=True)
    doc = docstring_node(tree)
    if doc is None:
        raise StubError(f"{path}: the solution module has no docstring")
    pieces: list[Piece] = []
    for node in tree.body:
        if node is doc:
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            pieces.append(Piece(lines_of(source_lines, node.lineno, node.end_lineno), node.lineno, node.end_lineno, False))
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            if all(is_public(name) for name in assigned_names(node)):
                pieces.append(Piece(lines_of(source_lines, node.lineno, node.end_lineno), node.lineno, node.end_lineno, False))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if is_public(node.name):
                pieces.append(Piece(stub_function(source_lines, node, path, node.name, lesson_id), node.lineno, node.end_lineno, True))
        elif isinstance(node, ast.ClassDef):
            if is_public(node.name):
                pieces.append(Piece(stub_class(source_lines, node, path, lesson_id), node.lineno, node.end_lineno, True))
        else:
            raise StubError(f"{path}:{node.lineno}: stubgen does not know how to stub a top-level {type(node).__name__}")
    out = lines_of(source_lines, 1, doc.end_lineno)
    previous_end = doc.end_lineno
    for index, piece in enumerate(pieces):
        if piece.is_def or (index > 0 and pieces[index - 1].is_def):
            gap = 2
        else:
            blank = sum(1 for line in source_lines[previous_end : piece.line - 1] if not line.strip())
            gap = max(1, min(2, blank)) if index == 0 else min(2, blank)
        out += "\n" * gap + piece.text
        previous_end = piece.end_line
    return out


def lesson_id_of(module: str) -> int | None:
    """The registry number of a lesson module, or None if the registry does not list it."""
    try:
        return registry.lesson(module).id
    except KeyError:
        return None


def generate(solutions: Path = SOLUTIONS, dest_name: str = "lessons") -> dict[str, str]:
    """File name → stub text for every module of `solutions/`, `__init__.py` included."""
    files = {"__init__.py": INIT_DOC}
    for source_path in sorted(solutions.glob("l*.py")):
        module = source_path.stem
        files[source_path.name] = stub_module(source_path.read_text(), f"{dest_name}/{source_path.name}", lesson_id_of(module))
    return files


def registry_problems(solutions: Path = SOLUTIONS) -> list[str]:
    """Differences between the registry's lessons and functions and the public names in `solutions/`."""
    problems = []
    modules = {p.stem for p in solutions.glob("l*.py")}
    for entry in registry.lessons():
        if entry.module not in modules:
            problems.append(f"registry lesson {entry.id} names solutions/{entry.module}.py, which does not exist")
            continue
        tree = ast.parse((solutions / f"{entry.module}.py").read_text())
        public = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and is_public(n.name)}
        for name in sorted(set(entry.functions) - public):
            problems.append(f"registry lesson {entry.id} lists {name}, which solutions/{entry.module}.py does not define")
        for name in sorted(public - set(entry.functions)):
            problems.append(f"solutions/{entry.module}.py defines {name}, which registry lesson {entry.id} does not list")
        if not entry.hints:
            problems.append(f"registry lesson {entry.id} has no hints")
    for module in sorted(modules - {e.module for e in registry.lessons()}):
        problems.append(f"solutions/{module}.py is not a lesson in course/lessons.toml")
    return problems


def drift(lessons: Path = LESSONS, solutions: Path = SOLUTIONS) -> list[str]:
    """Unified diffs (one per file) between `lessons/` and freshly generated stubs; empty when they match."""
    wanted = generate(solutions)
    present = {p.name for p in lessons.glob("*.py")} if lessons.is_dir() else set()
    diffs = []
    for name in sorted(set(wanted) | present):
        have = (lessons / name).read_text() if name in present else ""
        want = wanted.get(name, "")
        if have != want:
            diffs.append(
                "".join(difflib.unified_diff(have.splitlines(True), want.splitlines(True), f"lessons/{name}", f"lessons/{name} (generated)"))
                or f"lessons/{name} differs only in line endings\n"
            )
    return diffs


def is_untouched_stub(text: str) -> bool:
    """True when every function body in `text` is only a docstring and a `raise NotImplementedError(...)`."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return False
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body[1:] if docstring_node(node) else node.body
            if len(body) != 1 or not isinstance(body[0], ast.Raise):
                return False
    return True


def write(dest: Path, files: dict[str, str]) -> list[str]:
    """Write the generated files into `dest`, removing lesson modules that no longer exist; names of changed files."""
    dest.mkdir(parents=True, exist_ok=True)
    changed = []
    for name, text in files.items():
        target = dest / name
        if not target.exists() or target.read_text() != text:
            target.write_text(text)
            changed.append(name)
    for stale in dest.glob("l*.py"):
        if stale.name not in files:
            stale.unlink()
            changed.append(stale.name)
    return changed


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--check", action="store_true", help="exit 1 with a diff if lessons/ differs from the generated stubs")
    parser.add_argument("--force", action="store_true", help="overwrite lesson files that hold the learner's own code")
    parser.add_argument("--out", type=Path, default=LESSONS, help="write the stubs here instead of lessons/")


def run(args: argparse.Namespace) -> int:
    try:
        files = generate()
    except StubError as error:
        print(f"course stubs: {error}", file=sys.stderr)
        return 2
    problems = registry_problems()
    for problem in problems:
        print(f"registry: {problem}", file=sys.stderr)
    if args.check:
        diffs = drift(args.out)
        for diff in diffs:
            sys.stdout.write(diff)
        if diffs or problems:
            print(f"course stubs --check: {len(diffs)} file(s) differ from the generated stubs; run `course stubs` to regenerate")
            return 1
        print(f"course stubs --check: lessons/ matches solutions/ ({len(files)} files)")
        return 0
    worked_on = [
        name for name in files if (args.out / name).exists() and (args.out / name).read_text() != files[name] and not is_untouched_stub((args.out / name).read_text())
    ]
    if worked_on and not args.force:
        print(f"course stubs: not overwriting {', '.join(worked_on)} in {args.out}: they hold code of your own (use --force to replace them)", file=sys.stderr)
        return 1
    changed = write(args.out, files)
    print(f"course stubs: wrote {len(changed)} file(s) to {args.out}" + (f": {', '.join(changed)}" if changed else " (already up to date)"))
    return 1 if problems else 0
