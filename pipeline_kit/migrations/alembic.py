"""Alembic migrations: the `op.*` calls of `upgrade()`, rendered as the SQL Alembic runs.

Read with Python's own parser (the file is never imported or run). Alembic runs each migration in
a transaction unless the operations sit in `op.get_context().autocommit_block()`. Calls whose
arguments are not literals, `op.execute` of anything but a string, and work through a connection
(`op.get_bind()`) cannot be told from the file: they are `review`.
"""

from __future__ import annotations

import ast
import contextlib
from pathlib import Path
from typing import Any

from pipeline_kit._internal.files import read_text
from pipeline_kit.migrations._python import callee as _callee
from pipeline_kit.migrations._python import value as _value
from pipeline_kit.migrations.layout import (
    BEGIN,
    COMMIT,
    Layout,
    NotLiteral,
    Operation,
    column_sql,
    index_sql,
    literal,
    quote,
)

# sqlalchemy types by name -> PostgreSQL types (the type matters little to the rules: a change of
# type is a contract step whatever the types)
TYPES = {
    "Integer": "integer",
    "SmallInteger": "smallint",
    "BigInteger": "bigint",
    "String": "varchar",
    "Unicode": "varchar",
    "Text": "text",
    "UnicodeText": "text",
    "Boolean": "boolean",
    "DateTime": "timestamp",
    "Date": "date",
    "Time": "time",
    "Numeric": "numeric",
    "Float": "double precision",
    "JSON": "json",
    "JSONB": "jsonb",
    "UUID": "uuid",
    "LargeBinary": "bytea",
    "Interval": "interval",
}


def _type(node: ast.expr | None) -> str:
    if node is None:
        return "text"
    name = _callee(node)
    rendered = TYPES.get(name, name.lower() or "text")
    if isinstance(node, ast.Call) and name in ("String", "Unicode", "Numeric") and node.args:
        rendered += f"({', '.join(str(_value(a)) for a in node.args)})"
    return rendered


def _default(node: ast.expr | None) -> str | None:
    """A server_default: a string literal, or sa.text("...") taken as SQL."""
    if node is None:
        return None
    if isinstance(node, ast.Call) and node.args and _callee(node) == "text":
        return str(_value(node.args[0]))
    return literal(_value(node))


def _keywords(call: ast.Call) -> dict[str, ast.expr]:
    return {k.arg: k.value for k in call.keywords if k.arg}


def _column(node: ast.expr) -> str:
    """`sa.Column("name", sa.Type(), nullable=..., server_default=...)` as a column definition."""
    if not isinstance(node, ast.Call) or not node.args:
        raise NotLiteral(ast.unparse(node))
    keywords = _keywords(node)
    name = str(_value(node.args[0]))
    kind = next((a for a in node.args[1:] if not isinstance(a, ast.Constant)), keywords.get("type_"))
    primary = bool(_value(keywords["primary_key"])) if "primary_key" in keywords else False
    nullable = bool(_value(keywords["nullable"])) if "nullable" in keywords else not primary
    unique = bool(_value(keywords["unique"])) if "unique" in keywords else False
    definition = column_sql(name, _type(kind), nullable=nullable, default=_default(keywords.get("server_default")))
    return definition + (" PRIMARY KEY" if primary else "") + (" UNIQUE" if unique else "")


def _columns(node: ast.expr) -> list[str]:
    value = _value(node)
    return [value] if isinstance(value, str) else [str(v) for v in value]


def render(name: str, args: list[ast.expr], keywords: dict[str, ast.expr], table: str | None) -> str | None:
    """The SQL of `op.<name>(...)` (`table` given for a batch_alter_table operation); None for an
    operation this module does not know."""
    if table is not None:
        args = [ast.Constant(table), *args]
    arg: list[Any] = [_value(a) if not isinstance(a, ast.Call) else None for a in args]
    concurrently = bool(_value(keywords["postgresql_concurrently"])) if "postgresql_concurrently" in keywords else False
    if name == "create_table":
        columns = [_column(c) for c in args[1:] if _callee(c) == "Column"]
        return f"CREATE TABLE {quote(arg[0])} ({', '.join(columns)})"
    if name == "drop_table":
        return f"DROP TABLE {quote(arg[0])}"
    if name == "rename_table":
        return f"ALTER TABLE {quote(arg[0])} RENAME TO {quote(arg[1])}"
    if name == "add_column":
        return f"ALTER TABLE {quote(arg[0])} ADD COLUMN {_column(args[1])}"
    if name == "drop_column":
        return f"ALTER TABLE {quote(arg[0])} DROP COLUMN {quote(arg[1])}"
    if name == "alter_column":
        return _alter_column(arg[0], arg[1], keywords)
    if name == "create_index":
        unique = bool(_value(keywords["unique"])) if "unique" in keywords else False
        columns = _columns(args[2] if len(args) > 2 else keywords["columns"])
        return index_sql(arg[0], arg[1], columns, unique=unique, concurrently=concurrently)
    if name == "drop_index":
        return f"DROP INDEX{' CONCURRENTLY' if concurrently else ''} {quote(arg[0])}"
    if name == "create_foreign_key":
        local, remote = _columns(args[3]), _columns(args[4])
        return (
            f"ALTER TABLE {quote(arg[1])} ADD CONSTRAINT {quote(arg[0])} FOREIGN KEY ({', '.join(map(quote, local))}) "
            f"REFERENCES {quote(arg[2])} ({', '.join(map(quote, remote))})"
        )
    if name == "create_unique_constraint":
        listed = ", ".join(map(quote, _columns(args[2])))
        return f"ALTER TABLE {quote(arg[1])} ADD CONSTRAINT {quote(arg[0])} UNIQUE ({listed})"
    if name == "create_check_constraint":
        return f"ALTER TABLE {quote(arg[1])} ADD CONSTRAINT {quote(arg[0])} CHECK ({arg[2]})"
    if name == "create_primary_key":
        listed = ", ".join(map(quote, _columns(args[2])))
        return f"ALTER TABLE {quote(arg[1])} ADD CONSTRAINT {quote(arg[0])} PRIMARY KEY ({listed})"
    if name == "drop_constraint":
        return f"ALTER TABLE {quote(arg[1])} DROP CONSTRAINT {quote(arg[0])}"
    if name == "execute":
        if not isinstance(arg[0], str):
            raise NotLiteral(ast.unparse(args[0]))
        return arg[0]
    return None


