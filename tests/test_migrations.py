"""The migration classifier: its labels checked against what a real PostgreSQL does to a running
"old release" (every statement it calls expand leaves the old release working, every one it calls
contract breaks it), its lock and waiver rules, and `pipeline-kit migrations check`."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline_kit.migrations.postgres import Postgres
from tests.conftest import LEDGER, REPOSITORY, SIGNER, Cli, describe, forge_line, sign
from tests.postgres_instance import LocalPostgres
from tests.shared_services import unique_name
from tests.sigstore_instance import LocalSigstore

SCHEMA = """
CREATE TABLE users (id serial PRIMARY KEY, name text, email text, legacy text, age int);
INSERT INTO users (name, email, legacy, age) SELECT 'n' || i, 'e' || i, 'l', i FROM generate_series(1, 50) i;
CREATE TABLE orders (id serial PRIMARY KEY, user_id int, total int);
DO $$ BEGIN CREATE ROLE app LOGIN; EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$;
GRANT ALL ON ALL TABLES IN SCHEMA public TO app;
GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO app;
"""

# What the old release does, each its own request (as the role `app`), as it ran before the migration.
OLD_RELEASE = (
    "SELECT id, name, email, legacy, age FROM users WHERE id = 1",
    "INSERT INTO users (name, email, legacy, age) VALUES ('x', 'y', 'z', 5)",
    "INSERT INTO users (name) VALUES ('only a name')",
    "UPDATE users SET email = 'shared' WHERE id IN (2, 3)",
    "INSERT INTO orders (user_id, total) VALUES (1, -5)",
    "SELECT user_id, total FROM orders",
    "SELECT * FROM orders o JOIN users u ON u.id = o.user_id",
    "INSERT INTO orders (user_id, total) VALUES (50, 10)",
    "INSERT INTO orders (user_id, total) VALUES (999, 5)",  # the child written before its parent
    "DELETE FROM users WHERE id = 50",  # a parent still referenced (its orders are purged later)
)

# Statements as migrations write them; the expected phase is the classifier's to get right and
# the database's to confirm (expand: the old release keeps working; contract: it breaks).
CORPUS = (
    ("ALTER TABLE users ADD COLUMN nickname text", "expand"),
    ("ALTER TABLE users ADD COLUMN score int NOT NULL DEFAULT 0", "expand"),
    ("ALTER TABLE users ADD COLUMN created timestamptz DEFAULT now()", "expand"),
    ("CREATE TABLE audit (id bigserial PRIMARY KEY, at timestamptz NOT NULL)", "expand"),
    ("CREATE INDEX CONCURRENTLY users_email ON users (email)", "expand"),
    ("ALTER TABLE users ALTER COLUMN age SET DEFAULT 0", "expand"),
    ("ALTER TABLE users ADD COLUMN handle text UNIQUE", "expand"),  # the old release never writes it
    ("CREATE TABLE user_names AS SELECT id, name FROM users", "expand"),
    ("CREATE MATERIALIZED VIEW user_names AS SELECT id, name FROM users", "expand"),
    ("ANALYZE users", "neutral"),
    ("ALTER TABLE users DROP COLUMN legacy", "contract"),
    ("ALTER TABLE users RENAME COLUMN name TO full_name", "contract"),
    ("ALTER TABLE users RENAME TO accounts", "contract"),
    ("DROP TABLE orders", "contract"),
    ("ALTER TABLE users ALTER COLUMN email SET NOT NULL", "contract"),
    ("ALTER TABLE orders ADD COLUMN currency text NOT NULL", "contract"),
    ("ALTER TABLE orders ADD CONSTRAINT total_positive CHECK (total > 0) NOT VALID", "contract"),
    ("CREATE UNIQUE INDEX CONCURRENTLY users_email_unique ON users (email)", "contract"),
    # a foreign key restricts the old release's writes like a CHECK: NOT VALID spares only old rows
    ("ALTER TABLE orders ADD CONSTRAINT orders_user FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID", "contract"),
    ("ALTER TABLE orders ADD CONSTRAINT orders_user FOREIGN KEY (user_id) REFERENCES users (id)", "contract"),
    ("REVOKE DELETE ON users FROM app", "contract"),
    ("GRANT SELECT ON users TO PUBLIC", "neutral"),
)


BASE = unique_name("base")  # this worker's template: the server is the run's


def with_template(postgres_server: LocalPostgres, name: str) -> LocalPostgres:
    """The run's PostgreSQL with the database `name` (SCHEMA), which tests copy. Roles are the
    server's: another worker may be making `app` at the same moment (then this one's CREATE ROLE
    fails on the catalog's unique index, not as a duplicate)."""
    assert postgres_server.psql("postgres", f"CREATE DATABASE {name}").returncode == 0
    setup = postgres_server.psql(name, SCHEMA)
    assert setup.returncode == 0, setup.stderr
    return postgres_server


