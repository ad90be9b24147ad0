"""The ``tfship`` and ``export-all`` commands: parse arguments, call the library, report errors.

Each subcommand lives in a small module with ``configure(parser)`` and ``run(args) -> int``; those
modules import nothing heavy at import time, so ``tfship --help`` and argument errors are fast
(TensorFlow is imported only inside ``run``). A ``TfshipError`` becomes one line on stderr and a
non-zero exit; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback
from collections.abc import Sequence
from dataclasses import dataclass

from tfship import quiet
from tfship.errors import MissingDependencyError, TfshipError


@dataclass(frozen=True)
class Subcommand:
    name: str
    module: str  # has configure(parser) and run(args) -> int
    help: str
    extra: str   # the pip extra that installs what it needs


SUBCOMMANDS: tuple[Subcommand, ...] = (
    Subcommand("train", "tfship.train.cli", "train an MNIST model and write a SavedModel", "train"),
    Subcommand("export", "tfship.export.cli", "export a SavedModel to TFLite, ONNX and CoreML (= export-all)", "export"),
    Subcommand("verify", "tfship.export.verify_cli", "check every exported artifact against the SavedModel", "export"),
    Subcommand("serve", "tfship.serve.cli", "serve SavedModels behind TensorFlow Serving's REST and gRPC APIs", "serve"),
    Subcommand("warmup", "tfship.serve.warmup", "write TF Serving's warmup requests file into SavedModel versions",
               "serve"),
    Subcommand("predict", "tfship.clients.cli", "classify images with a served model (gRPC or REST)", "client"),
    Subcommand("status", "tfship.clients.cli", "show a served model's version status", "client"),
    Subcommand("metadata", "tfship.clients.cli", "show a served model's signatures", "client"),
    Subcommand("playground", "tfship.playground.cli", "a web page to draw or drop images on a served model", "playground"),
    Subcommand("ios-install", "tfship.export.ios_install", "copy the exported .mlmodel into ios_demo/", "export"),
)


def build_parser(prog: str = "tfship") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="Export and serve TensorFlow models, with proof of parity.")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for sub in SUBCOMMANDS:
        module = importlib.import_module(sub.module)
        p = subparsers.add_parser(sub.name, help=sub.help, description=sub.help)
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show full tracebacks on errors")
        module.configure(p, sub.name) if _takes_name(module) else module.configure(p)
        p.set_defaults(_run=module.run, _extra=sub.extra)
    return parser


def _takes_name(module) -> bool:
    return getattr(module, "CONFIGURE_TAKES_NAME", False)


def run_parsed(args: argparse.Namespace) -> int:
    quiet.install(debug=getattr(args, "debug", False))
    try:
        try:
            return int(args._run(args) or 0)
        except ModuleNotFoundError as e:
            if not e.name or e.name.split(".")[0] == "tfship":
                raise
            # A third-party package of an extra that is not installed (e.g. `train` in a client-only venv).
            raise MissingDependencyError(e.name.split(".")[0], args._extra, f"'tfship {args.command}'") from e
    except TfshipError as e:
        if getattr(args, "debug", False):
            traceback.print_exc()
        print(f"{args.command}: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(f"{args.command}: interrupted", file=sys.stderr)
        return 130


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_parsed(args)


def export_all_main(argv: Sequence[str] | None = None) -> int:
    """``export-all``: the same as ``tfship export``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser("tfship").parse_args(["export", *argv])
    args.command = "export-all"  # error lines name the command the user typed
    return run_parsed(args)


if __name__ == "__main__":
    sys.exit(main())
