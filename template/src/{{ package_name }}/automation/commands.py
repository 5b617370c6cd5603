"""Level 4's commands on the project's command line: those ``python -m <package>.automation``
offers (``monitor``, ``retrain``, ``rollback``, ``simulate``, ``serve``, ``deploy``, ...).

Both read one table of commands and their options (``__main__.COMMANDS``), so the two never
disagree. They replace level 3's ``monitor`` and ``serve``: the loop's check, and the service
with live swap.
"""

from __future__ import annotations

import argparse
from typing import Any

from . import __main__ as entry

COMMANDS: tuple[str, ...] = tuple(entry.COMMANDS)


def _handler(args: argparse.Namespace) -> int:
    from ..cli import CommandError

    try:
        return entry.run(args)
    except entry.expected_errors() as exc:
        raise CommandError(str(exc)) from exc


def register(commands: Any) -> None:
    """Add the automation commands to the project's command line."""
    for name, (help_text, add_options) in entry.COMMANDS.items():
        parser = commands.add_parser(
            name, help=help_text, description=f"{help_text[:1].upper()}{help_text[1:]}."
        )
        add_options(parser)
        entry.policy_option(parser)
        parser.set_defaults(handler=_handler)
