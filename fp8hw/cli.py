"""What every command line of this project shares: an argument parser whose mistakes are
one-line errors, ``NAME=VALUE`` parameters, and ``run_command``, which turns any error a
user can cause into ``error: MESSAGE`` on stderr and exit status 2, with no traceback and
no half-written output. ``FP8HW_DEBUG=1`` lets the traceback through, for debugging."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

from fp8hw.errors import Fp8hwError

EXIT_ERROR = 2
EXIT_INTERRUPTED = 130


class UsageError(Fp8hwError):
    """A command line that does not parse."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse, raising ``UsageError`` instead of printing the usage and exiting; use it
    for sub-parsers too (``add_subparsers(parser_class=ArgumentParser)``)."""

    def error(self, message):
        raise UsageError(message)


def parse_assignments(items: list[str] | None, option: str = "--param") -> dict[str, str]:
    """``["NAME=VALUE", ...]`` to a dict; UsageError for a malformed or repeated item."""
    out: dict[str, str] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name or not value:
            raise UsageError(f"{option} needs NAME=VALUE, got {item!r}")
        if name in out:
            raise UsageError(f"parameter {name!r} given twice")
        out[name] = value
    return out


def describe_os_error(e: OSError) -> str:
    """``No such file or directory: path`` for an OSError, on one line."""
    text = e.strerror or str(e)
    if e.filename is not None:
        text += f": {e.filename}"
    return text.replace("\n", " ")


def run_command(main: Callable[[list[str] | None], int | None], argv=None) -> int:
    """Run ``main(argv)``; an ``Fp8hwError`` or an ``OSError`` becomes one line on stderr
    and exit status 2, an interrupt exit status 130."""
    try:
        return main(argv) or 0
    except BrokenPipeError:
        # The reader went away (``| head``): stop quietly, as other command-line tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except (Fp8hwError, OSError) as e:
        if os.environ.get("FP8HW_DEBUG"):
            raise
        message = describe_os_error(e) if isinstance(e, OSError) else str(e)
        print(f"error: {' '.join(message.split())}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
