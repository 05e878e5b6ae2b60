"""PostgreSQL migrations, classified on libpg_query's parse tree (through pgparse, BSD-licensed).

The rules follow what old clients measurably hit on PostgreSQL: dropping or renaming a column or
table, SET NOT NULL, a NOT NULL column without a default, any new CHECK, UNIQUE or FOREIGN KEY
(even NOT VALID: new writes are checked), a type change and a REVOKE break the running release
(contract); adding nullable columns, tables and indexes does not (expand). Locks: a type change,
a serial or identity column, or a default not provably immutable or stable rewrites the table
under ACCESS EXCLUSIVE; a non-concurrent index takes SHARE; a validating constraint scans under a
strong lock; an UPDATE or DELETE of every row (no WHERE, or one that reads no column) locks them
all; and any ALTER (or a new table's foreign key to a table in use) waits in the lock queue,
with every later statement it conflicts with behind it, unless a non-zero `lock_timeout` was
set first. Code the classifier cannot see through (functions, procedures, triggers, rules, DO
blocks, and statements calling a function that is not PostgreSQL's own) is review.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from typing import Any

from pipeline_kit.migrations.interface import Dialect, Finding, Lines, Lock, Phase, first_token, waivers
from pipeline_kit.migrations.pg_expressions import (
    SERIAL,
    opaque_calls,
    provably_non_volatile,
    referenced_in_use,
    selects_every_row,
    sets_a_lock_timeout,
    table_name,
)
from pipeline_kit.migrations.reading import read_postgres

TRANSACTION_OPEN = {"TRANS_STMT_BEGIN", "TRANS_STMT_START"}
TRANSACTION_CLOSE = {"TRANS_STMT_COMMIT", "TRANS_STMT_ROLLBACK"}
# statements that take a lock other sessions queue behind: lock_timeout must be set before
QUEUEING = {"AlterTableStmt", "RenameStmt", "DropStmt", "IndexStmt"}


def _names(node: Any) -> list[str]:
    return [part["String"]["sval"] for part in node or [] if "String" in part]


Verdict = tuple[Phase, Lock, str, str, str]  # phase, lock, rule, message, fix


def _column(definition: dict[str, Any]) -> Verdict:
    column = definition.get("colname", "?")
    kinds = {c["Constraint"]["contype"]: c["Constraint"] for c in definition.get("constraints") or []}
    default = kinds.get("CONSTR_DEFAULT")
    if "CONSTR_PRIMARY" in kinds or "CONSTR_UNIQUE" in kinds:
        # a nullable new column is one the old release never writes: its uniqueness binds only the new
        return (
            "contract" if "CONSTR_PRIMARY" in kinds or ("CONSTR_NOTNULL" in kinds and default is None) else "expand",
            "blocks",
            "add-column-unique",
            f"new column {column} with a unique index built in place",
            "add the column, CREATE UNIQUE INDEX CONCURRENTLY, then ADD CONSTRAINT ... USING INDEX",
        )
    if "CONSTR_NOTNULL" in kinds and default is None:
        return (
            "contract",
            "safe",
            "add-column-not-null-without-default",
            f"new NOT NULL column {column} without a default: the old release's INSERTs fail",
            "add it nullable (or with a default), backfill, then the NOT NULL recipe",
        )
    if "CONSTR_CHECK" in kinds:
        return (
            "contract",
            "safe",
            "add-column-check",
            f"new column {column} with a CHECK the old release may not meet",
            "add the column, then the CHECK once no old release writes",
        )
    if default is not None and not provably_non_volatile(default.get("raw_expr")):
        return (
            "expand",
            "blocks",
            "add-column-volatile-default",
            f"new column {column} with a default not provably immutable or stable: evaluated for every row, "
            "the table is rewritten under ACCESS EXCLUSIVE",
            "add it without the default, backfill in batches, then SET DEFAULT",
        )
    serial = _names(definition.get("typeName", {}).get("names"))[-1:] in ([name] for name in SERIAL)
    if serial or "CONSTR_IDENTITY" in kinds or "CONSTR_GENERATED" in kinds:
        return (
            "expand",
            "blocks",
            "add-column-rewrite",
            f"new column {column} filled for every row (serial, identity or stored generated): "
            "the table is rewritten under ACCESS EXCLUSIVE",
            "add a plain nullable column, backfill in batches, then attach the sequence as its default",
        )
    return ("expand", "safe", "add-column", f"new column {column}", "")


def _constraint(constraint: dict[str, Any]) -> Verdict:
    kind, name = constraint.get("contype"), constraint.get("conname", "")
    validated = not constraint.get("skip_validation")
    if kind == "CONSTR_FOREIGN":
        # like CHECK: NOT VALID skips the existing rows, never the old release's new writes
        breaks = "the old release's writes of a child without its parent, and deletes of a referenced parent, fail"
        if validated:
            return (
                "contract",
                "blocks",
                "foreign-key-validated",
                f"foreign key {name} validated in place: {breaks}; SHARE ROW EXCLUSIVE on both tables while it scans",
                "ship it as a contract step: ADD CONSTRAINT ... NOT VALID, then VALIDATE CONSTRAINT apart",
            )
        return (
            "contract",
            "safe",
            "foreign-key-not-valid",
            f"foreign key {name} NOT VALID: {breaks} (even NOT VALID)",
            "ship it as a contract step, then VALIDATE CONSTRAINT in its own statement",
        )
    if kind == "CONSTR_CHECK":
        return (
            "contract",
            "blocks" if validated else "safe",
            "add-check",
            f"check {name}: the old release's writes that break it fail (even NOT VALID)",
            "ship it as a contract step: once no environment runs a release that writes otherwise"
            + ("" if not validated else "; NOT VALID first, then VALIDATE"),
        )
    if kind in ("CONSTR_UNIQUE", "CONSTR_PRIMARY", "CONSTR_EXCLUSION"):
        in_place = not constraint.get("indexname")
        return (
            "contract",
            "blocks" if in_place else "safe",
            "add-unique",
            f"{kind.removeprefix('CONSTR_').lower()} constraint {name}: restricts the old release's writes",
            "CREATE UNIQUE INDEX CONCURRENTLY, then ADD CONSTRAINT ... USING INDEX, as a contract step",
        )
    if kind == "CONSTR_NOTNULL":
        return (
            "contract",
            "blocks",
            "set-not-null",
            f"NOT NULL constraint {name}",
            "CHECK (c IS NOT NULL) NOT VALID, VALIDATE, SET NOT NULL, drop the check",
        )
    return ("review", "n/a", "constraint", f"constraint {kind}", "")


def _alter(command: dict[str, Any]) -> Verdict:
    subtype = command.get("subtype", "")
    column = command.get("name", "")
    definition = command.get("def") or {}
    if subtype == "AT_AddColumn":
        return _column(definition.get("ColumnDef", {}))
    if subtype == "AT_DropColumn":
        return (
            "contract",
            "safe",
            "drop-column",
            f"drops column {column}: the old release's queries fail",
            "stop using it in a release everywhere first, then drop it as a contract step",
        )
    if subtype == "AT_AlterColumnType":
        return (
            "contract",
            "blocks",
            "alter-column-type",
            f"changes the type of {column}: rewrites the table, breaks the old release's prepared statements",
            "add a new column, backfill in batches, switch reads, drop the old one later",
        )
    if subtype == "AT_SetNotNull":
        return (
            "contract",
            "blocks",
            "set-not-null",
            f"SET NOT NULL on {column}: the old release's INSERTs without it fail; scans under ACCESS EXCLUSIVE",
            "CHECK (c IS NOT NULL) NOT VALID, VALIDATE, SET NOT NULL, drop the check, as a contract step",
        )
    if subtype == "AT_DropNotNull":
        return ("expand", "safe", "drop-not-null", f"DROP NOT NULL on {column}", "")
    if subtype == "AT_ColumnDefault":
        if definition:
            return ("expand", "safe", "set-default", f"sets a default on {column}", "")
        return (
            "contract",
            "safe",
            "drop-default",
            f"drops the default of {column}: the old release's INSERTs that rely on it change or fail",
            "",
        )
    if subtype == "AT_AddConstraint":
        return _constraint(definition.get("Constraint", {}))
    if subtype == "AT_ValidateConstraint":
        return ("neutral", "safe", "validate-constraint", f"validates {column} (SHARE UPDATE EXCLUSIVE)", "")
    if subtype == "AT_DropConstraint":
        return ("expand", "safe", "drop-constraint", f"drops constraint {column}", "")
    return ("review", "n/a", "alter-table", f"ALTER TABLE {subtype.removeprefix('AT_')}: not classified", "")


def _create_table(node: dict[str, Any], in_use: list[str] | None) -> list[Verdict]:
    """CREATE TABLE: something new. A foreign key in it takes SHARE ROW EXCLUSIVE on the table it
    references to the end of the transaction: nothing to scan, the risk is that table's lock queue
    (`missing-lock-timeout`, as for an ALTER). `in_use`: the referenced tables that may have
    traffic (None: it references none)."""
    table = table_name(node.get("relation", {}))
    if in_use is None:
        return [("expand", "safe", "create-table", f"new table {table}", "")]
    how = (
        f"SHARE ROW EXCLUSIVE on {', '.join(in_use)} to the end of the transaction (writes to it wait)"
        if in_use
        else "references only tables this migration created (no traffic to wait for)"
    )
    return [("expand", "safe", "create-table-references", f"new table {table} with a foreign key: {how}", "")]


def _index(node: dict[str, Any], in_transaction: bool) -> list[Verdict]:
    """CREATE INDEX: built concurrently or under SHARE; a unique one restricts old writers."""
    name = node.get("idxname", "")
    if node.get("concurrent") and in_transaction:
        return [
            (
                "review",
                "n/a",
                "concurrent-index-in-transaction",
                f"CREATE INDEX CONCURRENTLY {name} inside a transaction block fails",
                "run it outside BEGIN/COMMIT",
            )
        ]
    if node.get("unique"):
        return [
            (
                "contract",
                "safe" if node.get("concurrent") else "blocks",
                "unique-index",
                f"unique index {name}: restricts the old release's writes",
                "CREATE UNIQUE INDEX CONCURRENTLY, as a contract step",
            )
        ]
    if node.get("concurrent"):
        return [("expand", "safe", "create-index-concurrently", f"index {name}, built concurrently", "")]
    return [
        (
            "expand",
            "blocks",
            "index-not-concurrent",
            f"index {name} built under SHARE: writes wait",
            "CREATE INDEX CONCURRENTLY (outside a transaction)",
        )
    ]


def _rename(node: dict[str, Any]) -> list[Verdict]:
    """ALTER ... RENAME: the old release's queries use the old name."""
    what = node.get("renameType", "").removeprefix("OBJECT_").lower()
    return [
        (
            "contract",
            "safe",
            f"rename-{what}",
            f"renames a {what} to {node.get('newname')}: the old release's queries fail",
            "add the new name beside the old (a view or a new column), move, then drop the old as a contract step",
        )
    ]


