"""The MySQL statements the classifier once sent to review (DROP INDEX's clauses, REPLACE INTO,
LOCK TABLES, ALTER TABLE ... ENGINE=) and its metadata-lock rule (`lock_wait_timeout`), each
verdict checked against a real MariaDB: a concurrent session's write that waits, the server's
own online-DDL answer, the table id InnoDB gives a rebuilt table, the session's own variable."""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from pipeline_kit.migrations.interface import Finding
from pipeline_kit.migrations.mysql_statements import LOCK_WAIT_LIMIT
from pipeline_kit.migrations.sqlglot_dialects import MySQL
from tests.conftest import Cli
from tests.mariadb_instance import LocalMariaDB
from tests.test_migration_rules_mysql import CODE, fresh, old_release_errors_in

MISSING = "missing-lock-timeout"
CLAUSE = re.compile(r"(ALGORITHM|LOCK)\s*=\s*(\w+)", re.IGNORECASE)
TIMED_OUT = "ERROR 1205"  # Lock wait timeout exceeded


@pytest.fixture(scope="module")
def server(mariadb: LocalMariaDB) -> LocalMariaDB:
    assert mariadb.sql("", "CREATE USER IF NOT EXISTS app").returncode == 0
    return mariadb


def verdicts(sql: str) -> list[Finding]:
    """The classifier's findings on `sql`, the metadata-lock rule (tested below) left out."""
    return [finding for finding in MySQL().classify(sql, "m.sql") if finding.rule != MISSING]


def wait_for(server: LocalMariaDB, database: str, state: str) -> None:
    """Until a session in `database` is in `state` (SHOW PROCESSLIST's), within 30 s."""
    query = f"SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = '{database}' AND STATE = '{state}'"
    deadline = time.monotonic() + 30
    while server.sql("", query).stdout.split()[-1:] != ["1"]:
        assert time.monotonic() < deadline, f"no session in {database} reached {state!r}"
        time.sleep(0.05)


@contextmanager
def holding(server: LocalMariaDB, database: str, sql: str) -> Iterator[subprocess.Popen[str]]:
    """`sql` run in a session of its own that then sleeps (holding what it locked) until the
    block ends, when the session is killed."""
    holder = server.session(database, f"{sql}; SELECT SLEEP(120)")
    try:
        wait_for(server, database, "User sleep")
        yield holder
    finally:
        query = f"SELECT ID FROM information_schema.PROCESSLIST WHERE DB = '{database}' AND STATE = 'User sleep'"
        for session in server.sql("", query).stdout.split()[1:]:
            server.sql("", f"KILL {session}")
        holder.communicate(timeout=60)


def bounded(server: LocalMariaDB, database: str, sql: str, user: str = "app") -> subprocess.CompletedProcess[str]:
    """`sql` run refusing to wait for a lock (MariaDB's lock_wait_timeout = 0): error 1205 says
    it would have waited, at once."""
    return server.sql(database, f"SET SESSION lock_wait_timeout = 0; {sql}", user=user)


# LOCK TABLES: written every way the server reads it; the verdict names the tables
@pytest.mark.parametrize(
    ("statement", "reads_wait"),
    [
        ("LOCK TABLES users READ", False),
        ("lock /* users WRITE */ tables users read", False),
        ("LOCK TABLE users READ LOCAL, orders READ", False),
        ("LOCK TABLES users WRITE", True),
        ("Lock Table `users` AS u Low_Priority Write", True),
    ],
)
def test_lock_tables_blocks_the_old_releases_writes(server: LocalMariaDB, statement: str, reads_wait: bool) -> None:
    (finding,) = verdicts(statement + ";\nUNLOCK TABLES;")[:1]
    assert (finding.phase, finding.lock, finding.rule) == ("neutral", "blocks", "lock-tables")
    assert finding.message.startswith("locks users") and finding.needs_attention
    assert ("every read and write" in finding.message) == reads_wait
    database = fresh(server)
    with holding(server, database, statement):
        write = bounded(server, database, "INSERT INTO users (name) VALUES ('during the lock')")
        read = bounded(server, database, "SELECT COUNT(*) FROM users")
    assert TIMED_OUT in write.stderr, write.stderr  # the old release's write waited for the lock
    assert (TIMED_OUT in read.stderr) == reads_wait, read.stderr
    assert bounded(server, database, "INSERT INTO users (name) VALUES ('after')").returncode == 0


