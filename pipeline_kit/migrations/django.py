"""Django migrations: the `operations` of `class Migration`, rendered as the SQL Django runs.

Read with Python's own parser (never imported). Tables are `<app>_<model>` (the app is the
directory holding `migrations/`), a foreign key is the column `<name>_id`. Django runs a migration
in a transaction unless `atomic = False`. What Django does that old releases feel is kept: a new
NOT NULL field with a `default` is added with that default and the default is then dropped (the
old release's INSERTs fail; `db_default` keeps it). `RunPython`, `AlterField` (its effect depends
on the field's previous definition) and arguments that are not literals are `review`.
"""

from __future__ import annotations

import ast
from pathlib import Path

from pipeline_kit.migrations._python import callee as _callee
from pipeline_kit.migrations._python import value as _value
from pipeline_kit.migrations.layout import (
    Layout,
    NotLiteral,
    Operation,
    column_sql,
    in_transaction,
    index_sql,
    literal,
    quote,
)

FIELD_TYPES = {
    "AutoField": "integer",
    "BigAutoField": "bigint",
    "IntegerField": "integer",
    "SmallIntegerField": "smallint",
    "BigIntegerField": "bigint",
    "PositiveIntegerField": "integer",
    "CharField": "varchar",
    "SlugField": "varchar",
    "EmailField": "varchar",
    "URLField": "varchar",
    "TextField": "text",
    "BooleanField": "boolean",
    "DateTimeField": "timestamp with time zone",
    "DateField": "date",
    "TimeField": "time",
    "DecimalField": "numeric",
    "FloatField": "double precision",
    "JSONField": "jsonb",
    "UUIDField": "uuid",
    "BinaryField": "bytea",
    "DurationField": "interval",
}
RELATIONS = ("ForeignKey", "OneToOneField")
NO_SQL = {"AlterModelOptions", "AlterModelManagers"}  # state only: nothing reaches the database


def _arguments(call: ast.expr, *names: str) -> dict[str, ast.expr]:
    """Positional arguments by the names Django gives them, and the keywords."""
    if not isinstance(call, ast.Call):
        raise NotLiteral(ast.unparse(call))
    given = dict(zip(names, call.args, strict=False))
    given.update({k.arg: k.value for k in call.keywords if k.arg})
    return given


def _table(app: str, model: str) -> str:
    return f"{app}_{model.lower()}"


def _related_table(app: str, target: str) -> str:
    """`to="app.Model"` or `to="Model"` (this app) as the table name."""
    other, _, model = target.rpartition(".")
    return _table(other or app, model)