def _drop(node: dict[str, Any]) -> list[Verdict]:
    """DROP: an index (concurrently or not), or something the old release may still use."""
    what = node.get("removeType", "").removeprefix("OBJECT_").lower()
    if what == "index":
        lock: Lock = "safe" if node.get("concurrent") else "blocks"
        return [("neutral", lock, "drop-index", "drops an index", "" if lock == "safe" else "DROP INDEX CONCURRENTLY")]
    if what in ("table", "view", "materialized_view", "sequence", "type", "function", "schema", "column"):
        return [
            (
                "contract",
                "safe",
                f"drop-{what}",
                f"drops a {what}: the old release's queries fail",
                "stop using it in a release everywhere first, then drop it as a contract step",
            )
        ]
    return [("review", "n/a", f"drop-{what}", f"DROP {what.upper()}: not classified", "")]


def _rows_changed(kind: str, node: dict[str, Any]) -> list[Verdict]:
    """An UPDATE or DELETE: a backfill, batched or not."""
    verb = "UPDATE" if kind == "UpdateStmt" else "DELETE"
    if selects_every_row(node.get("whereClause")):
        return [
            (
                "migrate",
                "blocks",
                "unbatched-backfill",
                f"{verb} of every row in one statement (no WHERE, or one that selects all): locks them all",
                "batch it (WHERE id BETWEEN ... per transaction)",
            )
        ]
    return [("migrate", "safe", "backfill", f"{verb} of the rows it selects", "")]


