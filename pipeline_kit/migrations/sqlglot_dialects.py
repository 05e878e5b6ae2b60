"""MySQL and SQLite migrations, classified on sqlglot's tree (MIT-licensed).

sqlglot turns what it does not understand into an opaque `Command` node (and some MySQL online-DDL
forms too): those are `review`, never a guess. The phase rules are PostgreSQL's (what breaks the
running release is the same: a dropped or renamed column or table, a new NOT NULL without a
default, a new UNIQUE, a type change); the lock rules are each engine's: MySQL's InnoDB builds a
secondary index online but copies the table for a type change; SQLite has one writer for the whole
database, so its lock risk is `n/a` except for statements that rewrite every row.
"""

from __future__ import annotations

import contextlib
from functools import partial
from typing import Any

from pipeline_kit.migrations.interface import WAIVER, Dialect, Finding, Lock, Phase
from pipeline_kit.migrations.mysql_statements import (
    MISSING_LOCK_WAIT,
    Session,
    drop_index_clauses,
    engine_verdict,
    sets_lock_wait,
    table_locks,
    takes_metadata_lock,
)
from pipeline_kit.migrations.reading import Chunk, nested, nesting, token_chunks
from pipeline_kit.migrations.sqlglot_expressions import (
    alter_options,
    constant_default,
    is_rename_tables,
    opaque_calls,
    selects_every_row,
    split_options,
)

Verdict = tuple[Phase, Lock, str, str, str]
ONLINE = ", built online"  # said of what InnoDB builds with writes going on, unless a clause forbids it


def named(node: Any) -> str:
    """What a statement names (a table schema-qualified when it is; a CREATE TABLE's schema's
    table); "" when it names nothing (an index added without a name)."""
    from sqlglot import exp

    while isinstance(node, exp.Schema):
        node = node.this
    if isinstance(node, exp.Table):
        return ".".join(part for part in (node.db, node.name) if part)
    return str(getattr(node, "name", "") or "")


