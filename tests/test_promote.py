"""Promotion end to end against the local Sigstore instance: plan, promote, VSA, ledger, rollback."""

from __future__ import annotations

import base64
import json
import re
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from time_machine import TimeMachineFixture

from tests.conftest import LEDGER, REPOSITORY, SIGNER, WHEEL, Cli, another_release, forge_line, git, stock_verify
from tests.sigstore_instance import LocalSigstore


def ledger(project: Path) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(line) for line in (project / LEDGER).read_text().splitlines()]


def test_promote_to_dev_writes_decision_vsa_and_ledger(
    cli: Cli, signed: Path, sigstore: LocalSigstore, policy: list[str], token: None
) -> None:
    junit = signed / "gates.xml"
    result = cli(
        [
            "promote",
            "--to",
            "dev",
            "--reason",
            "first deploy",
            "--junit",
            str(junit),
            *policy,
            "--",
            "sh",
            "-c",
            'echo "$PIPELINE_KIT_ENVIRONMENT $PIPELINE_KIT_RELEASE_ID $PIPELINE_KIT_DIGEST" > deployed.txt',
        ],
        cwd=signed,
    )
    assert result.code == 0, result.err
    evidence = signed / ".pipeline-kit"
    decision = json.loads((evidence / "promotions" / "dev.decision.json").read_text())
    release = json.loads((evidence / "release.json").read_text())
    assert (
        decision["verdict"] == "passed"
        and decision["release"] == release["id"]
        and decision["reason"] == "first deploy"
    )
    assert [g["gate"] for g in decision["gates"]] == ["signature", "provenance", "sbom", "rollback-hold"]
    assert all(g["verdict"] == "passed" for g in decision["gates"])
    assert decision["policy"]["sha256"] and len(decision["inputAttestations"]) == 4
    # the decision commits to the ledger it was made on (empty here)
    assert decision["inputAttestations"][-1] == {
        "name": "ledger",
        "digest": {"sha256": "0" * 64},
        "annotations": {"seq": 0},
    }
    # the deploy ran after the record, with the release in its environment
    digest = release["subjects"][0]["digest"]["sha256"]
    assert (signed / "deployed.txt").read_text().split() == ["dev", release["id"], f"sha256:{digest}"]
    assert [(e["kind"], e["environment"]) for e in ledger(signed)] == [("promoted", "dev"), ("deployed", "dev")]
    # the VSA: about the subjects, for the environment, PASSED, verifiable by the stock sigstore CLI
    bundle = json.loads((evidence / "promotions" / "dev.vsa.sigstore.json").read_text())
    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    assert statement["predicateType"] == "https://slsa.dev/verification_summary/v1"
    predicate = statement["predicate"]
    assert predicate["resourceUri"] == "urn:pipeline-kit:environment:dev"
    assert predicate["verificationResult"] == "PASSED"
    assert not any(level.startswith("SLSA_") for level in predicate["verifiedLevels"])
    assert statement["subject"] == [{"name": WHEEL, "digest": {"sha256": digest}}]
    stock = stock_verify(sigstore, ".pipeline-kit/promotions/dev.vsa.sigstore.json", signed)
    assert stock.returncode == 0, stock.stderr
    cases = ET.parse(junit).getroot().findall(".//testcase")
    assert [c.get("name") for c in cases] == ["signature", "provenance", "sbom", "rollback-hold"]
    shown = json.loads(cli(["show", "--json"], cwd=signed).out)
    assert shown["promotions"] == [
        {"environment": "dev", "verdict": "passed", "time": decision["time"], "signed": True}
    ]
    assert len(shown["bundles"]) == 3
    # chain of custody
    assert cli(["verify", "--env", "dev", *policy], cwd=signed).code == 0
    custody = cli(["verify", "--env", "staging", *policy], cwd=signed)
    assert (
        custody.code == 1
        and "staging.vsa.sigstore.json: custody failed: no signed VSA shows staging passed this release" in custody.err
    )


