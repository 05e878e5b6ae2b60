"""What the MySQL and SQLite classifier can see through in sqlglot's tree, and MySQL's online-DDL
clauses (`ALGORITHM=`, `LOCK=`) judged as the server does.

Known constructs are listed, never unknown ones guessed at: a function sqlglot knows by type is a
built-in of the SQL dialects; one it leaves `Anonymous` is a built-in only when listed below
(checked against a real MariaDB, which notes a stored function named like a native one), else
code the classifier cannot see through. A column default is proven constant only when it is a
literal or the current time; an expression default `(...)` may be evaluated for every row.

The clauses: MySQL refuses an ALTER whose requested `LOCK=NONE` or `ALGORITHM=INSTANT` it cannot
honour, so a statement that asks for either never blocks writes (it runs, or fails at once);
`ALGORITHM=COPY` or `LOCK=SHARED|EXCLUSIVE` block writes for the whole copy; `INPLACE`, `NOCOPY`
and `DEFAULT` leave the operation's own default (the least locking it supports).
"""

from __future__ import annotations

import re
from typing import Any

# MySQL and MariaDB built-ins that sqlglot leaves `Anonymous` (by upper-case name)
MYSQL_BUILTINS = frozenset(
    {
        "NOW",
        "SYSDATE",
        "UNIX_TIMESTAMP",
        "LAST_INSERT_ID",
        "UUID_SHORT",
        "CURTIME",
        "UTC_DATE",
        "UTC_TIME",
        "CONVERT_TZ",
        "FROM_UNIXTIME",
        "DATE_FORMAT",
        "JSON_ARRAY",
        "JSON_SET",
        "CHAR_LENGTH",
        "INET_ATON",
        "INET_NTOA",
    }
)
OPTION = re.compile(r"\s+(ALGORITHM|LOCK|USING)\s*=?\s*(\w+)\s*$", re.IGNORECASE)
RENAME_TABLES = re.compile(r"TABLE\s+[`\w.]+\s+TO\s+[`\w.]+(?:\s*,\s*[`\w.]+\s+TO\s+[`\w.]+)*\s*", re.IGNORECASE)


def opaque_calls(expression: Any) -> list[str]:
    """The functions called under `expression` that are not built-ins: user code."""
    from sqlglot import exp

    return [
        call.name
        for call in expression.find_all(exp.Anonymous)
        if call.name.upper() not in MYSQL_BUILTINS or isinstance(call.parent, exp.Dot)
    ]


def constant_default(default: Any) -> bool:
    """Whether a column default is a constant (a literal, NULL, a boolean, a negated number) or
    the current time, which the server stores once; an expression default is not proven."""
    from sqlglot import exp

    if isinstance(default, exp.Neg):
        default = default.this
    if isinstance(default, exp.Anonymous):
        return default.name.upper() == "NOW" and not default.expressions
    return isinstance(default, (exp.Literal, exp.Null, exp.Boolean, exp.CurrentTimestamp, exp.CurrentDate))


def _reads_a_column(expression: Any) -> bool:
    from sqlglot import exp

    return expression.find(exp.Column) is not None


def selects_every_row(where: Any) -> bool:
    """Whether a WHERE can be seen to select every row (or none): none at all, one that reads no
    column (`WHERE true`, `WHERE 1`, `1 = 1`), a column compared with itself, or an OR with such
    a branch. Anything else counts as a batch."""
    from sqlglot import exp

    if where is None:
        return True
    branches = [where.this if isinstance(where, exp.Where) else where]
    while branches:
        condition = branches.pop()
        if not _reads_a_column(condition):
            return True
        if isinstance(condition, exp.Paren):
            branches.append(condition.this)
        elif isinstance(condition, exp.Or):
            branches += [condition.this, condition.expression]
        elif isinstance(condition, (exp.EQ, exp.GTE, exp.LTE, exp.NullSafeEQ)):
            left, right = condition.this, condition.expression
            if isinstance(left, exp.Column) and isinstance(right, exp.Column) and left == right:
                return True
    return False


def split_options(text: str) -> tuple[str, dict[str, str]]:
    """A CREATE INDEX statement without its trailing `ALGORITHM=`, `LOCK=` and `USING BTREE|HASH`
    clauses (which sqlglot cannot read), and those clauses."""
    options: dict[str, str] = {}
    while match := OPTION.search(text):
        options.setdefault(match.group(1).upper(), match.group(2).upper())
        text = text[: match.start()]
    return text, options


def alter_options(expression: Any) -> dict[str, str]:
    """The ALGORITHM and LOCK clauses of an ALTER TABLE, upper-case."""
    from sqlglot import exp

    options: dict[str, str] = {}
    for option in expression.args.get("options") or []:
        if isinstance(option, exp.AlgorithmProperty):
            options["ALGORITHM"] = option.name.upper()
        elif isinstance(option, exp.LockProperty):
            options["LOCK"] = option.name.upper()
    return options


def is_rename_tables(text: str) -> bool:
    """Whether the text after `RENAME` is MySQL's `TABLE a TO b[, c TO d ...]`."""
    return RENAME_TABLES.fullmatch(text) is not None
