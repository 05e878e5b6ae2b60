"""MySQL statements sqlglot reads opaquely or not at all, read from their tokens, and MySQL's
metadata-lock wait (`lock_wait_timeout`).

Read from tokens (so a comment between the words changes nothing): `DROP INDEX i ON t` with its
trailing `ALGORITHM=` and `LOCK=` clauses (MySQL 8 takes them; MariaDB 10.11 refuses them, and
takes the same operation as `ALTER TABLE t DROP INDEX i, ALGORITHM=...`), and `LOCK TABLE[S]` /
`UNLOCK TABLE[S]`, an explicit lock the migration holds until it unlocks or disconnects.

Every ALTER, DROP, RENAME and CREATE INDEX takes an exclusive metadata lock on its table, at least
briefly: it waits for every open transaction that read the table, and every later query on the
table waits behind it. `lock_wait_timeout` bounds that wait; its default is a day (MariaDB) or a
year (MySQL), so only a session value set in the migration, of `LOCK_WAIT_LIMIT` seconds at most,
counts. 0 counts too: MariaDB then fails at once, MySQL raises it to its minimum, 1 second.
"""

from __future__ import annotations

from typing import Any

from pipeline_kit.migrations.interface import Lock, Phase

LOCK_WAIT_LIMIT = 60  # seconds: longer is an outage of the table, not a bound on one
BLOCKING_CLAUSE = {"ALGORITHM": "COPY", "LOCK": "EXCLUSIVE"}
SESSION_SCOPES = frozenset({"SESSION", "LOCAL"})  # MySQL's SET LOCAL is the session's
SCOPES = SESSION_SCOPES | {"GLOBAL", "PERSIST", "PERSIST_ONLY"}


def words(tokens: list[Any], count: int) -> list[str]:
    """The first `count` words of the tokens, upper-case (sqlglot makes `LOCK TABLES` one token)."""
    return " ".join(token.text for token in tokens[:count]).upper().split()[:count]


class Session:
    """What a file's SET statements leave in force for the statements after them."""

    def __init__(self) -> None:
        self.lock_wait = False  # a bounded lock_wait_timeout


def drop_index_clauses(tokens: list[Any]) -> tuple[list[Any], dict[str, str]]:
    """A `DROP INDEX` statement's tokens without its trailing `ALGORITHM [=] x` and `LOCK [=] x`
    clauses (which sqlglot cannot read), and those clauses; a clause given twice over, with two
    values, counts as the blocking one. Other statements unchanged."""
    if words(tokens, 2) != ["DROP", "INDEX"]:
        return tokens, {}
    options: dict[str, str] = {}
    end = len(tokens)
    while end >= 4:
        with_eq = tokens[end - 2].text == "="
        name = tokens[end - 3 if with_eq else end - 2].text.upper()
        if name not in BLOCKING_CLAUSE:
            break
        value = tokens[end - 1].text.upper()
        options[name] = value if options.get(name, value) == value else BLOCKING_CLAUSE[name]
        end -= 3 if with_eq else 2
    return tokens[:end], options


def _list_tokens(tokens: list[Any]) -> list[Any]:
    """The tokens after `LOCK TABLES`: sqlglot makes the two words one command token, and the
    rest one string, unless a comment parts them."""
    if " " not in tokens[0].text.strip():
        return tokens[2:]
    import sqlglot

    return sqlglot.Dialect.get_or_raise("mysql").tokenize(" ".join(token.text for token in tokens[1:]))


def _table_names(tokens: list[Any]) -> list[str]:
    """The tables of a `LOCK TABLES` list's tokens (`a READ, db.b AS x WRITE`)."""
    names: list[str] = []
    expecting = True
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if token.text == ",":
            expecting = True
        elif expecting:
            name = token.text
            while index + 2 < len(tokens) and tokens[index + 1].text == ".":
                name += "." + tokens[index + 2].text
                index += 2
            names.append(name)
            expecting = False
        index += 1
    return names


Verdict = tuple[Phase, Lock, str, str, str]


