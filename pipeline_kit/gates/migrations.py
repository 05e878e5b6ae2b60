"""migrations: the release's migrations, as signed with its provenance (`migrations.json`, a
byproduct whose digest the signed provenance records), hold nothing that needs attention: no
statement the classifier could not read (review), none that blocks other sessions (a rewrite, a
non-concurrent index, an unbatched backfill, no lock_timeout first), and no contract step (a drop,
a rename, a new NOT NULL, CHECK or UNIQUE) unless an inline waiver says why it is safe now
(`-- pipeline-kit: allow RULE because WHY`); every waiver is named in the verdict, so the signed
decision records it. The record on disk counts only when it is the one the provenance signed.
"""

from __future__ import annotations

import json

from pipeline_kit.evidence import MIGRATIONS_FILE
from pipeline_kit.gates.interface import Gate, Outcome, PromotionContext, denied, error, passed
from pipeline_kit.migrations.interface import Finding


class MigrationsGate(Gate):
    name = "migrations"

    def evaluate(self, context: PromotionContext) -> Outcome:
        configured = context.config.migrations is not None
        if context.verification is None:
            return error(f"evidence not verified: {context.verification_problem}")
        checks = context.checks_for(MIGRATIONS_FILE)
        if not checks:
            if configured:
                return error("no signed migration record: run `pipeline-kit provenance` with migrations: configured")
            return passed("no migrations configured")
        if not all(check.ok for check in checks):
            return denied(f"{MIGRATIONS_FILE}: {next(c.detail for c in checks if not c.ok)}")
        record = json.loads(context.evidence.path(MIGRATIONS_FILE).read_bytes())
        findings = [Finding(**statement) for statement in record.get("statements", [])]
        attention = [f for f in findings if f.needs_attention]
        waived = [f for f in findings if f.waived]
        files = len(record.get("files", []))
        waivers = "; ".join(f"{f.file}:{f.line} {f.rule} waived: {f.waived}" for f in waived)
        evidence = {"attention": [f.as_dict() for f in attention], "waived": [f.as_dict() for f in waived]}
        if attention:
            first = attention[0]
            more = f" (and {len(attention) - 1} more)" if len(attention) > 1 else ""
            return denied(f"{first.file}:{first.line} {first.phase} {first.rule}: {first.message}{more}", **evidence)
        summary = f"{len(findings)} statement(s) in {files} file(s), none needing attention"
        return passed(summary + (f"; {waivers}" if waivers else ""), **evidence)