def _vacuum(node: dict[str, Any]) -> Verdict:
    """VACUUM and ANALYZE read and tidy in place; VACUUM FULL writes a new copy of the table."""
    options = {item.get("DefElem", {}).get("defname") for item in node.get("options") or []}
    if "full" in options:
        return (
            "neutral",
            "blocks",
            "vacuum-full",
            "VACUUM FULL rewrites the table under ACCESS EXCLUSIVE: reads and writes wait",
            "plain VACUUM, or pg_repack",
        )
    what = "vacuum" if node.get("is_vacuumcmd") else "analyze"
    return ("neutral", "safe", what, f"{what.upper()}: no change an application sees", "")


def _grant(kind: str, node: dict[str, Any]) -> list[Verdict]:
    """GRANT gives the old release nothing it lacked; REVOKE takes away what it may use."""
    if node.get("is_grant"):
        return [("neutral", "safe", kind.removesuffix("Stmt").lower(), "no change an application sees", "")]
    return [
        (
            "contract",
            "safe",
            "revoke",
            "revokes a privilege or role: the old release's queries that use it fail",
            "stop using it in a release everywhere first, then revoke it as a contract step",
        )
    ]


OPAQUE_CODE = {
    "CreateFunctionStmt": "creates a function or procedure",
    "CreateTrigStmt": "creates a trigger",
    "CreateEventTrigStmt": "creates an event trigger",
    "RuleStmt": "creates a rewrite rule",
    "CallStmt": "calls a procedure",
    "DoStmt": "runs a DO block",
}


