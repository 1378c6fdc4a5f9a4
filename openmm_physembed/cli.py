"""``physembed`` command line.

Each pipeline stage owns its subcommands in ``<stage>/commands.py`` with a
``register(subparsers)`` function; this module only assembles them, prints errors as one line
and exits non-zero. Heavy imports happen inside the command handlers so ``--help`` is instant.
Arguments are checked while they are parsed (``type=`` functions of :mod:`.cli_checks`), so a
bad value stops a command before its handler writes anything.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings

from .errors import PhysEmbedError, PhysEmbedWarning, UsageError

COMMAND_MODULES = (
    "openmm_physembed.chem.commands",
    "openmm_physembed.sampling.commands",
    "openmm_physembed.labelling.commands",
    "openmm_physembed.training.commands",
    "openmm_physembed.potentials.commands",
    "openmm_physembed.properties.density.commands",
    "openmm_physembed.properties.viscosity.commands",
    "openmm_physembed.stability.commands",
    "openmm_physembed.demo",
)


class CommandLineParser(argparse.ArgumentParser):
    """argparse with its errors raised as :class:`UsageError` (one line from :func:`main`, exit 2)
    instead of a usage block and ``sys.exit``; subcommand parsers inherit it."""

    def error(self, message):
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


def build_parser() -> argparse.ArgumentParser:
    parser = CommandLineParser(
        prog="physembed",
        description="Stable, experimentally corrected MACE force fields in OpenMM "
        "(self-adaptive bond-length sampling + top-down CSO correction).",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # stage not built yet
                continue
            raise
        module.register(subparsers)
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None, _default=warnings.showwarning):
    """The toolkit's own warnings as one line (``warning: ...``), like its errors; others as usual."""
    if issubclass(category, PhysEmbedWarning):
        print(f"warning: {message}", file=sys.stderr if file is None else file)
    else:
        _default(message, category, filename, lineno, file, line)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not getattr(args, "handler", None):
        parser.print_help()
        return 1
    previous, warnings.showwarning = warnings.showwarning, _show_warning
    try:
        result = args.handler(args)
    except PhysEmbedError as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    finally:
        warnings.showwarning = previous
    return int(result or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