def test_unlock_tables_is_neutral_and_an_empty_lock_stays_review() -> None:
    assert [(f.phase, f.lock, f.rule) for f in verdicts("UNLOCK TABLES;\nunlock table;")] == [
        ("neutral", "safe", "unlock-tables"),
    ] * 2
    (empty,) = verdicts("LOCK TABLES;")
    assert empty.phase == "review"


# DROP INDEX i ON t with clauses: MariaDB 10.11 refuses them there (MySQL 8 takes them), and takes
# the same operation as ALTER TABLE t DROP INDEX i, <clauses>: the server's answer is that form's
@pytest.mark.parametrize(
    ("clauses", "lock"),
    [
        ("ALGORITHM=COPY", "blocks"),
        ("algorithm = copy lock = default", "blocks"),
        ("LOCK=SHARED", "blocks"),
        ("LOCK=EXCLUSIVE ALGORITHM=INPLACE", "blocks"),
        ("/* ALGORITHM=INPLACE */ ALGORITHM=COPY", "blocks"),  # a comment is no clause
        ("ALGORITHM=INPLACE LOCK=NONE", "safe"),
        ("Algorithm=Default Lock=Default", "safe"),
        ("", "safe"),
    ],
)
def test_drop_index_clauses_are_judged_as_the_server_does(server: LocalMariaDB, clauses: str, lock: str) -> None:
    (dropped,) = verdicts(f"DROP INDEX users_email ON users {clauses};")
    assert (dropped.phase, dropped.lock, dropped.rule) == ("neutral", lock, "drop-index")
    options = ", ".join(f"{name}={value}" for name, value in CLAUSE.findall(clauses.split("*/")[-1]))
    altered = f"ALTER TABLE users DROP INDEX users_email{', ' if options else ''}{options}"
    (same,) = verdicts(altered + ";")
    assert (same.phase, same.lock, same.rule) == (dropped.phase, dropped.lock, dropped.rule)
    database = fresh(server)
    index = "CREATE INDEX users_email ON users (email);"
    if clauses:
        refused = server.sql(database, f"{index} DROP INDEX users_email ON users {clauses}")
        assert "ERROR 1064" in refused.stderr, refused.stderr  # MariaDB's grammar has no clauses here
    assert server.sql(fresh(server), f"{index} {altered}").returncode == 0  # as written: it runs
    # writes go on unless a clause forbids it: the server takes LOCK=NONE exactly then
    online = server.sql(fresh(server), f"{index} {altered}, LOCK=NONE")
    asked_shared = "SHARED" in clauses.upper() or "EXCLUSIVE" in clauses.upper()
    assert (online.returncode != 0 or asked_shared) == (lock == "blocks"), online.stderr
    # the old release's queries run on: dropping an index is no contract step
    database = fresh(server)
    assert server.sql(database, f"{index} {altered}").returncode == 0
    assert old_release_errors_in(server, database) == []


def test_drop_index_primary_drops_the_primary_key(server: LocalMariaDB) -> None:
    (finding,) = verdicts("DROP INDEX `PRIMARY` ON keyed;")
    assert (finding.phase, finding.lock, finding.rule) == ("contract", "blocks", "drop-primary-key")
    database = fresh(server)
    table = "CREATE TABLE keyed (id INT PRIMARY KEY, note TEXT);"
    done = server.sql(database, f"{table} DROP INDEX `PRIMARY` ON keyed; SHOW KEYS FROM keyed")
    assert done.returncode == 0 and done.stdout == "", (done.stdout, done.stderr)  # no key left
    refused = server.sql(database, "DROP TABLE keyed; " + table + " ALTER TABLE keyed DROP PRIMARY KEY, LOCK=NONE")
    assert "ERROR 1846" in refused.stderr, refused.stderr  # only with writes blocked


