"""MkDocs hooks: fill the lesson pages from the code and the lesson registry at build time.

Pages hold markers that this module replaces before the Markdown is rendered:

- ``<!-- stub: l1 -->`` (or ``<!-- stub: l1.conv_output_size -->``): the signature and docstring
  of each of the lesson's functions, as the learner's stub has them. The lines are pulled from
  ``solutions/`` by pymdownx.snippets with line ranges computed here from the syntax tree, so
  they follow the code (``lessons/`` is generated from ``solutions/`` and may be edited by the
  learner, so the site never reads it).
- ``<!-- hints: l1 -->``: the lesson's hints from ``course/lessons.toml`` as collapsed
  ``??? tip`` blocks, the same hints ``course hint 1`` prints.
- ``<!-- solution: l1 -->``: the whole reference solution in a collapsed ``??? success`` block.
- ``<!-- presets -->``: the experiment presets from ``course/presets.py``, one line each.
- ``<!-- generated: figures/report/summary.md -->``: a generated Markdown file (path under
  ``docs/``), included by snippets line ranges that leave out its headings: its title is
  dropped and its other headings become bold lines, so that they do not break the including
  page's outline or table of contents. ``... summary.md top -->`` includes only the part before
  its first section heading, ``... rest -->`` only the sections.
- ``<!-- figures-note: report -->``: a note with the caption of a generated figure set
  (``docs/figures/report/caption.md``: preset, dataset, device, date), included by snippets.

An unknown lesson or function, a registry page that does not exist, or a lesson page without its
stub, hints and solution markers fails the build.
"""

from __future__ import annotations

import ast
import posixpath
import re
import sys
from pathlib import Path

from mkdocs.exceptions import PluginError

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from course.presets import PRESETS  # noqa: E402
from course.registry import Lesson, lesson, lessons  # noqa: E402

MARKER = re.compile(r"^(?P<indent>[ \t]*)<!--\s*(?P<kind>stub|hints|solution|figures-note):\s*(?P<target>[\w.]+)\s*-->[ \t]*$", re.MULTILINE)
GENERATED_MARKER = re.compile(
    r"^(?P<indent>[ \t]*)<!--\s*generated:\s*(?P<path>[\w./-]+)(?:\s+(?P<part>top|rest))?\s*-->[ \t]*$", re.MULTILINE
)
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
PRESETS_MARKER = re.compile(r"^<!--\s*presets\s*-->[ \t]*$", re.MULTILINE)
FIGURES = ROOT / "docs" / "figures"


def _find(key: str, where: str) -> Lesson:
    try:
        return lesson(key)
    except KeyError as error:
        raise PluginError(f"{where}: {error.args[0]}") from None


def _solution_path(entry: Lesson) -> Path:
    return ROOT / "solutions" / f"{entry.module}.py"


