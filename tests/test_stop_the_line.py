"""The org-wide stop-the-line: two projects sharing one org git remote (a real bare repository),
the real sigstore client against the local instance. Who stopped the line is read from the
verified certificate, and forged, unsigned, replayed or rewritten statements never lift a stop."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pytest

from pipeline_kit.config import load_config
from pipeline_kit.ledger import Draft, GitLedger
from tests.conftest import LEDGER, Cli, git
from tests.sigstore_instance import LocalSigstore

REF = "refs/pipeline-kit/stop-the-line"
ONCALL = "oncall@example.com"  # may stop (anyone @example.com), may not resume
LEAD = "lead@example.com"  # may resume
INTERN = "intern@other.example"  # may do neither


def org_section(ledger: Path, sigstore: LocalSigstore, resumer: str = LEAD) -> str:
    return (
        "\norg:\n"
        f"  ledger: {{remote: {ledger}, ref: {REF}}}\n"
        f"  stop: {{identity: {{issuer: {sigstore.issuer}, san-regex: '^[a-z]+@example\\.com$'}}}}\n"
        f"  resume: {{identity: {{issuer: {sigstore.issuer}, san: {resumer}}}}}\n"
    )


@dataclass
class Org:
    """Two signed projects whose configs name one org ledger (a bare repository), and how the
    tests act on them: the kit's commands in-process, each with its own identity token."""

    cli: Cli
    sigstore: LocalSigstore
    policy: list[str]
    monkeypatch: pytest.MonkeyPatch
    first: Path
    other: Path
    ledger: Path

    def line(self, project: Path, action: str, who: str, why: str) -> tuple[int, str]:
        """`stop-the-line` or `resume-the-line` in `project`, signed as `who`."""
        self.monkeypatch.setenv("SIGSTORE_IDENTITY_TOKEN", self.sigstore.mint_token(who))
        trust = ["--trust-config", str(self.sigstore.trust_config_path)]
        result = self.cli([f"{action}-the-line", "--reason", why, *trust], project)
        self.monkeypatch.setenv("SIGSTORE_IDENTITY_TOKEN", self.sigstore.mint_token("dev@example.com"))
        return result.code, result.out + result.err

    def promote(self, project: Path, *extra: str) -> tuple[int, str, dict]:  # type: ignore[type-arg]
        """`promote --to dev` in `project` (signed as the release's signer): code, output, decision."""
        result = self.cli(["promote", "--to", "dev", *extra, *self.policy], project)
        decision = json.loads((project / ".pipeline-kit" / "promotions" / "dev.decision.json").read_text())
        return result.code, result.out + result.err, decision


