"""The MySQL-dialect classifier checked against a real MariaDB (Debian's mariadb-server, InnoDB),
verdict for verdict: the old-release client (tests/test_migrations.py's requests, run as the
user `app`) after each statement confirms the phase, and the server's own online-DDL answer
(whether it accepts the change with `LOCK=NONE` or `ALGORITHM=INSTANT`, which it refuses for an
operation that would block writes) confirms the lock risk."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pipeline_kit.migrations.sqlglot_dialects import MySQL
from pipeline_kit.migrations.sqlglot_expressions import MYSQL_BUILTINS
from tests.conftest import Cli
from tests.mariadb_instance import LocalMariaDB
from tests.shared_services import unique_name
from tests.test_migrations import old_release_errors

MISSING = "missing-lock-timeout"  # said of any ALTER without a SET lock_wait_timeout before it: tested on its own
SCHEMA = """
CREATE TABLE users (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(64), email VARCHAR(128), legacy VARCHAR(16), age INT);
INSERT INTO users (name, email, legacy, age)
  WITH RECURSIVE s (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 50)
  SELECT CONCAT('n', i), CONCAT('e', i), 'l', i FROM s;
CREATE TABLE orders (id INT AUTO_INCREMENT PRIMARY KEY, user_id INT, total INT);
"""


def fresh(mariadb: LocalMariaDB) -> str:
    """A database with the old release's schema, its tables granted to `app` one by one (so a
    REVOKE of one privilege has something to take)."""
    database = unique_name("m")  # the server is the run's: a name no other worker makes
    grants = "; ".join(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {database}.{t} TO app" for t in ("users", "orders"))
    done = mariadb.sql("", f"CREATE DATABASE {database}; USE {database}; {SCHEMA}; {grants}")
    assert done.returncode == 0, done.stderr
    return database


@pytest.fixture(scope="module")
def server(mariadb: LocalMariaDB) -> LocalMariaDB:
    assert mariadb.sql("", "CREATE USER IF NOT EXISTS app").returncode == 0
    return mariadb


def old_release_errors_in(mariadb: LocalMariaDB, database: str) -> list[str]:
    return old_release_errors(lambda request: mariadb.sql(database, request, user="app"))


OPTIONS = re.compile(r",?\s*(ALGORITHM|LOCK)\s*=\s*\w+", re.IGNORECASE)


def blocks_writes(mariadb: LocalMariaDB, statement: str) -> bool:
    """The server's answer: the change (without the clauses it was written with) is refused both
    with LOCK=NONE and with ALGORITHM=INSTANT, so it would block writes."""
    bare = OPTIONS.sub("", statement)
    separator = " " if bare.upper().startswith("CREATE") else ", "
    return all(
        mariadb.sql(fresh(mariadb), f"{bare}{separator}{clause}").returncode != 0
        for clause in ("LOCK=NONE", "ALGORITHM=INSTANT")
    )


# (statement, phase, lock): the classifier's verdict, each confirmed by the database
CORPUS = (
    ("ALTER TABLE users ADD COLUMN nickname VARCHAR(64) NULL, ALGORITHM=INSTANT", "expand", "safe"),
    ("ALTER TABLE users ADD COLUMN nickname VARCHAR(64)", "expand", "safe"),
    ("ALTER TABLE users ADD COLUMN score INT NOT NULL DEFAULT 0", "expand", "safe"),
    ("ALTER TABLE users ADD COLUMN created DATETIME DEFAULT CURRENT_TIMESTAMP", "expand", "safe"),
    ("ALTER TABLE users ADD COLUMN token VARCHAR(36) DEFAULT (UUID())", "expand", "blocks"),
    ("ALTER TABLE users ADD COLUMN doubled INT AS (age * 2) STORED", "expand", "blocks"),
    ("ALTER TABLE users ADD COLUMN doubled INT AS (age * 2) VIRTUAL", "expand", "safe"),
    ("CREATE TABLE audit (id BIGINT AUTO_INCREMENT PRIMARY KEY, at DATETIME NOT NULL)", "expand", "safe"),
    ("CREATE INDEX users_email ON users (email) ALGORITHM=INPLACE LOCK=NONE", "expand", "safe"),
    ("CREATE INDEX users_email ON users (email)", "expand", "safe"),
    ("CREATE INDEX users_email ON users (email) USING BTREE LOCK=NONE", "expand", "safe"),
    ("ALTER TABLE users ADD INDEX users_email (email), ALGORITHM=INPLACE, LOCK=NONE", "expand", "safe"),
    ("ALTER TABLE users ADD KEY users_email (email)", "expand", "safe"),
    ("ALTER TABLE users ADD FULLTEXT INDEX users_name (name)", "expand", "blocks"),
    ("ALTER TABLE users ALTER COLUMN age SET DEFAULT 0", "expand", "safe"),
    ("ALTER TABLE users ADD COLUMN handle VARCHAR(32) UNIQUE", "expand", "safe"),  # the old release never writes it
    ("ALTER TABLE users DROP COLUMN legacy", "contract", "safe"),
    ("ALTER TABLE users DROP COLUMN legacy, ALGORITHM=COPY", "contract", "blocks"),
    ("ALTER TABLE users RENAME COLUMN name TO full_name", "contract", "safe"),
    ("ALTER TABLE users RENAME TO accounts", "contract", "safe"),
    ("RENAME TABLE users TO accounts", "contract", "safe"),
    ("RENAME TABLE orders TO purchases, users TO accounts", "contract", "safe"),
    ("DROP TABLE orders", "contract", "safe"),
    ("ALTER TABLE orders ADD COLUMN currency CHAR(3) NOT NULL", "contract", "safe"),
    ("ALTER TABLE users MODIFY COLUMN name VARCHAR(8)", "contract", "blocks"),
    ("ALTER TABLE users ADD UNIQUE KEY users_email_unique (email)", "contract", "safe"),
    ("ALTER TABLE users ADD UNIQUE INDEX users_email_unique (email), ALGORITHM=INPLACE, LOCK=NONE", "contract", "safe"),
    ("CREATE UNIQUE INDEX users_email_unique ON users (email) ALGORITHM=INPLACE LOCK=NONE", "contract", "safe"),
    ("ALTER TABLE orders ADD CONSTRAINT total_positive CHECK (total > 0)", "contract", "blocks"),
    ("ALTER TABLE orders ADD CONSTRAINT orders_user FOREIGN KEY (user_id) REFERENCES users (id)", "contract", "blocks"),
    ("ALTER TABLE orders ADD FOREIGN KEY (user_id) REFERENCES users (id)", "contract", "blocks"),
    ("REVOKE DELETE ON users FROM app", "contract", "safe"),
)


@pytest.mark.parametrize(("statement", "phase", "lock"), CORPUS)
def test_the_mysql_classifier_agrees_with_mariadb(server: LocalMariaDB, statement: str, phase: str, lock: str) -> None:
    verdicts = {(f.phase, f.lock) for f in MySQL().classify(statement + ";", "m.sql") if f.rule != MISSING}
    assert verdicts == {(phase, lock)}
    database = fresh(server)
    applied = server.sql(database, statement)
    assert applied.returncode == 0, applied.stderr
    errors = old_release_errors_in(server, database)
    assert (errors == []) == (phase == "expand"), errors
    if (
        statement.upper().startswith(("ALTER TABLE", "CREATE INDEX", "CREATE UNIQUE INDEX"))
        and "RENAME" not in statement
    ):
        if "ALGORITHM=COPY" in statement:  # a copy never lets writes through: the server refuses LOCK=NONE
            assert server.sql(fresh(server), f"{statement}, LOCK=NONE").returncode != 0
            assert lock == "blocks"
        elif OPTIONS.search(statement):  # LOCK=NONE or INSTANT asked, and the statement ran: honoured
            assert lock == "safe"
        else:  # the server's own choice: blocking unless it can do it without
            assert blocks_writes(server, statement) == (lock == "blocks")


# Verdicts that err on the blocking side: the statement cannot show what MariaDB can see (the
# column's current type), or MariaDB does more online than MySQL 8 (an expression default).
CAUTIOUS = (
    "ALTER TABLE users CHANGE COLUMN name full_name VARCHAR(64)",  # the same type: a rename
    "ALTER TABLE users MODIFY COLUMN name VARCHAR(100)",  # widening within the same length bytes
    "ALTER TABLE users ADD COLUMN r DOUBLE DEFAULT (RAND())",  # MySQL 8 copies; MariaDB adds it instantly
)


@pytest.mark.parametrize("statement", CAUTIOUS)
def test_a_cautious_verdict_only_ever_errs_towards_blocking(server: LocalMariaDB, statement: str) -> None:
    (finding,) = [f for f in MySQL().classify(statement + ";", "m.sql") if f.rule != MISSING]
    assert finding.lock == "blocks"
    assert not blocks_writes(server, statement)


@pytest.mark.parametrize(
    ("where", "every_row"),
    [
        *(("true", True), ("1", True), ("1 = 1", True), ("id = id", True), ("id < 10 OR 1", True)),
        *(("id BETWEEN 1 AND 10", False), ("id < 10 OR id > 40", False), ("true LIMIT 10", False)),
    ],
)
def test_a_where_that_selects_every_row_is_no_batch(server: LocalMariaDB, where: str, every_row: bool) -> None:
    (finding,) = MySQL().classify(f"UPDATE users SET age = age + 1 WHERE {where};", "m.sql")
    assert finding.rule == ("unbatched-backfill" if every_row else "backfill")
    database = fresh(server)
    done = server.sql(database, f"UPDATE users SET age = age + 1 WHERE {where}; SELECT ROW_COUNT()")
    assert done.returncode == 0, done.stderr
    assert (int(done.stdout.split()[-1]) == 50) == every_row


# code the tests' database has: a procedure that drops a column, a function that deletes users
CODE = """
CREATE PROCEDURE tidy() ALTER TABLE users DROP COLUMN legacy;
INSERT INTO orders (user_id, total) VALUES (1, 1);
DELIMITER //
CREATE FUNCTION wipe() RETURNS INT MODIFIES SQL DATA BEGIN DELETE FROM users; RETURN 1; END//
DELIMITER ;
"""


@pytest.mark.parametrize(
    ("script", "rule", "fired_by"),
    [
        ("CALL tidy()", "opaque-code", ""),
        ("INSERT INTO orders (user_id, total) SELECT wipe(), 1", "calls-user-function", ""),
        ("UPDATE orders SET total = wipe() WHERE id = 1", "calls-user-function", ""),
        ("SELECT wipe()", "calls-user-function", ""),
        ("CREATE TABLE wiped AS SELECT wipe() AS n", "calls-user-function", ""),
        ("CREATE PROCEDURE tidy2() ALTER TABLE users DROP COLUMN legacy", "opaque-code", "CALL tidy2()"),
        (
            "CREATE TRIGGER audit AFTER INSERT ON orders FOR EACH ROW DELETE FROM users WHERE id = NEW.user_id",
            "opaque-code",
            "INSERT INTO orders (user_id, total) VALUES (7, 1)",
        ),
        ("CREATE FUNCTION one() RETURNS INT DETERMINISTIC RETURN 1", "opaque-code", ""),
    ],
)
def test_mysql_code_the_classifier_cannot_see_through_is_review(
    server: LocalMariaDB, script: str, rule: str, fired_by: str
) -> None:
    finding = MySQL().classify(script + ";", "m.sql")[0]
    assert (finding.phase, finding.rule) == ("review", rule) and finding.needs_attention
    if script.startswith("CREATE FUNCTION one"):
        return  # harmless here; the rule cannot tell, which is the point
    # the database: the statement (or the one that fires what it created) did what it does not show
    database = fresh(server)
    setup = server.sql(database, CODE)
    assert setup.returncode == 0, setup.stderr
    for statement in (script, fired_by):
        if statement:
            done = server.sql(database, statement)
            assert done.returncode == 0, done.stderr
    left = server.sql(database, "SELECT COUNT(*) FROM users; SHOW COLUMNS FROM users LIKE 'legacy'")
    assert int(left.stdout.split()[1]) < 50 or "legacy" not in left.stdout, left.stdout


def test_the_listed_builtins_are_mariadb_native_functions(server: LocalMariaDB) -> None:
    # MariaDB notes (1585) a stored function named like a native one, and refuses the name of one
    # its grammar reads itself (1064): each listed name is native; a made-up one is neither
    database = fresh(server)
    for name in (*sorted(MYSQL_BUILTINS), "made_up_function"):
        done = server.sql(database, f"CREATE FUNCTION {name} () RETURNS INT RETURN 1; SHOW WARNINGS")
        native = "1585" in done.stdout or "ERROR 1064" in done.stderr
        assert native == (name in MYSQL_BUILTINS), (name, done.stdout, done.stderr)


ONLINE = """SET SESSION lock_wait_timeout = 5;
CREATE INDEX users_email ON users (email) ALGORITHM=INPLACE LOCK=NONE;
ALTER TABLE users ADD COLUMN nickname VARCHAR(64) NULL, ALGORITHM=INSTANT;
ALTER TABLE users ADD INDEX users_name (name), ALGORITHM=INPLACE, LOCK=NONE;
UPDATE users SET nickname = name WHERE id BETWEEN 1 AND 25;
"""


def test_a_gh_ost_style_migration_passes_the_check_and_a_rename_does_not(
    server: LocalMariaDB, cli: Cli, tmp_path: Path
) -> None:
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    (migrations / "001_online.sql").write_text(ONLINE)
    checked = cli(["migrations", "check", "--dialect", "mysql", "--json", "migrations"], cwd=tmp_path)
    assert checked.code == 0, checked.out
    assert [row["rule"] for row in json.loads(checked.out)["statements"]] == [
        *("set", "create-index", "add-column", "add-index", "backfill"),
    ]
    database = fresh(server)
    applied = server.sql(database, ONLINE)  # the server runs it as written, the old release unharmed
    assert applied.returncode == 0, applied.stderr
    assert old_release_errors_in(server, database) == []
    (migrations / "002_rename.sql").write_text("RENAME TABLE users TO accounts;\n")
    renamed = cli(["migrations", "check", "--dialect", "mysql", "migrations"], cwd=tmp_path)
    assert renamed.code == 1 and "migrations/002_rename.sql:1" in renamed.out and "rename-table" in renamed.out
