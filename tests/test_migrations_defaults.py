"""`migrations check` as a new user meets it: PATHS and --dialect from the config, what a file
the parser refuses leaves unchecked, a foreign key to a table made in the same migration, and
MySQL's messages naming what they are about."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from pipeline_kit.migrations.postgres import Postgres
from pipeline_kit.migrations.sqlglot_dialects import MySQL
from tests.conftest import Cli
from tests.postgres_instance import LocalPostgres
from tests.shared_services import unique_name

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
    # the same file read as MySQL has all four statements (PostgreSQL's lock_timeout is no MySQL bound)
    assert [f.rule for f in MySQL().classify(sql, "m.sql")] == [
        *("set", "missing-lock-timeout", "drop-column", "create-table", "drop-column"),
    ]


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


NEW_TABLES = (
    "CREATE TABLE customers (id bigint PRIMARY KEY);\n"
    "CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint REFERENCES customers(id));\n"
)
TO_A_TABLE_IN_USE = "CREATE TABLE invoices (id bigint PRIMARY KEY, customer_id bigint REFERENCES customers(id));\n"


def test_a_foreign_key_to_a_table_in_use_asks_for_lock_timeout_and_passes_with_it() -> None:
    # a table this migration created has no traffic: its lock blocks nobody
    assert [(f.rule, f.lock, f.needs_attention) for f in Postgres().classify(NEW_TABLES, "m.sql")] == [
        ("create-table", "safe", False),
        ("create-table-references", "safe", False),
    ]
    bare = Postgres().classify(TO_A_TABLE_IN_USE, "m.sql")
    assert [(f.rule, f.needs_attention) for f in bare] == [
        ("missing-lock-timeout", True),
        ("create-table-references", False),
    ]
    assert "SHARE ROW EXCLUSIVE on customers" in bare[1].message and "lock_timeout" in bare[0].fix
    # the advice taken passes: nothing needs attention, and no contract step follows from it
    timed = Postgres().classify("SET lock_timeout = '2s';\n" + TO_A_TABLE_IN_USE, "m.sql")
    assert [f for f in timed if f.needs_attention] == []
    # IF NOT EXISTS may leave a table in use in place: a key to it still queues
    maybe = Postgres().classify(NEW_TABLES.replace("TABLE customers", "TABLE IF NOT EXISTS customers"), "m.sql")
    assert [f.rule for f in maybe if f.needs_attention] == ["missing-lock-timeout"]


def test_the_database_agrees_on_the_foreign_key_lock(postgres_server: LocalPostgres) -> None:
    """PostgreSQL's answer: the key takes SHARE ROW EXCLUSIVE on the table it references; behind
    an open write there, a lock_timeout makes it fail fast (55P03) instead of queueing; keys
    between tables made in the same transaction wait on nobody."""
    db = postgres_server
    fklock = unique_name("fklock")  # the server is the run's
    assert db.psql("postgres", f"CREATE DATABASE {fklock}").returncode == 0
    assert db.psql(fklock, "CREATE TABLE customers (id bigint PRIMARY KEY)").returncode == 0
    locks = db.psql(
        fklock,
        TO_A_TABLE_IN_USE + "SELECT mode FROM pg_locks WHERE relation = 'customers'::regclass "
        "AND pid = pg_backend_pid(); ROLLBACK;",
    )
    assert "ShareRowExclusiveLock" in locks.stdout, locks.stderr
    holder = subprocess.Popen(  # an old release's open write transaction on customers
        [
            *("psql", "-h", "127.0.0.1", "-p", str(db.port), "-U", "postgres", "-d", fklock, "-X", "-q"),
            *("-c", "BEGIN; INSERT INTO customers VALUES (1); SELECT pg_sleep(60)"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        waited = "SELECT count(*) FROM pg_locks WHERE relation = 'customers'::regclass AND mode = 'RowExclusiveLock'"
        for _ in range(100):
            if db.psql(fklock, waited).stdout.split()[2:3] == ["1"]:
                break
            time.sleep(0.05)
        timed = db.psql(fklock, "SET lock_timeout = '200ms';\n" + TO_A_TABLE_IN_USE)
        assert timed.returncode != 0 and "lock timeout" in timed.stderr, timed.stderr
        fresh = db.psql(fklock, "SET lock_timeout = '200ms';\n" + NEW_TABLES.replace("customers", "buyers"))
        assert fresh.returncode == 0, fresh.stderr
    finally:
        holder.terminate()
        holder.wait()
        db.psql("postgres", f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{fklock}'")


@pytest.mark.parametrize(
    ("statement", "message"),
    [
        ("CREATE TABLE `shop`.`orders` (id int)", "new table shop.orders"),
        ("CREATE VIEW totals AS SELECT 1", "new view totals"),
        ("CREATE INDEX by_total ON orders (total)", "new index by_total on orders, built online"),
        ("ALTER TABLE orders ADD INDEX by_total (total)", "new index by_total on orders, built online"),
        ("ALTER TABLE orders ADD INDEX (total)", "new index on orders, built online"),
        (
            "ALTER TABLE orders ADD FULLTEXT INDEX ft (note)",
            "new FULLTEXT index ft on orders: built with writes blocked",
        ),
        ("ALTER TABLE orders DROP COLUMN note", "drops column note: the old release's queries fail"),
        ("ALTER TABLE orders DROP INDEX by_total", "drops index by_total"),
        ("DROP TABLE orders, lines", "drops table orders, lines: the old release's queries fail"),
        # a clause that forbids the online build says so, and nothing claims it is built online
        (
            "ALTER TABLE orders ADD INDEX by_total (total), ALGORITHM=COPY",
            "new index by_total on orders (ALGORITHM=COPY: writes wait for the whole statement)",
        ),
        (
            "ALTER TABLE orders ADD UNIQUE KEY one (code), LOCK=SHARED",
            "unique key one on orders: restricts the old release's writes (LOCK=SHARED: writes wait for the whole "
            "statement)",
        ),
    ],
)
def test_mysql_messages_name_what_they_are_about(statement: str, message: str) -> None:
    (finding,) = [f for f in MySQL().classify(statement + ";", "m.sql") if f.rule != "missing-lock-timeout"]
    assert finding.message == message
    assert "online" not in finding.message or finding.lock == "safe"


def test_a_search_path_change_forgets_the_tables_made_before_it() -> None:
    # `customers` may now name another schema's table, one with traffic: the key must queue-guard
    sql = NEW_TABLES.replace("CREATE TABLE orders", "SET search_path = shop, public;\nCREATE TABLE orders")
    assert [f.rule for f in Postgres().classify(sql, "m.sql") if f.needs_attention] == ["missing-lock-timeout"]


@pytest.mark.parametrize("broken", ["SELECT 'unterminated", "SELECT `unterminated", "SELECT 1 /* unterminated"])
def test_a_mysql_file_that_cannot_be_tokenized_says_it_went_unchecked(broken: str) -> None:
    (refused,) = MySQL().classify("ALTER TABLE t DROP COLUMN a;\n" + broken, "m.sql")
    assert (refused.rule, refused.phase, refused.needs_attention) == ("unparsable", "review", True)
    assert refused.message.endswith("the whole file went unchecked") and "\n" not in refused.message