@pytest.fixture(scope="module")
def postgres(postgres_server: LocalPostgres) -> LocalPostgres:
    return with_template(postgres_server, BASE)


def old_release_errors(run: Callable[[str], subprocess.CompletedProcess[str]]) -> list[str]:
    """What fails of the old release's requests, each run by `run` as the old release's user."""
    errors = []
    for request in OLD_RELEASE:
        done = run(request)
        if done.returncode != 0:
            errors.append(
                f"{request}: {next((line for line in done.stderr.splitlines() if 'ERROR' in line), done.stderr.strip())}"
            )
    return errors


@pytest.mark.parametrize(("statement", "expected"), CORPUS)
def test_the_classifier_agrees_with_the_database(postgres: LocalPostgres, statement: str, expected: str) -> None:
    phases = {f.phase for f in Postgres().classify(statement + ";", "m.sql") if f.rule != "missing-lock-timeout"}
    assert phases == {expected}
    database = unique_name("t")
    assert postgres.psql("postgres", f"CREATE DATABASE {database} TEMPLATE {BASE}").returncode == 0
    applied = postgres.psql(database, statement)
    assert applied.returncode == 0, applied.stderr
    errors = old_release_errors(lambda request: postgres.psql(database, request, user="app"))
    if expected in ("expand", "neutral"):
        assert errors == [], errors  # the running release does not notice
    else:
        assert errors, "a contract statement the old release survives is not a contract"


@pytest.mark.parametrize(
    ("statement", "rule", "lock"),
    [
        ("CREATE INDEX users_email ON users (email)", "index-not-concurrent", "blocks"),
        ("ALTER TABLE users ADD COLUMN token uuid DEFAULT gen_random_uuid()", "add-column-volatile-default", "blocks"),
        ("ALTER TABLE users ALTER COLUMN age TYPE bigint", "alter-column-type", "blocks"),
        (
            "ALTER TABLE orders ADD CONSTRAINT f FOREIGN KEY (user_id) REFERENCES users (id)",
            "foreign-key-validated",
            "blocks",
        ),
        ("UPDATE users SET age = 0", "unbatched-backfill", "blocks"),
        ("UPDATE users SET age = 0 WHERE id BETWEEN 1 AND 1000", "backfill", "safe"),
        ("ALTER TABLE orders VALIDATE CONSTRAINT f", "validate-constraint", "safe"),
        ("DO $$ BEGIN PERFORM 1; END $$", "do-block", "n/a"),
    ],
)
def test_lock_risks_and_what_cannot_be_classified(statement: str, rule: str, lock: str) -> None:
    (finding,) = Postgres().classify(f"SET lock_timeout = '2s';\n{statement};", "m.sql")[1:]
    assert (finding.rule, finding.lock, finding.line) == (rule, lock, 2)


def test_unparsable_sql_is_review_never_a_pass() -> None:
    # the typo sqlglot turns into an opaque command on PostgreSQL; here the parser refuses it
    (finding,) = Postgres().classify("ALTER TABLE users DROPP COLUMN legacy;", "m.sql")
    assert finding.phase == "review" and finding.needs_attention


