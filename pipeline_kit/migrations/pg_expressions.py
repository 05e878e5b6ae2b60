"""What the PostgreSQL classifier can see through in an expression of libpg_query's raw tree.

Known constructs are listed, never unknown ones guessed at: a function is known when it is one of
PostgreSQL's own (pg_catalog) with a fixed effect; anything else (a user function, whose body may
drop a table) is opaque. A column default is proven non-volatile only when every part of it is a
known immutable or stable construct: PostgreSQL 11+ then stores it once instead of rewriting every
row. The lists are checked against a real PostgreSQL's pg_proc in the tests (every overload of
each name immutable or stable, resp. present in pg_catalog).
"""

from __future__ import annotations

import re
from typing import Any

# pg_catalog functions whose every overload is immutable or stable (provolatile 'i' or 's')
NON_VOLATILE = frozenset(
    """
    abs age array_agg array_length array_position array_to_string avg btrim ceil ceiling char_length
    character_length concat concat_ws count date_part date_trunc decode encode extract floor format
    initcap json_agg json_build_array json_build_object jsonb_agg jsonb_build_array jsonb_build_object
    jsonb_set left length lower lpad ltrim make_date make_interval make_timestamp make_timestamptz max
    md5 min mod now octet_length position power regexp_replace repeat replace reverse right round
    row_number rpad rtrim sha256 split_part sqrt statement_timestamp string_agg string_to_array strpos
    substr substring sum timezone to_char to_date to_json to_jsonb to_number to_timestamp
    transaction_timestamp translate trunc upper
    """.split()  # noqa: SIM905 (a list of words reads best as one)
)
# pg_catalog functions that are volatile only in their value: known, but a per-row default
KNOWN_VOLATILE = frozenset({"random", "gen_random_uuid", "clock_timestamp", "timeofday", "nextval", "setval"})
# operators of the built-in types (a user-defined operator may call anything)
OPERATORS = frozenset({"+", "-", "*", "/", "%", "^", "||", "=", "<>", "!=", "<", ">", "<=", ">=", "~~", "!~~"})
# raw-tree nodes that compute nothing themselves, and the fields holding the children judged
# (a cast runs the type's input function, which PostgreSQL requires to be immutable or stable)
TRANSPARENT = {
    "TypeCast": ("arg",),
    "A_ArrayExpr": ("elements",),
    "BoolExpr": ("args",),
    "NullTest": ("arg",),
    "CoalesceExpr": ("args",),
    "MinMaxExpr": ("args",),
    "CaseExpr": ("arg", "args", "defresult"),
    "CaseWhen": ("expr", "result"),
}
# column types whose every row gets a value of a sequence: adding one rewrites the table
SERIAL = frozenset({"serial", "serial2", "serial4", "serial8", "smallserial", "bigserial"})


def function_name(call: dict[str, Any]) -> str | None:
    """A FuncCall's name when it may be PostgreSQL's own (unqualified or pg_catalog.), else None.
    (`TRIM(x)`, `SUBSTRING(x FROM 1)` and the like arrive as pg_catalog.btrim, .substring, ...)"""
    parts: list[str] = [part["String"]["sval"] for part in call.get("funcname") or [] if "String" in part]
    if len(parts) == 1 or (len(parts) == 2 and parts[0] == "pg_catalog"):
        return parts[-1]
    return None