def _docstring_end(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> int:
    """Last line of the definition's header and docstring (the header alone if it has none)."""
    first = node.body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        return first.end_lineno or first.lineno
    return first.lineno - 1


def _start(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> int:
    return min([node.lineno, *(d.lineno for d in node.decorator_list)])


def _stub_lines(entry: Lesson, names: tuple[str, ...], where: str) -> list[str]:
    """Lines of a fenced block that include each definition's header and docstring by line range."""
    path = _solution_path(entry)
    rel = path.relative_to(ROOT).as_posix()
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=rel)
    defs = {n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    lines = [f'```python title="lessons/{entry.module}.py"']
    for i, name in enumerate(names):
        node = defs.get(name)
        if node is None:
            raise PluginError(f"{where}: {rel} has no top-level function or class {name!r}")
        if i:
            lines += ["", ""]
        lines.append(f'--8<-- "{rel}:{_start(node)}:{_docstring_end(node)}"')
        if isinstance(node, ast.ClassDef):
            for member in node.body:
                if isinstance(member, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    lines.append("")
                    lines.append(f'--8<-- "{rel}:{_start(member)}:{_docstring_end(member)}"')
                    lines.append(" " * (member.col_offset + 4) + "...")
        else:
            lines.append(" " * (node.col_offset + 4) + "...")
    lines += [
        "```",
        "",
        "In your file, each `...` above is a `raise NotImplementedError(...)` naming the function:",
        "replace it with your code, and keep the signature and the docstring as they are.",
    ]
    return lines


def _hint_lines(entry: Lesson) -> list[str]:
    lines: list[str] = []
    for number, hint in enumerate(entry.hints, start=1):
        lines += [f'??? tip "Hint {number}"', ""]
        lines += [f"    {line}" if line else "" for line in hint.splitlines()]
        lines.append("")
    return lines


def _solution_lines(entry: Lesson) -> list[str]:
    rel = _solution_path(entry).relative_to(ROOT).as_posix()
    return [
        '??? success "Reference solution"',
        "",
        f"    The reference answer, read from `{rel}` when this page was built.",
        "",
        f'    ```python title="{rel}"',
        f'    --8<-- "{rel}"',
        "    ```",
        "",
    ]


def _presets_list() -> str:
    lines = []
    for p in PRESETS.values():
        per_class = "every image" if p.images_per_class is None else f"{p.images_per_class} images per class"
        lines.append(
            f"- `{p.name}`: {p.image_size} × {p.image_size} pixels, {per_class}, {p.val_fraction:.0%} of them for "
            f"validation, {p.epochs} epochs, batches of {p.batch_size}; {p.description}."
        )
    return "\n".join(lines)


def _generated_lines(rel_to_docs: str, part: str | None = None) -> list[str]:
    """Snippet lines that include a generated file without its headings (see the module docstring)."""
    path = ROOT / "docs" / rel_to_docs
    rel = path.relative_to(ROOT).as_posix()
    if not path.is_file():
        return [f'--8<-- "{rel}"']  # snippets' check_paths fails the build and names the file
    lines = path.read_text(encoding="utf-8").splitlines()
    # Split the file into runs of lines between headings: (heading level, heading text, first, last).
    blocks: list[tuple[int, str, int, int]] = []
    level, title, start, fence = 0, "", 1, False
    for number, line in enumerate(lines, start=1):
        if line.lstrip().startswith(("```", "~~~")):
            fence = not fence
        heading = None if fence else HEADING.match(line)
        if heading is not None:
            blocks.append((level, title, start, number - 1))
            level, title, start = len(heading[1]), heading[2], number + 1
    blocks.append((level, title, start, len(lines)))
    first_section = next((i for i, b in enumerate(blocks) if b[0] > 1), len(blocks))
    chosen = {"top": blocks[:first_section], "rest": blocks[first_section:]}.get(part or "", blocks)
    out: list[str] = ['<div class="generated" markdown>', ""]
    for level, title, first, last in chosen:
        if level > 1:
            out += [f"**{title}**", ""]
        if first <= last and any(line.strip() for line in lines[first - 1 : last]):
            out += [f'--8<-- "{rel}:{first}:{last}"', ""]
    out.append("</div>")
    return out


def _link(where: str, target: str) -> str:
    """Relative link from the page `where` ("docs/<src_uri>") to the docs page `target`."""
    page_dir = posixpath.dirname(where.removeprefix("docs/"))
    return posixpath.relpath(target, page_dir or ".")


def _figures_note_lines(figure_set: str, where: str) -> list[str]:
    caption = FIGURES / figure_set / "caption.md"
    if not caption.is_file():
        raise PluginError(f"{where}: {caption.relative_to(ROOT)} is missing; run `course figures` first")
    full = PRESETS["full"]
    full_images = "every image" if full.images_per_class is None else f"{full.images_per_class} images per class"
    return [
        '!!! info "Which runs these figures show"',
        "",
        f'    --8<-- "{caption.relative_to(ROOT).as_posix()}"',
        "",
        "    Every figure and table here was written by `course figures` from the course's own runs;",
        f"    none is drawn by hand. The report's scale is the `full` preset ({full.image_size} × {full.image_size} pixels,",
        f"    {full_images}, {full.epochs} epochs, meant for a GPU). If the caption names another preset, these are",
        f"    smaller runs of the same experiments (see the presets on [Set-up]({_link(where, 'setup.md')})), and",
        "    what the pages conclude holds for those runs.",
        "",
    ]


def _expand(match: re.Match[str], where: str) -> str:
    kind, target, indent = match["kind"], match["target"], match["indent"]
    if kind == "figures-note":
        return "\n".join(indent + line if line else "" for line in _figures_note_lines(target, where))
    key, _, name = target.partition(".")
    entry = _find(key, where)
    if kind == "stub":
        names = (name,) if name else entry.functions
        unknown = [n for n in names if n not in entry.functions]
        if unknown:
            raise PluginError(f"{where}: lesson {entry.id} has no function {unknown[0]!r} in course/lessons.toml")
        lines = _stub_lines(entry, names, where)
    elif name:
        raise PluginError(f"{where}: <!-- {kind}: ... --> takes a lesson, not a function: {target!r}")
    elif kind == "hints":
        lines = _hint_lines(entry)
    else:
        lines = _solution_lines(entry)
    return "\n".join(indent + line if line else "" for line in lines)


def on_config(config):
    lessons.cache_clear()  # `mkdocs serve` rebuilds in the same process: read lessons.toml again
    return config


def on_pre_build(config) -> None:
    if not FIGURES.is_dir():
        raise PluginError(
            "docs/figures/ is missing: the results pages include the generated figures and tables. "
            "Run `course figures` first (it runs the experiments, or reuses finished ones)."
        )


def on_files(files, config):
    for entry in lessons():
        if files.get_file_from_path(entry.page) is None:
            raise PluginError(f"course/lessons.toml names docs/{entry.page} for lesson {entry.id}, but there is no such page")
    return files


def on_page_markdown(markdown: str, page, config, files) -> str:
    where = f"docs/{page.file.src_uri}"
    for entry in lessons():
        if entry.page == page.file.src_uri:
            found = {(m["kind"], m["target"].partition(".")[0]) for m in MARKER.finditer(markdown)}
            missing = [kind for kind in ("stub", "hints", "solution") if (kind, entry.marker) not in found]
            if missing:
                raise PluginError(f"{where} is lesson {entry.id}'s page but has no " + ", ".join(f"<!-- {k}: {entry.marker} -->" for k in missing))
    markdown = PRESETS_MARKER.sub(lambda m: _presets_list(), markdown)
    markdown = GENERATED_MARKER.sub(
        lambda m: "\n".join(m["indent"] + line if line else "" for line in _generated_lines(m["path"], m["part"])), markdown
    )
    return MARKER.sub(lambda m: _expand(m, where), markdown)