def test_lock_timeout_must_come_first_and_concurrent_index_not_in_a_transaction() -> None:
    findings = Postgres().classify("ALTER TABLE users ADD COLUMN a text;\n", "m.sql")
    assert findings[0].rule == "missing-lock-timeout" and findings[0].needs_attention
    inside = Postgres().classify("BEGIN;\nCREATE INDEX CONCURRENTLY i ON users (email);\nCOMMIT;\n", "m.sql")
    assert [f.rule for f in inside] == ["transaction", "concurrent-index-in-transaction", "transaction"]


def test_a_waiver_covers_the_next_statement_only_and_is_recorded(cli: Cli, tmp_path: Path) -> None:
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    (migrations / "002_drop.sql").write_text(
        "SET lock_timeout = '2s';\n"
        "-- pipeline-kit: allow drop-column because no release reads legacy since 1.4\n"
        "ALTER TABLE users DROP COLUMN legacy;\n"
        "ALTER TABLE users DROP COLUMN age;\n"
    )
    (migrations / "001_add.sql").write_text("SET lock_timeout = '2s';\nALTER TABLE users ADD COLUMN nickname text;\n")
    result = cli(["migrations", "check", "--json", str(migrations)], cwd=tmp_path)
    assert result.code == 1  # the second drop is not waived
    rows = json.loads(result.out)["statements"]
    assert [(Path(r["file"]).name, r["line"], r["rule"], r["waived"]) for r in rows if r["rule"] != "variableset"] == [
        ("001_add.sql", 2, "add-column", None),
        ("002_drop.sql", 3, "drop-column", "no release reads legacy since 1.4"),
        ("002_drop.sql", 4, "drop-column", None),
    ]
    (migrations / "002_drop.sql").write_text(
        "SET lock_timeout = '2s';\n-- pipeline-kit: allow drop-column because gone since 1.4\nALTER TABLE users DROP COLUMN legacy;\n"
    )
    assert cli(["migrations", "check", str(migrations)], cwd=tmp_path).code == 0
    assert cli(["migrations", "check", str(tmp_path / "missing")], cwd=tmp_path).code == 2


# -- the gate and the rollback, on signed evidence ----------------------------------------------


def with_migrations(project: Path, files: dict[str, str]) -> None:
    config_path = project / "pipeline-kit.yml"
    config = yaml.safe_load(config_path.read_text())
    config["migrations"] = {"paths": ["migrations"]}
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    (project / "migrations").mkdir(exist_ok=True)
    for name, text in files.items():
        (project / "migrations" / name).write_text(text)


def release_with(
    cli: Cli, project: Path, sigstore: LocalSigstore, monkeypatch: pytest.MonkeyPatch, files: dict[str, str]
) -> str:
    with_migrations(project, files)
    # the migrations ship with the code that needs them: a new build, a new release
    (project / "src" / "hello_service" / "schema.py").write_text(f"MIGRATIONS = {sorted(files.items())!r}\n")
    describe(cli, project)
    code, err = sign(cli, project, sigstore, monkeypatch)
    assert code == 0, err
    monkeypatch.setenv("SIGSTORE_IDENTITY_TOKEN", sigstore.mint_token(SIGNER))
    return str(json.loads((project / ".pipeline-kit" / "release.json").read_text())["id"])


ADD = "SET lock_timeout = '2s';\nALTER TABLE users ADD COLUMN nickname text;\n"
DROP = "SET lock_timeout = '2s';\nALTER TABLE users DROP COLUMN legacy;\n"


