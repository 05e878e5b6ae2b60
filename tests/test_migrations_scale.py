"""The migration check at scale and on hostile input: statement lines found in one pass (and
right after text that is not ASCII, where libpg_query's byte offsets and Python's characters part),
and what no parser can read refused in one line with exit 2, never a crash or a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline_kit.migrations import reading
from pipeline_kit.migrations.postgres import Postgres
from pipeline_kit.migrations.reading import CHUNK_CHARS, MAX_STATEMENT_BYTES, statement_ends
from tests.conftest import Cli

AFTER_UNICODE = (
    "SET lock_timeout = '2s';\n"
    "COMMENT ON TABLE t IS 'für Größe ✓';\n"
    "\n"
    "-- pipeline-kit: allow drop-column because nothing reads it since 1.4\n"
    "ALTER TABLE t DROP COLUMN a;\n"
    "ALTER TABLE t DROP COLUMN b;\n"
)


def test_lines_and_waivers_after_text_that_is_not_ascii() -> None:
    # libpg_query counts UTF-8 bytes: 'für Größe ✓' is 15 bytes, 11 characters; read as
    # characters, the waiver's comment slid past and the statement was put on line 4
    findings = Postgres().classify(AFTER_UNICODE, "m.sql")
    assert [(f.line, f.rule, f.waived) for f in findings] == [
        (1, "variableset", None),
        (2, "comment", None),
        (5, "drop-column", "nothing reads it since 1.4"),
        (6, "drop-column", None),
    ]


def run_check(tmp_path: Path, name: str, sql: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`pipeline-kit migrations check` in a process of its own: a parser that crashed would take
    the test run with it, and the exit status says how it ended (-11 for a SIGSEGV)."""
    (tmp_path / name).write_text(sql)
    command = [sys.executable, "-m", "pipeline_kit", "migrations", "check", *args, name]
    return subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, check=False, timeout=300)


def refused(done: subprocess.CompletedProcess[str]) -> str:
    """The one line a refusal prints (exit 2, nothing on stdout, no traceback)."""
    assert (done.returncode, done.stdout) == (2, ""), (done.returncode, done.stderr[-2000:])
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    return done.stderr.strip()


def test_a_sum_of_70000_terms_is_refused_not_a_crash(tmp_path: Path) -> None:
    # libpg_query writes the tree out recursively: on the main thread's 8 MiB stack this statement
    # was a SIGSEGV (exit -11, no message)
    sql = "SET lock_timeout = '2s';\n\nSELECT " + "+".join(["1"] * 70_000) + ";\n"
    done = run_check(tmp_path, "deep.sql", sql)
    assert refused(done) == "error: deep.sql: line 3: a statement nests deeper than the check reads"


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT " + "(" * 10_000 + "1" + ")" * 10_000,  # past bison's 10,000 open levels
        "SELECT " + "+".join(["x"] * 600),  # a tree deeper than Python's json reads
        "SELECT 1" + " UNION SELECT 1" * 1_000,
    ],
    ids=["parentheses", "terms", "unions"],
)
def test_what_postgres_cannot_read_is_exit_2_at_its_line(tmp_path: Path, statement: str) -> None:
    sql = "SET lock_timeout = '2s';\nALTER TABLE t ADD COLUMN a text;\n" + statement + ";\nSELECT 1;\n"
    done = run_check(tmp_path, "m.sql", sql)
    assert refused(done) == "error: m.sql: line 3: a statement nests deeper than the check reads"


@pytest.mark.parametrize("dialect", ["mysql", "sqlite"])
def test_deep_parentheses_in_mysql_and_sqlite_are_exit_2_not_an_internal_error(tmp_path: Path, dialect: str) -> None:
    # was `internal error: RecursionError`, exit 3
    sql = "UPDATE t SET a = 1 WHERE id = 1;\nSELECT " + "(" * 10_000 + "1" + ")" * 10_000 + ";\n"
    done = run_check(tmp_path, "m.sql", sql, "--dialect", dialect)
    assert refused(done) == "error: m.sql: line 2: a statement nests deeper than the check reads"