# REPLACE INTO: an INSERT that first deletes the row it collides with
@pytest.mark.parametrize(
    "statement",
    [
        "REPLACE INTO users (id, name) VALUES (1, 'replaced')",
        "replace /* INTO */ into users (id, name) values (1, 'replaced')",
        "REPLACE users SET id = 1, name = 'replaced'",
        "REPLACE INTO users (id, name) SELECT id, 'replaced' FROM users WHERE id = 1",
    ],
)
def test_replace_into_is_a_data_change(server: LocalMariaDB, statement: str) -> None:
    (finding,) = verdicts(statement + ";")
    assert (finding.phase, finding.lock, finding.rule) == ("migrate", "safe", "replace")
    database = fresh(server)
    done = server.sql(database, f"{statement}; SELECT ROW_COUNT(); SELECT email FROM users WHERE id = 1")
    assert done.returncode == 0, done.stderr
    # one row deleted, one inserted: the columns it does not name are gone (email was e1)
    assert done.stdout.split() == ["ROW_COUNT()", "2", "email", "NULL"]
    assert old_release_errors_in(server, database) == []


def test_replace_calling_a_user_function_is_review(server: LocalMariaDB) -> None:
    statement = "REPLACE INTO orders (user_id, total) SELECT wipe(), 1"
    (finding,) = verdicts(statement + ";")
    assert (finding.phase, finding.rule) == ("review", "calls-user-function")
    database = fresh(server)
    assert server.sql(database, CODE).returncode == 0
    assert server.sql(database, statement).returncode == 0
    assert server.sql(database, "SELECT COUNT(*) FROM users").stdout.split()[-1] == "0"  # what it hid


def table_id(server: LocalMariaDB, database: str, table: str) -> str:
    """InnoDB's id of the table: a rebuild (every row written anew) gives it a new one."""
    query = f"SELECT TABLE_ID FROM information_schema.INNODB_SYS_TABLES WHERE NAME = '{database}/{table}'"
    return server.sql("", query).stdout.split()[-1]


@pytest.mark.parametrize(
    ("statement", "lock"),
    [
        ("ALTER TABLE users ENGINE=InnoDB", "blocks"),  # the current engine is not shown: maybe a copy
        ("alter table users engine = innodb", "blocks"),
        ("ALTER TABLE users ENGINE=InnoDB, ALGORITHM=INPLACE", "safe"),
        ("ALTER TABLE users ENGINE=InnoDB, LOCK=NONE", "safe"),
        ("ALTER TABLE users ENGINE=InnoDB, ALGORITHM=COPY", "blocks"),
    ],
)
def test_engine_innodb_rebuilds_every_row(server: LocalMariaDB, statement: str, lock: str) -> None:
    (finding,) = verdicts(statement + ";")
    assert (finding.phase, finding.lock, finding.rule) == ("neutral", lock, "rebuild-table")
    database = fresh(server)
    before = table_id(server, database, "users")
    assert server.sql(database, statement).returncode == 0
    assert table_id(server, database, "users") != before  # rebuilt
    assert old_release_errors_in(server, database) == []
    # the server's answer on writes: from InnoDB, in place and online unless COPY is asked for;
    # from another engine a copy, which ALGORITHM=INPLACE (and LOCK=NONE) refuse
    online = server.sql(database, f"{statement}, LOCK=NONE")
    assert (online.returncode == 0) == ("COPY" not in statement), online.stderr
    other = fresh(server)
    assert server.sql(other, "ALTER TABLE orders ENGINE=MyISAM").returncode == 0
    copied = server.sql(other, statement.replace("users", "orders"))
    assert (copied.returncode == 0) == (lock == "blocks"), copied.stderr


def test_another_engine_is_a_contract_step_and_a_copy(server: LocalMariaDB) -> None:
    (finding,) = verdicts("ALTER TABLE users ENGINE=MyISAM;")
    assert (finding.phase, finding.lock, finding.rule) == ("contract", "blocks", "change-engine")
    database = fresh(server)
    assert "ERROR 1846" in server.sql(database, "ALTER TABLE users ENGINE=MyISAM, LOCK=NONE").stderr  # a copy
    assert server.sql(database, "ALTER TABLE users ENGINE=MyISAM").returncode == 0
    # the old release's transaction no longer rolls back: its delete stays
    rolled = server.sql(database, "BEGIN; DELETE FROM users WHERE id = 1; ROLLBACK; SELECT COUNT(*) FROM users")
    assert rolled.stdout.split()[-1] == "49", rolled.stdout
    (option,) = [f for f in verdicts("ALTER TABLE users ENGINE=InnoDB, ROW_FORMAT=COMPRESSED;") if f.phase == "review"]
    assert "RowFormatProperty" in option.message  # an option not read is said, never passed over