def test_the_gate_judges_the_signed_record_and_a_rollback_never_crosses_a_contract_step(
    cli: Cli, described: Path, sigstore: LocalSigstore, policy: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    project = described
    first = release_with(cli, project, sigstore, monkeypatch, {"001_add.sql": ADD})
    promoted = cli(["promote", "--to", "dev", *policy], cwd=project)
    assert promoted.code == 0, promoted.out + promoted.err
    assert "migrations     pass     2 statement(s) in 1 file(s), none needing attention" in promoted.out

    # an unwaived contract step is denied, and named
    release_with(cli, project, sigstore, monkeypatch, {"002_drop.sql": DROP})
    denied = cli(["plan", "--to", "dev", *policy], cwd=project)
    assert denied.code == 1 and "migrations/002_drop.sql:2 contract drop-column" in denied.out

    # attack: edit the record to hide the drop; it is no longer the one the provenance signed
    record_path = project / ".pipeline-kit" / "migrations.json"
    record = json.loads(record_path.read_text())
    record["statements"] = [s for s in record["statements"] if s["rule"] != "drop-column"]
    record_path.write_text(json.dumps(record))
    forged = cli(["plan", "--to", "dev", *policy], cwd=project)
    assert forged.code == 1 and "migrations.json: differs from the file the provenance signed" in forged.out

    # waived where it is safe: passes, the waiver recorded in the signed decision
    waiver = "-- pipeline-kit: allow drop-column because no release reads legacy since 0.1\n"
    second = release_with(
        cli, project, sigstore, monkeypatch, {"002_drop.sql": DROP.replace("ALTER", waiver + "ALTER")}
    )
    assert cli(["promote", "--to", "dev", *policy], cwd=project).code == 0
    decision = json.loads((project / ".pipeline-kit" / "promotions" / "dev.decision.json").read_text())
    reason = next(g["reason"] for g in decision["gates"] if g["gate"] == "migrations")
    assert "drop-column waived: no release reads legacy since 0.1" in reason

    # the way back to the first release would run its code on a table without `legacy`
    back = cli(["rollback", "--env", "dev", "--reason", "errors", *policy], cwd=project)
    assert back.code == 2, back.out + back.err
    assert f"rolling back from {second} to {first} would cross contract migration(s)" in back.err
    assert "pipeline-kit flags kill" in back.err
    # attack: hide the drop in the current release's archived record to open the way back
    archived = project / ".pipeline-kit" / "releases" / second / "migrations.json"
    record = json.loads(archived.read_text())
    record["statements"] = [s for s in record["statements"] if s["rule"] != "drop-column"]
    for copy in (archived, project / ".pipeline-kit" / "migrations.json"):  # the archive, then the top level
        copy.write_text(json.dumps(record))
        forced = cli(["rollback", "--env", "dev", "--reason", "errors", *policy], cwd=project)
        assert forced.code in (1, 2) and "rolled back" not in forced.out, forced.err
    assert forced.code == 1 and f"{second}'s evidence does not verify: migrations.json" in forced.err


def test_migration_files_in_the_order_the_tools_apply_them(tmp_path: Path) -> None:
    from pipeline_kit.migrations import migration_files

    for name in (
        "V10__later.sql",
        "V2__earlier.sql",
        "U2__undo.sql",
        "3_add.up.sql",
        "3_add.down.sql",
        "V1__first.sql",
    ):
        (tmp_path / name).write_text("SELECT 1;\n")
    assert [p.name for p in migration_files([tmp_path])] == [
        "3_add.up.sql",
        "V1__first.sql",
        "V2__earlier.sql",
        "V10__later.sql",
    ]


# -- SQLite and MySQL, through sqlglot ------------------------------------------------------------

SQLITE_CORPUS = (
    ("ALTER TABLE users ADD COLUMN nickname TEXT", "expand"),
    ("ALTER TABLE users ADD COLUMN score INTEGER NOT NULL DEFAULT 0", "expand"),
    ("CREATE TABLE audit (id INTEGER PRIMARY KEY, at TEXT NOT NULL)", "expand"),
    ("CREATE INDEX users_email ON users (email)", "expand"),
    ("ALTER TABLE users DROP COLUMN legacy", "contract"),
    ("ALTER TABLE users RENAME COLUMN name TO full_name", "contract"),
    ("ALTER TABLE users RENAME TO accounts", "contract"),
    ("DROP TABLE orders", "contract"),
    ("CREATE UNIQUE INDEX users_email_unique ON users (email)", "contract"),
)


@pytest.mark.parametrize(("statement", "expected"), SQLITE_CORPUS)
def test_the_sqlite_classifier_agrees_with_sqlite(statement: str, expected: str) -> None:
    import sqlite3

    from pipeline_kit.migrations.sqlglot_dialects import SQLite

    (finding,) = SQLite().classify(statement + ";", "m.sql")
    assert finding.phase == expected
    database = sqlite3.connect(":memory:")
    database.executescript(
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, email TEXT, legacy TEXT, age INTEGER);"
        "INSERT INTO users (name, email, legacy, age) VALUES ('a', 'e1', 'l', 1), ('b', 'e2', 'l', 2);"
        "CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INTEGER, total INTEGER);"
    )
    database.execute(statement)
    errors = []
    for request in OLD_RELEASE:
        try:
            database.execute(request)
        except sqlite3.DatabaseError as exc:
            errors.append(f"{request}: {exc}")
    assert (errors == []) == (expected == "expand"), errors