def provably_non_volatile(node: Any) -> bool:
    """Whether every part of the expression `node` is a known immutable or stable construct
    (walked without recursion: a default may be nested deeper than Python's stack)."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack += item
            continue
        if not isinstance(item, dict) or len(item) != 1:
            return False
        ((kind, body),) = item.items()
        if kind in ("A_Const", "SQLValueFunction"):  # CURRENT_DATE, CURRENT_TIMESTAMP, ...: stable
            continue
        if kind == "FuncCall":
            if function_name(body) not in NON_VOLATILE or body.get("over") or body.get("agg_filter"):
                return False
            stack += body.get("args") or []
        elif kind == "A_Expr":
            names = [part["String"]["sval"] for part in body.get("name") or [] if "String" in part]
            if body.get("kind") != "AEXPR_OP" or names[-1:] != names or names[0] not in OPERATORS:
                return False
            stack += [body[side] for side in ("lexpr", "rexpr") if side in body]
        elif kind in TRANSPARENT:
            stack += [body[key] for key in TRANSPARENT[kind] if key in body]
        else:
            return False
    return True


def _nodes(node: Any, key: str, *, first: bool = False) -> list[Any]:
    """Every value of `key` in a dict anywhere under `node` (with `first`, only the first found),
    without recursion (a deep tree is no stack) and without a generator (this runs on every
    statement)."""
    found: list[Any] = []
    stack = [node]
    pop, push, extend = stack.pop, stack.append, stack.extend
    while stack:
        item = pop()
        if type(item) is dict:
            if key in item:
                found.append(item[key])
                if first:
                    break
            for value in item.values():
                if type(value) is dict or type(value) is list:
                    push(value)
        elif type(item) is list:
            extend(item)
    return found


def opaque_calls(node: Any) -> list[str]:
    """The functions called under `node` that are not PostgreSQL's own: code the classifier
    cannot see through (by the name the statement gives them)."""
    return [
        ".".join(part["String"]["sval"] for part in call.get("funcname") or [] if "String" in part)
        for call in _nodes(node, "FuncCall")
        if function_name(call) not in NON_VOLATILE and function_name(call) not in KNOWN_VOLATILE
    ]


def _reads_a_column(node: Any) -> bool:
    return bool(_nodes(node, "ColumnRef", first=True))


def selects_every_row(where: Any) -> bool:
    """Whether a WHERE clause can be seen to select every row (or none): none at all, one that
    reads no column of the row (`WHERE true`, `1 = 1`, `EXISTS (SELECT 1)`), a column compared
    with itself (`id = id`), or an OR with such a branch. Anything else counts as a batch."""
    branches = [where]
    while branches:
        branch = branches.pop()
        if branch is None or not _reads_a_column(branch):
            return True
        ((kind, body),) = branch.items() if isinstance(branch, dict) and len(branch) == 1 else (("", {}),)
        if kind == "BoolExpr" and body.get("boolop") == "OR_EXPR":
            branches += body.get("args") or []
        elif kind == "A_Expr" and body.get("kind") == "AEXPR_OP":
            names = [part["String"]["sval"] for part in body.get("name") or [] if "String" in part]
            sides = [body.get(side, {}).get("ColumnRef", {}).get("fields") for side in ("lexpr", "rexpr")]
            if names in (["="], [">="], ["<="]) and sides[0] is not None and sides[0] == sides[1]:
                return True
    return False


# `SET lock_timeout` values: a number of milliseconds or a number with a unit
DURATION = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*(us|ms|s|min|h|d)?\s*")


def sets_a_lock_timeout(node: dict[str, Any]) -> bool:
    """Whether a `SET lock_timeout` statement leaves a timeout in force: 0 (or DEFAULT, RESET,
    whose value is 0) means wait forever."""
    if node.get("kind") != "VAR_SET_VALUE":
        return False
    constant = (node.get("args") or [{}])[0].get("A_Const", {})
    if "ival" in constant:
        return bool(constant["ival"].get("ival"))
    if "fval" in constant:
        return float(constant["fval"].get("fval") or 0) > 0
    match = DURATION.fullmatch(constant.get("sval", {}).get("sval", ""))
    return match is not None and float(match.group(1)) > 0


def table_name(relation: dict[str, Any]) -> str:
    """A table as a statement names it (schema-qualified when it is)."""
    return ".".join(part for part in (relation.get("schemaname"), relation.get("relname", "?")) if part)


def referenced_tables(node: Any) -> list[str]:
    """The tables the foreign keys anywhere under `node` reference, in order, each once."""
    # most statements reference one table or none, where order is moot: found by the faster walk
    named = {table_name(table): None for table in _nodes(node, "pktable") if type(table) is dict}
    if len(named) <= 1:
        return list(named)
    found: dict[str, None] = {}
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if isinstance(item.get("pktable"), dict):
                found[table_name(item["pktable"])] = None
            stack.extend(reversed(item.values()))
        elif isinstance(item, list):
            stack.extend(reversed(item))
    return list(found)


def referenced_in_use(node: dict[str, Any], created: set[str]) -> list[str] | None:
    """The tables a CREATE TABLE's foreign keys reference that may have traffic: not itself, nor
    one this migration created (nobody else uses a table before the migration commits). None
    when it references no table at all."""
    referenced = referenced_tables(node)
    if not referenced:
        return None
    itself = table_name(node.get("relation", {}))
    return [name for name in referenced if name not in created and name != itself]
