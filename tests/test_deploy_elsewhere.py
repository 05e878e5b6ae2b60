"""The isolated layout's promotion: decided without signing power, deployed by another job,
completed by `arrive`, which judges it again from the signed evidence and signs (docs/signing-layouts.md)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from tests.conftest import LEDGER, Cli, another_release
from tests.sigstore_instance import LocalSigstore
from tests.test_rollout import with_rollout


def ledger(project: Path) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(line) for line in (project / LEDGER).read_text().splitlines()]


def levels(project: Path, environment: str) -> list[str]:
    bundle = json.loads((project / ".pipeline-kit" / "promotions" / f"{environment}.vsa.sigstore.json").read_text())
    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    return list(statement["predicate"]["verifiedLevels"])


@pytest.fixture
def decided(cli: Cli, signed: Path, policy: list[str], monkeypatch: pytest.MonkeyPatch) -> Path:
    """dev decided by a job without any identity token: nothing is signed there."""
    monkeypatch.delenv("SIGSTORE_IDENTITY_TOKEN", raising=False)
    result = cli(["promote", "--to", "dev", "--deploy-elsewhere", "--reason", "r1", *policy], cwd=signed)
    assert result.code == 0, result.err
    assert "pipeline-kit arrive --to dev" in result.out
    assert not (signed / ".pipeline-kit" / "promotions" / "dev.vsa.sigstore.json").exists()
    (entry,) = ledger(signed)
    assert (entry["kind"], entry["details"]["deploy"]) == ("promoted", "pending")
    return signed


def test_arrive_signs_the_vsa_apart_once_the_deploy_job_succeeded(
    cli: Cli, decided: Path, policy: list[str], sigstore: LocalSigstore, token: None
) -> None:
    release = json.loads((decided / ".pipeline-kit" / "release.json").read_text())["id"]
    # the workflow passes on the release the deciding job decided: other evidence is refused
    other = cli(["arrive", "--to", "dev", "--deploy-result", "success", "--release", "0" * 32, *policy], cwd=decided)
    assert other.code == 1 and f"is release {release}, not {'0' * 32}" in other.err, other.err
    arrive = ["arrive", "--to", "dev", "--deploy-result", "success", "--release", release]
    result = cli([*arrive, *policy], cwd=decided)
    assert result.code == 0, result.err
    assert "never finished deploying" not in result.out  # the decision it completes is no such thing
    assert [(e["kind"], e["environment"]) for e in ledger(decided)] == [("promoted", "dev"), ("deployed", "dev")]
    assert "vsa" in ledger(decided)[-1]["details"]
    assert levels(decided, "dev")[-1] == "PIPELINE_KIT_SIGNED_APART"
    # the arrival counts: staging's previous-stage gate finds dev's signed VSA
    staging = cli(["plan", "--to", "staging", "--json", *policy], cwd=decided)
    gates = {g["gate"]: g for g in json.loads(staging.out)["gates"]}
    # (it waits out staging's soak, counted from dev's signed arrival, which it verified)
    assert gates["previous-stage"]["reason"].startswith("soak 0m of 30m in dev"), gates["previous-stage"]
    # an arrival is completed once: a second one finds no promotion awaiting its deploy
    again = cli(["arrive", "--to", "dev", "--deploy-result", "success", *policy], cwd=decided)
    assert again.code == 2 and "no promotion of" in again.err and "awaits its deploy" in again.err


def test_a_promotion_deployed_in_the_same_process_says_so_in_its_vsa(
    cli: Cli, signed: Path, policy: list[str], token: None
) -> None:
    assert cli(["promote", "--to", "dev", *policy, "--", "true"], cwd=signed).code == 0
    assert levels(signed, "dev")[-1] == "PIPELINE_KIT_SIGNED_BESIDE_USER_CODE"


@pytest.mark.parametrize("outcome", ["failure", "cancelled"])
def test_a_deploy_job_that_did_not_succeed_is_recorded_and_nothing_is_signed(
    cli: Cli, decided: Path, policy: list[str], token: None, outcome: str
) -> None:
    result = cli(["arrive", "--to", "dev", "--deploy-result", outcome, *policy], cwd=decided)
    assert result.code == 3 and f"ended {outcome}" in result.err  # as a deploy command that failed
    assert ledger(decided)[-1]["kind"] == "deploy-failed"
    assert ledger(decided)[-1]["details"]["deploy_job"] == outcome
    assert not (decided / ".pipeline-kit" / "promotions" / "dev.vsa.sigstore.json").exists()


def test_arrive_refuses_what_no_decision_awaits(
    cli: Cli, signed: Path, policy: list[str], sigstore: LocalSigstore, monkeypatch: pytest.MonkeyPatch, token: None
) -> None:
    # Attack: a deploy job (user code, no signing power) hopes the signing job signs whatever
    # release the evidence directory holds. Nothing decided: refused, and nothing is signed.
    result = cli(["arrive", "--to", "dev", "--deploy-result", "success", *policy], cwd=signed)
    assert result.code == 2 and "no promotion of" in result.err and "--deploy-elsewhere" in result.err
    assert not (signed / LEDGER).exists() or not ledger(signed)
    # decided for one release, another handed over in its place: still refused
    monkeypatch.delenv("SIGSTORE_IDENTITY_TOKEN")
    assert cli(["promote", "--to", "dev", "--deploy-elsewhere", *policy], cwd=signed).code == 0
    swapped = another_release(cli, signed, sigstore, monkeypatch)
    result = cli(["arrive", "--to", "dev", "--deploy-result", "success", *policy], cwd=signed)
    assert result.code == 2 and f"no promotion of {swapped}" in result.err
    assert [e["kind"] for e in ledger(signed)] == ["promoted"]


def test_arrive_judges_again_and_a_gate_that_now_denies_is_not_signed(
    cli: Cli, decided: Path, policy: list[str], token: None
) -> None:
    # Attack: the deploy job makes the evidence stop verifying (or the policy closed meanwhile):
    # the decision made before the deploy is not what signs; arrive judges from what it verifies.
    sbom = decided / ".pipeline-kit" / "sbom.cdx.json"
    sbom.write_text(sbom.read_text().replace('"components"', '"components_"', 1))
    result = cli(["arrive", "--to", "dev", "--deploy-result", "success", *policy], cwd=decided)
    assert result.code == 1, result.out + result.err
    last = ledger(decided)[-1]
    assert last["kind"] == "deploy-failed" and "sbom" in last["details"]["refused"]
    assert not (decided / ".pipeline-kit" / "promotions" / "dev.vsa.sigstore.json").exists()


def test_arrive_runs_no_program_the_project_names(
    cli: Cli, signed: Path, policy: list[str], monkeypatch: pytest.MonkeyPatch, token: None
) -> None:
    # A command gate is user code: where the VSA is signed it cannot run, so it denies (fail closed).
    marker = signed / "ran.txt"
    config = signed / "pipeline-kit.yml"
    config.write_text(
        config.read_text().replace(
            "    gates: [signature, provenance, sbom]\n",
            f"    gates: [signature, provenance, sbom, {{command: {{run: 'touch {marker}'}}}}]\n",
            1,
        )
    )
    monkeypatch.delenv("SIGSTORE_IDENTITY_TOKEN")
    assert cli(["promote", "--to", "dev", "--deploy-elsewhere", *policy], cwd=signed).code == 0
    assert marker.exists()  # the deciding job runs it: it holds no signing power
    marker.unlink()
    monkeypatch.setenv("SIGSTORE_IDENTITY_TOKEN", "not-used")
    result = cli(["arrive", "--to", "dev", "--deploy-result", "success", "--json", *policy], cwd=signed)
    assert result.code == 1, result.err
    gates = {g["gate"]: g for g in json.loads(result.out)["gates"]}
    assert gates["command"]["verdict"] != "passed"
    assert "runs no program the project names" in gates["command"]["reason"]
    assert not marker.exists()


def test_the_kit_jobs_variable_refuses_every_project_command(
    cli: Cli, hello: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # PIPELINE_KIT_APART, set by the kit's signing workflows: a build command is refused, not run
    monkeypatch.setenv("PIPELINE_KIT_APART", "true")
    result = cli(["build", "--", "sh", "-c", "touch ran.txt"], cwd=hello)
    assert result.code == 3 and "PIPELINE_KIT_APART is set" in result.err, result.err
    assert not (hello / "ran.txt").exists()
    monkeypatch.delenv("PIPELINE_KIT_APART")
    assert cli(["build", "--", "sh", "-c", "touch ran.txt && python build.py"], cwd=hello).code == 0
    assert (hello / "ran.txt").exists()


def test_a_rollout_environment_cannot_deploy_elsewhere(cli: Cli, signed: Path, policy: list[str]) -> None:
    # a rollout's steps each deploy and set traffic from the kit's own process: shared layout only
    with_rollout(signed, [{"weight": 50}, {"weight": 100}])
    result = cli(["promote", "--to", "dev", "--deploy-elsewhere", *policy], cwd=signed)
    assert result.code == 2 and "rollout strategy" in result.err, result.err
    assert not (signed / LEDGER).exists() or not ledger(signed)


def test_an_arrival_killed_between_its_signature_and_its_line_is_completed_by_arriving_again(
    cli: Cli, decided: Path, policy: list[str], token: None
) -> None:
    # kill -9 after the VSA was signed and kept, before the `deployed` line: the state is the
    # ledger without its last line (a cut tail keeps the chain) and the VSA beside the evidence
    arrive = ["arrive", "--to", "dev", "--deploy-result", "success", *policy]
    assert cli(arrive, cwd=decided).code == 0
    lines = (decided / LEDGER).read_text().splitlines(keepends=True)
    (decided / LEDGER).write_text("".join(lines[:-1]))
    assert [e["kind"] for e in ledger(decided)] == ["promoted"]
    # the decision is still the newest entry: arrive judges, signs and records again
    again = cli(arrive, cwd=decided)
    assert again.code == 0, again.err
    assert [e["kind"] for e in ledger(decided)] == ["promoted", "deployed"]
    assert cli(["ledger", "verify", *policy], cwd=decided).code == 0


def test_a_deploy_job_run_again_after_its_failure_completes_the_same_decision(
    cli: Cli, decided: Path, policy: list[str], token: None
) -> None:
    # a retried deploy job (GitLab's retry, GitHub's re-run of failed jobs) succeeds the second time
    arrive = ["arrive", "--to", "dev", *policy, "--deploy-result"]
    assert cli([*arrive, "failure"], cwd=decided).code == 3
    again = cli([*arrive, "success"], cwd=decided)
    assert again.code == 0, again.err
    assert [e["kind"] for e in ledger(decided)] == ["promoted", "deploy-failed", "deployed"]
    assert levels(decided, "dev")[-1] == "PIPELINE_KIT_SIGNED_APART"
    # a promotion recorded since is news: an arrival of the earlier decision is then refused
    assert cli(["promote", "--to", "dev", "--deploy-elsewhere", *policy], cwd=decided).code == 0
    assert cli([*arrive, "failure"], cwd=decided).code == 3
    assert cli(["ledger", "verify", *policy], cwd=decided).code == 0