def test_mysql_online_ddl_and_what_sqlglot_cannot_read() -> None:
    from pipeline_kit.migrations.sqlglot_dialects import MySQL, SQLite

    mysql = MySQL().classify("ALTER TABLE users MODIFY COLUMN age BIGINT;\nUPDATE users SET age = 0;\n", "m.sql")
    assert [(f.line, f.phase, f.lock, f.rule) for f in mysql] == [
        (1, "neutral", "blocks", "missing-lock-timeout"),
        (1, "contract", "blocks", "alter-column-type"),
        (2, "migrate", "blocks", "unbatched-backfill"),
    ]
    # the same statement SQLite has no syntax for: an opaque command, a human must look
    (opaque,) = SQLite().classify("ALTER TABLE users MODIFY COLUMN age BIGINT;", "m.sql")
    assert opaque.phase == "review" and opaque.needs_attention


EXPAND = "SET lock_timeout = '2s';\nALTER TABLE users ADD COLUMN full_name text;\n"
CONTRACT = (
    "-- pipeline-kit: expand-step migrations/001_expand.sql\n"
    "SET lock_timeout = '2s';\nALTER TABLE users DROP COLUMN name;\n"
)


def side_by_side(project: Path) -> None:
    """dev and prod, each promoted to directly: what matters is what each one runs."""
    config_path = project / "pipeline-kit.yml"
    config = yaml.safe_load(config_path.read_text())
    config["environments"] = {"dev": {"gates": ["signature"]}, "prod": {"gates": ["signature"]}}
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))


@pytest.mark.parametrize("prod_has_the_expand_step", [False, True])
def test_a_declared_contract_step_waits_until_every_environment_runs_its_expand_step(
    cli: Cli,
    described: Path,
    sigstore: LocalSigstore,
    policy: list[str],
    monkeypatch: pytest.MonkeyPatch,
    prod_has_the_expand_step: bool,
) -> None:
    project = described
    side_by_side(project)
    old = release_with(cli, project, sigstore, monkeypatch, {"000_base.sql": ADD})
    for environment in ("dev", "prod"):
        assert cli(["promote", "--to", environment, *policy], cwd=project).code == 0
    expanded = release_with(cli, project, sigstore, monkeypatch, {"001_expand.sql": EXPAND})
    assert cli(["promote", "--to", "dev", *policy], cwd=project).code == 0
    if prod_has_the_expand_step:
        assert cli(["promote", "--to", "prod", *policy], cwd=project).code == 0
    release_with(cli, project, sigstore, monkeypatch, {"002_contract.sql": CONTRACT})
    planned = cli(["plan", "--to", "dev", *policy], cwd=project)
    if prod_has_the_expand_step:
        assert planned.code == 0, planned.out
        assert "migrations/002_contract.sql: contract step after migrations/001_expand.sql" in planned.out
    else:
        assert planned.code == 1
        assert (
            "migrations/002_contract.sql is a contract step after migrations/001_expand.sql, "
            f"but prod still runs {old}, which does not have it"
        ) in planned.out
    assert old != expanded


