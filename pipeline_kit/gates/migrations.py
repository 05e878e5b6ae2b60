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
from pipeline_kit.migrations.interface import Finding, by_severity


def needing_attention(findings: list[Finding], cleared: set[str]) -> list[Finding]:
    """What still needs attention once the contract steps of the `cleared` files may run: their
    locks, and everything else, are still judged."""
    return [
        f
        for f in findings
        if f.needs_attention and not (f.file in cleared and f.phase == "contract" and f.lock != "blocks")
    ]


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
        declared: dict[str, str] = record.get("expand_steps") or {}
        cleared, blocked = self._contract_steps(findings, declared, context)
        if blocked:
            return denied(blocked)
        attention = needing_attention(findings, set(cleared))
        waived = [f for f in findings if f.waived]
        files = len(record.get("files", []))
        waivers = "; ".join(f"{f.file}:{f.line} {f.rule} waived: {f.waived}" for f in waived)
        evidence = {"attention": [f.as_dict() for f in attention], "waived": [f.as_dict() for f in waived]}
        if attention:  # the worst first: a table rewrite or a contract step before a missing lock_timeout
            first, *rest = by_severity(attention)
            more = f" (and {len(rest)} more: {', '.join(f'{f.file}:{f.line} {f.rule}' for f in rest)})" if rest else ""
            return denied(f"{first.file}:{first.line} {first.phase} {first.rule}: {first.message}{more}", **evidence)
        summary = f"{len(findings)} statement(s) in {files} file(s), none needing attention"
        steps = "; ".join(f"{file}: contract step after {declared[file]}, {cleared[file]}" for file in sorted(cleared))
        extra = "; ".join(part for part in (steps, waivers) if part)
        return passed(summary + (f"; {extra}" if extra else ""), **evidence)

    def _contract_steps(
        self, findings: list[Finding], declared: dict[str, str], context: PromotionContext
    ) -> tuple[dict[str, str], str | None]:
        """The files whose contract statements may run now (file -> why), or why one may not:
        a file that declares its expand step passes once every environment runs a release whose
        signed record has that step (`context.schemas`, shown from signed evidence)."""
        contract_files = {f.file for f in findings if f.phase == "contract" and f.waived is None}
        cleared: dict[str, str] = {}
        for file in sorted(contract_files & set(declared)):
            expand = declared[file]
            if context.schemas is None:
                return {}, f"{file} follows {expand}: cannot tell what the environments run (no identity policy?)"
            for environment, (running, files, why) in sorted(context.schemas.items()):
                if files is None:
                    return {}, f"{file} follows {expand}: {environment}: {why}"
                if running is not None and expand not in files:
                    return {}, (
                        f"{file} is a contract step after {expand}, but {environment} still runs {running}, "
                        f"which does not have it: promote a release with {expand} everywhere first"
                    )
            cleared[file] = "which every environment runs"
        return cleared, None
