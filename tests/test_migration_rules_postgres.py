"""The PostgreSQL classifier's rules on code it cannot see through, column defaults, WHERE clauses
and lock_timeout, each checked against what a real PostgreSQL does: the old-release client
(tests/test_migrations.py) after a script that hides a contract in code, the table's file node
(a rewrite gives it a new one), the rows an UPDATE touches, and the lock_timeout in force."""

from __future__ import annotations

import subprocess

import pytest

from pipeline_kit.migrations.pg_expressions import KNOWN_VOLATILE, NON_VOLATILE
from pipeline_kit.migrations.postgres import Postgres
from tests.postgres_instance import LocalPostgres
from tests.shared_services import unique_name
from tests.test_migrations import old_release_errors, with_template

TEMPLATE = unique_name("rules_base")  # this worker's: a template nobody else copies or connects to


@pytest.fixture(scope="module")
def postgres(postgres_server: LocalPostgres) -> LocalPostgres:
    return with_template(postgres_server, TEMPLATE)


def old_release_errors_in(postgres: LocalPostgres, database: str) -> list[str]:
    return old_release_errors(lambda request: postgres.psql(database, request, user="app"))


def fresh(postgres: LocalPostgres) -> str:
    database = unique_name("rules")
    assert postgres.psql("postgres", f"CREATE DATABASE {database} TEMPLATE {TEMPLATE}").returncode == 0
    return database


def value(postgres: LocalPostgres, database: str, query: str) -> str:
    done = postgres.psql(database, f"COPY ({query}) TO STDOUT")
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


PURGE = (
    "CREATE FUNCTION purge() RETURNS int LANGUAGE plpgsql AS $$ BEGIN "
    "ALTER TABLE users DROP COLUMN legacy; DROP TABLE orders; RETURN 1; END $$"
)
DROPS_ORDERS = (
    "CREATE FUNCTION purge2() RETURNS int LANGUAGE plpgsql AS $$ BEGIN DROP TABLE IF EXISTS orders; RETURN 1; END $$"
)
# (script, the rule that must make a human look at it): each hides a contract in code
HIDDEN = (
    (f"{PURGE};\nCREATE TABLE audit_log (n int);\nINSERT INTO audit_log SELECT purge();", "calls-user-function"),
    (
        f"{PURGE};\nCREATE TABLE settings (id int, v int);\nINSERT INTO settings VALUES (1, 0);\n"
        "UPDATE settings SET v = purge() WHERE id = 1;",
        "calls-user-function",
    ),
    (f"{PURGE};\nSELECT purge();", "calls-user-function"),
    (
        "CREATE TABLE audit_log (n int);\n"
        "CREATE FUNCTION fired() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "ALTER TABLE users DROP COLUMN legacy; RETURN NEW; END $$;\n"
        "CREATE TRIGGER audit AFTER INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION fired();\n"
        "INSERT INTO audit_log VALUES (1);",
        "opaque-code",
    ),
    ("DO $$ BEGIN EXECUTE 'ALTER TABLE users DROP COLUMN legacy'; END $$;", "do-block"),
    (
        "CREATE PROCEDURE tidy() LANGUAGE sql AS $$ ALTER TABLE users DROP COLUMN legacy $$;\nCALL tidy();",
        "opaque-code",
    ),
    # run while the statement builds something: for every row, or once
    (f"{PURGE};\nCREATE MATERIALIZED VIEW purged AS SELECT purge() AS n;", "calls-user-function"),
    (f"{PURGE};\nCREATE TABLE purged AS SELECT purge() AS n;", "calls-user-function"),
    (
        f"{DROPS_ORDERS};\nALTER TABLE users ADD COLUMN marker int DEFAULT purge2();",
        "add-column-volatile-default",
    ),
    (f"{DROPS_ORDERS};\nALTER TABLE users ADD COLUMN marker int DEFAULT purge2();", "calls-user-function"),
)


@pytest.mark.parametrize(("script", "rule"), HIDDEN)
def test_code_the_classifier_cannot_see_through_is_never_a_pass(
    postgres: LocalPostgres, script: str, rule: str
) -> None:
    findings = Postgres().classify("SET lock_timeout = '2s';\n" + script, "m.sql")
    assert rule in {f.rule for f in findings if f.needs_attention}, findings
    assert not any(f.phase == "review" and not f.needs_attention for f in findings)
    # the database: the script breaks the old release, so any pass would have been a lie
    database = fresh(postgres)
    applied = postgres.psql(database, script)
    assert applied.returncode == 0, applied.stderr
    assert old_release_errors_in(postgres, database)


