"""The `rollback` action with `deploy-elsewhere: true`, under act: a rollback by hand in a workflow
of the user's that signs as itself (docs/signing-layouts.md). Its job signs the hold and records
the rollback, runs no deploy command, and hands the deploy job the release it goes back to; with a
deploy input too it refuses (exit 2) before anything is installed or signed. GitHub's token
service is emulated per job (tests/github_runner.py), so each signature names the job's workflow
and the test sees which job asked for a token."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from pipeline_kit.ledger import Entry, GitLedger
from pipeline_kit.scaffold import forge_identity
from tests.conftest import ROOT, SIGNER, Cli, git
from tests.github_runner import grant_id_tokens, load_workflow
from tests.sigstore_instance import LocalSigstore
from tests.test_rollback_fresh import Promoted, promoted_twice
from tests.test_signing_isolation import PINNED, act_with_kit, kit_repository

REPOSITORY = "pipeline-kit/hello-service"
WORKFLOW = ".github/workflows/rollback.yml"
MAIN = "refs/heads/main"
REF = "refs/pipeline-kit/ledger"
# what Fulcio certifies for a job of the user's rollback workflow, run from main
OWN_SAN = f"https://github.com/{REPOSITORY}/{WORKFLOW}@{MAIN}"
ACTION = f"pipeline-kit/pipeline-kit/actions/rollback@{PINNED}"

# refused: deploy-elsewhere with a deploy input (first: the ledger it must leave alone is the
# one the rollback then changes); rollback: deploy-elsewhere; deploy: the user's job, no id-token
ROLLBACK_WORKFLOW = f"""\
name: rollback
on: workflow_dispatch
permissions: {{}}
jobs:
  refused:
    runs-on: ubuntu-latest
    permissions: {{contents: read, id-token: write}}
    steps:
      - uses: actions/checkout@v4
        with:
          persist-credentials: false
      - run: git ls-remote "$TEST_REMOTE" {REF} > "$TEST_OUT/refused-before.txt"
      - id: refused
        continue-on-error: true
        uses: {ACTION}
        with:
          environment: dev
          reason: errors up
          trust-config: ${{{{ env.TEST_TRUST_CONFIG }}}}
          deploy-elsewhere: true
          deploy: touch "$TEST_OUT/refused-deploy-ran"
      - env:
          OUTCOME: ${{{{ steps.refused.outcome }}}}
        run: |
          echo "$OUTCOME" > "$TEST_OUT/refused-outcome.txt"
          git ls-remote "$TEST_REMOTE" {REF} > "$TEST_OUT/refused-after.txt"
  rollback:
    needs: refused
    runs-on: ubuntu-latest
    permissions: {{contents: read, id-token: write}}
    outputs:
      release-id: ${{{{ steps.rollback.outputs.release-id }}}}
      digest: ${{{{ steps.rollback.outputs.digest }}}}
      subjects: ${{{{ steps.rollback.outputs.subjects }}}}
      from: ${{{{ steps.rollback.outputs.from }}}}
    steps:
      - uses: actions/checkout@v4
        with:
          persist-credentials: false
      - id: rollback
        uses: {ACTION}
        with:
          environment: dev
          reason: errors up
          trust-config: ${{{{ env.TEST_TRUST_CONFIG }}}}
          deploy-elsewhere: true
  deploy:
    needs: rollback
    runs-on: ubuntu-latest
    permissions: {{contents: read}}
    steps:
      - env:
          RELEASE: ${{{{ needs.rollback.outputs.release-id }}}}
          DIGEST: ${{{{ needs.rollback.outputs.digest }}}}
          SUBJECTS: ${{{{ needs.rollback.outputs.subjects }}}}
          FROM: ${{{{ needs.rollback.outputs.from }}}}
        run: printf '%s\\n' "$RELEASE" "$DIGEST" "$SUBJECTS" "$FROM" > "$TEST_OUT/deploy.txt"
