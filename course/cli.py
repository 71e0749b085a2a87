"""`course` (or `python -m course`): one entry point for the learner's and the maintainer's commands.

Each command lives in its own module, which provides `configure(parser)` and `run(args) -> int`;
only the chosen command's module is imported, so `course hint 1` does not wait for torch.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = {
    "check": ("course.progress", "run the lesson tests and show a progress table with the next hint"),
    "hint": ("course.hints", "show a lesson's hints, one at a time"),
    "reproduce": ("course.experiments", "run the report's experiments and write their plots"),
    "bench": ("course.bench", "measure the input pipeline against the model alone and a plain DataLoader"),
    "figures": ("course.figures", "regenerate every figure and table the docs show"),
    "verify": ("course.integrity", "integrity checks: stubs fail, known-wrong implementations are caught, no drift"),
    "stubs": ("course.stubgen", "generate lessons/ stubs from solutions/, or check that they match"),
    "site-check": ("course.sitecheck", "load the built site in headless Chromium and fail on errors"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: course COMMAND [options]", "", "commands:"]
    lines += [f"  {name:<{width}}  {text}" for name, (_, text) in COMMANDS.items()]
    lines += ["", "`course COMMAND --help` shows a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"course: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module_name, text = COMMANDS[name]
    module = importlib.import_module(module_name)
    parser = argparse.ArgumentParser(prog=f"course {name}", description=text)
    module.configure(parser)
    return int(module.run(parser.parse_args(rest)) or 0)


if __name__ == "__main__":
    sys.exit(main())
