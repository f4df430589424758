"""The ``dmlviz`` command: parses arguments and calls the library. No logic lives here.

Each command group is a module of this package with ``register(subparsers)``; it adds its
subcommands and sets ``func`` (called with the parsed namespace, returns an exit code).
"""

import argparse
import errno
import importlib
import os
import signal
import sys

from dmlviz import __version__

COMMAND_MODULES = (
    "train",
    "runs",
    "evaluate",
    "importer",
    "sweep",
    "tune",
    "dashboard",
    "demo",
    "compare",
)


def build_parser() -> argparse.ArgumentParser:
    """The full ``dmlviz`` argument parser with every command registered."""
    parser = argparse.ArgumentParser(
        prog="dmlviz",
        description="Train metric-learning embeddings and see why retrieval fails.",
    )
    parser.add_argument("--version", action="version", version=f"dmlviz {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"dmlviz.cli.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``dmlviz`` command line; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:  # the reader of stdout left (`| head`): stop without a traceback
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so flushing stdout at exit cannot fail again
        return 128 + signal.SIGPIPE
    except KeyboardInterrupt as error:  # Ctrl-C, or SIGTERM / SIGHUP during training
        print(f"interrupted ({error})" if str(error) else "interrupted", file=sys.stderr)
        return 128 + getattr(error, "signum", signal.SIGINT)
    except ValueError as error:  # our bad-input errors (RunError included) carry a full message
        print(f"dmlviz {args.command}: error: {error}", file=sys.stderr)
        return 2
    except FloatingPointError as error:  # training diverged: the message says where and what to do
        print(f"dmlviz {args.command}: error: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        if error.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        print(f"dmlviz {args.command}: error: {error}", file=sys.stderr)
        return 1