class _Reader:
    def __init__(self, app: str) -> None:
        self.app = app

    def field(self, table: str, name: str, node: ast.expr) -> list[str]:
        """ADD COLUMN statements (and what Django runs after them) for a new field."""
        if not isinstance(node, ast.Call):
            raise NotLiteral(ast.unparse(node))
        kind = _callee(node)
        options = _arguments(node, "to") if kind in RELATIONS else _arguments(node)
        null = bool(_value(options["null"])) if "null" in options else False
        target = f"ALTER TABLE {quote(table)}"
        if kind in RELATIONS:
            related = _related_table(self.app, str(_value(options["to"])))
            column = f"{name}_id"
            definition = column_sql(column, "bigint", nullable=null, default=None, unique=kind == "OneToOneField")
            constraint = quote(f"{table}_{column}_fk")
            statements = [
                f"{target} ADD COLUMN {definition} CONSTRAINT {constraint} REFERENCES {quote(related)} (id) "
                "DEFERRABLE INITIALLY DEFERRED",
                f"SET CONSTRAINTS {constraint} IMMEDIATE",  # as Django checks it at once
            ]
            if kind == "ForeignKey" and _value(options.get("db_index", ast.Constant(True))):
                statements.append(index_sql(f"{table}_{column}", table, [column], unique=False, concurrently=False))
            return statements
        if kind not in FIELD_TYPES:
            raise NotLiteral(f"field type {kind}")
        sql_type = FIELD_TYPES[kind]
        if "max_length" in options:
            sql_type += f"({_value(options['max_length'])})"
        unique = bool(_value(options["unique"])) if "unique" in options else False
        if "db_default" in options:
            default = literal(_value(options["db_default"]))
            return [f"{target} ADD COLUMN {column_sql(name, sql_type, nullable=null, default=default, unique=unique)}"]
        if "default" in options and not null:
            # Django fills existing rows through a default it drops right after
            definition = column_sql(
                name, sql_type, nullable=False, default=literal(_value(options["default"])), unique=unique
            )
            return [f"{target} ADD COLUMN {definition}", f"{target} ALTER COLUMN {quote(name)} DROP DEFAULT"]
        return [f"{target} ADD COLUMN {column_sql(name, sql_type, nullable=null, default=None, unique=unique)}"]

    def operation(self, call: ast.Call) -> list[str] | None:
        """The SQL of one operation; [] when it reaches no database; None when unknown."""
        kind = _callee(call)
        if kind == "CreateModel":
            given = _arguments(call, "name", "fields")
            return [f"CREATE TABLE {quote(_table(self.app, str(_value(given['name']))))} (id bigint)"]
        if kind == "DeleteModel":
            return [f"DROP TABLE {quote(_table(self.app, str(_value(_arguments(call, 'name')['name']))))}"]
        if kind in ("RenameModel", "AlterModelTable"):
            given = (
                _arguments(call, "old_name", "new_name") if kind == "RenameModel" else _arguments(call, "name", "table")
            )
            old, new = (str(_value(v)) for v in given.values())
            new_table = _table(self.app, new) if kind == "RenameModel" else new
            return [f"ALTER TABLE {quote(_table(self.app, old))} RENAME TO {quote(new_table)}"]
        if kind in ("AddField", "RemoveField", "RenameField"):
            names = {"AddField": ("model_name", "name", "field"), "RemoveField": ("model_name", "name")}
            given = _arguments(call, *names.get(kind, ("model_name", "old_name", "new_name")))
            table = _table(self.app, str(_value(given["model_name"])))
            if kind == "AddField":
                return self.field(table, str(_value(given["name"])), given["field"])
            if kind == "RemoveField":
                return [f"ALTER TABLE {quote(table)} DROP COLUMN {quote(str(_value(given['name'])))}"]
            old, new = str(_value(given["old_name"])), str(_value(given["new_name"]))
            return [f"ALTER TABLE {quote(table)} RENAME COLUMN {quote(old)} TO {quote(new)}"]
        if kind in ("AddIndex", "AddIndexConcurrently", "RemoveIndex", "RemoveIndexConcurrently"):
            given = _arguments(call, "model_name", "index" if kind.startswith("Add") else "name")
            table = _table(self.app, str(_value(given["model_name"])))
            concurrently = kind.endswith("Concurrently")
            if kind.startswith("Remove"):
                return [f"DROP INDEX{' CONCURRENTLY' if concurrently else ''} {quote(str(_value(given['name'])))}"]
            index = _arguments(given["index"])
            columns = [str(c).lstrip("-") for c in _value(index["fields"])]
            return [index_sql(str(_value(index["name"])), table, columns, unique=False, concurrently=concurrently)]
        if kind in ("AddConstraint", "RemoveConstraint"):
            given = _arguments(call, "model_name", "constraint" if kind == "AddConstraint" else "name")
            table = quote(_table(self.app, str(_value(given["model_name"]))))
            if kind == "RemoveConstraint":
                return [f"ALTER TABLE {table} DROP CONSTRAINT {quote(str(_value(given['name'])))}"]
            constraint = given["constraint"]
            options = _arguments(constraint)
            name = quote(str(_value(options["name"])))
            if _callee(constraint) == "UniqueConstraint":
                listed = ", ".join(quote(str(c)) for c in _value(options["fields"]))
                return [f"ALTER TABLE {table} ADD CONSTRAINT {name} UNIQUE ({listed})"]
            return [f"ALTER TABLE {table} ADD CONSTRAINT {name} CHECK (true)"]  # any new CHECK
        if kind == "RunSQL":
            sql = _value(_arguments(call, "sql")["sql"])
            return [sql] if isinstance(sql, str) else [str(s if isinstance(s, str) else s[0]) for s in sql]
        if kind in NO_SQL:
            return []
        return None


class Django(Layout):
    name = "django"
    suffix = ".py"

    def recognises(self, text: str) -> bool:
        return "class Migration(" in text and "migrations" in text

    def read(self, text: str, path: Path) -> tuple[Operation, ...]:
        tree = ast.parse(text, str(path))
        migration = next((n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Migration"), None)
        atomic, listed = True, []
        for node in migration.body if migration else []:
            if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
                if node.targets[0].id == "atomic":
                    atomic = bool(_value(node.value))
                elif node.targets[0].id == "operations" and isinstance(node.value, ast.List | ast.Tuple):
                    listed = list(node.value.elts)
        app = path.parent.parent.name if path.parent.name == "migrations" else path.parent.name
        reader = _Reader(app)
        return in_transaction([o for node in listed for o in self._operations(reader, node)], atomic)

    def _operations(self, reader: _Reader, node: ast.expr) -> list[Operation]:
        label = _callee(node) or ast.unparse(node)[:40]
        line = getattr(node, "lineno", 1)
        if not isinstance(node, ast.Call):
            return [Operation(line, label, None, "not an operation the file spells out")]
        if label == "SeparateDatabaseAndState":
            database = _arguments(node).get("database_operations")
            elements = database.elts if isinstance(database, ast.List | ast.Tuple) else []
            return [o for element in elements for o in self._operations(reader, element)]
        if label == "RunPython":
            return [Operation(line, label, None, "Python code: what it does to the data is not classified")]
        try:
            statements = reader.operation(node)
        except (NotLiteral, KeyError, TypeError, ValueError) as exc:
            return [Operation(line, label, None, f"arguments the file does not spell out ({exc})")]
        if statements is None:
            why = "depends on the field's previous definition" if label == "AlterField" else "not classified"
            return [Operation(line, label, None, why)]
        return [Operation(line, label, ";\n".join(statements))] if statements else []