@pytest.mark.parametrize("prod_has_the_expand_step", [False, True])
def test_the_dry_run_judges_a_contract_step_as_the_real_promotion_does(
    cli: Cli,
    described: Path,
    sigstore: LocalSigstore,
    policy: list[str],
    monkeypatch: pytest.MonkeyPatch,
    prod_has_the_expand_step: bool,
) -> None:
    # the dry run said "cannot tell what the environments run (no identity policy?)" with
    # signing.identity set, and the real promotion passed: one judge, the signatures on trust
    project = described
    side_by_side(project)
    config_path = project / "pipeline-kit.yml"
    config = yaml.safe_load(config_path.read_text())
    config["signing"]["identity"] = {"issuer": sigstore.issuer, "san": SIGNER, "repository": REPOSITORY}
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    old = release_with(cli, project, sigstore, monkeypatch, {"000_base.sql": ADD})
    for environment in ("dev", "prod"):
        assert cli(["promote", "--to", environment, *policy], cwd=project).code == 0
    release_with(cli, project, sigstore, monkeypatch, {"001_expand.sql": EXPAND})
    assert cli(["promote", "--to", "dev", *policy], cwd=project).code == 0
    if prod_has_the_expand_step:
        assert cli(["promote", "--to", "prod", *policy], cwd=project).code == 0
    release_with(cli, project, sigstore, monkeypatch, {"002_contract.sql": CONTRACT})
    real = cli(["plan", "--to", "dev", *policy], cwd=project)
    (project / "src" / "hello_service" / "next.py").write_text("NEXT = True\n")  # the next commit, unsigned
    dry = cli(["run", "--dry-run"], cwd=project)
    assert dry.code == 0, dry.out + dry.err
    if prod_has_the_expand_step:
        assert real.code == 0, real.out
        assert "migrations/002_contract.sql: contract step after migrations/001_expand.sql" in dry.out
        assert "dev: release " in dry.out and "would pass in CI" in dry.out
    else:
        assert real.code == 1, real.out
        waits = (
            f"migrations/002_contract.sql is a contract step after migrations/001_expand.sql, but prod still runs {old}"
        )
        assert waits in real.out and waits in dry.out, dry.out
    assert "cannot tell what the environments run" not in dry.out


