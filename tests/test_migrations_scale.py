"""The migration check at scale and on hostile input: statement lines found in one pass (and
right after text that is not ASCII, where libpg_query's byte offsets and Python's characters part),
and what no parser can read refused in one line with exit 2, never a crash or a traceback."""

from __future__ import annotations

from pipeline_kit.migrations.postgres import Postgres

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