def test_calling_postgres_own_functions_is_seen_through(postgres: LocalPostgres) -> None:
    script = (
        "CREATE TABLE audit_log (n int, at timestamptz, id uuid);\n"
        "INSERT INTO audit_log SELECT count(*), now(), gen_random_uuid() FROM users;\n"
        "UPDATE users SET email = lower(email) || md5(name) WHERE id BETWEEN 1 AND 10;"
    )
    findings = Postgres().classify(script, "m.sql")
    assert [(f.phase, f.rule) for f in findings] == [
        ("expand", "create-table"),
        ("migrate", "insert"),
        ("migrate", "backfill"),
    ]
    database = fresh(postgres)
    assert postgres.psql(database, script).returncode == 0
    assert old_release_errors_in(postgres, database) == []


def test_the_known_functions_are_postgres_own_as_listed(postgres: LocalPostgres) -> None:
    # every overload of each name listed as immutable or stable is; each known volatile one exists
    names = ", ".join(f"'{name}'" for name in sorted(NON_VOLATILE | KNOWN_VOLATILE))
    rows = value(
        postgres,
        "postgres",
        "SELECT proname, string_agg(DISTINCT provolatile::text, '') FROM pg_proc "
        f"WHERE pronamespace = 'pg_catalog'::regnamespace AND proname IN ({names}) GROUP BY proname",
    )
    found = dict(line.split("\t") for line in rows.splitlines())
    assert {name for name, kinds in found.items() if "v" in kinds} == set(KNOWN_VOLATILE)
    assert set(found) == NON_VOLATILE | KNOWN_VOLATILE


# (the column added to users, its 50 rows present): lock risk, and whether PostgreSQL rewrites it
DEFAULTS = (
    ("score int NOT NULL DEFAULT 0", "safe", False),
    ("created timestamptz DEFAULT now()", "safe", False),
    ("created_utc timestamp DEFAULT timezone('utc', now())", "safe", False),
    ("tags jsonb DEFAULT '{}'::jsonb", "safe", False),
    ("due date DEFAULT CURRENT_DATE + 7", "safe", False),
    ("token uuid DEFAULT gen_random_uuid()", "blocks", True),
    ("marker int DEFAULT purge2()", "blocks", True),
    ("n serial", "blocks", True),
    ("m int GENERATED ALWAYS AS IDENTITY", "blocks", True),
    ("double_age int GENERATED ALWAYS AS (age * 2) STORED", "blocks", True),
    # declared IMMUTABLE by its author, which nothing checks: not proven, so called a rewrite
    ("fixed int DEFAULT fixed_one()", "blocks", False),
)


@pytest.mark.parametrize(("column", "lock", "rewrites"), DEFAULTS)
def test_a_default_not_proven_immutable_or_stable_is_a_table_rewrite(
    postgres: LocalPostgres, column: str, lock: str, rewrites: bool
) -> None:
    findings = Postgres().classify(f"SET lock_timeout = '2s';\nALTER TABLE users ADD COLUMN {column};", "m.sql")[1:]
    (finding,) = [f for f in findings if f.rule != "calls-user-function"]
    assert (finding.phase, finding.lock) == ("expand", lock)
    user_function = "purge2" in column or "fixed_one" in column
    assert ("calls-user-function" in {f.rule for f in findings}) == user_function
    database = fresh(postgres)
    functions = (
        "CREATE FUNCTION purge2() RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN 2; END $$;"
        "CREATE FUNCTION fixed_one() RETURNS int LANGUAGE sql IMMUTABLE AS $$ SELECT 1 $$"
    )
    assert postgres.psql(database, functions).returncode == 0
    before = value(postgres, database, "SELECT pg_relation_filenode('users')")
    applied = postgres.psql(database, f"ALTER TABLE users ADD COLUMN {column}")
    assert applied.returncode == 0, applied.stderr
    assert (value(postgres, database, "SELECT pg_relation_filenode('users')") != before) == rewrites


@pytest.mark.parametrize(
    ("statement", "lock", "rewrites"),
    [
        ("VACUUM FULL users", "blocks", True),
        ("VACUUM (FULL, ANALYZE) users", "blocks", True),
        ("VACUUM users", "safe", False),
        ("ANALYZE users", "safe", False),
    ],
)
def test_vacuum_full_is_a_rewrite_and_vacuum_is_not(
    postgres: LocalPostgres, statement: str, lock: str, rewrites: bool
) -> None:
    (finding,) = Postgres().classify(statement + ";", "m.sql")
    assert (finding.phase, finding.lock) == ("neutral", lock)
    database = fresh(postgres)
    before = value(postgres, database, "SELECT pg_relation_filenode('users')")
    assert postgres.psql(database, statement).returncode == 0
    assert (value(postgres, database, "SELECT pg_relation_filenode('users')") != before) == rewrites