@pytest.fixture
def org(
    cli: Cli,
    signed: Path,
    sigstore: LocalSigstore,
    policy: list[str],
    token: None,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> Org:
    ledger = tmp_path / "org.git"
    git(tmp_path, "init", "-q", "--bare", str(ledger))
    other = tmp_path / "other-service"
    shutil.copytree(signed, other, symlinks=True)
    for project in (signed, other):
        with_org(project, ledger, sigstore)
        git(project, "commit", "-qam", "org line")
    return Org(cli, sigstore, policy, monkeypatch, signed, other, ledger)


def with_org(project: Path, ledger: Path, sigstore: LocalSigstore, resumer: str = LEAD) -> None:
    config = project / "pipeline-kit.yml"
    config.write_text(config.read_text() + org_section(ledger, sigstore, resumer))


def signed_by(sigstore: LocalSigstore, project: Path, who: str, action: str, reason: str) -> bytes:
    """A statement signed as `who` by the real client on the org ledger as `project` reads it,
    without the command's check of who may sign it: what someone with push rights could plant."""
    from pipeline_kit.signing import Signable, sign_all
    from pipeline_kit.stopline import read_line, statement
    from pipeline_kit.trust import load_trust_config

    config = load_config(project / "pipeline-kit.yml")
    assert config.org is not None
    trust_config = load_trust_config(sigstore.trust_config_path)
    state = read_line(config.org, project, trust_config)
    signable = Signable("s", statement=statement(action, reason, state))  # type: ignore[arg-type]
    return sign_all(trust_config, sigstore.mint_token(who), "test", [signable]).files["s"]


def gate(decision: dict) -> dict:  # type: ignore[type-arg]
    return next(g for g in decision["gates"] if g["gate"] == "stop-the-line")


def org_entries(org: Path) -> list[dict]:  # type: ignore[type-arg]
    shown = subprocess.run(
        ["git", "--git-dir", str(org), "show", f"{REF}:ledger.jsonl"], capture_output=True, text=True, check=True
    )
    return [json.loads(line) for line in shown.stdout.splitlines()]


def plant(project: Path, org: Path, kind: str, bundle: bytes | None) -> None:
    """An entry appended to the org ledger by someone who can push to it, not by the kit's commands."""
    from pipeline_kit.digest import sha256_bytes

    details = {"statement": sha256_bytes(bundle)} if bundle is not None else {}
    draft = Draft(kind=kind, environment="*", actor="local:lead", time=datetime.now(timezone.utc), details=details)
    GitLedger(project, str(org), REF).append(draft, [bundle] if bundle is not None else [])


def attachment(org: Path, seq: int) -> bytes:
    digest = org_entries(org)[seq - 1]["details"]["statement"]
    return subprocess.run(
        ["git", "--git-dir", str(org), "cat-file", "blob", f"{REF}:attachments/{digest}"],
        capture_output=True,
        check=True,
    ).stdout


def test_one_project_stops_the_line_and_the_others_promotion_is_refused_until_resumed(org: Org) -> None:
    code, out, decision = org.promote(org.other)
    assert code == 0, out
    assert gate(decision)["verdict"] == "passed" and "never stopped" in gate(decision)["reason"]

    before = datetime.now(timezone.utc).replace(microsecond=0)
    code, out = org.line(org.first, "stop", ONCALL, "incident 42: payments down")
    after = datetime.now(timezone.utc)
    assert code == 0, out
    assert [e["kind"] for e in org_entries(org.ledger)] == ["line-stopped"]

    code, out, decision = org.promote(org.other)
    assert code == 1, out
    reason = gate(decision)["reason"]
    # who: the certificate's identity and issuer (the ledger line's actor is local:<user>)
    assert f"stopped by {ONCALL} ({org.sigstore.issuer}) at " in reason and "incident 42: payments down" in reason
    assert org_entries(org.ledger)[0]["actor"].startswith("local:")
    # when: the log's verified time, taken while the command ran
    signed_at = datetime.strptime(reason.split(" at ")[1][:20], "%Y-%m-%d %H:%M:%SZ").replace(tzinfo=timezone.utc)
    assert before <= signed_at <= after
    assert read_ledger(org.other)[-1]["kind"] == "denied"
    planned = org.cli(["plan", "--to", "dev", *org.policy], org.other)  # the dry run says the same
    assert planned.code == 1 and f"stopped by {ONCALL}" in planned.out, planned.out + planned.err
    # the project's own promoter cannot waive a verified stop
    code, out, decision = org.promote(org.other, "--break-glass", "--reason", "hotfix")
    assert code == 1 and "--break-glass never lifts a verified stop of the org's line" in out, out
    assert decision["verdict"] == "denied"

    # who may stop may not resume: refused before anything reaches the org ledger
    code, out = org.line(org.other, "resume", ONCALL, "looks fine")
    assert code == 1 and f"{ONCALL} may not resume the line" in out, out
    assert len(org_entries(org.ledger)) == 1

    code, out = org.line(org.other, "resume", LEAD, "payments back")
    assert code == 0 and "the line is resumed" in out, out
    for project in (org.first, org.other):  # resume restores both
        code, out, decision = org.promote(project)
        assert code == 0, out
        assert f"last resumed by {LEAD}" in gate(decision)["reason"]


def read_ledger(project: Path) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(line) for line in (project / LEDGER).read_text().splitlines()]


