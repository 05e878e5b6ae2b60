"""Rails migrations (`db/migrate/<timestamp>_*.rb`): the schema statements of `change` or `up`,
rendered as the SQL Active Record runs on PostgreSQL.

Ruby is not parsed here, only read line by line: one statement a line (a heredoc for `execute`,
a `do ... end` block for `create_table` and `change_table`), with symbols, strings, numbers,
arrays and `key: value` options. Anything else (model code, `reversible`, conditionals, a
statement over several lines) is `review`. A migration runs in a transaction unless it says
`disable_ddl_transaction!`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

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

TYPES = {
    "string": "varchar",
    "text": "text",
    "integer": "integer",
    "bigint": "bigint",
    "float": "double precision",
    "decimal": "numeric",
    "boolean": "boolean",
    "date": "date",
    "datetime": "timestamp(6)",
    "timestamp": "timestamp(6)",
    "time": "time",
    "binary": "bytea",
    "json": "json",
    "jsonb": "jsonb",
    "uuid": "uuid",
    "references": "bigint",
    "belongs_to": "bigint",
}
TOKEN = re.compile(
    r"""\s*(?:(?P<key>[a-z_]\w*):(?!:)|(?P<symbol>:[a-z_]\w*[?!]?)|(?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')"""
    r"""|(?P<number>-?\d+(?:\.\d+)?)|(?P<word>true|false|nil)|(?P<punct>[\[\]{},]))""",
)
CALL = re.compile(r"^(?P<name>[a-z_]\w*[!?]?)(?:\s*\(\s*(?P<paren>.*)\)|\s+(?P<bare>.*))?$")
BLOCK = re.compile(r"\s+do(?:\s*\|\s*(?P<var>\w+)\s*\|)?\s*$")
HEREDOC = re.compile(r"^execute\s*\(?\s*<<[~-]?(?P<quote>['\"]?)(?P<end>[A-Z_]+)(?P=quote)")


def parse_arguments(text: str) -> tuple[list[Any], dict[str, Any]]:
    """`:users, :email, :string, null: false` -> (["users", "email", "string"], {"null": False})."""
    tokens: list[tuple[str, str]] = []
    position = 0
    text = text.strip()
    while position < len(text):
        match = TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise NotLiteral(text[position:][:40])
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        position = match.end()
    values = _sequence(tokens, 0, None)[0]
    positional = [v for v in values if not isinstance(v, _Option)]
    options = {v.key: v.value for v in values if isinstance(v, _Option)}
    return positional, options


class _Option:
    def __init__(self, key: str, value: Any) -> None:
        self.key, self.value = key, value


def _sequence(tokens: list[tuple[str, str]], index: int, closer: str | None) -> tuple[list[Any], int]:
    items: list[Any] = []
    while index < len(tokens):
        kind, text = tokens[index]
        if kind == "punct" and text == closer:
            return items, index + 1
        if kind == "punct" and text == ",":
            index += 1
            continue
        if kind == "key":
            value, index = _token_value(tokens, index + 1)
            items.append(_Option(text, value))
            continue
        value, index = _token_value(tokens, index)
        items.append(value)
    if closer is not None:
        raise NotLiteral(f"unclosed {closer}")
    return items, index


def _token_value(tokens: list[tuple[str, str]], index: int) -> tuple[Any, int]:
    if index >= len(tokens):
        raise NotLiteral("a value is missing")
    kind, text = tokens[index]
    if kind == "symbol":
        return text[1:], index + 1
    if kind == "string":
        return text[1:-1].replace('\\"', '"').replace("\\'", "'"), index + 1
    if kind == "number":
        return (float(text) if "." in text else int(text)), index + 1
    if kind == "word":
        return {"true": True, "false": False, "nil": None}[text], index + 1
    if kind == "punct" and text == "[":
        return _sequence(tokens, index + 1, "]")
    if kind == "punct" and text == "{":
        items, index = _sequence(tokens, index + 1, "}")
        return {item.key: item.value for item in items if isinstance(item, _Option)}, index
    raise NotLiteral(text)


def _listed(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _column(name: str, kind: str, options: dict[str, Any]) -> str:
    sql_type = TYPES.get(kind, kind)
    if "limit" in options and kind == "string":
        sql_type = f"varchar({options['limit']})"
    default = literal(options["default"]) if "default" in options and options["default"] is not None else None
    return column_sql(name, sql_type, nullable=options.get("null", True) is not False, default=default)


def _index(table: str, columns: list[str], options: dict[str, Any]) -> str:
    name = str(options.get("name") or f"index_{table}_on_{'_and_'.join(columns)}")
    concurrently = options.get("algorithm") == "concurrently"
    return index_sql(name, table, columns, unique=bool(options.get("unique")), concurrently=concurrently)


def _reference(table: str, ref: str, options: dict[str, Any]) -> list[str]:
    column = f"{ref}_id"
    target = f"ALTER TABLE {quote(table)}"
    statements = [f"{target} ADD COLUMN {_column(column, 'bigint', options)}"]
    foreign = options.get("foreign_key")
    if foreign:
        other = foreign.get("to_table", f"{ref}s") if isinstance(foreign, dict) else f"{ref}s"
        statements.append(
            f"{target} ADD CONSTRAINT {quote(f'fk_{table}_{column}')} FOREIGN KEY ({quote(column)}) "
            f"REFERENCES {quote(str(other))} (id)"
        )
    index = options.get("index", True)
    if index:
        statements.append(_index(table, [column], index if isinstance(index, dict) else {}))
    return statements


def render(name: str, args: list[Any], options: dict[str, Any]) -> list[str] | None:
    """The SQL of one schema statement; None for one this module does not know."""
    table = quote(str(args[0])) if args else ""
    target = f"ALTER TABLE {table}"
    if name == "create_table":
        return [f"CREATE TABLE {table} (id bigint)"]
    if name == "drop_table":
        return [f"DROP TABLE {table}"]
    if name == "rename_table":
        return [f"{target} RENAME TO {quote(str(args[1]))}"]
    if name == "add_column":
        return [f"{target} ADD COLUMN {_column(str(args[1]), str(args[2]), options)}"]
    if name == "remove_column" or name == "remove_columns":
        return [f"{target} DROP COLUMN {quote(str(column))}" for column in args[1:] if column not in TYPES]
    if name == "rename_column":
        return [f"{target} RENAME COLUMN {quote(str(args[1]))} TO {quote(str(args[2]))}"]
    if name == "change_column":
        return [f"{target} ALTER COLUMN {quote(str(args[1]))} TYPE {TYPES.get(str(args[2]), str(args[2]))}"]
    if name == "change_column_null":
        return [f"{target} ALTER COLUMN {quote(str(args[1]))} {'DROP' if args[2] else 'SET'} NOT NULL"]
    if name == "change_column_default":
        value = options["to"] if "to" in options else args[2]
        what = "DROP DEFAULT" if value is None else f"SET DEFAULT {literal(value)}"
        return [f"{target} ALTER COLUMN {quote(str(args[1]))} {what}"]
    if name == "add_index":
        return [_index(str(args[0]), _listed(args[1]), options)]
    if name == "remove_index":
        concurrently = " CONCURRENTLY" if options.get("algorithm") == "concurrently" else ""
        columns = _listed(args[1] if len(args) > 1 else options.get("column", "?"))
        index = options.get("name") or f"index_{args[0]}_on_{'_and_'.join(columns)}"
        return [f"DROP INDEX{concurrently} {quote(str(index))}"]
    if name in ("add_reference", "add_belongs_to"):
        return _reference(str(args[0]), str(args[1]), options)
    if name in ("remove_reference", "remove_belongs_to"):
        return [f"{target} DROP COLUMN {quote(f'{args[1]}_id')}"]
    if name == "add_foreign_key":
        column = str(options.get("column", f"{str(args[1]).removesuffix('s')}_id"))
        constraint = str(options.get("name", f"fk_rails_{args[0]}_{column}"))
        not_valid = " NOT VALID" if options.get("validate") is False else ""
        return [
            f"{target} ADD CONSTRAINT {quote(constraint)} FOREIGN KEY ({quote(column)}) "
            f"REFERENCES {quote(str(args[1]))} (id){not_valid}"
        ]
    if name in ("validate_foreign_key", "validate_check_constraint", "validate_constraint"):
        return [f"{target} VALIDATE CONSTRAINT {quote(str(options.get('name', args[-1])))}"]
    if name in ("remove_foreign_key", "remove_check_constraint"):
        return [f"{target} DROP CONSTRAINT {quote(str(options.get('name', args[-1])))}"]
    if name == "add_check_constraint":
        not_valid = " NOT VALID" if options.get("validate") is False else ""
        constraint = quote(str(options.get("name", f"chk_{args[0]}")))
        return [f"{target} ADD CONSTRAINT {constraint} CHECK ({args[1]}){not_valid}"]
    if name == "execute":
        return [str(args[0])]
    return None


def _changes(table: str, variable: str, body: list[tuple[int, str]]) -> list[Operation]:
    """The statements of a `change_table :t do |t| ... end` block."""
    operations: list[Operation] = []
    for number, line in body:
        match = CALL.match(line.removeprefix(f"{variable}."))
        if not line.startswith(f"{variable}.") or match is None:
            operations.append(Operation(number, line[:40], None, "not a change_table statement the kit reads"))
            continue
        method = match.group("name")
        name = TABLE_METHODS.get(method, "add_column" if method in TYPES else method)
        label = f"change_table {variable}.{method}"
        operations.append(
            _statement(number, label, name, _arguments(match), [table], method if method in TYPES else None)
        )
    return operations


# change_table's `t.<method>` -> the statement it stands for (`t.string :c` is add_column)
TABLE_METHODS = {
    "remove": "remove_column",
    "rename": "rename_column",
    "index": "add_index",
    "references": "add_reference",
    "belongs_to": "add_reference",
    "change": "change_column",
    "column": "add_column",
}


def _arguments(match: re.Match[str]) -> str:
    return match.group("paren") or match.group("bare") or ""


def _statement(
    number: int, label: str, name: str, arguments: str, prefix: list[Any] | None = None, type_name: str | None = None
) -> Operation:
    try:
        args, options = parse_arguments(arguments)
        if type_name:  # `t.string :name, null: false`: the method names the type
            args = [args[0], type_name, *args[1:]]
        statements = render(name, [*(prefix or []), *args], options)
    except (NotLiteral, IndexError, TypeError) as exc:
        return Operation(number, label, None, f"arguments the kit does not read ({exc})")
    if statements is None:
        return Operation(number, label, None, "not a schema statement the kit knows")
    return Operation(number, label, ";\n".join(statements))


class Rails(Layout):
    name = "rails"
    suffix = ".rb"

    def recognises(self, text: str) -> bool:
        return "ActiveRecord::Migration" in text

    def read(self, text: str, path: Path) -> tuple[Operation, ...]:
        lines = text.splitlines()
        start = next((i for i, line in enumerate(lines) if re.match(r"\s*def (change|up)\b", line)), None)
        operations: list[Operation] = []
        body, _ = _block(lines, start) if start is not None else ([], 0)
        skip_to = 0  # lines up to here belong to a block or heredoc already read
        for position, (number, line) in enumerate(body):
            if number <= skip_to:
                continue
            heredoc = HEREDOC.match(line)
            block = BLOCK.search(line)
            if heredoc:
                ending = next((n for n, text in body[position + 1 :] if text == heredoc.group("end")), len(lines))
                operations.append(Operation(number, "execute", "\n".join(lines[number : ending - 1])))
                skip_to = ending
            elif block:
                inner, skip_to = _block(lines, number - 1)
                head = CALL.match(line[: block.start()])
                name = head.group("name") if head else line[:40]
                if head and name == "create_table":
                    operations.append(_statement(number, name, name, _arguments(head)))
                elif head and name == "change_table" and block.group("var"):
                    try:
                        table = str(parse_arguments(_arguments(head))[0][0])
                    except (NotLiteral, IndexError) as exc:
                        operations.append(Operation(number, name, None, f"arguments the kit does not read ({exc})"))
                    else:
                        operations += _changes(table, block.group("var"), inner)
                else:
                    operations.append(Operation(number, name, None, "a block: procedural, not classified"))
            else:
                match = CALL.match(line)
                if match is None:
                    operations.append(Operation(number, line[:40], None, "not a statement the kit reads"))
                else:
                    operations.append(_statement(number, match.group("name"), match.group("name"), _arguments(match)))
        return in_transaction(operations, "disable_ddl_transaction!" not in text)


def _block(lines: list[str], start: int) -> tuple[list[tuple[int, str]], int]:
    """The lines (1-based number, stripped text) inside the block opened on `lines[start]`, up to
    its `end` at the same indentation (blank and comment lines left out), and that end's number."""
    indent = len(lines[start]) - len(lines[start].lstrip())
    inside: list[tuple[int, str]] = []
    for number in range(start + 1, len(lines)):
        line = lines[number]
        stripped = line.strip()
        if stripped == "end" and len(line) - len(line.lstrip()) == indent:
            return inside, number + 1
        if stripped and not stripped.startswith("#"):
            inside.append((number + 1, stripped))
    return inside, len(lines)
