"""MySQL and SQLite migrations, classified on sqlglot's tree (MIT-licensed).

sqlglot turns what it does not understand into an opaque `Command` node (and some MySQL online-DDL
forms too): those are `review`, never a guess. The phase rules are PostgreSQL's (what breaks the
running release is the same: a dropped or renamed column or table, a new NOT NULL without a
default, a new UNIQUE, a type change); the lock rules are each engine's: MySQL's InnoDB builds a
secondary index online but copies the table for a type change; SQLite has one writer for the whole
database, so its lock risk is `n/a` except for statements that rewrite every row.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from pipeline_kit.migrations.interface import WAIVER, Dialect, Finding, Lock, Phase
from pipeline_kit.migrations.reading import Chunk, nested, nesting, token_chunks

Verdict = tuple[Phase, Lock, str, str, str]


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
        try:  # a large file a chunk of whole statements at a time: memory follows the chunk
            for chunk in token_chunks(dialect.tokenize, sql, lambda token: token.token_type == TokenType.SEMICOLON):
                findings += self._chunk(parser, chunk, file)
        except TokenError as exc:
            return [Finding(file, 1, "review", "n/a", "unparsable", f"not SQL the parser accepts: {exc}")]
        return findings

    def _chunk(self, parser: Any, chunk: Chunk, file: str) -> list[Finding]:
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
                verdicts = nested(partial(self._read, parser, group, sql), nesting(group), file, line)
            except ParseError as exc:
                message = f"not {self.name} the parser accepts: {str(exc).splitlines()[0]}"
                findings.append(
                    Finding(file, line, "review", "n/a", "unparsable", message, "", waivers.get("unparsable"))
                )
                continue
            for phase, lock, rule, message, fix in verdicts:
                findings.append(Finding(file, line, phase, lock, rule, message, fix, waivers.get(rule)))
        return findings

    def _read(self, parser: Any, group: list[Any], sql: str) -> list[Verdict]:
        """The verdicts on one statement, parsed from its tokens."""
        from sqlglot.errors import ParseError

        expression = (parser.parse(group, sql) or [None])[0]
        if expression is None:
            raise ParseError(f"no statement in {sql[group[0].start : group[-1].end + 1]!r}")
        return self._verdicts(expression)

    def _verdicts(self, expression: Any) -> list[Verdict]:
        from sqlglot import exp

        if isinstance(expression, exp.Alter) and str(expression.args.get("kind", "")).upper() == "TABLE":
            return [self._action(action) for action in expression.args.get("actions") or []] or [
                ("review", "n/a", "alter-table", "ALTER TABLE: not classified", "")
            ]
        if isinstance(expression, exp.Create):
            kind = str(expression.args.get("kind", "")).upper()
            if kind == "INDEX":
                if expression.args.get("unique"):
                    return [
                        (
                            "contract",
                            "safe",
                            "unique-index",
                            "unique index: restricts the old release's writes",
                            "ship it as a contract step",
                        )
                    ]
                return [("expand", "safe", "create-index", "new index", "")]
            if kind in ("TABLE", "VIEW"):
                return [("expand", "safe", f"create-{kind.lower()}", f"new {kind.lower()}", "")]
            return [("review", "n/a", "create", f"CREATE {kind}: not classified", "")]
        if isinstance(expression, exp.Drop):
            kind = str(expression.args.get("kind", "")).upper()
            if kind == "INDEX":
                return [("neutral", "safe", "drop-index", "drops an index", "")]
            if kind in ("TABLE", "VIEW"):
                return [
                    (
                        "contract",
                        "safe",
                        f"drop-{kind.lower()}",
                        f"drops a {kind.lower()}: the old release's queries fail",
                        "stop using it in a release everywhere first, then drop it as a contract step",
                    )
                ]
            return [("review", "n/a", "drop", f"DROP {kind}: not classified", "")]
        if isinstance(expression, (exp.Update, exp.Delete)):
            verb = type(expression).__name__.upper()
            if expression.args.get("where") is None:
                return [
                    (
                        "migrate",
                        self.blocking,
                        "unbatched-backfill",
                        f"{verb} of every row in one statement",
                        "batch it (a range of keys per transaction)",
                    )
                ]
            return [("migrate", "safe", "backfill", f"{verb} of the rows it selects", "")]
        if isinstance(expression, exp.Insert):
            return [("migrate", "safe", "insert", "inserts rows", "")]
        if isinstance(expression, (exp.Set, exp.Transaction, exp.Commit, exp.Rollback, exp.Pragma)):
            return [("neutral", "safe", type(expression).__name__.lower(), "no change an application sees", "")]
        if isinstance(expression, exp.Command):
            return [
                (
                    "review",
                    "n/a",
                    "opaque",
                    f"the parser could not read it ({expression.this} ...): a human must look",
                    "",
                )
            ]
        return [
            ("review", "n/a", type(expression).__name__.lower(), f"{type(expression).__name__}: not classified", "")
        ]

    def _action(self, action: Any) -> Verdict:
        from sqlglot import exp

        if isinstance(action, exp.ColumnDef):
            constraints = [type(c.args.get("kind")).__name__ for c in action.args.get("constraints") or []]
            name = action.name
            if "PrimaryKeyColumnConstraint" in constraints or "UniqueColumnConstraint" in constraints:
                return (
                    "contract",
                    self.blocking,
                    "add-column-unique",
                    f"new column {name} with a unique index",
                    "add the column, then the unique index as a contract step",
                )
            if "NotNullColumnConstraint" in constraints and "DefaultColumnConstraint" not in constraints:
                return (
                    "contract",
                    "safe",
                    "add-column-not-null-without-default",
                    f"new NOT NULL column {name} without a default: the old release's INSERTs fail",
                    "add it nullable (or with a default), backfill, then make it NOT NULL as a contract step",
                )
            return ("expand", "safe", "add-column", f"new column {name}", "")
        if isinstance(action, exp.Drop):
            return (
                "contract",
                "safe",
                "drop-column",
                "drops a column: the old release's queries fail",
                "stop using it in a release everywhere first, then drop it as a contract step",
            )
        if isinstance(action, exp.RenameColumn):
            return (
                "contract",
                "safe",
                "rename-column",
                "renames a column: the old release's queries fail",
                "add the new column beside the old, move, then drop the old as a contract step",
            )
        if isinstance(action, exp.AlterRename):
            return (
                "contract",
                "safe",
                "rename-table",
                "renames the table: the old release's queries fail",
                "a view with the old name, or a new table, then drop the old as a contract step",
            )
        if type(action).__name__ in ("ModifyColumn", "AlterColumn"):
            return (
                "contract",
                self.blocking,
                "alter-column-type",
                "changes a column: the table may be copied",
                "add a new column, backfill in batches, switch reads, drop the old one later",
            )
        return ("review", "n/a", "alter-table", f"ALTER TABLE {type(action).__name__}: not classified", "")


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