def test_a_forged_or_replayed_resume_never_lifts_a_stop(org: Org) -> None:
    assert org.line(org.first, "stop", ONCALL, "first incident")[0] == 0
    assert org.line(org.first, "resume", LEAD, "first incident over")[0] == 0
    old_resume = attachment(org.ledger, 2)
    assert org.line(org.first, "stop", ONCALL, "second incident")[0] == 0

    # 1. the genuine resume of the first incident, appended again after the second stop: it
    # verifies (its signer may resume) and names the first stop only
    plant(org.first, org.ledger, "line-resumed", old_resume)
    code, out, decision = org.promote(org.other)
    assert code == 1 and "second incident" in gate(decision)["reason"], out

    # 2. a resume signed by someone outside org.resume.identity (signed by the real client)
    plant(org.first, org.ledger, "line-resumed", signed_by(org.sigstore, org.other, INTERN, "resume", "all clear"))
    # 3. a genuine resume's payload edited to lift the second stop: its signature no longer holds
    envelope = json.loads(old_resume)
    payload = json.loads(base64.b64decode(envelope["dsseEnvelope"]["payload"]))
    payload["predicate"]["lifts"] = gate(decision)["evidence"]["stops"]
    envelope["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(payload).encode()).decode()
    plant(org.first, org.ledger, "line-resumed", json.dumps(envelope).encode())
    # 4. a line saying "resumed" with no statement at all
    plant(org.first, org.ledger, "line-resumed", None)

    code, out, decision = org.promote(org.other)
    verdict = gate(decision)
    assert code == 1 and verdict["verdict"] == "denied", out
    assert f"stopped by {ONCALL}" in verdict["reason"] and "second incident" in verdict["reason"]
    refused = verdict["evidence"]["unreadable"]
    assert len(refused) == 3, refused  # every forgery named; the replay (seq 4) verifies and lifts nothing
    assert f"identity {INTERN} is not the expected {LEAD}" in refused[0]
    assert "does not verify" in refused[1] and "carries no signed statement" in refused[2]

    # the real resume names the standing stop and settles every forged entry before it
    assert org.line(org.first, "resume", LEAD, "second incident over")[0] == 0
    code, out, decision = org.promote(org.other)
    assert code == 0, out


def test_an_unsigned_stop_or_an_unreachable_org_ledger_denies_and_break_glass_is_recorded(org: Org) -> None:
    plant(org.first, org.ledger, "line-stopped", b'{"not": "a bundle"}')  # newest, and it does not verify
    code, out, decision = org.promote(org.other)
    verdict = gate(decision)
    assert code == 1 and verdict["verdict"] == "error", out
    assert "cannot be read" in verdict["reason"] and "org ledger seq 1 (line-stopped)" in verdict["reason"]

    code, out, decision = org.promote(org.other, "--break-glass", "--reason", "the org repo is down, hotfix")
    assert code == 0, out
    assert "warning: BREAK GLASS: dev promoted while the org's line could not be read" in out
    waived = [e for e in read_ledger(org.other) if e["kind"] == "waived"]
    assert len(waived) == 1 and waived[0]["reason"] == "the org repo is down, hotfix"
    assert any(b.startswith("stop-the-line: ") for b in waived[0]["details"]["blocking"])

    # unreachable: the org remote gone
    moved = org.ledger.with_name("moved.git")
    shutil.move(org.ledger, moved)
    code, out, decision = org.promote(org.other)
    assert code == 1 and "cannot read the org ledger" in gate(decision)["reason"], out
    shutil.move(moved, org.ledger)

    # the resume (by LEAD) settles the unsigned entry: the line runs again
    assert org.line(org.first, "resume", LEAD, "junk entry reviewed")[0] == 0
    assert org.promote(org.other)[0] == 0


def test_rewriting_the_org_ledger_to_drop_a_stop_is_found(org: Org) -> None:
    assert org.line(org.first, "stop", ONCALL, "incident")[0] == 0
    code, _, decision = org.promote(org.other)  # denied: the project's ledger records the head it saw
    assert code == 1 and read_ledger(org.other)[-1]["details"]["org_line"][0] == 1
    # someone with push rights deletes the ref (the stop with it)
    git(org.ledger, "update-ref", "-d", REF)
    code, out, decision = org.promote(org.other)
    assert code == 1 and "the org ledger was rewritten" in gate(decision)["reason"], out
    # ... and a new history in its place, as long as the old: still not the one the project saw
    plant(org.first, org.ledger, "line-resumed", signed_by(org.sigstore, org.first, LEAD, "resume", "nothing here"))
    for _ in range(2):  # a denial on the rewritten ledger records nothing the next read would trust
        code, out, decision = org.promote(org.other)
        assert code == 1 and "the org ledger was rewritten" in gate(decision)["reason"], out


def test_a_verified_stop_moved_onto_a_rewritten_history_still_stops_and_break_glass_cannot_waive_it(org: Org) -> None:
    assert org.line(org.first, "stop", ONCALL, "first incident")[0] == 0
    assert org.line(org.first, "resume", LEAD, "first incident over")[0] == 0
    assert org.line(org.first, "stop", ONCALL, "second incident")[0] == 0  # signed on seq 2
    stop = attachment(org.ledger, 3)
    # someone with push rights rewrites the history beneath the genuine stop (this project never
    # read the line, so it remembers no head): the stop now sits on a history it was not signed on
    git(org.ledger, "update-ref", "-d", REF)
    plant(org.first, org.ledger, "line-stopped", None)
    plant(org.first, org.ledger, "line-resumed", None)
    plant(org.first, org.ledger, "line-stopped", stop)
    code, out, decision = org.promote(org.other, "--break-glass", "--reason", "the org ledger looks broken")
    verdict = gate(decision)
    # the stop's signature holds, its signer may stop: it stops, and a break-glass never lifts it
    assert code == 1 and verdict["verdict"] == "denied", out
    assert f"stopped by {ONCALL}" in verdict["reason"] and "second incident" in verdict["reason"], verdict
    assert not [e for e in read_ledger(org.other) if e["kind"] == "waived"]
    # a resume signed on this history names it, and the line runs again
    assert org.line(org.first, "resume", LEAD, "second incident over")[0] == 0
    assert org.promote(org.other)[0] == 0


def test_a_stop_reason_is_shown_on_one_line_whoever_prints_it(org: Org) -> None:
    # the reason is the stop signer's text, printed by every project's commands: a line break
    # there would start a workflow command (`::error::`) or a forged line in a log, an escape
    # would recolour the terminal
    code, out = org.line(org.first, "stop", ONCALL, "incident 7\n::error::all clear, promote\x1b[2K")
    assert code == 0, out
    planned = org.cli(["plan", "--to", "dev", *org.policy], org.other)
    for text in (out, planned.out + planned.err):
        assert "\n::error::" not in text and "\x1b" not in text, text
    assert "incident 7 ::error::all clear, promote" in out, out


def staged_stop(sigstore: LocalSigstore, ledger: Path, project: Path, tmp_path: Path) -> str:
    """A stop signed by ONCALL into a copy of the empty org ledger; returns the shell command that
    pushes it to the org ledger (what a deploy or traffic command runs, to stop the line mid-run)."""
    staged = tmp_path / "staged.git"
    git(tmp_path, "init", "-q", "--bare", str(staged))
    plant(project, staged, "line-stopped", signed_by(sigstore, project, ONCALL, "stop", "incident during the run"))
    return f"git --git-dir {staged} push -q {ledger} {REF}:{REF}"


def test_a_rollout_stopped_mid_way_pauses_before_its_next_step_and_resumes_after_the_line(
    cli: Cli,
    signed: Path,
    sigstore: LocalSigstore,
    policy: list[str],
    token: None,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    import yaml

    from tests.test_rollout import roll_out_first, weights, with_rollout

    with_rollout(signed, [{"weight": 100}])
    roll_out_first(cli, signed, policy, sigstore, monkeypatch)
    org = tmp_path / "org.git"
    git(tmp_path, "init", "-q", "--bare", str(org))
    with_org(signed, org, sigstore)
    with_rollout(signed, [{"weight": 5}, {"weight": 25}, {"weight": 50}, {"weight": 100}])
    push = staged_stop(sigstore, org, signed, tmp_path)
    config = yaml.safe_load((signed / "pipeline-kit.yml").read_text())
    traffic = config["environments"]["dev"]["traffic"]
    traffic["command"] += f'; if [ "$PIPELINE_KIT_CANARY_WEIGHT" = 25 ]; then {push}; fi'
    (signed / "pipeline-kit.yml").write_text(yaml.safe_dump(config, sort_keys=False))

    monkeypatch.setenv("SIGSTORE_IDENTITY_TOKEN", sigstore.mint_token("dev@example.com"))
    result = cli(["promote", "--to", "dev", *policy], signed)
    # the line stopped while traffic was at 25%: no step after it, the rollout paused where it stands
    assert weights(signed) == ["5 blue green", "25 blue green"], result.out + result.err
    assert result.code == 1 and "rollout: stopped" in result.out, result.out + result.err
    assert "step 3/4 in dev not started" in result.out and "error: the rollout in dev stopped" in result.err
    assert f"stopped by {ONCALL}" in result.out and "incident during the run" in result.out
    status = json.loads(cli(["rollout", "status", "--env", "dev", "--json"], signed).out)
    assert status["state"] == "paused" and status["weight"] == 25
    refused = cli(["rollout", "resume", "--env", "dev", *policy], signed)
    assert refused.code == 1 and "stop-the-line" in refused.err and weights(signed)[-1] == "25 blue green"

    assert Org(cli, sigstore, policy, monkeypatch, signed, signed, org).line(signed, "resume", LEAD, "over")[0] == 0
    done = cli(["rollout", "resume", "--env", "dev", *policy], signed)
    assert done.code == 0 and "rollout: finished" in done.out, done.out + done.err
    assert weights(signed)[-2:] == ["50 blue green", "100 blue green"]


def test_a_release_plan_stopped_between_steps_stays_open_and_compensates_nothing(
    cli: Cli,
    sigstore: LocalSigstore,
    policy: list[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    import yaml

    from tests.test_saga import SERVICES, deployed, make_services, saga, set_dev

    root = tmp_path / "release"
    releases = make_services(root, cli, sigstore, policy, monkeypatch)
    org = tmp_path / "org.git"
    git(tmp_path, "init", "-q", "--bare", str(org))
    for service in SERVICES:
        with_org(root / "services" / service, org, sigstore)
    accounts = root / "services" / "accounts"
    push = staged_stop(sigstore, org, accounts, tmp_path)
    deploy = yaml.safe_load((accounts / "pipeline-kit.yml").read_text())["environments"]["dev"]["deploy"]
    set_dev(accounts, deploy=f"{deploy} && {push}")  # accounts' deploy stops the line

    monkeypatch.setenv("SIGSTORE_IDENTITY_TOKEN", sigstore.mint_token("dev@example.com"))
    result = cli(["release", "apply", "--to", "dev", *policy], root)
    assert result.code == 1, result.out + result.err
    assert "orders: the release plan step not started: the line is stopped" in result.err
    assert saga(root) == [("started", None), ("step-done", "accounts")]  # open: nothing failed, nothing compensated
    assert deployed(root, "accounts")[-1] == releases["accounts"][1]
    assert deployed(root, "orders") == [releases["orders"][0]] and deployed(root, "web") == [releases["web"][0]]

    assert (
        Org(cli, sigstore, policy, monkeypatch, accounts, accounts, org).line(accounts, "resume", LEAD, "over")[0] == 0
    )
    again = cli(["release", "apply", "--to", "dev", *policy], root)
    assert again.code == 0, again.out + again.err
    assert [state for state, _ in saga(root)][-1] == "finished"
    assert all(deployed(root, s)[-1] == releases[s][1] for s in SERVICES)


LINE_WORKFLOW = """\
name: line
on: push
permissions: {}
jobs:
  line:
    runs-on: ubuntu-latest
    permissions:
      contents: read
      id-token: write
    steps:
      - uses: actions/checkout@v4
      - id: stop
        uses: pipeline-kit/pipeline-kit/actions/stop-the-line@v0
        with:
          command: stop
          reason: ${{ env.TEST_REASON }}
          trust-config: ${{ env.TEST_TRUST_CONFIG }}
      - name: Between
        env:
          LINE: ${{ steps.stop.outputs.line }}
          SEQ: ${{ steps.stop.outputs.org-ledger-seq }}
        run: printf 'stop=%s %s\\n' "$LINE" "$SEQ" >> "$TEST_OUT/line.txt"
      - id: resume
        uses: pipeline-kit/pipeline-kit/actions/stop-the-line@v0
        with:
          command: resume
          reason: all clear
          trust-config: ${{ env.TEST_TRUST_CONFIG }}
      - name: After
        env:
          LINE: ${{ steps.resume.outputs.line }}
          SEQ: ${{ steps.resume.outputs.org-ledger-seq }}
        run: printf 'resume=%s %s\\n' "$LINE" "$SEQ" >> "$TEST_OUT/line.txt"
"""


def test_the_action_stops_and_resumes_the_line_under_act(tmp_path: Path, sigstore: LocalSigstore) -> None:
    from tests.conftest import SIGNER
    from tests.test_actions import act_repo, run_act

    repo = act_repo(tmp_path)
    org = tmp_path / "org.git"
    git(tmp_path, "init", "-q", "--bare", str(org))
    (repo / ".github" / "workflows" / "line.yml").write_text(LINE_WORKFLOW)
    with_org(repo, org, sigstore, resumer=SIGNER)  # the act job signs as SIGNER
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "org line")
    result, out = run_act(repo, tmp_path, sigstore, "incident 7", workflow=".github/workflows/line.yml")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert (out / "line.txt").read_text().splitlines() == ["stop=stopped 1", "resume=running 2"]
    entries = org_entries(org)
    assert [e["kind"] for e in entries] == ["line-stopped", "line-resumed"] and entries[0]["reason"] == "incident 7"
    assert entries[0]["actor"].startswith("github:")


def test_the_gitlab_template_stops_and_resumes_the_line_under_gitlab_ci_local(
    tmp_path: Path, sigstore: LocalSigstore
) -> None:
    import sys

    from tests.conftest import SIGNER
    from tests.test_gitlab_templates import project, run_offline

    repo = project(tmp_path, sigstore)
    org = tmp_path / "org.git"
    git(tmp_path, "init", "-q", "--bare", str(org))
    with_org(repo, org, sigstore, resumer=SIGNER)
    for command, reason in (("stop", "incident 9"), ("resume", "incident 9 over")):
        (repo / ".gitlab-ci.yml").write_text(
            "include:\n  - local: gitlab-templates/stop-the-line.yml\n    inputs:\n"
            f"      python: {sys.executable}\n      trust-config: {sigstore.trust_config_path}\n"
            f"      command: {command}\n      reason: {reason}\n"
        )
        git(repo, "add", "-A")
        git(repo, "commit", "-qm", command)
        job = f"pipeline-kit-{command}-the-line"
        result = run_offline(repo, job, SIGSTORE_IDENTITY_TOKEN=sigstore.mint_token(SIGNER), GITLAB_CI="true")
        assert result.returncode == 0 and f"PASS  {job}" in result.stdout, result.stdout[-3000:] + result.stderr
    entries = org_entries(org)
    assert [(e["kind"], e["reason"]) for e in entries] == [
        ("line-stopped", "incident 9"),
        ("line-resumed", "incident 9 over"),
    ]
    dotenv = dict(line.split("=", 1) for line in (repo / "pipeline-kit.env").read_text().splitlines())
    assert dotenv["PIPELINE_KIT_LINE"] == "running" and dotenv["PIPELINE_KIT_ORG_LEDGER_SEQ"] == "2"


def test_a_dry_run_reads_the_line_as_ci_will(org: Org) -> None:
    assert org.line(org.first, "stop", ONCALL, "incident 5")[0] == 0
    result = org.cli(["run", "--dry-run"], org.other)
    shown = result.out + result.err
    assert "stop-the-line" in shown and f"to be verified in CI: {ONCALL}" in shown and "incident 5" in shown, shown
    assert "would be DENIED in CI too" in shown


@pytest.mark.parametrize(
    ("section", "problem"),
    [
        (
            "org:\n  ledger: {remote: ../org.git}\n  stop: {identity: {issuer: x, san: a}}\n",
            "org.resume: required key is missing",
        ),
        (
            "org:\n  ledger: {remote: ../org.git, ref: main}\n  stop: {identity: {issuer: x, san: a}}\n"
            "  resume: {identity: {issuer: x, san: a}}\n",
            "expected a git ref",
        ),
        (  # a policy accepting the kit's signing workflows for any repository: anyone's would pass
            "org:\n  ledger: {remote: ../org.git}\n  stop: {identity: {issuer: x, san: a}}\n"
            "  resume: {identity: {issuer: 'https://token.actions.githubusercontent.com', san-regex: '.*'}}\n",
            "org.resume.identity: the identity policy accepts the kit's signing workflows",
        ),
    ],
)
def test_an_org_section_that_cannot_work_is_a_config_error(cli: Cli, hello: Path, section: str, problem: str) -> None:
    config = hello / "pipeline-kit.yml"
    config.write_text(config.read_text() + section)
    result = cli(["plan", "--to", "dev"], hello)
    assert result.code == 2 and "pipeline-kit.yml: line " in result.err and problem in result.err, result.err
