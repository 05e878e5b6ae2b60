"""`migrations check --json` of a large directory, checked two independent ways: the directory says
what each of its files says checked on its own (nothing carried from file to file, nothing lost or
reordered), and the output is, byte for byte, `json.dumps` of the findings' dicts (the writer
that skips building those dicts must not change a byte)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from pipeline_kit.migrations import Finding
from pipeline_kit.migrations.reading import CHUNK_CHARS
from tests.conftest import Cli
from tests.test_migration_layouts import RAILS

# every family of statement, state that spans statements (transactions, lock_timeout, tables this
# file created, search_path), waivers, calls the classifier cannot see through, text that is not ASCII
STATEMENTS = (
    "SET lock_timeout = '2s';",
    "SET LOCAL lock_timeout = 0;",
    "SET search_path = other;",
    "BEGIN;",
    "COMMIT;",
    "ALTER TABLE t{n} ADD COLUMN c{n} text;",
    "ALTER TABLE t{n} ADD COLUMN d{n} timestamptz DEFAULT now(), ADD COLUMN e{n} int DEFAULT f{n}(1);",
    "ALTER TABLE t{n} ADD COLUMN s{n} bigserial;",
    "ALTER TABLE t{n} ALTER COLUMN c{n} TYPE bigint;",
    "ALTER TABLE t{n} ALTER COLUMN c{n} SET NOT NULL;",
    "ALTER TABLE t{n} ADD CONSTRAINT f{n} FOREIGN KEY (u) REFERENCES u (id) NOT VALID;",
    "ALTER TABLE t{n} VALIDATE CONSTRAINT f{n};",
    "ALTER TABLE t{n} DROP COLUMN old{n};",
    'ALTER TABLE t{n} DROP COLUMN "größe{n}";',
    "ALTER TABLE t{n} RENAME COLUMN a TO b{n};",
    "CREATE INDEX CONCURRENTLY i{n} ON t{n} (c{n});",
    "CREATE UNIQUE INDEX j{n} ON t{n} (lower(c{n}));",
    "CREATE TABLE n{n} (id bigserial PRIMARY KEY, v text);",
    "CREATE TABLE k{n} (id int REFERENCES n{n} (id), p int REFERENCES parent (id), q int REFERENCES s.other (id));",
    "UPDATE t{n} SET c{n} = 'x' WHERE id BETWEEN 1 AND 1000;",
    "UPDATE t{n} SET c{n} = g(c{n}) WHERE true;",
    "DELETE FROM t{n};",
    "INSERT INTO t{n} SELECT * FROM u;",
    "DROP TABLE gone{n};",
    "DROP INDEX i{n};",
    "GRANT SELECT ON t{n} TO r;",
    "REVOKE SELECT ON t{n} FROM r;",
    "VACUUM FULL t{n};",
    "DO $$ BEGIN PERFORM 1; END $$;",
    "COMMENT ON TABLE t{n} IS 'für Größe ✓; \"quoted\" \\ back';",
    "-- pipeline-kit: allow drop-column because nothing reads old{n} since 1.4\nALTER TABLE t{n} DROP COLUMN old{n};",
    "/* a comment; with a semicolon */ SELECT 1;",
)


def migrations(root: Path) -> list[str]:
    """A directory of migrations (written under `root`), and its files in the order they apply."""
    directory = root / "migrations"
    directory.mkdir()
    draw = random.Random(20261207)
    for n in range(40):
        body = "\n".join(draw.choice(STATEMENTS).format(n=n) for _ in range(draw.randint(1, 40)))
        (directory / f"{n + 1:04}_step.sql").write_text(body + "\n")
    big = "\n".join(STATEMENTS[n % len(STATEMENTS)].format(n=n) for n in range(15_000)) + "\n"
    assert len(big) > 2 * CHUNK_CHARS  # read in several chunks
    (directory / "0041_big.sql").write_text(big)
    (directory / "0042_broken.sql").write_text("SET lock_timeout = '2s';\nALTER TABLE t DROPP COLUMN c;\nSELECT 1;\n")
    (directory / "0043_contract.sql").write_text(
        "-- pipeline-kit: expand-step migrations/0001_step.sql\nALTER TABLE t DROP COLUMN c;\n"
    )
    (directory / "20240101000000_changes.rb").write_text(RAILS)
    return sorted(path.name for path in directory.iterdir())  # zero-padded, and the Rails one last


def test_a_directory_says_what_each_of_its_files_says(cli: Cli, tmp_path: Path) -> None:
    files = migrations(tmp_path)
    whole = cli(["migrations", "check", "--json", "migrations"], cwd=tmp_path)
    statements: list[dict[str, object]] = []
    attention, steps = 0, {}
    for name in files:
        alone = cli(["migrations", "check", "--json", f"migrations/{name}"], cwd=tmp_path)
        said = json.loads(alone.out)
        assert alone.code == (1 if said["attention"] else 0), alone.err
        assert alone.out == json.dumps(said) + "\n"  # each run's output is json.dumps's, byte for byte
        statements += said["statements"]
        attention += said["attention"]
        steps.update(said["expand_steps"])
    assert whole.code == 1, whole.err
    assert whole.out == json.dumps({"statements": statements, "attention": attention, "expand_steps": steps}) + "\n"
    # and it is the large directory it was meant to be: every file, thousands of statements
    statements = json.loads(whole.out)["statements"]
    assert (statements[0]["file"], statements[-1]["file"]) == ("migrations/0001_step.sql", f"migrations/{files[-1]}")
    assert {s["file"] for s in statements} == {f"migrations/{name}" for name in files}
    assert len(statements) > 15_000
    assert {s["rule"] for s in statements} >= {"unparsable", "calls-user-function", "create-table-references"}
    assert any(s["waived"] for s in statements) and "gr\\u00f6\\u00dfe" in whole.out


TEXTS = (
    "plain",
    'a "quote", a \\ backslash, a / slash',
    "tab\t newline\n return\r escape\x1b nul\x00 delete\x7f",
    "für Größe ✓",
    "\U0001f600 and a lone surrogate \ud800",
    "line\u2028separator",
    "",
)


@pytest.mark.parametrize("text", TEXTS)
def test_a_finding_written_as_json_is_json_dumps_of_its_dict(text: str) -> None:
    for waived in (None, text):
        finding = Finding(text, 123_456, "contract", "blocks", f"rule {text}", text, text, waived)
        assert finding.as_json() == json.dumps(finding.as_dict())
        assert json.loads(finding.as_json()) == finding.as_dict()