# lock_wait_timeout: each SET before an ALTER, and whether the server's session then has a bound
GLOBAL_SETTINGS = "pipeline-kit-tests-global-lock_wait_timeout"  # a MariaDB named lock (GET_LOCK)
SETS = (
    "SET lock_wait_timeout = 5",
    "SET SESSION lock_wait_timeout = 5",
    "set session LOCK_WAIT_TIMEOUT=5",
    "SET NAMES utf8mb4, lock_wait_timeout := 5",
    "SET @@session.lock_wait_timeout = 5",
    "SET @@lock_wait_timeout = 5",
    "SET LOCAL lock_wait_timeout = 5",  # MySQL's LOCAL is the session's
    f"SET lock_wait_timeout = {LOCK_WAIT_LIMIT}",
    "SET lock_wait_timeout = 0",  # MariaDB: fail at once; MySQL: raised to 1 s
    "SET SESSION lock_wait_timeout = 5, GLOBAL lock_wait_timeout = 86400",
    "SET GLOBAL lock_wait_timeout = 5",
    "SET @@global.lock_wait_timeout = 5",
    "SET GLOBAL lock_wait_timeout = 5, lock_wait_timeout = 5",  # GLOBAL holds for both
    "SET PERSIST lock_wait_timeout = 5",
    "SET lock_wait_timeout = DEFAULT",
    f"SET lock_wait_timeout = {LOCK_WAIT_LIMIT + 1}",
    "SET lock_wait_timeout = 31536000",
    "SET lock_wait_timeout = '5'",
    "SET lock_wait_timeout = 1.5",
    "SET innodb_lock_wait_timeout = 5",  # row locks, not the metadata lock
    "SET @lock_wait_timeout = 5",  # a user variable
    "-- SET lock_wait_timeout = 5\nSELECT 1",
    "/* SET lock_wait_timeout = 5; */ SELECT 1",
    "SET lock_wait_timeout = 5; SET lock_wait_timeout = DEFAULT",
)


@pytest.mark.parametrize("setting", SETS)
def test_only_a_bounded_session_lock_wait_timeout_counts(server: LocalMariaDB, setting: str) -> None:
    findings = MySQL().classify(f"{setting};\nALTER TABLE users ADD COLUMN nickname VARCHAR(64);\n", "m.sql")
    missing = [f for f in findings if f.rule == MISSING]
    assert all((f.phase, f.lock, f.needs_attention) == ("neutral", "blocks", True) for f in missing)
    # the server's answer: the session's own value once the SETs ran, if they all ran. The global
    # is the whole server's, and the server is the run's: each case holds a named lock the others
    # wait for, starts from the default (a case cut short may have left another global) and puts
    # it back before letting go; the one session elsewhere that waits unbounded sets its own.
    script = (
        f"SELECT GET_LOCK('{GLOBAL_SETTINGS}', 60); SET GLOBAL lock_wait_timeout = DEFAULT; "
        f"SET SESSION lock_wait_timeout = DEFAULT; {setting}; SELECT @@session.lock_wait_timeout AS value; "
        "SET GLOBAL lock_wait_timeout = DEFAULT"
    )
    done = server.sql(fresh(server), script)
    assert done.stdout.splitlines()[1:2] == ["1"], done.stderr  # the lock was got
    session_bound = done.returncode == 0 and int(done.stdout.split()[-1]) <= LOCK_WAIT_LIMIT
    assert (missing == []) == session_bound, (done.stdout, done.stderr)