"""


def set_policy(project: Path, sigstore: LocalSigstore, own_workflow: bool) -> None:
    """The test signer (who promoted the releases, locally) and, `own_workflow`, the user's
    rollback workflow on main: what the policy must admit for the action to sign there."""
    path = project / "pipeline-kit.yml"
    config = yaml.safe_load(path.read_text())
    identity = forge_identity(f"https://github.com/{REPOSITORY}")
    assert identity is not None and identity[3] is not None
    sans = [re.escape(SIGNER), *([re.escape(OWN_SAN)] if own_workflow else [])]
    config["signing"]["identity"] = {
        "issuer": sigstore.issuer,
        "san-regex": f"^({'|'.join(sans)})$",
        "repository": f"https://github.com/{REPOSITORY}",
        "caller-regex": identity[3],  # init's: the rollback workflow from main
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def verified_statement(bundle: bytes, sigstore: LocalSigstore, san: str) -> dict[str, Any]:
    """The in-toto statement of a DSSE bundle, after the stock client verified it for `san`."""
    from sigstore.models import Bundle
    from sigstore.verify import Verifier
    from sigstore.verify.policy import Identity

    from pipeline_kit.trust import load_trust_config

    verifier = Verifier(trusted_root=load_trust_config(sigstore.trust_config_path).trusted_root)
    _, payload = verifier.verify_dsse(Bundle.from_json(bundle), Identity(identity=san, issuer=sigstore.issuer))
    return dict(json.loads(payload))


def subjects_of(statement: dict[str, Any]) -> dict[str, str]:
    return {s["name"]: "sha256:" + s["digest"]["sha256"] for s in statement["subject"]}


def run_workflow(
    promoted: Promoted, sigstore: LocalSigstore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Path, str, list[str]]:
    """The workflow on main from the fresh clone, the action at the kit's pinned commit; returns
    the directory the steps write to, act's output, and the job of each Sigstore token minted."""
    repo = promoted.fresh
    head = git(repo, "rev-parse", "HEAD").strip()
    granted = grant_id_tokens(
        repo / WORKFLOW, sigstore, repository=REPOSITORY, defined_in=f"{REPOSITORY}/{WORKFLOW}", ref=MAIN, sha=head
    )
    assert sorted(granted) == ["refused", "rollback"]  # not the deploy job
    jobs = {urlsplit(pair["ACTIONS_ID_TOKEN_REQUEST_URL"]).path: job for job, pair in granted.items()}
    minted: list[str] = []
    answer = sigstore.github_id_token

    def recording(path: str, authorization: str, query: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        if query.get("audience") == ["sigstore"]:
            minted.append(jobs.get(path, path))
        return answer(path, authorization, query)

    monkeypatch.setattr(sigstore, "github_id_token", recording)
    kit, _ = kit_repository(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"ref": MAIN, "inputs": {}}))
    result = act_with_kit(
        repo,
        tmp_path,
        kit,
        WORKFLOW,
        event,
        "workflow_dispatch",
        TEST_OUT=str(out),
        TEST_REMOTE=str(promoted.remote),
        TEST_TRUST_CONFIG=str(sigstore.trust_config_path),
    )
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-8000:]
    return out, log, minted


def good_vsa_subjects(
    ledger: list[Entry], promoted: Promoted, sigstore: LocalSigstore, read: GitLedger
) -> dict[str, str]:
    """The oracle: the subjects of good's signed VSA for dev (the promotion that made it live
    before bad), from the ledger's attachment, verified by the stock client for the signer."""
    (vsa,) = {
        str(e.details["vsa"])
        for e in ledger
        if e.environment == "dev" and e.release == promoted.good and isinstance(e.details.get("vsa"), str)
    }
    bundle = read.attachment(vsa)
    assert bundle is not None
    statement = verified_statement(bundle, sigstore, SIGNER)
    assert statement["predicate"]["verificationResult"] == "PASSED"
    return subjects_of(statement)