def test_promote_to_prod_says_staging_never_received_it(cli: Cli, signed: Path, policy: list[str], token: None) -> None:
    assert cli(["promote", "--to", "dev", *policy], cwd=signed).code == 0
    result = cli(["promote", "--to", "prod", *policy], cwd=signed)
    assert result.code == 1
    assert "staging never passed this release" in result.out
    decision = json.loads((signed / ".pipeline-kit" / "promotions" / "prod.decision.json").read_text())
    assert decision["verdict"] == "denied"
    assert not (signed / ".pipeline-kit" / "promotions" / "prod.vsa.sigstore.json").exists()
    assert [e["kind"] for e in ledger(signed)] == ["promoted", "denied"]


def test_plan_explains_every_gate_and_records_nothing(cli: Cli, signed: Path, policy: list[str], token: None) -> None:
    assert cli(["promote", "--to", "dev", *policy], cwd=signed).code == 0
    before = (signed / LEDGER).read_bytes()
    result = cli(["plan", "--to", "staging", "--json", *policy], cwd=signed)
    assert result.code == 1
    gates = {g["gate"]: g for g in json.loads(result.out)["gates"]}
    assert list(gates) == ["signature", "provenance", "sbom", "checks", "previous-stage", "rollback-hold"]
    assert gates["checks"]["verdict"] == "denied" and "no signed test results" in gates["checks"]["reason"]
    assert gates["previous-stage"]["reason"].startswith("soak 0m of 30m in dev, ready at ")
    assert all(g["reason"] for g in gates.values())
    assert (signed / LEDGER).read_bytes() == before
    assert not (signed / ".pipeline-kit" / "promotions" / "staging.decision.json").exists()
    text = cli(["plan", "--to", "staging", *policy], cwd=signed)
    assert "would be DENIED" in text.out and "previous-stage" in text.out


def test_break_glass_is_recorded_everywhere(cli: Cli, signed: Path, policy: list[str], token: None) -> None:
    refused = cli(["promote", "--to", "staging", "--break-glass", *policy], cwd=signed)
    assert refused.code == 2 and "--break-glass needs --reason" in refused.err
    result = cli(["promote", "--to", "staging", "--break-glass", "--reason", "INC-7 hotfix", *policy], cwd=signed)
    assert result.code == 0, result.err
    evidence = signed / ".pipeline-kit" / "promotions"
    decision = json.loads((evidence / "staging.decision.json").read_text())
    assert decision["verdict"] == "waived" and decision["breakGlass"] is True
    statement = json.loads(
        base64.b64decode(json.loads((evidence / "staging.vsa.sigstore.json").read_text())["dsseEnvelope"]["payload"])
    )
    assert statement["predicate"]["verificationResult"] == "FAILED"
    assert "PIPELINE_KIT_BREAK_GLASS" in statement["predicate"]["verifiedLevels"]
    entry = ledger(signed)[-1]
    assert entry["kind"] == "waived" and entry["reason"] == "INC-7 hotfix" and entry["details"]["blocking"]


def test_deploy_failure_is_recorded(cli: Cli, signed: Path, policy: list[str], token: None) -> None:
    result = cli(["promote", "--to", "dev", *policy, "--", "sh", "-c", "echo boom; exit 4"], cwd=signed)
    assert result.code == 3
    assert "deploy to dev exited with code 4; recorded in the ledger" in result.err
    assert [e["kind"] for e in ledger(signed)] == ["promoted", "deploy-failed"]


def test_no_token_means_nothing_promoted(cli: Cli, signed: Path, policy: list[str]) -> None:
    result = cli(["promote", "--to", "dev", *policy], cwd=signed)
    assert result.code == 3 and "no identity token" in result.err
    assert "hint: locally, pass --interactive" in result.err
    assert not (signed / LEDGER).exists()
    assert not (signed / ".pipeline-kit" / "promotions").exists()


def test_tampered_ledger_stops_promotion(cli: Cli, signed: Path, policy: list[str], token: None) -> None:
    assert cli(["promote", "--to", "dev", *policy], cwd=signed).code == 0
    path = signed / LEDGER
    path.write_text(path.read_text().replace('"promoted"', '"denied"', 1))
    result = cli(["promote", "--to", "dev", *policy], cwd=signed)
    assert result.code == 1 and "line 1 (seq 1) was edited" in result.err


