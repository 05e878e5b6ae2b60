"""`migrations check` as a new user meets it: PATHS and --dialect from the config, what a file
the parser refuses leaves unchecked, a foreign key to a table made in the same migration, and
MySQL's messages naming what they are about."""

from __future__ import annotations

from pathlib import Path

import pytest

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
