"""Level 4's commands on the project's command line: whatever ``python -m <package>.automation``
offers (``monitor``, ``retrain``, ``rollback``, ``simulate``, ``serve``, ``deploy``, ...).

The commands are taken from that parser, with their options, so the two never disagree. They
replace level 3's ``monitor`` and ``serve``: the loop's check, and the service with live swap.
"""

from __future__ import annotations

import argparse
from typing import Any

from . import __main__ as entry


def subcommands(parser: argparse.ArgumentParser) -> dict[str, tuple[argparse.ArgumentParser, str]]:
    """Each subcommand of ``parser``: its own parser and its one-line help."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
            return {name: (sub, helps.get(name, "")) for name, sub in action.choices.items()}
    return {}


COMMANDS: tuple[str, ...] = tuple(subcommands(entry.build_parser()))


def _handler(args: argparse.Namespace) -> int:
    from ..cli import CommandError

    try:
        return entry.run(args)
    except entry.expected_errors() as exc:
        raise CommandError(str(exc)) from exc


def register(commands: Any) -> None:
    """Add the automation commands to the project's command line."""
    for name, (sub, help_text) in subcommands(entry.build_parser()).items():
        parser = commands.add_parser(
            name,
            parents=[sub],
            add_help=False,  # the parent's -h
            help=help_text,
            description=sub.description or f"{help_text[:1].upper()}{help_text[1:]}.",
        )
        entry.policy_option(parser)
        parser.set_defaults(handler=_handler)