# ALTER TABLE commands whose expressions run (a default for every row, a CHECK, a USING)
RUNNING_COMMANDS = {"AT_AddColumn", "AT_ColumnDefault", "AT_AddConstraint", "AT_AlterColumnType"}
# statements with expressions that run: the rest (SET, DROP, RENAME, GRANT, ...) call nothing
RUNNING = {"CreateStmt", "CreateTableAsStmt", "ViewStmt", "IndexStmt", "InsertStmt", "UpdateStmt", "DeleteStmt"}


def _running(kind: str, node: dict[str, Any]) -> Any:
    """The part of a statement whose expressions run (all of a query, an ALTER's defaults)."""
    if kind == "AlterTableStmt":
        commands = [c.get("AlterTableCmd", {}) for c in node.get("cmds") or []]
        return [c for c in commands if c.get("subtype") in RUNNING_COMMANDS]
    return node if kind in RUNNING or kind == "SelectStmt" else None


def _code(kind: str, node: dict[str, Any]) -> list[Verdict]:
    """Code the classifier cannot see through: created, or called, it may do anything."""
    if kind in OPAQUE_CODE:
        rule = "do-block" if kind == "DoStmt" else "opaque-code"
        return [("review", "n/a", rule, f"{OPAQUE_CODE[kind]}: code the classifier cannot see through", "")]
    running = _running(kind, node)
    if running is None:  # most statements (SET, DROP, ...): nothing to walk
        return []
    called = sorted(set(opaque_calls(running)))
    if called:
        return [
            (
                "review",
                "n/a",
                "calls-user-function",
                f"calls {', '.join(called)}: code the classifier cannot see through (it may drop or lock anything)",
                "",
            )
        ]
    return []


ROWS = ("InsertStmt", "UpdateStmt", "DeleteStmt", "SelectStmt")


def _statement(kind: str, node: dict[str, Any], in_transaction: bool, in_use: list[str] | None) -> list[Verdict]:
    """The verdicts on one statement: code it runs that the classifier cannot see through (a
    user function called by a query, a default, an index expression, a CREATE TABLE AS or a
    materialized view) is review, beside what the statement itself does unless it only reads
    or writes rows."""
    opaque = _code(kind, node)
    if kind in OPAQUE_CODE or (opaque and kind in ROWS):
        return opaque
    return opaque + _family(kind, node, in_transaction, in_use)