def test_lock_wait_timeout_bounds_an_alter_that_queues_and_what_queues_behind_it(server: LocalMariaDB) -> None:
    database = fresh(server)
    with holding(server, database, "BEGIN; SELECT COUNT(*) FROM users"):  # an open transaction read it
        # bounded, the ALTER gives up; the old release never waited on it
        alter = "ALTER TABLE users ADD COLUMN nickname VARCHAR(64)"
        in_a_second = server.sql(database, f"SET SESSION lock_wait_timeout = 1; {alter}")
        assert TIMED_OUT in in_a_second.stderr, in_a_second.stderr
        assert TIMED_OUT in bounded(server, database, alter, user="root").stderr  # 0: no wait at all
        assert bounded(server, database, "SELECT COUNT(*) FROM users").returncode == 0
        # unbounded (the server's default, set on the session: another worker's case above may
        # have the global changed for a moment), it waits for the metadata lock, and a plain read
        # waits behind it
        queued = server.session(database, f"SET SESSION lock_wait_timeout = 86400; {alter}")
        wait_for(server, database, "Waiting for table metadata lock")
        assert TIMED_OUT in bounded(server, database, "SELECT COUNT(*) FROM users").stderr
    queued.communicate(timeout=60)
    assert queued.returncode == 0  # it ran once the transaction ended


@pytest.mark.parametrize(
    ("statement", "queues"),
    [
        ("ALTER TABLE users ADD COLUMN nickname VARCHAR(64), ALGORITHM=INSTANT", True),
        ("DROP INDEX users_email ON users ALGORITHM=INPLACE LOCK=NONE", True),
        ("CREATE INDEX users_email ON users (email) ALGORITHM=INPLACE LOCK=NONE", True),
        ("RENAME TABLE users TO accounts", True),
        ("DROP TABLE orders", True),
        ("ALTER TABLE users CONVERT TO CHARACTER SET utf8mb4", True),  # one sqlglot cannot read: review too
        ("UPDATE users SET age = 1 WHERE id = 1", False),
        ("CREATE TABLE audit (id INT PRIMARY KEY)", False),
        # MariaDB adds a new table's key without waiting on the table it references (MySQL 8 waits:
        # a limit the docs name)
        ("CREATE TABLE audit (id INT PRIMARY KEY, user_id INT, FOREIGN KEY (user_id) REFERENCES users (id))", False),
    ],
)
def test_the_rule_names_each_statement_that_waits_for_a_metadata_lock(
    server: LocalMariaDB, statement: str, queues: bool
) -> None:
    rules = [f.rule for f in MySQL().classify(statement + ";\nALTER TABLE orders ADD COLUMN x INT;\n", "m.sql")]
    assert (rules[0] == MISSING) == queues and rules.count(MISSING) == 1  # said once per file
    database = fresh(server)
    setup = "CREATE INDEX users_email ON users (email)" if statement.startswith("DROP INDEX") else "SELECT 1"
    assert server.sql(database, setup).returncode == 0
    run = statement.replace("DROP INDEX users_email ON users", "ALTER TABLE users DROP INDEX users_email,")
    run = run.replace("INPLACE LOCK", "INPLACE, LOCK") if run.startswith("ALTER") else run
    with holding(server, database, "BEGIN; SELECT COUNT(*) FROM users, orders"):
        done = bounded(server, database, run, user="root")
    assert (TIMED_OUT in done.stderr) == queues, done.stderr


def test_a_timeout_holds_for_its_own_file_only_and_a_waiver_is_recorded(cli: Cli, tmp_path: Path) -> None:
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    (migrations / "001.sql").write_text("SET SESSION lock_wait_timeout = 5;\nALTER TABLE users ADD COLUMN a INT;\n")
    (migrations / "002.sql").write_text("SELECT 1;\nALTER TABLE users ADD COLUMN b INT;\n")
    checked = cli(["migrations", "check", "--dialect", "mysql", "--json", "migrations"], cwd=tmp_path)
    assert checked.code == 1, checked.out
    flagged = [(row["file"], row["line"]) for row in json.loads(checked.out)["statements"] if row["rule"] == MISSING]
    assert flagged == [("migrations/002.sql", 2)]
    (migrations / "002.sql").write_text(
        "SELECT 1;\n-- pipeline-kit: allow missing-lock-timeout because the table has no traffic yet\n"
        "ALTER TABLE users ADD COLUMN b INT;\n"
    )
    waived = cli(["migrations", "check", "--dialect", "mysql", "migrations"], cwd=tmp_path)
    assert waived.code == 0, waived.out
