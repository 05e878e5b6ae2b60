"""`migrations check` as a new user meets it: PATHS and --dialect from the config, what a file
the parser refuses leaves unchecked, a foreign key to a table made in the same migration, and
MySQL's messages naming what they are about."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline_kit.migrations.postgres import Postgres
from pipeline_kit.migrations.sqlglot_dialects import MySQL
from tests.conftest import Cli

MYSQL = "CREATE TABLE t (id int AUTO_INCREMENT PRIMARY KEY);\nALTER TABLE t ADD INDEX ix (id), ALGORITHM=COPY;\n"


@pytest.fixture
def project(cli: Cli, tmp_path: Path) -> Path:
    """A project `init` set up, with MySQL migrations named in its config."""
    assert cli(["init"], cwd=tmp_path).code == 0
    config = tmp_path / "pipeline-kit.yml"
    config.write_text(config.read_text() + "migrations: {paths: [migrations], dialect: mysql}\n")
    (tmp_path / "migrations").mkdir()
    (tmp_path / "migrations" / "001.sql").write_text(MYSQL)
    return tmp_path


def test_paths_and_dialect_default_to_the_config(cli: Cli, project: Path) -> None:
    bare = cli(["migrations", "check"], cwd=project)
    named = cli(["migrations", "check", "migrations"], cwd=project)
    # read as MySQL: the table and the index, not one PostgreSQL syntax error
    assert bare.code == named.code == 1 and bare.out == named.out
    assert "create-table" in bare.out and "add-index" in bare.out and "unparsable" not in bare.out
    explicit = cli(["migrations", "check", "--dialect", "postgres"], cwd=project)
    assert explicit.code == 1 and "not PostgreSQL the parser accepts" in explicit.out


def test_no_paths_and_no_config_is_one_line_saying_what_to_give(cli: Cli, tmp_path: Path) -> None:
    result = cli(["migrations", "check"], cwd=tmp_path)
    assert result.code == 2 and result.out == ""
    (line,) = result.err.strip().splitlines()
    assert "PATHS" in line and "migrations:" in line and "Traceback" not in line


def test_a_config_without_migrations_and_no_paths_is_exit_2(cli: Cli, project: Path) -> None:
    config = project / "pipeline-kit.yml"
    config.write_text(config.read_text().replace("migrations: {paths: [migrations], dialect: mysql}\n", ""))
    result = cli(["migrations", "check"], cwd=project)
    assert result.code == 2 and "no migrations to check" in result.err
    # named paths without a dialect anywhere are read as PostgreSQL, as before
    named = cli(["migrations", "check", "migrations"], cwd=project)
    assert named.code == 1 and "not PostgreSQL the parser accepts" in named.out


def test_a_syntax_error_says_what_went_unchecked_and_hints_the_dialect() -> None:
    sql = (
        "SET lock_timeout = '2s';\n"
        "ALTER TABLE users DROP COLUMN legacy;\n"
        "CREATE TABLE t (\n  id int AUTO_INCREMENT PRIMARY KEY\n);\n"
        "ALTER TABLE users DROP COLUMN age;\n"
    )
    *checked, refused = Postgres().classify(sql, "m.sql")
    # the statements before the error are checked (the drop is contract), the rest is not claimed
    assert [f.rule for f in checked] == ["variableset", "drop-column"]
    assert (refused.line, refused.rule, refused.phase) == (3, "unparsable", "review") and refused.needs_attention
    assert '"AUTO_INCREMENT" (line 4)' in refused.message
    assert "line 3 (this statement) to the end of the file went unchecked" in refused.message
    assert "--dialect mysql" in refused.fix
    # the same file read as MySQL has all four statements
    assert [f.rule for f in MySQL().classify(sql, "m.sql")] == ["set", "drop-column", "create-table", "drop-column"]


@pytest.mark.parametrize(
    ("statement", "mysql"),
    [
        ("CREATE TABLE `t` (id int);", True),
        ("CREATE TABLE t (id int) ENGINE=InnoDB;", True),
        ("ALTER TABLE t ADD COLUMN c int, ALGORITHM=INSTANT;", True),
        ("ALTER TABLE users DROPP COLUMN legacy;", False),
        ("SELECT (;", False),
    ],
)
def test_the_dialect_hint_only_for_mysql_syntax(statement: str, mysql: bool) -> None:
    (refused,) = Postgres().classify(statement, "m.sql")
    assert refused.rule == "unparsable" and refused.line == 1
    assert ("--dialect mysql" in refused.fix) is mysql


def test_a_syntax_error_at_the_end_of_the_file_leaves_the_statements_before_checked() -> None:
    findings = Postgres().classify("SET lock_timeout = '2s';\nALTER TABLE a DROP COLUMN b;\nSELECT (", "m.sql")
    assert [(f.line, f.rule) for f in findings] == [(1, "variableset"), (2, "drop-column"), (3, "unparsable")]
    assert "syntax error at end of input" in findings[-1].message
