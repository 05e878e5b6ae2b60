"""Turn a pydantic ValidationError into the kit's one-line "file: key: problem" form."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import ValidationError

from pipeline_kit._internal.redact import strip_credentials


def dotted(loc: Sequence[int | str]) -> str:
    """`("environments", "prod", "gates", 0)` -> `environments.prod.gates[0]`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def first_problem(exc: ValidationError) -> tuple[tuple[int | str, ...], str]:
    """The location and a readable description of the most specific error pydantic found.

    For a union (`str | {path, type}`) pydantic reports one error per member; the deepest
    location is the member the user was evidently writing.
    """
    errors = exc.errors(include_url=False)
    error = max(errors, key=lambda e: len([p for p in e["loc"] if not _is_union_tag(p)]))
    loc = tuple(part for part in error["loc"] if not _is_union_tag(part))
    message = error["msg"].removeprefix("Value error, ")
    kind = error["type"]
    if kind == "extra_forbidden":
        message = "unknown key"
    elif kind == "missing":
        message = "required key is missing"
    elif loc:  # at the top level the input is the whole document: never shown
        given = error["input"]
        shown = _short_repr(strip_credentials(given) if isinstance(given, str) else given)  # a URL's token
        message = f"{message} (got {shown})"
    return loc, message


def _is_union_tag(part: int | str) -> bool:
    # pydantic inserts the tried member's type name into the location of union errors
    # (e.g. "str", "list[str]", "SbomSourceConfig"); they mean nothing to a user. Config and
    # evidence keys are never capitalised, so a capitalised part is a model name.
    return isinstance(part, str) and (
        "[" in part or part in {"str", "int", "dict", "list", "bool"} or part[:1].isupper()
    )


def _short_repr(value: object) -> str:
    """A bounded repr: a huge value (an expanded alias bomb) is never rendered whole."""
    import reprlib

    shortener = reprlib.Repr()
    shortener.maxstring = shortener.maxother = 50
    shortener.maxlist = shortener.maxdict = shortener.maxtuple = 4
    shortener.maxlevel = 2
    shown = shortener.repr(value)
    return shown if len(shown) <= 60 else shown[:57] + "..."