def test_a_job_without_the_archives_shows_what_each_environment_runs_from_the_ledger(
    cli: Cli, described: Path, sigstore: LocalSigstore, policy: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The release each environment runs was built and promoted elsewhere (no archive here): its
    evidence travelled with the ledger and is verified like any other; edited, it counts for nothing."""
    project = described
    side_by_side(project)
    release_with(cli, project, sigstore, monkeypatch, {"000_base.sql": ADD})
    expanded = release_with(cli, project, sigstore, monkeypatch, {"001_expand.sql": EXPAND})
    for environment in ("dev", "prod"):
        assert cli(["promote", "--to", environment, *policy], cwd=project).code == 0
    release_with(cli, project, sigstore, monkeypatch, {"002_contract.sql": CONTRACT})
    shutil.rmtree(project / ".pipeline-kit" / "releases" / expanded)
    planned = cli(["plan", "--to", "dev", *policy], cwd=project)
    assert planned.code == 0, planned.out
    assert "contract step after migrations/001_expand.sql" in planned.out
    assert not (project / ".pipeline-kit" / "releases" / expanded).exists()  # restored elsewhere, not here

    # attack: the travelled migration record edited in the ledger's store (renamed to its new digest,
    # the entry pointed at it) no longer matches what the signed provenance recorded
    ledger_path = project / LEDGER
    lines = ledger_path.read_text().splitlines()
    store = ledger_path.with_name(ledger_path.name + ".d")
    forged = json.dumps({"dialect": "postgres", "files": [{"path": "migrations/001_expand.sql", "sha256": "0" * 64}]})
    digest = hashlib.sha256(forged.encode()).hexdigest()
    (store / digest).write_text(forged)
    entries = [json.loads(line) for line in lines]
    for entry in entries:
        if entry.get("details", {}).get("evidence", {}).get("migrations.json"):
            entry["details"]["evidence"]["migrations.json"] = digest
    rewritten = _rechain(entries)
    ledger_path.write_text("".join(rewritten))
    forged_plan = cli(["plan", "--to", "dev", *policy], cwd=project)
    assert forged_plan.code == 1
    assert f"{expanded}'s evidence does not verify: migrations.json" in forged_plan.out


def _rechain(entries: list[dict[str, Any]]) -> list[str]:
    """The entries written again as a ledger whose writer recomputed every hash."""
    from pipeline_kit.ledger import GENESIS, Draft, Entry

    prev, out = GENESIS, []
    for entry in entries:
        fields = {k: v for k, v in entry.items() if k not in ("seq", "prev", "hash")}
        chained = Entry.chain(Draft.model_validate(fields), entry["seq"], prev)
        prev = chained.hash
        out.append(chained.line().decode())
    return out


def expanded_in_dev_only(
    cli: Cli, project: Path, sigstore: LocalSigstore, policy: list[str], monkeypatch: pytest.MonkeyPatch
) -> str:
    """prod runs a base release, dev the release with the expand step; the latter's id."""
    side_by_side(project)
    release_with(cli, project, sigstore, monkeypatch, {"000_base.sql": ADD})
    assert cli(["promote", "--to", "prod", *policy], cwd=project).code == 0
    expanded = release_with(cli, project, sigstore, monkeypatch, {"001_expand.sql": EXPAND})
    assert cli(["promote", "--to", "dev", *policy], cwd=project).code == 0
    return expanded


def test_the_environments_are_judged_from_signed_evidence_not_the_ledger(
    cli: Cli, described: Path, sigstore: LocalSigstore, policy: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # attack: prod never got the expanded release; a forged ledger line says it did
    project = described
    expanded = expanded_in_dev_only(cli, project, sigstore, policy, monkeypatch)

    forge_line(project, kind="promoted", environment="prod", release=expanded, details={})
    release_with(cli, project, sigstore, monkeypatch, {"002_contract.sql": CONTRACT})
    planned = cli(["plan", "--to", "dev", *policy], cwd=project)
    assert planned.code == 1
    # the line only casts doubt: prod's signed record says otherwise, so what runs there is unknown
    assert f"prod: the ledger shows {expanded} deployed to prod after " in planned.out


def test_a_cleared_contract_step_is_still_judged_for_its_locks() -> None:
    from pipeline_kit.gates.migrations import needing_attention
    from pipeline_kit.migrations.interface import Finding

    findings = [
        Finding("m/002.sql", 2, "contract", "safe", "drop-column", "drops a column"),
        Finding("m/002.sql", 3, "contract", "blocks", "set-not-null", "SET NOT NULL"),
        Finding("m/003.sql", 1, "contract", "safe", "drop-table", "drops a table"),
    ]
    assert [f.rule for f in needing_attention(findings, {"m/002.sql"})] == ["set-not-null", "drop-table"]
    assert [f.rule for f in needing_attention(findings, set())] == ["drop-column", "set-not-null", "drop-table"]


def test_an_empty_ledger_is_not_nothing_deployed(
    cli: Cli, described: Path, sigstore: LocalSigstore, policy: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The edge: a job with a fresh per-job file ledger (or a truncated one) read it as "nothing
    # deployed anywhere", and the contract step passed while prod still ran the old code.
    project = described
    expanded_in_dev_only(cli, project, sigstore, policy, monkeypatch)
    release_with(cli, project, sigstore, monkeypatch, {"002_contract.sql": CONTRACT})
    # without the ledger, the archives' signed VSAs still show what runs: prod lacks the expand step
    (project / LEDGER).unlink()
    planned = cli(["plan", "--to", "dev", *policy], cwd=project)
    assert planned.code == 1 and "but prod still runs " in planned.out, planned.out
    # a fresh job: no ledger, no archives, only the release it promotes
    shutil.rmtree(project / ".pipeline-kit" / "releases")
    planned = cli(["plan", "--to", "dev", *policy], cwd=project)
    assert planned.code == 1, planned.out
    assert (
        "migrations/002_contract.sql follows migrations/001_expand.sql: dev: nothing signed shows what dev runs"
        in planned.out
    )


def test_a_line_added_after_a_failed_deploy_never_takes_the_doubt_away(
    cli: Cli, described: Path, sigstore: LocalSigstore, policy: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The attack: the VSA was signed before the deploy; prod's deploy of the expanded release
    # failed, so prod still runs the base release. One appended `deployed` line let the contract
    # step through. (The VSA is now signed once the deploy succeeded: the failed one has none, and
    # a failed deploy of any release since the signed arrival makes what runs unknown.)

    project = described
    expanded = expanded_in_dev_only(cli, project, sigstore, policy, monkeypatch)
    assert cli(["promote", "--to", "prod", *policy, "--", "false"], cwd=project).code == 3
    release_with(cli, project, sigstore, monkeypatch, {"002_contract.sql": CONTRACT})
    forge_line(project, kind="deployed", environment="prod", release=expanded)
    planned = cli(["plan", "--to", "dev", *policy], cwd=project)
    assert planned.code == 1, planned.out
    assert f"prod: the deploy of {expanded} to prod failed (ledger seq" in planned.out


def test_check_marks_what_needs_attention_and_shows_the_declared_expand_step(cli: Cli, tmp_path: Path) -> None:
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    (migrations / "001_expand.sql").write_text(ADD)
    (migrations / "002_contract.sql").write_text(
        "-- pipeline-kit: expand-step migrations/001_expand.sql\n" + DROP.replace("ALTER", "\nALTER")
    )
    result = cli(["migrations", "check", "migrations"], cwd=tmp_path)
    assert result.code == 1
    lines = result.out.splitlines()
    assert lines[0].split()[:3] == ["!", "statement", "phase"]
    marked = {line[3:].split()[0]: line.startswith("!") for line in lines[2:] if line[3:].startswith("migrations/")}
    assert marked == {
        "migrations/001_expand.sql:1": False,  # SET lock_timeout
        "migrations/001_expand.sql:2": False,  # add-column: an expand step, no attention
        "migrations/002_contract.sql:2": False,
        "migrations/002_contract.sql:4": True,  # the drop: a contract step
    }
    assert (
        "migrations/002_contract.sql: contract step after migrations/001_expand.sql (declared; the migrations gate "
        "lets its contract statements through once every environment runs migrations/001_expand.sql)"
    ) in result.out
    assert "4 statement finding(s), 1 needing attention (marked !)" in result.out
    as_json = json.loads(cli(["migrations", "check", "--json", "migrations"], cwd=tmp_path).out)
    assert as_json["expand_steps"] == {"migrations/002_contract.sql": "migrations/001_expand.sql"}


def test_attention_is_ordered_worst_first() -> None:
    from pipeline_kit.migrations.interface import Finding, by_severity

    findings = [
        Finding("m/1.sql", 1, "neutral", "blocks", "missing-lock-timeout", "no lock_timeout"),
        Finding("m/1.sql", 1, "review", "n/a", "unparsable", "not SQL"),
        Finding("m/1.sql", 2, "contract", "safe", "drop-column", "drops a column"),
        Finding("m/1.sql", 3, "expand", "blocks", "index-not-concurrent", "SHARE lock"),
        Finding("m/1.sql", 4, "contract", "blocks", "alter-column-type", "rewrites the table"),
    ]
    assert [f.rule for f in by_severity(findings)] == [
        "alter-column-type",
        "index-not-concurrent",
        "drop-column",
        "unparsable",
        "missing-lock-timeout",
    ]


def test_the_gate_leads_with_the_table_rewrite_not_the_missing_lock_timeout(cli: Cli, described: Path) -> None:
    with_migrations(described, {"001_retype.sql": "ALTER TABLE users ALTER COLUMN age TYPE bigint;\n"})
    dry = cli(["run", "--dry-run"], cwd=described)
    assert dry.code == 0, dry.out + dry.err
    reason = "migrations/001_retype.sql:1 contract alter-column-type: changes the type of age: rewrites the table"
    assert reason in dry.out, dry.out
    assert "(and 1 more: migrations/001_retype.sql:1 missing-lock-timeout)" in dry.out