def test_unsigned_evidence_is_denied(cli: Cli, described: Path, policy: list[str], token: None) -> None:
    result = cli(["promote", "--to", "dev", "--json", *policy], cwd=described)
    assert result.code == 1
    gates = {g["gate"]: g for g in json.loads(result.out)["gates"]}
    assert gates["signature"]["verdict"] == "denied" and "bundle missing" in gates["signature"]["reason"]


def good_then_bad_in_dev(
    cli: Cli, signed: Path, sigstore: LocalSigstore, policy: list[str], monkeypatch: pytest.MonkeyPatch
) -> tuple[str, str]:
    """Promote the signed release to dev, then a changed one after it; their release ids."""
    assert cli(["promote", "--to", "dev", *policy], cwd=signed).code == 0
    good = json.loads((signed / ".pipeline-kit" / "release.json").read_text())["id"]
    bad = another_release(cli, signed, sigstore, monkeypatch)
    assert cli(["promote", "--to", "dev", *policy], cwd=signed).code == 0
    return good, bad


def test_rollback_holds_the_bad_release_until_annotated(
    cli: Cli, signed: Path, sigstore: LocalSigstore, policy: list[str], token: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    good, bad = good_then_bad_in_dev(cli, signed, sigstore, policy, monkeypatch)

    missing = cli(["rollback", "--env", "dev", *policy], cwd=signed)
    assert missing.code == 2  # --reason is required
    result = cli(
        [
            "rollback",
            "--env",
            "dev",
            "--reason",
            "500s after deploy",
            *policy,
            "--",
            "sh",
            "-c",
            'echo "$PIPELINE_KIT_RELEASE_ID" > rolled-back-to.txt',
        ],
        cwd=signed,
    )
    assert result.code == 0, result.err
    assert f"rolled back from {bad} to {good}" in result.out
    assert (signed / "rolled-back-to.txt").read_text().strip() == good

    again = cli(["promote", "--to", "dev", *policy], cwd=signed)
    assert again.code == 1
    assert "rolled back from dev at" in again.out and "ledger annotate --env dev" in again.out
    # the attack: an unsigned `annotated` line appended to the ledger lifts no signed hold

    forge_line(
        signed,
        kind="annotated",
        environment="dev",
        release=bad,
        reason="mallory says fine",
        details={},
    )
    forged = cli(["promote", "--to", "dev", *policy], cwd=signed)
    assert forged.code == 1 and "no signed root cause since" in forged.out, forged.out
    cause = ["--root-cause", "https://issues.example/INC-9"]
    annotated = cli(["ledger", "annotate", "--env", "dev", *cause, *policy], cwd=signed)
    assert annotated.code == 0
    assert cli(["promote", "--to", "dev", *policy], cwd=signed).code == 0
    kinds = [e["kind"] for e in ledger(signed)]
    assert kinds == [
        "promoted",
        "promoted",
        "deployed",
        "rolled-back",
        "denied",
        "annotated",
        "denied",
        "annotated",
        "promoted",
    ]
    assert cli(["ledger", "verify", *policy], cwd=signed).code == 0


def test_rollback_refuses_a_target_whose_evidence_does_not_verify(
    cli: Cli, signed: Path, sigstore: LocalSigstore, policy: list[str], token: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    good, _ = good_then_bad_in_dev(cli, signed, sigstore, policy, monkeypatch)
    archived = signed / ".pipeline-kit" / "releases" / good / "bundles" / "provenance.sigstore.json"
    archived.write_text(archived.read_text()[:200])
    result = cli(["rollback", "--env", "dev", "--reason", "x", *policy], cwd=signed)
    assert result.code == 1 and f"rollback target {good}: {good}'s evidence does not verify" in result.err
    assert [e["kind"] for e in ledger(signed)][-1] == "promoted"  # nothing recorded


# The example's prod freezes from Friday 18:00 for 62 hours (Europe/Berlin), in elapsed time: the
# clock of this process is pinned (time-machine), so the verdicts are the same on any day of the week.
BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(
    ("moment", "frozen_until"),
    [
        pytest.param(datetime(2026, 12, 9, 10, 0, tzinfo=BERLIN), None, id="wednesday"),
        pytest.param(datetime(2026, 12, 11, 17, 59, tzinfo=BERLIN), None, id="friday-before-the-freeze"),
        pytest.param(datetime(2026, 12, 11, 18, 0, tzinfo=BERLIN), "Mon 08:00", id="friday-at-the-freeze"),
        pytest.param(datetime(2026, 12, 12, 19, 30, tzinfo=BERLIN), "Mon 08:00", id="saturday-evening"),
        pytest.param(datetime(2026, 12, 13, 12, 0, tzinfo=BERLIN), "Mon 08:00", id="sunday"),
        # 02:30 does not exist on the spring night: 01:30Z is 03:30 CEST; 62h from Friday 18:00 CET
        # end at 09:00 CEST, and at 08:30 the freeze still holds
        pytest.param(datetime(2027, 3, 28, 1, 30, tzinfo=timezone.utc), "Mon 09:00", id="spring-dst-night"),
        pytest.param(datetime(2027, 3, 29, 8, 30, tzinfo=BERLIN), "Mon 09:00", id="monday-after-spring-dst"),
        # the autumn night's second 02:30 (CET); 62h from Friday 18:00 CEST end at 07:00 CET
        pytest.param(datetime(2026, 10, 25, 1, 30, tzinfo=timezone.utc), "Mon 07:00", id="autumn-dst-night"),
        pytest.param(datetime(2026, 10, 26, 7, 30, tzinfo=BERLIN), None, id="monday-after-autumn-dst"),
    ],
)
def test_run_dry_run_judges_every_environment_as_ci_will(
    cli: Cli, described: Path, time_machine: TimeMachineFixture, moment: datetime, frozen_until: str | None
) -> None:
    time_machine.move_to(moment, tick=False)
    result = cli(["run", "--dry-run"], cwd=described)
    assert result.code == 0, result.err
    for environment in ("dev", "staging", "prod"):  # in the words of `pipeline-kit plan`
        assert f"{environment}: release " in result.out
    # the clone's origin is the policy's repository: everything CI shares passes; what only CI
    # can know (the VSA of the environment before, signed rollbacks) is marked as decided there
    assert "dev: release " in result.out and "would pass in CI" in result.out
    assert re.search(r"previous-stage +in CI +needs dev's signed promotion \(VSA\) first, then 30m there", result.out)
    if frozen_until is None:
        assert "summary: release " in result.out and "3 of 3 environment(s) would pass in CI" in result.out
        at = moment.astimezone(timezone.utc)
        assert re.search(rf"freeze +pass +outside all 1 freeze window\(s\) at {at:%Y-%m-%d %H:%M}Z", result.out)
    else:
        assert "2 of 3 environment(s) would pass in CI (dev, staging)" in result.out
        blocked = f"prod: blocked by freeze: freeze window (weekend freeze) until {frozen_until} Europe/Berlin"
        assert blocked in result.out
    assert not (described / LEDGER).exists()


def test_run_dry_run_names_what_would_block_ci_too(cli: Cli, described: Path) -> None:
    # a clone whose origin is not the policy's repository: CI's provenance would name it too, and
    # every environment would deny; a dry run that said "nothing is signed locally" hid this
    git(described, "remote", "set-url", "origin", "https://github.com/someone/fork.git")
    result = cli(["run", "--dry-run"], cwd=described)
    assert result.code == 0, result.err
    assert result.out.count("would be DENIED in CI too") == 3
    assert "0 of 3 environment(s) would pass in CI" in result.out
    assert (
        "dev: blocked by provenance: provenance.intoto.json: built from https://github.com/someone/fork" in result.out
    )
    # one sentence on why, and what would pass built from the policy's repository; the check stands
    assert (
        "why: this checkout's origin is https://github.com/someone/fork, not the policy's repository "
        f"{REPOSITORY} (signing.identity.repository)" in result.out
    )
    assert "or set signing.identity here to your repository" in result.out


def test_run_dry_run_projection_never_reaches_a_real_promotion(
    cli: Cli, described: Path, policy: list[str], token: None
) -> None:
    # the projection is the dry run's alone: a plan of the same unsigned evidence refuses it
    assert "would pass in CI" in cli(["run", "--dry-run"], cwd=described).out
    planned = cli(["plan", "--to", "dev", "--offline", *policy], cwd=described)
    assert planned.code == 2 and "nothing signed yet" in planned.err and planned.out == ""
    # one bundle present, the others missing: the gates deny, naming each missing bundle
    bundles = described / ".pipeline-kit" / "bundles"
    bundles.mkdir()
    (bundles / "sbom.sigstore.json").write_text("{}")
    planned = cli(["plan", "--to", "dev", "--offline", *policy], cwd=described)
    assert planned.code == 1 and "would be DENIED" in planned.out and "in CI" not in planned.out
    assert "provenance.sigstore.json: bundle missing" in planned.out
    assert "hint: sign first with `pipeline-kit sign`" in planned.err


def test_run_builds_signs_and_promotes_to_the_first_environment(
    cli: Cli, described: Path, policy: list[str], token: None
) -> None:
    result = cli(["run", "--reason", "local release", *policy], cwd=described)
    assert result.code == 0, result.err
    evidence = described / ".pipeline-kit"
    release = json.loads((evidence / "release.json").read_text())
    assert f"signed  as {SIGNER}" in result.out and "decision: passed (ledger seq 1)" in result.out
    for bundle in (f"bundles/{WHEEL}.sigstore.json", "bundles/provenance.sigstore.json", "bundles/sbom.sigstore.json"):
        assert (evidence / bundle).is_file(), bundle
    decision = json.loads((evidence / "promotions" / "dev.decision.json").read_text())
    assert decision["verdict"] == "passed" and decision["release"] == release["id"]
    assert decision["reason"] == "local release"
    assert [(e["kind"], e["environment"]) for e in ledger(described)] == [("promoted", "dev")]
    # what one process did, the separate commands accept: the chain of custody up to dev holds
    assert cli(["verify", "--env", "dev", *policy], cwd=described).code == 0


def archive_bytes(project: Path, release: str) -> dict[str, bytes]:
    archive = project / ".pipeline-kit" / "releases" / release
    return {p.relative_to(archive).as_posix(): p.read_bytes() for p in sorted(archive.rglob("*")) if p.is_file()}


def test_a_dry_run_writes_nothing_that_was_signed(cli: Cli, described: Path, policy: list[str], token: None) -> None:
    # The edge: `run` signs and promotes; a later `run --dry-run` on the same commit builds the
    # same subjects again. It used to rewrite the archived provenance and SBOM and delete the
    # bundles, so that a rollback to the release failed "does not verify".
    assert cli(["run", "--reason", "local release", *policy], cwd=described).code == 0
    release = json.loads((described / ".pipeline-kit" / "release.json").read_text())["id"]
    signed = archive_bytes(described, release)
    assert any(name.startswith("bundles/") for name in signed)
    dry = cli(["run", "--dry-run"], cwd=described)
    assert dry.code == 0, dry.err
    assert "this release was signed here before: its evidence is shown as signed" in dry.out
    assert archive_bytes(described, release) == signed
    # the top level shows the release as it was signed: it still verifies, its custody too
    assert cli(["verify", "--env", "dev", *policy], cwd=described).code == 0
    # rewriting signed build evidence is refused, by a second run or by hand, and changes nothing
    again = cli(["run", *policy], cwd=described)
    assert again.code == 2 and f"release {release} was signed here before" in again.err
    assert cli(["sbom"], cwd=described).code == 0  # the same bytes again: nothing changes
    (described / "requirements.txt").write_text("flask==3.0.0\n")
    sbom = cli(["sbom", "--source", "requirements.txt"], cwd=described)
    assert sbom.code == 2 and "is signed, and its build evidence is written once" in sbom.err
    assert archive_bytes(described, release) == signed
    assert cli(["verify", "--env", "dev", *policy], cwd=described).code == 0


def test_run_under_the_configured_ci_policy_records_a_denial(
    cli: Cli, described: Path, sigstore: LocalSigstore, token: None
) -> None:
    # the example's policy accepts only its GitHub release workflow: a local signer is refused
    result = cli(["run", "--trust-config", str(sigstore.trust_config_path)], cwd=described)
    assert result.code == 1
    assert "decision: denied" in result.out and "signature" in result.out
    decision = json.loads((described / ".pipeline-kit" / "promotions" / "dev.decision.json").read_text())
    assert decision["verdict"] == "denied"
    assert [e["kind"] for e in ledger(described)] == ["denied"]


def test_run_no_promote_stops_after_signing(cli: Cli, described: Path, policy: list[str], token: None) -> None:
    result = cli(["run", "--no-promote", *policy], cwd=described)
    assert result.code == 0, result.err
    assert (described / ".pipeline-kit" / "bundles" / "sbom.sigstore.json").is_file()
    assert not (described / ".pipeline-kit" / "promotions").exists()
    assert not (described / LEDGER).exists()


def test_contradictory_policy_flags_are_a_usage_error(cli: Cli, described: Path) -> None:
    result = cli(
        ["plan", "--to", "dev", "--cert-identity", "a@example.com", "--cert-identity-regex", "^a"], cwd=described
    )
    assert result.code == 2
    assert "give --cert-identity or --cert-identity-regex, not both" in result.err


def test_a_second_rollback_never_brings_back_the_held_release(
    cli: Cli, signed: Path, sigstore: LocalSigstore, policy: list[str], token: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The edge: after rolling back from bad to good, a second rollback took "the previous release
    # that arrived" from the ledger: the held one, back into the environment it was taken out of.
    good, bad = good_then_bad_in_dev(cli, signed, sigstore, policy, monkeypatch)
    assert cli(["rollback", "--env", "dev", "--reason", "500s", *policy], cwd=signed).code == 0
    again = cli(["rollback", "--env", "dev", "--reason", "again", *policy], cwd=signed)
    assert again.code == 1, again.out + again.err
    assert f"rollback target {bad}: {bad} was rolled back out of dev (signed" in again.err
    assert [(e["kind"], e["release"]) for e in ledger(signed)][-1] == ("rolled-back", good)  # nothing recorded


def test_rollback_to_a_release_never_promoted_there_is_refused(
    cli: Cli, signed: Path, sigstore: LocalSigstore, policy: list[str], token: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The edge: `rollback --to X` checked only X's own signatures; X never passed dev.
    assert cli(["promote", "--to", "dev", *policy], cwd=signed).code == 0
    never = another_release(cli, signed, sigstore, monkeypatch)  # built and signed, never promoted
    (signed / "src" / "hello_service" / "other.py").write_text("OTHER = True\n")
    current = another_release(cli, signed, sigstore, monkeypatch)
    assert cli(["promote", "--to", "dev", *policy], cwd=signed).code == 0
    result = cli(["rollback", "--env", "dev", "--to", never, "--reason", "x", *policy], cwd=signed)
    assert result.code == 1, result.out + result.err
    assert f"rollback target {never}: no signed VSA shows {never} was promoted to dev" in result.err
    assert [e["release"] for e in ledger(signed)][-1] == current


def test_a_failed_first_rollout_leaves_nothing_running() -> None:
    # `to` is null when the first rollout of an environment failed: nothing runs there, not "None"
    from pipeline_kit.ledger import Draft, Entry
    from pipeline_kit.promotion.shown import current_release

    now = datetime(2026, 12, 9, tzinfo=timezone.utc)
    drafts = [
        Draft(kind="promoted", environment="dev", release="a" * 32, actor="t", time=now, details={"deploy": "none"}),
        Draft(kind="rolled-back", environment="dev", release=None, actor="t", time=now, details={"to": None}),
    ]
    entries, prev = [], "0" * 64
    for seq, draft in enumerate(drafts, 1):
        entries.append(Entry.chain(draft, seq, prev))
        prev = entries[-1].hash
    assert current_release(entries[:1], "dev") == "a" * 32
    assert current_release(entries, "dev") is None


def test_a_ledger_line_never_chooses_what_a_rollback_takes_out(
    cli: Cli, signed: Path, sigstore: LocalSigstore, policy: list[str], token: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The attack: after good then bad reached dev (both signed), one appended line says good was
    # deployed last. rollback took "current" from the ledger: it deployed bad and signed a hold
    # against good.

    good, bad = good_then_bad_in_dev(cli, signed, sigstore, policy, monkeypatch)
    subjects = next(e["subjects"] for e in ledger(signed) if e["release"] == good)
    forge_line(
        signed,
        kind="deployed",
        environment="dev",
        release=good,
        subjects=subjects,
        details={},
    )
    # the line only casts doubt: the kit asks instead of choosing; the operator names what runs
    asked = cli(["rollback", "--env", "dev", "--reason", "bad is broken", *policy], cwd=signed)
    assert asked.code == 1 and f"the signed record shows {bad}, the ledger {good}" in asked.err
    result = cli(["rollback", "--env", "dev", "--from", bad, "--reason", "bad is broken", *policy], cwd=signed)
    assert result.code == 0, result.out + result.err
    assert f"dev: rolled back from {bad} to {good}" in result.out
    assert (signed / ".pipeline-kit" / "releases" / bad / "promotions" / "dev.rollback.sigstore.json").is_file()
    assert not (signed / ".pipeline-kit" / "releases" / good / "promotions" / "dev.rollback.sigstore.json").exists()


def test_rollback_never_goes_to_a_release_whose_deploy_failed_there(
    cli: Cli, signed: Path, sigstore: LocalSigstore, policy: list[str], token: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The edge: the PASSED VSA was signed before the deploy, so a release whose deploy failed had
    # one; `rollback --to` it deployed a release that never ran there. Now it has none.
    failed = json.loads((signed / ".pipeline-kit" / "release.json").read_text())["id"]
    assert cli(["promote", "--to", "dev", *policy, "--", "false"], cwd=signed).code == 3
    another_release(cli, signed, sigstore, monkeypatch)
    assert cli(["promote", "--to", "dev", *policy], cwd=signed).code == 0
    result = cli(["rollback", "--env", "dev", "--to", failed, "--reason", "x", *policy], cwd=signed)
    assert result.code == 1, result.out + result.err
    assert f"rollback target {failed}: no signed VSA shows {failed} was promoted to dev" in result.err
    assert not (signed / ".pipeline-kit" / "releases" / failed / "promotions" / "dev.vsa.sigstore.json").exists()


def test_a_failed_rollback_deploy_is_retried_from_the_release_still_running(
    cli: Cli, signed: Path, sigstore: LocalSigstore, policy: list[str], token: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The edge: the rollback is signed before its deploy; when that deploy failed, the signed
    # record said good ran, and the retry rolled back from good (holding it) to an older release.
    good, bad = good_then_bad_in_dev(cli, signed, sigstore, policy, monkeypatch)
    failed = cli(["rollback", "--env", "dev", "--reason", "500s", *policy, "--", "false"], cwd=signed)
    assert failed.code == 3, failed.out + failed.err
    # the ledger's failed deploy is doubt: the kit asks, and names the release that still runs
    asked = cli(["rollback", "--env", "dev", "--reason", "500s, again", *policy], cwd=signed)
    assert asked.code == 1 and f"roll back with --from {bad}" in asked.err, asked.out + asked.err
    retry = cli(["rollback", "--env", "dev", "--from", bad, "--reason", "500s, again", *policy], cwd=signed)
    assert retry.code == 0 and f"dev: rolled back from {bad} to {good}" in retry.out, retry.out + retry.err
    assert not (signed / ".pipeline-kit" / "releases" / good / "promotions" / "dev.rollback.sigstore.json").exists()


def test_a_ledger_line_naming_another_release_makes_rollback_ask(
    cli: Cli, signed: Path, sigstore: LocalSigstore, policy: list[str], token: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The attack: an appended `deployed` line for a signed release never promoted to dev made
    # rollback take that one out (holding it) and deploy the bad release again.

    _, bad = good_then_bad_in_dev(cli, signed, sigstore, policy, monkeypatch)
    (signed / "src" / "hello_service" / "innocent.py").write_text("X = 1\n")
    innocent = another_release(cli, signed, sigstore, monkeypatch)
    forge_line(signed, kind="deployed", environment="dev", release=innocent)
    asked = cli(["rollback", "--env", "dev", "--reason", "x", *policy], cwd=signed)
    assert asked.code == 1 and f"the signed record shows {bad}, the ledger {innocent}" in asked.err
    assert f"--from {innocent}" in asked.err
    assert [e["kind"] for e in ledger(signed)][-1] == "deployed"  # nothing signed, nothing deployed