def test_the_rollback_action_deploy_elsewhere_signs_the_hold_in_its_job_and_hands_the_deploy_job_good(
    cli: Cli, signed: Path, sigstore: LocalSigstore, token: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    trust = ["--trust-config", str(sigstore.trust_config_path)]
    set_policy(signed, sigstore, own_workflow=True)
    files = {WORKFLOW: ROLLBACK_WORKFLOW}
    promoted = promoted_twice(cli, signed, sigstore, trust, monkeypatch, files)
    read = GitLedger(promoted.project, str(promoted.remote), REF)
    before = read.verify()
    out, log, minted = run_workflow(promoted, sigstore, tmp_path, monkeypatch)

    # refused: exit 2 with one line, before the kit was installed; its deploy never ran, and the
    # ledger's ref was the same after it; it never asked for a token
    refused = [line for line in log.splitlines() if line.startswith("[rollback/refused]")]
    errors = [line for line in refused if "takes no deploy command" in line]
    assert len(errors) == 1 and "inputs deploy-elsewhere and deploy" in errors[0], "\n".join(refused)
    assert any(line.endswith(" exit status 2") for line in refused), "\n".join(refused)
    ran = [line.split(" Run Main ", 1)[1] for line in refused if " Run Main " in line]
    assert ran[-3:] == [ACTION, "Check the inputs", 'echo "$OUTCOME" > "$TEST_OUT/refused-outcome.txt"'], ran
    assert (out / "refused-outcome.txt").read_text().strip() == "failure"
    assert not (out / "refused-deploy-ran").exists()
    ledger_ref = (out / "refused-before.txt").read_text()
    assert ledger_ref.strip() and (out / "refused-after.txt").read_text() == ledger_ref
    # one Sigstore token in the whole run, the rollback job's: the refused and deploy jobs signed nothing
    assert minted == ["rollback"], minted

    # the ledger: one entry more, the rollback of bad to good, deploy elsewhere, its hold signed
    # by the rollback job (the user's workflow, on main): a FAILED VSA about bad, verified
    after = read.verify()
    assert after[: len(before)] == before and len(after) == len(before) + 1
    last = after[-1]
    assert (last.kind, last.release, last.details["from"]) == ("rolled-back", promoted.good, promoted.bad)
    assert last.details["deploy"] == "elsewhere"
    hold_bundle = read.attachment(str(last.details["hold"]))
    assert hold_bundle is not None
    hold = verified_statement(hold_bundle, sigstore, OWN_SAN)
    assert hold["predicate"]["verificationResult"] == "FAILED"
    bad_vsa = {
        str(e.details["vsa"]) for e in before if e.release == promoted.bad and isinstance(e.details.get("vsa"), str)
    }
    bad_bundle = read.attachment(bad_vsa.pop())
    assert bad_bundle is not None
    assert subjects_of(hold) == subjects_of(verified_statement(bad_bundle, sigstore, SIGNER))
    # the outputs the kit's step wrote are the action's (act passes a composite's outputs on
    # under the inner step's names whatever the mapping says: the mapping is checked below)
    assert kit_outputs(log) == set(ACTION_OUTPUTS)
    # no deploy ran in the rollback job: the config's deploy command only ran for the two promotions
    assert len(promoted.deploys.read_text().splitlines()) == 2

    # the deploy job was handed good, as good's own signed VSA for dev has it
    release, digest, subjects, came_from = (out / "deploy.txt").read_text().splitlines()
    oracle = good_vsa_subjects(before, promoted, sigstore, read)
    assert (release, came_from) == (promoted.good, promoted.bad)
    assert json.loads(subjects) == oracle and digest == next(iter(oracle.values())) == promoted.digest

    # the policy that admits the user's workflow holds bad out of dev on that signed hold; one
    # that does not admits no signature of the rollback: only the ledger's line holds it
    git(promoted.project, "fetch", "-q", str(promoted.remote), f"{REF}:{REF}")
    plan = cli(["plan", "--to", "dev", "--json", *trust], cwd=promoted.project)
    assert plan.code == 1, plan.out + plan.err
    gate = next(g for g in json.loads(plan.out)["gates"] if g["gate"] == "rollback-hold")
    assert gate["verdict"] == "denied" and "(signed," in gate["reason"], gate
    set_policy(promoted.project, sigstore, own_workflow=False)
    narrow = cli(["plan", "--to", "dev", "--json", *trust], cwd=promoted.project)
    gate = next(g for g in json.loads(narrow.out)["gates"] if g["gate"] == "rollback-hold")
    assert "(signed," not in gate["reason"], gate


ACTION_OUTPUTS = yaml.safe_load((ROOT / "actions" / "rollback" / "action.yml").read_text())["outputs"]


def kit_outputs(log: str) -> set[str]:
    """The names of the outputs `pipeline-kit rollback` wrote in the rollback job (act logs
    them after the step's success line, before the next step)."""
    lines = [line for line in log.splitlines() if line.startswith("[rollback/rollback]")]
    start = next(i for i, line in enumerate(lines) if "Success - Main pipeline-kit rollback [" in line)
    names = set()
    for line in lines[start + 1 :]:
        if "::set-output::" not in line:
            break
        names.add(line.split("::set-output:: ", 1)[1].split("=", 1)[0])
    return names


def test_the_rollback_action_passes_each_output_of_its_kit_step_on_under_its_own_name() -> None:
    # what the act run cannot show: a mapping to another output of the kit's step
    for name, output in ACTION_OUTPUTS.items():
        assert output["value"] == f"${{{{ steps.run.outputs.{name} }}}}", name
    # and the deploy job gets what the kit's reusable rollback.yml hands its callers
    reusable = load_workflow(ROOT / ".github" / "workflows" / "rollback.yml")["on"]["workflow_call"]["outputs"]
    assert set(reusable) <= set(ACTION_OUTPUTS)


@pytest.mark.parametrize(
    ("elsewhere", "deploy", "code", "said"),
    [
        ("true", "./deploy.sh", 2, "inputs deploy-elsewhere and deploy: deploy-elsewhere takes no deploy command"),
        ("true", " ", 2, "takes no deploy command"),  # the kit would get `sh -c ' '`: refused here too
        ("yes", "", 2, "input deploy-elsewhere: true or false"),  # the kit would read yes as true
        ("True", "./deploy.sh", 2, "input deploy-elsewhere: true or false"),
        ("", "", 2, "input deploy-elsewhere: true or false"),
        ("true", "", 0, ""),
        ("false", "./deploy.sh", 0, ""),
        ("false", "", 0, ""),
    ],
)
def test_the_rollback_action_checks_its_inputs_before_its_other_steps(
    elsewhere: str, deploy: str, code: int, said: str, tmp_path: Path
) -> None:
    # the action's first step, as the runner runs it (bash -e), on each pair of inputs
    steps = yaml.safe_load((ROOT / "actions" / "rollback" / "action.yml").read_text())["runs"]["steps"]
    check = steps[0]
    assert check["name"] == "Check the inputs" and set(check["env"]) == {
        "PIPELINE_KIT_ROLLBACK_DEPLOY_ELSEWHERE",
        "PIPELINE_KIT_DEPLOY_COMMAND",
    }
    script = tmp_path / "check.sh"
    script.write_text(check["run"])
    variables = {"PIPELINE_KIT_ROLLBACK_DEPLOY_ELSEWHERE": elsewhere, "PIPELINE_KIT_DEPLOY_COMMAND": deploy}
    result = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
        env={"PATH": "/usr/bin:/bin", **variables},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == code, result.stdout + result.stderr
    assert (said in result.stdout) and len(result.stdout.splitlines()) == (1 if code else 0), result.stdout