def _family(kind: str, node: dict[str, Any], in_transaction: bool, in_use: list[str] | None) -> list[Verdict]:
    """The verdicts on one statement, by its family."""
    if kind == "AlterTableStmt":
        return [_alter(c["AlterTableCmd"]) for c in node.get("cmds") or [] if "AlterTableCmd" in c]
    if kind == "CreateStmt":
        return _create_table(node, in_use)
    if kind == "IndexStmt":
        return _index(node, in_transaction)
    if kind == "RenameStmt":
        return _rename(node)
    if kind == "DropStmt":
        return _drop(node)
    if kind in ("UpdateStmt", "DeleteStmt"):
        return _rows_changed(kind, node)
    if kind == "InsertStmt":
        return [("migrate", "safe", "insert", "inserts rows", "")]
    if kind == "SelectStmt" and not node.get("intoClause"):
        return [("neutral", "safe", "select", "reads rows", "")]
    if kind in ("GrantStmt", "GrantRoleStmt"):
        return _grant(kind, node)
    if kind == "CreateTableAsStmt":
        what = "materialized-view" if node.get("objtype") == "OBJECT_MATVIEW" else "table-as"
        return [("expand", "safe", f"create-{what}", "creates a new relation from a query", "")]
    if kind == "VacuumStmt":
        return [_vacuum(node)]
    # SET CONSTRAINTS only changes when this transaction checks deferrable constraints (Django
    # runs one after adding a foreign key)
    if kind in (
        "VariableSetStmt",
        "TransactionStmt",
        "CommentStmt",
        "VariableShowStmt",
        "ConstraintsSetStmt",
    ):
        return [("neutral", "safe", kind.removesuffix("Stmt").lower(), "no change an application sees", "")]
    if kind in (
        "CreateSeqStmt",
        "ViewStmt",
        "CreateExtensionStmt",
        "CreateEnumStmt",
        "CompositeTypeStmt",
        "CreateSchemaStmt",
    ):
        return [("expand", "safe", kind.removesuffix("Stmt").lower(), "creates something new", "")]
    return [("review", "n/a", kind.removesuffix("Stmt").lower() or "unknown", f"{kind}: not classified", "")]


class Postgres(Dialect):
    name = "postgres"

    def classify(self, sql: str, file: str) -> list[Finding]:
        return read_postgres(sql, file, partial(self._findings, sql, file))

    def _findings(self, sql: str, file: str, lines: Lines, statements: Iterable[dict[str, Any]]) -> list[Finding]:
        findings: list[Finding] = []
        in_transaction = False
        timeout_set = local_timeout = False
        created: set[str] = set()  # tables this file creates: nobody else waits on their locks
        for raw in statements:
            ((kind, node),) = raw["stmt"].items()
            start = lines.char(raw.get("stmt_location", 0))
            token = first_token(sql, start)
            line = lines.line_at(token)
            # a waiver names its rule in the comments just before the one statement it covers
            waived = waivers(sql[start:token])
            if kind == "TransactionStmt":
                in_transaction = node.get("kind") in TRANSACTION_OPEN or (
                    in_transaction and node.get("kind") not in TRANSACTION_CLOSE
                )
            if kind == "VariableSetStmt" and node.get("name") == "search_path":
                created.clear()  # a name may now resolve to another schema's table, one in use
            if kind == "VariableSetStmt" and node.get("name") == "lock_timeout":
                timeout_set = sets_a_lock_timeout(node)  # 0, DEFAULT and RESET wait forever
                local_timeout = bool(node.get("is_local"))  # SET LOCAL ends with its transaction
            elif kind == "TransactionStmt" and node.get("kind") in TRANSACTION_CLOSE and local_timeout:
                timeout_set = local_timeout = False
            queues = kind in QUEUEING and not (kind == "IndexStmt" and node.get("concurrent"))
            in_use = None
            if kind == "CreateStmt":  # its foreign keys lock the tables they reference
                in_use = referenced_in_use(node, created)
                queues = bool(in_use)
            if queues and not timeout_set:
                findings.append(
                    Finding(
                        file,
                        line,
                        "neutral",
                        "blocks",
                        "missing-lock-timeout",
                        "waits in the lock queue, and every later statement its lock conflicts with waits "
                        "behind it: no lock_timeout set before it",
                        "SET lock_timeout = '2s' first (and retry on 55P03)",
                        waived.get("missing-lock-timeout"),
                    )
                )
                timeout_set = True  # said once per file
            for phase, lock, rule, message, fix in _statement(kind, node, in_transaction, in_use):
                findings.append(Finding(file, line, phase, lock, rule, message, fix, waived.get(rule)))
            if kind == "CreateStmt" and not node.get("if_not_exists"):  # IF NOT EXISTS: maybe an old one
                created.add(table_name(node.get("relation", {})))
        return findings
