"""The ``lab`` command line. It parses arguments and renders what the Python API returns.

One module per command (``lab.cli.train``, ``eval``, ``certify``, ``detect``, ``attack``, ``explain``, ``models``,
``data``, ``sweep``, ``reproduce``), each with ``run(args) -> exit code``; the arguments are :mod:`lab.cli.parser`'s.

Exit codes: 0 success, 1 a threshold missed or an unverified number refused (``lab eval
--fail-under``), 2 a user mistake (one sentence on stderr, no traceback), 130 interrupted.
"""

from __future__ import annotations

import importlib
import logging
import os
import signal
import sys
from collections.abc import Sequence

from lab.cli.parser import EXIT_USER_ERROR, build_parser
from lab.core.errors import LabError

__all__ = ["EXIT_USER_ERROR", "COMMANDS", "build_parser", "main"]

#: command -> the module whose ``run(args)`` carries it out. A command's module is imported
#: only when that command runs, so ``lab models`` or ``lab --help`` does not load the attacks,
#: captum and matplotlib that ``lab explain`` needs.
COMMANDS = {name: f"lab.cli.{name}" for name in ("train", "eval", "certify", "detect", "attack", "explain", "models", "data", "sweep", "reproduce")}


def main(argv: Sequence[str] | None = None) -> int:
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        # started in the background by a shell without job control (`cmd &` in a script), which
        # ignores SIGINT: Ctrl-C and the dashboard's Stop would then not interrupt a training
        signal.signal(signal.SIGINT, signal.default_int_handler)
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="%(message)s", stream=sys.stderr)
    try:
        command = importlib.import_module(COMMANDS[args.command])
        return int(command.run(args))
    except LabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # pragma: no cover - `lab models | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