def test_a_statement_larger_than_the_check_reads_is_refused_before_parsing(tmp_path: Path) -> None:
    rows = ",\n".join(f"({n}, 'row {n}')" for n in range(80_000))  # 1.3 MiB, one statement
    sql = "SET lock_timeout = '2s';\nINSERT INTO t (id, v) VALUES\n" + rows + ";\n"
    assert len(sql.encode()) > MAX_STATEMENT_BYTES
    done = run_check(tmp_path, "seed.sql", sql)
    assert refused(done) == "error: seed.sql: line 2: a statement over 1 MiB: more than the check reads (split it)"


# Statements whose semicolons and parentheses are not where they end: the splitter must agree
# with libpg_query on where each statement starts.
TRICKY = (
    "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT CASE WHEN true THEN 2 END; END;",
    "CREATE FUNCTION g() RETURNS trigger LANGUAGE plpgsql AS $body$ BEGIN PERFORM 1; RETURN NULL; END $body$;",
    "CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO u VALUES (1); DELETE FROM u WHERE id = 2);",
    "/* a comment; /* nested; */ still; */ SELECT 'it''s; here', E'back\\'slash;', \"odd;name\" FROM t;",
    "SELECT $$;$$, $a$ $$; $a$, x$y$ FROM t; -- trailing; comment",
    "COMMENT ON TABLE t IS 'größer; ✓';",
)


def tricky_file(copies: int) -> str:
    lines = ["SET lock_timeout = '2s';"]
    for n in range(copies):
        lines.append(f"ALTER TABLE t{n} ADD COLUMN c{n} text;")
        lines.append(TRICKY[n % len(TRICKY)])
        if n % 97 == 0:
            lines.append("-- pipeline-kit: allow drop-column because nothing reads it")
        lines.append(f"ALTER TABLE t{n} DROP COLUMN d{n};")
    return "\n".join(lines) + "\n"


def test_the_split_agrees_with_libpg_query() -> None:
    import pgparse  # type: ignore[import-not-found,unused-ignore]  # ships no type information

    sql = tricky_file(60)
    # libpg_query on the whole file: each statement starts (in UTF-8 bytes) where the last ended
    whole = [raw.get("stmt_location", 0) for raw in pgparse.parse(sql)]
    ends = list(statement_ends(sql))
    assert [len(sql[:start].encode()) for start in [0, *ends[:-1]]] == whole


def test_a_file_read_in_chunks_is_classified_as_one_read_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    sql = tricky_file(5000)
    assert len(sql) > 2 * CHUNK_CHARS  # several chunks
    findings = Postgres().classify(sql, "big.sql")
    # each statement was written on a line of its own (comments aside): its finding is there
    written = {n for n, line in enumerate(sql.splitlines(), 1) if not line.startswith("--")}
    assert {f.line for f in findings} == written
    assert [f.line for f in findings if f.waived] == [
        n for n, line in enumerate(sql.splitlines(), 2) if "allow" in line
    ]
    # and libpg_query reading the whole file at once says the same of every statement
    monkeypatch.setattr(reading, "CHUNK_CHARS", len(sql))
    assert Postgres().classify(sql, "big.sql") == findings


def test_a_syntax_error_deep_in_a_large_file_is_one_finding_at_its_line() -> None:
    lines = tricky_file(5000).splitlines()
    broken = len(lines) * 3 // 4  # well past the first chunk
    lines[broken] = "ALTER TABLE users DROPP COLUMN legacy;"
    *checked, finding = Postgres().classify("\n".join(lines), "big.sql")
    assert (finding.line, finding.phase, finding.rule) == (broken + 1, "review", "unparsable")
    assert finding.message == (
        f'not PostgreSQL the parser accepts: syntax error at or near "DROPP" (line {broken + 1}); '
        f"line {broken + 1} (this statement) to the end of the file went unchecked"
    )
    # what comes before it is checked as the file without the error and the rest would be
    assert checked == Postgres().classify("\n".join(lines[:broken]), "big.sql") and checked