def _alter_column(table: str, column: str, keywords: dict[str, ast.expr]) -> str:
    changes: list[str] = []
    target = f"ALTER TABLE {quote(table)}"
    if "type_" in keywords:
        changes.append(f"{target} ALTER COLUMN {quote(column)} TYPE {_type(keywords['type_'])}")
    if "server_default" in keywords:
        default = _default(keywords["server_default"])
        what = "DROP DEFAULT" if default in (None, "NULL") else f"SET DEFAULT {default}"
        changes.append(f"{target} ALTER COLUMN {quote(column)} {what}")
    if "nullable" in keywords:
        what = "DROP NOT NULL" if _value(keywords["nullable"]) else "SET NOT NULL"
        changes.append(f"{target} ALTER COLUMN {quote(column)} {what}")
    if "new_column_name" in keywords:
        changes.append(f"{target} RENAME COLUMN {quote(column)} TO {quote(_value(keywords['new_column_name']))}")
    if not changes:
        raise NotLiteral("alter_column without a change the kit knows")
    return ";\n".join(changes)


def _links(text: str) -> tuple[str, set[str]]:
    """A revision's id and its parents' (`down_revision`: None, one id, or a tuple at a merge)."""
    values: dict[str, Any] = {}
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return "", set()
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        if isinstance(target, ast.Name) and target.id in ("revision", "down_revision"):
            with contextlib.suppress(ValueError):
                values[target.id] = ast.literal_eval(value)
    parents = values.get("down_revision")
    listed = [] if parents is None else [parents] if isinstance(parents, str) else list(parents)
    return str(values.get("revision", "")), {str(p) for p in listed}


class Alembic(Layout):
    name = "alembic"
    suffix = ".py"

    def recognises(self, text: str) -> bool:
        return "def upgrade(" in text and ("from alembic import" in text or "import alembic" in text)

    def order(self, files: list[Path]) -> list[Path]:
        """By the `down_revision` links (the file names say nothing of the order); a parent not
        among `files` counts as applied; a cycle leaves the rest in name order."""
        links = {path: _links(read_text(path)) for path in files}
        known = {revision for revision, _ in links.values()}
        ordered: list[Path] = []
        applied: set[str] = set()
        while links:
            ready = [p for p, (_, parents) in links.items() if parents & known <= applied] or list(links)
            for path in ready:
                applied.add(links.pop(path)[0])
                ordered.append(path)
        return ordered

    def read(self, text: str, path: Path) -> tuple[Operation, ...]:
        tree = ast.parse(text, str(path))
        upgrade = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "upgrade"), None)
        operations = [BEGIN]
        for node in upgrade.body if upgrade else []:
            operations += self._statement(node, {})
        return (*operations, COMMIT)

    def _statement(self, node: ast.stmt, batches: dict[str, str]) -> list[Operation]:
        """The operations in one statement of upgrade(); an autocommit block runs outside the
        migration's transaction, as Alembic runs it (COMMIT before, BEGIN after)."""
        if isinstance(node, ast.With):
            inner = dict(batches)
            autocommit = False
            for item in node.items:
                call = item.context_expr
                if isinstance(call, ast.Call) and getattr(call.func, "attr", "") == "autocommit_block":
                    autocommit = True
                elif (
                    isinstance(call, ast.Call)
                    and getattr(call.func, "attr", "") == "batch_alter_table"
                    and isinstance(item.optional_vars, ast.Name)
                    and call.args
                ):
                    inner[item.optional_vars.id] = str(_value(call.args[0]))
            operations = [operation for child in node.body for operation in self._statement(child, inner)]
            return [COMMIT, *operations, BEGIN] if autocommit else operations
        if isinstance(node, ast.Expr | ast.Assign) and isinstance(node.value, ast.Call):
            operation = self._call(node.value, batches)
            return [operation] if operation else []
        if isinstance(node, ast.Pass) or (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)):
            return []  # pass, a docstring
        label = ast.unparse(node).splitlines()[0][:60]
        return [Operation(node.lineno, label, None, "procedural code: not classified")]

    def _call(self, call: ast.Call, batches: dict[str, str]) -> Operation | None:
        func = call.func
        owner = func.value.id if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) else None
        name = func.attr if isinstance(func, ast.Attribute) else ast.unparse(func)
        label = f"{owner}.{name}" if owner else name
        if owner == "op" and name in ("get_bind", "get_context", "f"):
            return None  # changes nothing by itself
        if owner != "op" and owner not in batches:
            return Operation(call.lineno, label, None, "not an Alembic operation: not classified")
        try:
            sql = render(name, list(call.args), _keywords(call), batches.get(owner or ""))
        except (NotLiteral, IndexError, KeyError, TypeError) as exc:
            return Operation(call.lineno, label, None, f"arguments the file does not spell out ({exc})")
        if sql is None:
            return Operation(call.lineno, label, None, "an operation the kit does not know")
        return Operation(call.lineno, label, sql)
