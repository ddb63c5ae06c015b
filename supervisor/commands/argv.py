"""The command line before a command runs: usage errors in one line, repeated flags.

click (typer's, vendored) prints a usage error as a boxed paragraph and keeps the last of
a flag given twice; the supervisor answers every bad input with one line and exit 2, and
refuses the repeat. Written against the attributes click's objects have, not its classes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import typer

from supervisor.errors import UserError

# The base of click's usage errors, wherever this typer keeps click: typer >= 0.26 has its
# own copy (typer.exceptions only since 0.27.3), older typer uses click itself.
ClickException: Any = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


# Control characters a path or value may carry (a newline, a terminal's escape sequence),
# shown escaped: an error stays one line, and a file name cannot recolour the terminal.
_ESCAPED = {
    c: repr(chr(c))[1:-1]
    for c in (*range(0x20), *range(0x7F, 0xA0), 0x2028, 0x2029)
    if c != 0x09  # a tab is on the line
}


def error_line(exc: BaseException) -> str:
    """The one line a refused command prints: ``error: <message>`` (for click's usage
    errors, with where to find the help)."""
    line = usage_line(exc) if isinstance(exc, ClickException) else f"error: {exc}"
    return line.translate(_ESCAPED)


def usage_line(exc: Any) -> str:
    """One line for a usage error (a click ``ClickException``), pointing at the help."""
    message = " ".join(str(exc.format_message()).split())
    ctx = getattr(exc, "ctx", None)
    hint = f" (see {ctx.command_path} --help)" if ctx is not None else ""
    return f"error: {message}{hint}"


def given_options(command: Any, args: list[str]) -> Iterator[tuple[str, Any, str | None]]:
    """The options of ``command`` in ``args``, each as written with its click parameter
    and its value (None: a flag, or none given), up to a ``--`` (what follows belongs to
    another command: submit's search flags)."""
    flags = {
        name: param
        for param in command.params
        if param.param_type_name == "option"
        for name in (*param.opts, *param.secondary_opts)
    }
    tokens = iter(args)
    for token in tokens:
        if token == "--":
            return
        name, eq, value = token.partition("=")
        param = flags.get(name)
        if param is None:
            continue
        if param.is_flag:
            yield name, param, None
        else:
            yield name, param, value if eq else next(tokens, None)  # whatever it looks like


def refuse_repeated(group: Any, args: list[str]) -> None:
    """A flag given twice is refused: click would keep the last one in silence, and
    ``--workers 1 --workers 100`` is a typo more often than a wish. So is an empty folder
    (an unset shell variable): click makes ``--runs-dir ''`` the current directory. So are
    options of which one would be ignored (``EXCLUSIVE``), and a negative number for a
    counted argument (``refuse_negative_arguments``)."""
    command = getattr(group, "commands", {}).get(args[0]) if args else None
    if command is None:
        return
    seen: set[str] = set()
    for name, param, value in given_options(command, args[1:]):
        if name.endswith("-dir") and value is not None and not value.strip():
            raise UserError(f"{name} {value!r}: expected a folder (. for this one)")
        if param.multiple:
            continue
        if param.name in seen:
            raise UserError(f"{name}: given twice; give each option once")
        seen.add(param.name)
    for first, second, why in EXCLUSIVE.get(args[0], ()):
        if {first, second} <= seen:
            flags = " and ".join("--" + name.replace("_", "-") for name in (first, second))
            raise UserError(f"{flags} exclude each other: {why}")
    refuse_negative_arguments(command, args[1:])


# Options a command refuses together (by parameter name): the second would be ignored.
EXCLUSIVE: dict[str, tuple[tuple[str, str, str], ...]] = {
    "search": (
        ("no_report", "reports_dir", "no report is written for that folder (leave one out)"),
    ),
}


NEGATIVE = re.compile(r"-\d+(\.\d+)?")


def refuse_negative_arguments(command: Any, args: list[str]) -> None:
    """A negative number where an argument with a lower bound goes (``rerun RUN -1``) is
    refused naming the argument: click takes ``-1`` for an option and said "No such
    option: -1", which names neither."""
    options = {
        name: param
        for param in command.params
        if param.param_type_name == "option"
        for name in (*param.opts, *param.secondary_opts)
    }
    arguments = [param for param in command.params if param.param_type_name == "argument"]
    position = 0
    tokens = iter(args)
    for token in tokens:
        if token == "--":  # what follows is positional to click: its own range check
            return
        param = options.get(token.partition("=")[0])
        if param is not None:
            if not param.is_flag and "=" not in token:
                next(tokens, None)  # its value, whatever it looks like
            continue
        negative = NEGATIVE.fullmatch(token) is not None
        if token.startswith("-") and not negative:  # an unknown option: click names it
            continue
        if negative and position < len(arguments):
            argument = arguments[position]
            # typer >= 0.26 keeps the bound on the parameter, click on its IntRange type
            low = getattr(argument, "min", getattr(getattr(argument, "type", None), "min", None))
            if low is not None and float(token) < low:
                raise UserError(f"{argument.name.upper()} {token}: expected {low} or more")
        position += 1


def readable_help(group: Any) -> Any:
    """``group`` with each command's help as flowing text: typer's rich help keeps a
    docstring's line breaks, which cut ``supervisor --help``'s sentences mid-line.
    Paragraphs (a blank line) stay apart."""
    for command in getattr(group, "commands", {}).values():
        if command.help:
            paragraphs = command.help.split("\n\n")
            command.help = "\n\n".join(" ".join(p.split()) for p in paragraphs)
    return group