def test_provenance_refuses_what_it_cannot_read_and_records_nothing(cli: Cli, described: Path) -> None:
    # provenance classifies with the same reader: the release cannot carry a record of a file
    # the check could not read
    config_path = described / "pipeline-kit.yml"
    config = yaml.safe_load(config_path.read_text())
    config["migrations"] = {"paths": ["migrations"]}
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    (described / "migrations").mkdir()
    (described / "migrations" / "001_deep.sql").write_text("SET lock_timeout = '2s';\nSELECT " + "+1" * 70_000 + ";\n")
    provenance = described / ".pipeline-kit" / "provenance.intoto.json"
    before = provenance.read_bytes()
    result = cli(["provenance"], cwd=described)
    assert (result.code, result.out) == (2, "")
    assert result.err.strip() == "error: migrations/001_deep.sql: line 2: a statement nests deeper than the check reads"
    assert not (described / ".pipeline-kit" / "migrations.json").exists()
    assert provenance.read_bytes() == before


MYSQL_TRICKY = (
    "INSERT INTO notes (body) VALUES ('one; two', 'it\\'s; here', \"double; quoted\");",
    "/* a comment; over\nlines; */ UPDATE t SET a = 'x;\ny' WHERE id = 1;",
    "SELECT `odd;name` FROM t; -- trailing; comment",
    "# a MySQL comment; with a semicolon\nALTER TABLE t DROP COLUMN gone;",
)


@pytest.mark.parametrize("dialect", ["mysql", "sqlite"])
def test_mysql_and_sqlite_read_in_chunks_as_read_whole(monkeypatch: pytest.MonkeyPatch, dialect: str) -> None:
    from pipeline_kit.migrations import DIALECTS

    statements = [MYSQL_TRICKY[n % len(MYSQL_TRICKY)] for n in range(6000)]
    if dialect == "sqlite":  # no backslash escapes, no # comments, no backticks
        statements = [s.replace("\\'", "''").replace("# a MySQL", "-- a SQLite") for s in statements]
    parts, written, line = [], [], 1
    for n, statement in enumerate(statements):
        parts.append(f"ALTER TABLE t{n} ADD COLUMN c{n} text;\n{statement}\n")
        written.append(line)
        line += parts[-1].count("\n")
    sql = "".join(parts)
    assert len(sql) > 2 * CHUNK_CHARS
    classifier = DIALECTS[dialect]()
    findings = classifier.classify(sql, "big.sql")
    assert [f.line for f in findings if f.rule == "add-column"] == written
    # the oracle: sqlglot tokenizing the whole file at once
    monkeypatch.setattr(reading, "CHUNK_CHARS", len(sql))
    assert classifier.classify(sql, "big.sql") == findings


def test_the_collector_runs_again_after_a_file_however_it_ends() -> None:
    import gc

    from pipeline_kit.errors import InputError

    assert gc.isenabled()
    with pytest.raises(InputError):
        Postgres().classify("SELECT " + "+1" * 700 + ";", "m.sql")
    assert gc.isenabled()
    Postgres().classify("ALTER TABLE t DROPP COLUMN a;", "m.sql")
    assert gc.isenabled()


@pytest.mark.parametrize("dialect", ["mysql", "sqlite"])
def test_mysql_and_sqlite_read_a_thousand_parentheses_and_refuse_one_more(dialect: str) -> None:
    from pipeline_kit.errors import InputError
    from pipeline_kit.migrations import DIALECTS

    classifier = DIALECTS[dialect]()
    # 40 was already too deep for Python's default recursion limit
    deep = classifier.classify("SELECT " + "(" * 1000 + "1" + ")" * 1000 + ";", "m.sql")
    assert deep == classifier.classify("SELECT (1);", "m.sql")  # read as the shallow one is
    with pytest.raises(InputError, match="line 2: a statement nests deeper than the check reads"):
        classifier.classify("SELECT 1;\nSELECT " + "(" * 1001 + "1" + ")" * 1001 + ";", "m.sql")