# (WHERE, whether it selects every row of users)
WHERES = (
    ("true", True),
    ("1 = 1", True),
    ("id = id", True),
    ("NOT false", True),
    ("id < 10 OR 2 > 1", True),
    ("EXISTS (SELECT 1)", True),
    ("id BETWEEN 1 AND 10", False),
    ("id < 10 OR id > 40", False),
)


@pytest.mark.parametrize(("where", "every_row"), WHERES)
def test_a_where_that_selects_every_row_is_no_batch(postgres: LocalPostgres, where: str, every_row: bool) -> None:
    (finding,) = Postgres().classify(f"UPDATE users SET age = age WHERE {where};", "m.sql")
    assert (finding.rule, finding.lock) == (("unbatched-backfill", "blocks") if every_row else ("backfill", "safe"))
    database = fresh(postgres)
    touched = value(postgres, database, f"UPDATE users SET age = age WHERE {where} RETURNING id").splitlines()
    total = int(value(postgres, database, "SELECT count(*) FROM users"))
    assert (len(touched) == total) == every_row


@pytest.mark.parametrize(
    "setting",
    [
        *("SET lock_timeout = 0", "SET lock_timeout = '0'", "SET lock_timeout = '0ms'", "SET lock_timeout TO DEFAULT"),
        *(
            "RESET lock_timeout",
            "SET lock_timeout = '2s'",
            "SET lock_timeout = 2000",
            "SET LOCAL lock_timeout = '1min'",
        ),
    ],
)
def test_only_a_non_zero_lock_timeout_satisfies_the_rule(postgres: LocalPostgres, setting: str) -> None:
    rules = [
        f.rule for f in Postgres().classify(f"BEGIN;\n{setting};\nALTER TABLE users ADD COLUMN a text;\n", "m.sql")
    ]
    # PostgreSQL's own answer: the lock_timeout in force after the statement (0: wait forever)
    shown = postgres.psql("postgres", f"BEGIN; {setting}; SHOW lock_timeout; COMMIT")
    assert shown.returncode == 0, shown.stderr
    waits_forever = shown.stdout.split()[2] == "0"
    assert ("missing-lock-timeout" in rules) == waits_forever, (rules, shown.stdout)


@pytest.mark.parametrize("local", [True, False])
def test_a_local_lock_timeout_ends_with_its_transaction(postgres: LocalPostgres, local: bool) -> None:
    setting = f"SET {'LOCAL ' if local else ''}lock_timeout = '2s'"
    script = f"BEGIN;\n{setting};\nCOMMIT;\nALTER TABLE users ADD COLUMN a text;\n"
    rules = [f.rule for f in Postgres().classify(script, "m.sql")]
    # PostgreSQL's own answer: the lock_timeout in force after the transaction
    shown = postgres.psql("postgres", f"BEGIN; {setting}; COMMIT; SHOW lock_timeout")
    assert shown.returncode == 0, shown.stderr
    assert ("missing-lock-timeout" in rules) == (shown.stdout.split()[2] == "0") == local, (rules, shown.stdout)


def test_a_zero_lock_timeout_queues_behind_a_long_transaction(postgres: LocalPostgres) -> None:
    """The reason for the rule, on the database: behind a transaction that holds the table,
    lock_timeout 0 waits (until the statement timeout here), a real one fails fast."""
    database = fresh(postgres)
    holder_name = f"holder-{database}"  # the server is the run's: only this test's session is ended
    holder = subprocess.Popen(
        [
            *("psql", "-h", "127.0.0.1", "-p", str(postgres.port), "-U", "postgres", "-d", database, "-X", "-q"),
            *("-c", "BEGIN; LOCK TABLE users IN ACCESS SHARE MODE; SELECT pg_sleep(60)"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={"PGAPPNAME": holder_name},
    )
    try:
        held = (
            f"SELECT count(*) FROM pg_locks JOIN pg_stat_activity USING (pid) WHERE application_name = '{holder_name}'"
        )
        while value(postgres, database, held) == "0":
            assert holder.poll() is None
        alter = "ALTER TABLE users ADD COLUMN a text"
        forever = postgres.psql(database, f"SET statement_timeout = '1s'; SET lock_timeout = 0; {alter}")
        fast = postgres.psql(database, f"SET statement_timeout = '1s'; SET lock_timeout = '50ms'; {alter}")
    finally:
        postgres.psql(
            "postgres",
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '{holder_name}'",
        )
        holder.wait(timeout=30)
    assert "canceling statement due to statement timeout" in forever.stderr
    assert "canceling statement due to lock timeout" in fast.stderr
