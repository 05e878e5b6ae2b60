"""Each gate's pass, deny and error paths; errors (exceptions, timeouts, missing data) deny."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from pipeline_kit.config import parse_config
from pipeline_kit.errors import ConfigError
from pipeline_kit.evidence import EvidenceDir
from pipeline_kit.gates import GATES, compile_gates, evaluate
from pipeline_kit.gates.freeze import Window, cron_fields
from pipeline_kit.gates.interface import Gate, Outcome, PromotionContext
from pipeline_kit.ledger import GENESIS, Draft, Entry
from pipeline_kit.models import Release
from pipeline_kit.verify import Check, Verification
from pipeline_kit.vsa import Accepted, Search
from tests.conftest import local_release

NOW = datetime(2026, 11, 18, 12, 0, tzinfo=timezone.utc)  # a Wednesday
CONFIG = """\
version: 1
artifact: {name: app, outputs: ["dist/*"]}
environments:
  dev: {gates: []}
  staging: {after: dev, soak: 1h, gates: []}
"""


def release() -> Release:
    return local_release(0xAB, "dist/app.whl")


def entries(*specs: tuple[str, str, str | None, datetime, dict[str, Any]]) -> list[Entry]:
    out, prev = [], GENESIS
    for seq, (kind, env, rel, when, details) in enumerate(specs, start=1):
        entry = Entry.chain(
            Draft(
                kind=kind,
                environment=env,
                release=rel,
                actor="t",
                time=when,
                reason="r",
                details=details,
            ),
            seq,
            prev,
        )
        out.append(entry)
        prev = entry.hash
    return out


def context(
    tmp_path: Path,
    environment: str = "staging",
    history: list[Entry] | None = None,
    verification: Verification | None = None,
    problem: str | None = None,
    config: str = CONFIG,
    upstream: Search | None = None,
    holds: Search | None = None,
    upstream_holds: Search | None = None,
    root_causes: Search | None = None,
) -> PromotionContext:
    (tmp_path / "pipeline-kit.yml").write_text(config)
    parsed = parse_config(config, tmp_path / "pipeline-kit.yml").model_copy(
        update={"source_path": str(tmp_path / "pipeline-kit.yml")}
    )
    return PromotionContext(
        release=release(),
        environment=environment,
        config=parsed,
        evidence=EvidenceDir(tmp_path / ".pipeline-kit"),
        workdir=tmp_path,
        history=history or [],
        now=NOW,
        actor="t",
        verification=verification,
        verification_problem=problem,
        upstream=upstream,
        holds=holds or Search(environment, (), (), ()),
        root_causes=root_causes,
        # searched together with `upstream`, as the kit does
        upstream_holds=upstream_holds or (Search("dev", (), (), ()) if upstream is not None else None),
    )


def gate(name: str, **options: Any) -> Gate:
    cls = GATES[name]
    return cls(cls.options_model.model_validate(options))


def run(g: Gate, ctx: PromotionContext) -> tuple[str, str]:
    (result,) = evaluate([g], ctx)
    return result.verdict, result.reason


def verification(ok: bool = True, target: str = "dist/app.whl", detail: str = "sha256 is different") -> Verification:
    rel = release()
    checks = [
        Check("dist/app.whl", "digest", ok if target == "dist/app.whl" else True, "matches" if ok else detail),
        Check("bundles/dist/app.whl.sigstore.json", "signature", True, "signed by dev@example.com (issuer)"),
        Check("bundles/provenance.sigstore.json", "signature", True, "signed"),
        Check(
            "bundles/provenance.sigstore.json",
            "subjects",
            ok or target != "provenance",
            "the attested subjects are not release.json's",
        ),
        Check("provenance.intoto.json", "source", True, "built from x@y"),
        Check("bundles/sbom.sigstore.json", "signature", ok or target != "sbom", "does not verify"),
        Check("sbom.cdx.json", "matches attestation", True, "is what was signed"),
    ]
    from pipeline_kit.identity import IdentityPolicy

    return Verification(rel, IdentityPolicy(issuer="i", san="s"), tuple(checks))


# --- evidence gates ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["signature", "provenance", "sbom"])
def test_evidence_gates_error_without_verification(tmp_path: Path, name: str) -> None:
    assert run(gate(name), context(tmp_path, problem="no identity policy")) == (
        "error",
        "evidence not verified: no identity policy",
    )


def test_signature_gate(tmp_path: Path) -> None:
    assert run(gate("signature"), context(tmp_path, verification=verification()))[0] == "passed"
    verdict, reason = run(gate("signature"), context(tmp_path, verification=verification(ok=False)))
    assert (verdict, reason) == ("denied", "dist/app.whl: sha256 is different")


def test_provenance_gate(tmp_path: Path) -> None:
    assert run(gate("provenance"), context(tmp_path, verification=verification()))[0] == "passed"
    verdict, reason = run(
        gate("provenance"), context(tmp_path, verification=verification(ok=False, target="provenance"))
    )
    assert verdict == "denied" and "subjects" in reason


def sbom_document(tmp_path: Path, licenses: list[str]) -> None:
    evidence = tmp_path / ".pipeline-kit"
    evidence.mkdir(parents=True, exist_ok=True)
    components = [
        {"name": f"lib{i}", "version": "1", "licenses": [{"license": {"id": lic}}]} for i, lic in enumerate(licenses)
    ]
    (evidence / "sbom.cdx.json").write_text(json.dumps({"components": components}))


def test_sbom_gate_licences(tmp_path: Path) -> None:
    sbom_document(tmp_path, ["MIT", "GPL-3.0-only"])
    ctx = context(tmp_path, verification=verification())
    assert run(gate("sbom"), ctx)[0] == "passed"
    verdict, reason = run(gate("sbom", **{"deny-licenses": ["GPL-3.0-only"]}), ctx)
    assert verdict == "denied" and "lib1@1 (GPL-3.0-only)" in reason
    verdict, _ = run(gate("sbom"), context(tmp_path, verification=verification(ok=False, target="sbom")))
    assert verdict == "denied"


def test_sbom_gate_counts_one_component_in_the_singular(tmp_path: Path) -> None:
    sbom_document(tmp_path, ["MIT"])
    verdict, reason = run(gate("sbom"), context(tmp_path, verification=verification()))
    assert verdict == "passed" and "signed SBOM, 1 component, no denied licence" in reason, reason


GRYPE = {
    "matches": [
        {"vulnerability": {"id": "CVE-1", "severity": "High"}},
        {"vulnerability": {"id": "CVE-2", "severity": "Low"}},
    ]
}
OSV = {
    "results": [
        {
            "packages": [
                {
                    "package": {"name": "x"},
                    "groups": [{"ids": ["GHSA-1"], "max_severity": "9.8"}],
                    "vulnerabilities": [{"id": "GHSA-1"}],
                }
            ]
        }
    ]
}
PIP_AUDIT = {"dependencies": [{"name": "x", "version": "1", "vulns": [{"id": "PYSEC-1", "fix_versions": []}]}]}


@pytest.mark.parametrize(
    ("report", "options", "verdict", "fragment"),
    [
        (GRYPE, {}, "denied", "CVE-1 (high)"),
        (GRYPE, {"fail-on": "critical"}, "passed", "2 vulnerability finding(s), 0 at or above critical"),
        (GRYPE, {"max-findings": 1}, "passed", "1 at or above high"),
        (OSV, {"fail-on": "critical"}, "denied", "GHSA-1 (critical)"),
        (PIP_AUDIT, {"fail-on": "critical"}, "denied", "PYSEC-1 (unknown)"),  # no severity: counted as critical
        ({"something": "else"}, {}, "error", "not an OSV-Scanner, grype or pip-audit JSON report"),
    ],
)
def test_sbom_gate_vulnerability_reports(
    tmp_path: Path, report: object, options: dict[str, Any], verdict: str, fragment: str
) -> None:
    sbom_document(tmp_path, ["MIT"])
    (tmp_path / "vulns.json").write_text(json.dumps(report))
    got, reason = run(
        gate("sbom", vulnerabilities="vulns.json", unsigned_reports=True, **options),
        context(tmp_path, verification=verification()),
    )
    assert got == verdict and fragment in reason, reason


def test_sbom_gate_missing_report_is_an_error(tmp_path: Path) -> None:
    sbom_document(tmp_path, ["MIT"])
    verdict, reason = run(
        gate("sbom", vulnerabilities="reports/*.json", unsigned_reports=True),
        context(tmp_path, verification=verification()),
    )
    assert verdict == "error" and "no data is not a pass" in reason


# --- previous-stage -----------------------------------------------------------------------


def passed_dev(*ages: timedelta) -> Search:
    """What the VSA search found: a verified PASSED VSA for dev signed `age` ago, for each age."""
    accepted = tuple(
        Accepted(f"vsa {i}", NOW - age, "signed by ci", {}) for i, age in enumerate(sorted(ages, reverse=True))
    )
    return Search("dev", accepted, ("elsewhere: does not verify",), ("the evidence dir",))


def test_previous_stage(tmp_path: Path) -> None:
    rid = release().id
    never = run(gate("previous-stage"), context(tmp_path, upstream=passed_dev()))
    assert never[0] == "denied" and never[1].startswith(f"dev never passed this release ({rid[:12]}, sha256:abababab")
    assert never[1].endswith("no signed VSA (looked in the evidence dir; refused: elsewhere: does not verify)")
    # the ledger alone never proves a pass: an arrival there without a signed VSA is not one
    ledger_only = entries(("promoted", "dev", rid, NOW - timedelta(hours=3), {}))
    assert run(gate("previous-stage"), context(tmp_path, history=ledger_only, upstream=passed_dev()))[0] == "denied"
    assert run(gate("previous-stage"), context(tmp_path))[0] == "error"  # no search at all: fail closed
    verdict, reason = run(gate("previous-stage"), context(tmp_path, upstream=passed_dev(timedelta(minutes=41))))
    assert (verdict, reason) == ("denied", "soak 41m of 1h in dev, ready at 12:19Z")
    assert run(gate("previous-stage"), context(tmp_path, upstream=passed_dev(timedelta(hours=2))))[0] == "passed"
    # the soak counts from the newest signed pass
    both = passed_dev(timedelta(hours=5), timedelta(minutes=10))
    assert run(gate("previous-stage"), context(tmp_path, upstream=both))[1].startswith("soak 10m of 1h")
    replaced = entries(("promoted", "dev", "other", NOW - timedelta(hours=1, minutes=50), {}))
    verdict, reason = run(
        gate("previous-stage"), context(tmp_path, history=replaced, upstream=passed_dev(timedelta(hours=2)))
    )
    assert verdict == "denied" and reason.startswith("left dev after 10m")
    failed = entries(("deploy-failed", "dev", rid, NOW, {}))
    outcome = run(gate("previous-stage"), context(tmp_path, history=failed, upstream=passed_dev(timedelta(hours=2))))
    assert outcome[1] == f"the deploy of {rid[:12]} to dev failed"
    # a promotion whose deploy never finished (killed between decision and deploy) never arrived
    pending = entries(("promoted", "dev", rid, NOW - timedelta(hours=2), {"deploy": "pending"}))
    outcome = run(gate("previous-stage"), context(tmp_path, history=pending, upstream=passed_dev(timedelta(hours=2))))
    assert outcome[0] == "denied" and "never finished" in outcome[1]
    assert run(gate("previous-stage"), context(tmp_path, environment="dev"))[0] == "passed"
    # a signed rollback out of dev since its PASSED VSA holds here; one before a later pass does not
    proof = passed_dev(timedelta(hours=3))
    held = Search("dev", (Accepted("hold", NOW - timedelta(hours=2), "signed by ci", {}),), (), ())
    outcome = run(gate("previous-stage"), context(tmp_path, upstream=proof, upstream_holds=held))
    assert outcome[0] == "denied" and outcome[1].startswith("rolled back out of dev at ")
    earlier = Search("dev", (Accepted("hold", NOW - timedelta(hours=4), "signed by ci", {}),), (), ())
    assert run(gate("previous-stage"), context(tmp_path, upstream=proof, upstream_holds=earlier))[0] == "passed"


# --- rollback-hold ------------------------------------------------------------------------


def test_rollback_hold(tmp_path: Path) -> None:
    rid = release().id
    assert run(gate("rollback-hold"), context(tmp_path, "dev"))[0] == "passed"
    held = entries(("promoted", "dev", rid, NOW, {}), ("rolled-back", "dev", "old", NOW, {"from": rid, "to": "old"}))
    verdict, reason = run(gate("rollback-hold"), context(tmp_path, "dev", history=held))
    assert verdict == "denied" and "pipeline-kit ledger annotate --env dev" in reason
    annotated = [*held, *entries(("annotated", "dev", rid, NOW, {}))]
    annotated[2] = Entry.chain(
        Draft(kind="annotated", environment="dev", release=rid, actor="t", time=NOW, reason="INC-1"), 3, held[1].hash
    )
    assert run(gate("rollback-hold"), context(tmp_path, "dev", history=annotated)) == (
        "passed",
        "rolled back at 2026-11-18 12:00Z; root cause recorded: INC-1",
    )


def test_a_signed_rollback_holds_even_when_ledger_lines_are_deleted(tmp_path: Path) -> None:
    rid = release().id
    # a signed rollback (FAILED VSA) decided on ledger seq 2
    hold = Accepted(
        "releases/x/promotions/dev.rollback.sigstore.json",
        NOW,
        "signed by ci",
        {"inputAttestations": [{"name": "ledger", "digest": {"sha256": "0" * 64}, "annotations": {"seq": 2}}]},
    )
    holds = Search("dev", (hold,), (), ())
    truncated = entries(("promoted", "dev", rid, NOW, {}))  # the rollback and everything after it deleted
    verdict, reason = run(gate("rollback-hold"), context(tmp_path, "dev", history=truncated, holds=holds))
    assert verdict == "denied" and "the ledger has 1 entry: truncated; the hold stands" in reason
    kept = entries(
        ("promoted", "dev", rid, NOW, {}), ("promoted", "dev", "other", NOW, {}), ("deployed", "dev", "other", NOW, {})
    )
    verdict, reason = run(gate("rollback-hold"), context(tmp_path, "dev", history=kept, holds=holds))
    assert verdict == "denied" and "(signed, releases/x/promotions/dev.rollback.sigstore.json)" in reason
    # an annotated line alone lifts nothing; a signed root cause after the rollback does
    lifted = entries(*[(e.kind, e.environment, e.release, NOW, {}) for e in kept], ("annotated", "dev", rid, NOW, {}))
    assert run(gate("rollback-hold"), context(tmp_path, "dev", history=lifted, holds=holds))[0] == "denied"
    ledger_seq = {"inputAttestations": [{"name": "ledger", "digest": {"sha256": "1" * 64}, "annotations": {"seq": 3}}]}
    cause = Search("dev", (Accepted("root cause", NOW, "signed by ci", ledger_seq),), (), ())
    with_cause = context(tmp_path, "dev", history=lifted, holds=holds, root_causes=cause)
    assert run(gate("rollback-hold"), with_cause)[0] == "passed"
    earlier = Search("dev", (Accepted("root cause", NOW - timedelta(hours=1), "signed by ci", {}),), (), ())
    before = context(tmp_path, "dev", history=lifted, holds=holds, root_causes=earlier)
    assert run(gate("rollback-hold"), before)[0] == "denied"  # signed before the rollback: another one's
    # no search at all (no identity policy): fail closed
    ctx = context(tmp_path, "dev")
    assert run(gate("rollback-hold"), replace(ctx, holds=None))[0] == "error"


@pytest.mark.parametrize(
    ("tz", "friday", "now", "frozen"),
    [
        # spring forward: a 62h window from Friday 18:00 lasts 62 real hours, one wall-clock hour longer
        ("Europe/Berlin", "2027-03-26", "2027-03-29T06:30:00+00:00", True),  # 61.5h in: still frozen
        ("America/New_York", "2027-03-12", "2027-03-15T12:30:00+00:00", True),
        # fall back: ... and one wall-clock hour shorter
        ("Europe/Berlin", "2026-10-23", "2026-10-26T06:30:00+00:00", False),  # 62.5h in: open
        ("America/New_York", "2026-10-30", "2026-11-02T12:30:00+00:00", False),
    ],
)
def test_freeze_windows_last_their_duration_across_daylight_saving_changes(
    tmp_path: Path, tz: str, friday: str, now: str, frozen: bool
) -> None:
    window = {"cron": "0 18 * * FRI", "duration": "62h", "tz": tz}
    moment = datetime.fromisoformat(now)
    verdict, reason = run(gate("freeze", windows=[window]), replace(context(tmp_path), now=moment))
    assert verdict == ("denied" if frozen else "passed"), reason
    start = datetime.fromisoformat(f"{friday}T18:00:00").replace(tzinfo=ZoneInfo(tz))
    elapsed = moment - start  # aware datetimes in different zones: real elapsed time
    assert (elapsed < timedelta(hours=62)) == frozen  # the oracle: 62 real hours from the start


# --- checks -------------------------------------------------------------------------------


def junit(path: Path, cases: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'<?xml version="1.0"?><testsuites><testsuite name="s">{cases}</testsuite></testsuites>')


def test_checks_gate_on_opted_in_report_files(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    files = {"junit": "reports/*.xml", "unsigned_reports": True}
    assert run(gate("checks", **files), ctx)[0] == "error"
    junit(
        tmp_path / "reports" / "a.xml", '<testcase classname="t" name="ok"/><testcase name="skip"><skipped/></testcase>'
    )
    assert run(gate("checks", **files), ctx) == (
        "passed",
        "1 test(s) passed in 1 report(s), 1 skipped (UNSIGNED report(s), bound to nothing)",
    )
    assert run(gate("checks", **files, min=5), ctx)[1].startswith("1 test(s) ran, at least 5 required")
    junit(tmp_path / "reports" / "b.xml", '<testcase classname="t" name="bad"><failure message="x"/></testcase>')
    assert run(gate("checks", **files), ctx) == ("denied", "1 of 3 test(s) failed: t.bad")
    (tmp_path / "reports" / "c.xml").write_text("<not-closed")
    assert run(gate("checks", **files), ctx)[0] == "error"
    # without the opt-in the files are not read at all: the signed results are
    assert run(gate("checks", junit="reports/*.xml"), ctx)[0] == "error"  # nothing verified here
    assert run(gate("checks", junit="reports/*.xml"), context(tmp_path, verification=verification()))[1].startswith(
        "no signed test results about this release"
    )


# --- freeze -------------------------------------------------------------------------------


def test_cron_fields() -> None:
    assert cron_fields("*/15 9-17 * * MON-FRI")[0] == {0, 15, 30, 45}
    assert cron_fields("0 0 * * 7")[4] == {0, 7}
    with pytest.raises(ValueError, match="out of range"):
        cron_fields("61 * * * *")


def weekend(**extra: Any) -> dict[str, Any]:
    return {"windows": [{"name": "weekend", "cron": "0 18 * * FRI", "duration": "62h", "tz": "Europe/Berlin", **extra}]}


def test_freeze_gate(tmp_path: Path) -> None:
    g = gate("freeze", **weekend())
    wednesday = context(tmp_path)
    assert run(g, wednesday)[0] == "passed"
    saturday = PromotionContext(**{**wednesday.__dict__, "now": datetime(2026, 11, 21, 10, 0, tzinfo=timezone.utc)})
    g_saturday = ("denied", "freeze window (weekend) until Mon 08:00 Europe/Berlin")
    assert run(g, saturday) == g_saturday
    monday_late = PromotionContext(**{**wednesday.__dict__, "now": datetime(2026, 11, 23, 7, 30, tzinfo=timezone.utc)})
    assert run(g, monday_late)[0] == "passed"  # 08:30 in Berlin: the window has closed
    # the same weekend, closing at the next Monday 08:00 rather than after 62h
    until = {"name": "weekend", "cron": "0 18 * * FRI", "until-cron": "0 8 * * MON", "tz": "Europe/Berlin"}
    assert run(gate("freeze", windows=[until]), saturday) == g_saturday
    assert run(gate("freeze", windows=[until]), monday_late)[0] == "passed"
    assert run(gate("freeze", windows=[until]), wednesday)[0] == "passed"
    rrule = {"rrule": "FREQ=WEEKLY;BYDAY=WE;BYHOUR=11;BYMINUTE=0", "tz": "Europe/Berlin", "name": "wednesday"}
    # 12:00Z is 13:00 in Berlin: inside 11:00 + 3h, just outside 11:00 + 2h (the end is exclusive)
    assert run(gate("freeze", windows=[{**rrule, "duration": "3h"}]), wednesday) == (
        "denied",
        "freeze window (wednesday) until Wed 14:00 Europe/Berlin",
    )
    assert run(gate("freeze", windows=[{**rrule, "duration": "2h"}]), wednesday)[0] == "passed"
    once = gate(
        "freeze",
        windows=[{"start": "2026-11-18T00:00:00", "end": "2026-11-19T00:00:00", "tz": "UTC", "name": "release day"}],
    )
    assert run(once, wednesday) == ("denied", "freeze window (release day) until Thu 00:00 UTC")


@pytest.mark.parametrize(
    "window",
    [
        {"cron": "bad"},
        {"cron": "0 18 * * FRI"},
        {"cron": "0 18 * * FRI", "duration": "2h", "tz": "Mars/Olympus"},
        {"start": "2026-01-01T00:00:00"},
        {"cron": "0 1 * * *", "rrule": "FREQ=DAILY", "duration": "1h"},
        {"cron": "0 18 * * FRI", "duration": "2h", "until-cron": "0 8 * * MON"},
        {"cron": "0 18 * * FRI", "until-cron": "bad"},
    ],
)
def test_bad_freeze_windows_are_config_errors(window: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Window.model_validate(window)


# --- command ------------------------------------------------------------------------------


def test_command_gate(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    assert run(gate("command", run='test "$PIPELINE_KIT_ENVIRONMENT" = staging'), ctx)[0] == "passed"
    assert run(gate("command", run="echo nope; exit 3"), ctx) == ("denied", "echo nope; exit 3 exited 3: nope")
    assert run(gate("command", run=["/no/such/tool"]), ctx)[0] == "error"
    assert run(gate("command", run="sleep 5", timeout=0.2), ctx) == ("error", "sleep 5: timed out after 0.2s")
    assert run(gate("command", run="exit 0", timeout=30), ctx) == ("passed", "exit 0 exited 0")


# --- engine -------------------------------------------------------------------------------


class Exploding(Gate):
    name = "exploding"

    def evaluate(self, context: PromotionContext) -> Outcome:
        raise RuntimeError("backend unreachable")


class Hanging(Gate):
    """Stays inside until the test lets it go: a gate that never answers in time."""

    name = "hanging"
    released = threading.Event()

    def evaluate(self, context: PromotionContext) -> Outcome:
        Hanging.released.wait(30)
        return Outcome("passed", "too late")


class Meeting(Gate):
    """Passes only when another Meeting gate is inside `evaluate` at the same moment: run one
    after the other, each waits for the other in vain and errs."""

    name = "meeting"
    barrier = threading.Barrier(2)

    def evaluate(self, context: PromotionContext) -> Outcome:
        Meeting.barrier.wait(timeout=10)
        return Outcome("passed", "met the other gate inside")


def test_engine_fails_closed_and_runs_gates_concurrently(tmp_path: Path) -> None:
    from pipeline_kit.gates.interface import Options

    Hanging.released.clear()
    Meeting.barrier.reset()
    gates = [Exploding(Options()), Hanging(Options(timeout=0.3)), Meeting(Options()), Meeting(Options())]
    try:
        results = evaluate([*gates, gate("rollback-hold")], context(tmp_path, "dev"))
        # the engine answered while the hanging gate was still inside: it was not waited for
        assert any(t.name.startswith("gate") and t.is_alive() for t in threading.enumerate())
    finally:
        Hanging.released.set()
    assert [(r.gate, r.verdict) for r in results] == [
        ("exploding", "error"),
        ("hanging", "error"),
        ("meeting", "passed"),
        ("meeting", "passed"),
        ("rollback-hold", "passed"),
    ]
    assert results[0].reason == "RuntimeError: backend unreachable"
    assert results[1].reason == "timed out after 0.3s"


def test_compile_adds_implicit_gates_and_rejects_bad_ones(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    assert [g.name for g in compile_gates(ctx.config, "staging")] == [
        "signature",
        "provenance",
        "sbom",
        "previous-stage",
        "rollback-hold",
    ]
    assert [g.name for g in compile_gates(ctx.config, "dev")] == ["signature", "provenance", "sbom", "rollback-hold"]
    bad = CONFIG.replace(
        "staging: {after: dev, soak: 1h, gates: []}", "staging:\n    after: dev\n    gates:\n      - sigature"
    )
    with pytest.raises(ConfigError, match=r"line 8: environments.staging.gates\[0\]: unknown gate 'sigature'"):
        compile_gates(context(tmp_path, config=bad).config, "staging")
    bad = CONFIG.replace(
        "staging: {after: dev, soak: 1h, gates: []}", "staging:\n    gates:\n      - checks: {junit: x, mni: 2}"
    )
    with pytest.raises(ConfigError, match=r"environments.staging.gates\[0\].checks.mni: unknown key"):
        compile_gates(context(tmp_path, config=bad).config, "staging")
    # `min: 0` would be an approvals gate that always passes
    bad = CONFIG.replace(
        "staging: {after: dev, soak: 1h, gates: []}", "staging:\n    gates:\n      - approvals: {min: 0}"
    )
    with pytest.raises(ConfigError, match=r"gates\[0\].approvals.min: Input should be greater than or equal to 1"):
        compile_gates(context(tmp_path, config=bad).config, "staging")


@pytest.mark.parametrize(
    ("environments", "message"),
    [
        ("  a: {after: b}\n  b: {after: a}\n", "environments form a cycle"),
        ("  a: {after: nowhere}\n", "a.after names no environment: 'nowhere'"),
        # one resourceUri for two environments: a VSA for staging would count for prod
        ("  a: {url: https://x.example}\n  b: {url: https://x.example}\n", "b.url is a's too"),
        ("  a: {soak: soon}\n", "expected a duration"),
        ("  Prod: {}\n", "use lowercase letters"),
    ],
)
def test_environment_config_errors(environments: str, message: str) -> None:
    text = "version: 1\nartifact: {name: a, outputs: [x]}\nenvironments:\n" + environments
    with pytest.raises(ConfigError, match=message):
        parse_config(text, Path("p.yml"))


def test_environment_order() -> None:
    text = "version: 1\nartifact: {name: a, outputs: [x]}\nenvironments:\n  prod: {after: staging}\n  dev: {}\n  staging: {after: dev}\n"
    config = parse_config(text, Path("p.yml"))
    assert config.environment_order() == ["dev", "staging", "prod"]
    assert config.upstream("prod") == ["staging", "dev"]


def test_registry_names_every_gate_module_and_loads_only_those_a_config_uses() -> None:
    # the lazy table is the registry: each name finds the class that answers to it, and every
    # gate module beside the interface is in it (a new gate cannot be left out unnoticed)
    folder = Path(__file__).resolve().parent.parent / "pipeline_kit" / "gates"
    modules = {p.stem for p in folder.glob("*.py")} - {"__init__", "interface"}
    assert {GATES[name].__module__.rsplit(".", 1)[1] for name in GATES} == modules
    assert all(GATES[name].name == name for name in GATES)
    script = (
        "import sys\n"
        "from pipeline_kit.config import parse_config\n"
        "from pathlib import Path\nfrom pipeline_kit.gates import compile_gates\n"
        f"names = [g.name for g in compile_gates(parse_config({CONFIG!r}, Path('c.yml')), 'dev')]\n"
        "print(names, sorted(m.rsplit('.', 1)[1] for m in sys.modules if m.startswith('pipeline_kit.gates.')))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True).stdout
    assert out.strip() == (
        "['signature', 'provenance', 'sbom', 'rollback-hold'] "
        "['interface', 'provenance', 'rollback_hold', 'sbom', 'signature']"
    )