def table_locks(tokens: list[Any]) -> list[Verdict] | None:
    """`LOCK TABLE[S] ...`: every write to the tables (and, WRITE, every read) waits until the
    migration unlocks them; `UNLOCK TABLE[S]` releases them. None for any other statement."""
    first = words(tokens, 2)
    if len(first) < 2 or first[1] not in ("TABLE", "TABLES"):
        return None
    if first[0] == "UNLOCK" and len(words(tokens, 3)) == 2:
        return [("neutral", "safe", "unlock-tables", "releases the tables LOCK TABLES locked", "")]
    if first[0] != "LOCK":
        return None
    listed = _list_tokens(tokens)
    names = _table_names(listed)
    if not names:
        return None
    modes = {token.text.upper() for token in listed}
    what = "every read and write" if "WRITE" in modes else "every write"
    return [
        (
            "neutral",
            "blocks",
            "lock-tables",
            f"locks {', '.join(names)}: {what} of the old release waits until UNLOCK TABLES",
            "drop the LOCK TABLES: each statement takes the locks it needs (ask ALTER for LOCK=NONE)",
        )
    ]


def sets_lock_wait(expression: Any) -> bool | None:
    """Whether a SET leaves this session a bounded `lock_wait_timeout`; None when it sets none.
    A scope (GLOBAL, PERSIST) holds for the assignments after it until another is named, as the
    server reads it; a global value is not this session's. A value the server refuses (a string,
    a fraction), DEFAULT (a day or a year) or one over the limit leaves none."""
    from sqlglot import exp

    if not isinstance(expression, exp.Set):
        return None
    scope, bounded = "SESSION", None
    for item in expression.expressions:
        kind = str(item.args.get("kind") or "").upper()
        scope = kind if kind in SCOPES else scope  # NAMES, CHARACTER SET: no scope
        assignment = item.this
        if not isinstance(assignment, exp.EQ):
            continue
        target, value = assignment.this, assignment.expression
        if isinstance(target, exp.SessionParameter):  # @@x and @@session.x are the session's
            where = str(target.args.get("kind") or "SESSION").upper()
        elif isinstance(target, exp.Column) and not target.table:
            where = scope
        else:  # @x is a user variable
            continue
        if target.name.lower() != "lock_wait_timeout" or where not in SESSION_SCOPES:
            continue
        bounded = (
            isinstance(value, exp.Literal)
            and not value.is_string
            and value.this.isdigit()
            and int(value.this) <= LOCK_WAIT_LIMIT
        )
    return bounded


def takes_metadata_lock(expression: Any) -> bool:
    """Whether the statement waits for an exclusive metadata lock on a table (an ALTER, a DROP,
    a RENAME, a CREATE INDEX), with every later query on it queued behind."""
    from sqlglot import exp

    if isinstance(expression, (exp.Alter, exp.Drop)):
        return True
    if isinstance(expression, exp.Create):
        return str(expression.args.get("kind", "")).upper() == "INDEX"
    if isinstance(expression, exp.Command):
        verb, rest = str(expression.this).upper(), str(getattr(expression.expression, "name", expression.expression))
        # an ALTER or DROP sqlglot cannot read (review as well) still waits for the lock
        return verb in ("ALTER", "DROP", "RENAME") or (verb == "CREATE" and "INDEX" in rest.upper().split()[:2])
    return False


MISSING_LOCK_WAIT: Verdict = (
    "neutral",
    "blocks",
    "missing-lock-timeout",
    "waits for the table's metadata lock behind every open transaction that read it, and every later query "
    f"on the table waits behind it: no SET lock_wait_timeout (of {LOCK_WAIT_LIMIT} s at most) before it",
    "SET SESSION lock_wait_timeout = 5 first (and retry on error 1205)",
)


def engine_verdict(engine: str, table: str, algorithm: str, blocking: Lock) -> Verdict:
    """`ENGINE=`: every row rewritten. InnoDB again is a null rebuild, in place with writes going
    on (MySQL 5.6+, MariaDB 10.0+); from another engine it is a copy, and the statement does not
    show the current engine, unless it asks for ALGORITHM=INPLACE, which the server refuses for a
    copy. Another engine changes what the old release relies on: only InnoDB has transactions
    and foreign keys."""
    if engine.upper() == "INNODB":
        return (
            "neutral",
            "safe" if algorithm == "INPLACE" else blocking,
            "rebuild-table",
            f"rebuilds {table} (ENGINE=InnoDB): every row is rewritten"
            + (", in place with writes going on" if algorithm == "INPLACE" else "; from another engine, copied"),
            "" if algorithm == "INPLACE" else "ask for ALGORITHM=INPLACE, LOCK=NONE: the server then refuses a copy",
        )
    return (
        "contract",
        blocking,
        "change-engine",
        f"moves {table} to the {engine} engine: the table is copied, and the old release's transactions and "
        "foreign keys no longer hold (only InnoDB has both)",
        "keep InnoDB",
    )