class SqlglotDialect(Dialect):
    read: str  # sqlglot's dialect name
    blocking: Lock  # the lock risk of a rewrite or an every-row statement in this engine

    def classify(self, sql: str, file: str) -> list[Finding]:
        import logging

        import sqlglot
        from sqlglot import TokenType
        from sqlglot.errors import TokenError

        # sqlglot logs each fallback to an opaque Command; the finding says it (as review)
        logging.getLogger("sqlglot").setLevel(logging.ERROR)

        dialect = sqlglot.Dialect.get_or_raise(self.read)
        parser = dialect.parser()
        findings: list[Finding] = []
        session = Session()  # what the file's SETs leave in force, statement to statement
        try:  # a large file a chunk of whole statements at a time: memory follows the chunk
            for chunk in token_chunks(dialect.tokenize, sql, lambda token: token.token_type == TokenType.SEMICOLON):
                findings += self._chunk(parser, chunk, file, session)
        except TokenError as exc:
            message = f"not SQL the parser accepts: {str(exc).splitlines()[0]}; the whole file went unchecked"
            fix = "close the string, quoted name or comment"
            return [Finding(file, 1, "review", "n/a", "unparsable", message, fix)]
        return findings

    def _chunk(self, parser: Any, chunk: Chunk, file: str, session: Session) -> list[Finding]:
        from sqlglot.errors import ParseError

        sql, tokens = chunk.text, chunk.tokens
        findings: list[Finding] = []
        previous_end = 0
        for group in _statements(tokens):
            start, end = group[0].start, group[-1].end + 1
            line = chunk.lines + group[0].line
            waivers = {m.group(1): m.group(2) for m in WAIVER.finditer(sql[previous_end:start])}
            previous_end = end
            try:  # from the file's tokens (tokenizing each statement again took a third of the time)
                verdicts = nested(partial(self._read, parser, group, sql, session), nesting(group), file, line)
            except ParseError as exc:
                message = f"not {self.name} the parser accepts: {str(exc).splitlines()[0]}"
                findings.append(
                    Finding(file, line, "review", "n/a", "unparsable", message, "", waivers.get("unparsable"))
                )
                continue
            for phase, lock, rule, message, fix in verdicts:
                findings.append(Finding(file, line, phase, lock, rule, message, fix, waivers.get(rule)))
        return findings

    def _read(self, parser: Any, group: list[Any], sql: str, session: Session) -> list[Verdict]:
        """The verdicts on one statement, parsed from its tokens (MySQL's LOCK TABLES read from them,
        DROP INDEX's clauses taken off first); in MySQL, an unbounded metadata-lock wait, once."""
        from sqlglot.errors import ParseError

        mysql = self.name == "mysql"
        locks = table_locks(group) if mysql else None
        if locks is not None:
            return locks
        group, clauses = drop_index_clauses(group) if mysql else (group, {})
        expression = (parser.parse(group, sql) or [None])[0]
        if expression is None:
            raise ParseError(f"no statement in {sql[group[0].start : group[-1].end + 1]!r}")
        verdicts = self._online(self._verdicts(expression), clauses) if clauses else self._verdicts(expression)
        if not mysql:
            return verdicts
        bounded = sets_lock_wait(expression)
        session.lock_wait = session.lock_wait if bounded is None else bounded
        if takes_metadata_lock(expression) and not session.lock_wait:
            session.lock_wait = True  # said once per file
            return [MISSING_LOCK_WAIT, *verdicts]
        return verdicts

    def _verdicts(self, expression: Any) -> list[Verdict]:
        """What the statement does; a call of code the classifier cannot see through (in a query,
        a CREATE TABLE ... SELECT, a default) is review beside it, or instead of a row change."""
        from sqlglot import exp

        code = isinstance(expression, exp.Command) or (
            isinstance(expression, exp.Create) and str(expression.args.get("kind", "")).upper() != "TABLE"
        )
        called = [] if code else sorted(set(opaque_calls(expression)))
        opaque: list[Verdict] = []
        if called:
            message = f"calls {', '.join(called)}: code the classifier cannot see through"
            opaque.append(("review", "n/a", "calls-user-function", message, ""))
        if opaque and isinstance(expression, (exp.Insert, exp.Update, exp.Delete, exp.Select)):
            return opaque
        return opaque + self._family(expression)

    def _family(self, expression: Any) -> list[Verdict]:
        from sqlglot import exp

        if isinstance(expression, exp.Command):
            return self._command(expression)
        if isinstance(expression, exp.Alter) and str(expression.args.get("kind", "")).upper() == "TABLE":
            table, options = named(expression.this), alter_options(expression)
            verdicts = [self._action(action, table) for action in expression.args.get("actions") or []]
            for option in expression.args.get("options") or []:
                verdicts += self._option(option, table, options.get("ALGORITHM", "DEFAULT"))
            if not verdicts:
                return [("review", "n/a", "alter-table", "ALTER TABLE: not classified", "")]
            return self._online(verdicts, options)
        if isinstance(expression, exp.Create):
            return self._create(expression)
        if isinstance(expression, exp.Drop):
            return self._drop(expression)
        if isinstance(expression, (exp.Insert, exp.Update, exp.Delete, exp.Select)):
            return [self._rows(expression)]
        if isinstance(expression, exp.Revoke):
            return [
                (
                    "contract",
                    "safe",
                    "revoke",
                    "revokes a privilege: the old release's queries that use it fail",
                    "stop using it in a release everywhere first, then revoke it as a contract step",
                )
            ]
        if isinstance(expression, (exp.Set, exp.Transaction, exp.Commit, exp.Rollback, exp.Pragma, exp.Grant)):
            return [("neutral", "safe", type(expression).__name__.lower(), "no change an application sees", "")]
        return [
            ("review", "n/a", type(expression).__name__.lower(), f"{type(expression).__name__}: not classified", "")
        ]

    def _command(self, command: Any) -> list[Verdict]:
        """What sqlglot left opaque: MySQL's CREATE INDEX with ALGORITHM/LOCK and RENAME TABLE are
        read here; triggers, events and CALL are code; anything else is for a human."""
        import sqlglot

        verb, rest = str(command.this).upper(), command.expression
        text = rest.name if hasattr(rest, "name") else str(rest)
        if self.name == "mysql" and verb == "RENAME" and is_rename_tables(text):
            return [
                (
                    "contract",
                    "safe",
                    "rename-table",
                    "renames a table: the old release's queries fail",
                    "a view with the old name, or a new table, then drop the old as a contract step",
                )
            ]
        words = text.split(None, 2)
        if self.name == "mysql" and verb == "REPLACE":  # an INSERT that first deletes the rows it collides with
            with contextlib.suppress(sqlglot.errors.ParseError):
                return [
                    (p, k, "replace", "inserts rows, deleting first each row with the same unique key", f)
                    if r == "insert"
                    else (p, k, r, m, f)
                    for p, k, r, m, f in self._verdicts(sqlglot.parse_one(f"INSERT {text}", read=self.read))
                ]
        if self.name == "mysql" and verb == "CREATE" and "INDEX" in (w.upper() for w in words[:2]):
            statement, options = split_options(f"CREATE {text}")
            if options:  # read without them, judged with them
                with contextlib.suppress(sqlglot.errors.ParseError):
                    return self._online(self._verdicts(sqlglot.parse_one(statement, read=self.read)), options)
        if verb == "CALL" or (verb == "CREATE" and words[:1] and words[0].upper() in ("TRIGGER", "EVENT")):
            return [
                (
                    "review",
                    "n/a",
                    "opaque-code",
                    f"{verb} {words[0] if words else ''}: code the classifier cannot see through",
                    "",
                )
            ]
        return [
            ("review", "n/a", "opaque", f"the parser could not read it ({command.this} ...): a human must look", "")
        ]

    def _online(self, verdicts: list[Verdict], options: dict[str, str]) -> list[Verdict]:
        """The verdicts as the statement's ALGORITHM/LOCK clauses make them (MySQL's rules); what
        could not be classified stays so."""
        algorithm, lock = options.get("ALGORITHM", "DEFAULT"), options.get("LOCK", "DEFAULT")
        if lock == "NONE" or algorithm == "INSTANT":
            how = "LOCK=NONE" if lock == "NONE" else "ALGORITHM=INSTANT"
            note = f" ({how}: writes go on, or the server refuses the statement)"
            return [
                (p, k, r, m, f) if k == "n/a" else (p, "safe", r, m + note if k == "blocks" else m, f)
                for p, k, r, m, f in verdicts
            ]
        if algorithm == "COPY" or lock in ("SHARED", "EXCLUSIVE"):
            how = "ALGORITHM=COPY" if algorithm == "COPY" else f"LOCK={lock}"
            note = f" ({how}: writes wait for the whole statement)"
            fix = "drop the clause (the server picks the least locking it can), or ask for LOCK=NONE"
            return [
                (p, k, r, m, f)
                if k == "n/a"
                else (p, "blocks", r, m.removesuffix(ONLINE) + note, f"{f}; {fix}" if f else fix)
                for p, k, r, m, f in verdicts
            ]
        return verdicts

    def _option(self, option: Any, table: str, algorithm: str) -> list[Verdict]:
        """An ALTER TABLE option: ALGORITHM and LOCK are `_online`'s, ENGINE a rebuild, others unread."""
        from sqlglot import exp

        if isinstance(option, (exp.AlgorithmProperty, exp.LockProperty)):
            return []
        if isinstance(option, exp.EngineProperty):
            return [engine_verdict(option.name, table, algorithm, self.blocking)]
        return [("review", "n/a", "alter-table", f"ALTER TABLE {type(option).__name__}: not classified", "")]

    def _create(self, expression: Any) -> list[Verdict]:
        kind = str(expression.args.get("kind", "")).upper()
        name = named(expression.this)
        if kind == "INDEX":
            index = f"{name} on {named(expression.this.args.get('table'))}"
            if expression.args.get("unique"):
                return [
                    (
                        "contract",
                        "safe",
                        "unique-index",
                        f"unique index {index}: restricts the old release's writes" + ONLINE,
                        "ship it as a contract step",
                    )
                ]
            return [("expand", "safe", "create-index", f"new index {index}" + ONLINE, "")]
        if kind in ("TABLE", "VIEW"):
            return [("expand", "safe", f"create-{kind.lower()}", f"new {kind.lower()} {name}", "")]
        if kind in ("FUNCTION", "PROCEDURE", "TRIGGER"):
            return [
                (
                    "review",
                    "n/a",
                    "opaque-code",
                    f"creates a {kind.lower()}: code the classifier cannot see through",
                    "",
                )
            ]
        return [("review", "n/a", "create", f"CREATE {kind}: not classified", "")]

    def _drop(self, expression: Any) -> list[Verdict]:
        kind = str(expression.args.get("kind", "")).upper()
        names = ", ".join(named(table) for table in expression.args.get("tables") or [])
        if kind == "INDEX":
            return [self._drop_part(kind, names)]
        if kind in ("TABLE", "VIEW", "FUNCTION", "PROCEDURE", "TRIGGER"):
            return [
                (
                    "contract",
                    "safe",
                    f"drop-{kind.lower()}",
                    f"drops {kind.lower()} {names}: the old release's queries fail",
                    "stop using it in a release everywhere first, then drop it as a contract step",
                )
            ]
        return [("review", "n/a", "drop", f"DROP {kind}: not classified", "")]

    def _rows(self, expression: Any) -> Verdict:
        from sqlglot import exp

        if isinstance(expression, exp.Select):
            return ("neutral", "safe", "select", "reads rows", "")
        if isinstance(expression, exp.Insert):
            return ("migrate", "safe", "insert", "inserts rows", "")
        verb = type(expression).__name__.upper()
        # MySQL's batch: `UPDATE ... LIMIT 1000` run until it changes nothing
        if selects_every_row(expression.args.get("where")) and not expression.args.get("limit"):
            return (
                "migrate",
                self.blocking,
                "unbatched-backfill",
                f"{verb} of every row in one statement (no WHERE, or one that selects all)",
                "batch it (a range of keys per transaction)",
            )
        return ("migrate", "safe", "backfill", f"{verb} of the rows it selects", "")

    def _action(self, action: Any, table: str) -> Verdict:
        from sqlglot import exp

        if isinstance(action, exp.ColumnDef):
            return self._column(action)
        if isinstance(action, exp.AddConstraint):
            return self._constraint(action, table)
        if isinstance(action, exp.Drop):
            names = ", ".join(named(part) for part in action.args.get("tables") or [])
            return self._drop_part(str(action.args.get("kind", "")).upper(), names)
        if isinstance(action, exp.DropPrimaryKey):
            return self._drop_part("PRIMARY KEY", "")
        if isinstance(action, (exp.RenameColumn, exp.AlterRename)):
            what = "column" if isinstance(action, exp.RenameColumn) else "table"
            return (
                "contract",
                "safe",
                f"rename-{what}",
                f"renames a {what}: the old release's queries fail",
                f"add the new {what} beside the old, move, then drop the old as a contract step",
            )
        if isinstance(action, exp.AlterColumn) and action.args.get("drop"):
            return (
                "contract",
                "safe",
                "drop-default",
                "drops a default: the old release's INSERTs that rely on it fail",
                "",
            )
        if isinstance(action, exp.AlterColumn) and "default" in action.args:
            return ("expand", "safe", "set-default", "sets a default", "")
        if isinstance(action, (exp.ModifyColumn, exp.AlterColumn)):
            renames = action.args.get("rename_from") is not None
            return (
                "contract",
                self.blocking,
                "change-column" if renames else "alter-column-type",
                ("renames and redefines a column" if renames else "changes a column")
                + ": the old release's queries may fail; unless the type is unchanged, the table is copied",
                "add a new column, backfill in batches, switch reads, drop the old one later "
                "(ask for ALGORITHM=INSTANT or LOCK=NONE to have the server refuse a copy)",
            )
        return ("review", "n/a", "alter-table", f"ALTER TABLE {type(action).__name__}: not classified", "")

    def _column(self, action: Any) -> Verdict:

        kinds = {type(c.args.get("kind")).__name__: c.args.get("kind") for c in action.args.get("constraints") or []}
        name = action.name
        not_null = kinds.get("NotNullColumnConstraint")
        if "PrimaryKeyColumnConstraint" in kinds or "UniqueColumnConstraint" in kinds:
            # a nullable new column is one the old release never writes: its uniqueness binds only the new
            required = "PrimaryKeyColumnConstraint" in kinds or (
                not_null is not None and not not_null.args.get("allow_null") and "DefaultColumnConstraint" not in kinds
            )
            return (
                "contract" if required else "expand",
                "safe" if self.name == "mysql" else self.blocking,  # InnoDB builds the index online
                "add-column-unique",
                f"new column {name} with a unique index",
                "add it nullable; make it required as a contract step",
            )
        if not_null is not None and not not_null.args.get("allow_null") and "DefaultColumnConstraint" not in kinds:
            return (
                "contract",
                "safe",
                "add-column-not-null-without-default",
                f"new NOT NULL column {name} without a default: the old release's INSERTs fail",
                "add it nullable (or with a default), backfill, then make it NOT NULL as a contract step",
            )
        default = kinds.get("DefaultColumnConstraint")
        computed = kinds.get("ComputedColumnConstraint")
        if (
            (default is not None and not constant_default(default.this))
            or "AutoIncrementColumnConstraint" in kinds
            or (computed is not None and computed.args.get("persisted"))
        ):
            return (
                "expand",
                self.blocking,
                "add-column-rewrite",
                f"new column {name} filled for every row (an expression default, AUTO_INCREMENT or STORED): "
                "the table is copied",
                "add it with a constant default (or none), then backfill in batches",
            )
        return ("expand", "safe", "add-column", f"new column {name}", "")

    def _constraint(self, action: Any, table: str) -> Verdict:
        from sqlglot import exp

        (added,) = action.expressions[:1] or [None]
        inner = added.expressions[0] if isinstance(added, exp.Constraint) and added.expressions else added
        # "ix on orders", or "on orders" for an unnamed one (the server names it)
        on = " ".join(part for part in (named(added.this if added is not inner else inner.this), "on", table) if part)
        if isinstance(inner, exp.IndexColumnConstraint):
            special = str(inner.args.get("kind") or "").upper()
            if special in ("FULLTEXT", "SPATIAL"):
                return (
                    "expand",
                    self.blocking,
                    "add-index",
                    f"new {special} index {on}: built with writes blocked",
                    "",
                )
            return ("expand", "safe", "add-index", f"new index {on}" + ONLINE, "")
        if isinstance(inner, (exp.UniqueColumnConstraint, exp.PrimaryKey)):
            return (
                "contract",
                "safe",
                "add-unique",
                f"unique key {on}: restricts the old release's writes" + ONLINE,
                "ship it as a contract step",
            )
        if isinstance(inner, exp.ForeignKey):
            return (
                "contract",
                self.blocking,
                "foreign-key",
                f"foreign key {on}: the old release's writes of a child without its parent, and deletes of a "
                "referenced parent, fail; with foreign_key_checks on, the table is copied",
                "ship it as a contract step (SET foreign_key_checks = 0 lets it be added in place, unchecked)",
            )
        if isinstance(inner, exp.CheckColumnConstraint):
            return (
                "contract",
                self.blocking,
                "add-check",
                f"check constraint {on}: the old release's writes that break it fail; the table is copied to check it",
                "ship it as a contract step",
            )
        return ("review", "n/a", "add-constraint", f"ADD {type(inner).__name__}: not classified", "")

    def _drop_part(self, kind: str, names: str) -> Verdict:
        if kind == "COLUMN":
            return (
                "contract",
                "safe",
                "drop-column",
                f"drops column {names}: the old release's queries fail",
                "stop using it in a release everywhere first, then drop it as a contract step",
            )
        if kind == "PRIMARY KEY" or (kind == "INDEX" and names.strip("`").upper() == "PRIMARY"):
            # MySQL's primary key is the index named PRIMARY: DROP INDEX `PRIMARY` ON t drops it
            return (
                "contract",
                self.blocking,
                "drop-primary-key",
                "drops the primary key: the table is copied, and the old release's lookups by it slow down",
                "",
            )
        if kind == "INDEX":
            return ("neutral", "safe", "drop-index", f"drops index {names}", "")
        if kind in ("FOREIGN KEY", "CHECK", "CONSTRAINT"):
            return ("expand", "safe", "drop-constraint", f"drops a {kind.lower()}: the old release writes freely", "")
        return ("review", "n/a", "alter-table", f"ALTER TABLE DROP {kind}: not classified", "")


def _statements(tokens: list[Any]) -> list[list[Any]]:
    from sqlglot import TokenType

    groups: list[list[Any]] = [[]]
    for token in tokens:
        if token.token_type == TokenType.SEMICOLON:
            groups.append([])
        else:
            groups[-1].append(token)
    return [group for group in groups if group]


class MySQL(SqlglotDialect):
    name = "mysql"
    read = "mysql"
    blocking = "blocks"


class SQLite(SqlglotDialect):
    name = "sqlite"
    read = "sqlite"
    blocking = "n/a"
