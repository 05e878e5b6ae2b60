"""A rollback by hand in the isolated layout, under act: examples/github/rollback.yml calls the
kit's `rollback.yml`, which signs the hold and records the rollback (deploy: elsewhere) running
only the kit; the example's deploy job, with no signing power, deploys what it outputs. GitHub's
token service is emulated per job (tests/github_runner.py); the deploy script runs the harvest
(tests/assets/harvest.py), the attack of a deploy script turned hostile."""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import pytest
import yaml

from pipeline_kit.identity import KIT_REPOSITORY, certificate_identity
from pipeline_kit.ledger import GitLedger
from pipeline_kit.scaffold import forge_identity
from tests.conftest import ROOT, SIGNER, Cli, git
from tests.github_runner import called_workflows, dump_workflow, grant_id_tokens, load_workflow
from tests.sigstore_instance import LocalSigstore
from tests.test_rollback_fresh import Promoted, promoted_twice
from tests.test_signing_isolation import HARVEST, PINNED, act_with_kit, kit_repository

REPOSITORY = "pipeline-kit/hello-service"
EXAMPLE = ROOT / "examples" / "github" / "rollback.yml"
WORKFLOW = ".github/workflows/rollback.yml"
MAIN = "refs/heads/main"
REF = "refs/pipeline-kit/ledger"
KIT_ROLLBACK = f"https://github.com/{KIT_REPOSITORY}/.github/workflows/rollback.yml@{PINNED}"
# the deploy the example names: records what it deploys, then harvests what it can find
DEPLOY = """\
#!/bin/sh
set -e
echo "$1 $2 $3" >> "$TEST_OUT/deploys.txt"
"$TEST_PYTHON" tools/harvest.py "$TEST_OUT/harvest-deploy.json"
"""


def kit_policy(kit_workflows: str) -> str:
    """The test signer (who signed and promoted the releases before, locally), or the kit's
    `kit_workflows` at the pinned commit."""
    kit = rf"https://github\.com/{re.escape(KIT_REPOSITORY)}/\.github/workflows/({kit_workflows})\.yml@{PINNED}"
    return f"^({re.escape(SIGNER)}|{kit})$"


def set_policy(project: Path, sigstore: LocalSigstore, kit_workflows: str) -> None:
    """The policy `init` writes (its caller-regex: the release workflow from a tag, the rollback
    workflow from main), with the local issuer and the test signer beside the kit's workflows."""
    path = project / "pipeline-kit.yml"
    config = yaml.safe_load(path.read_text())
    identity = forge_identity(f"https://github.com/{REPOSITORY}")
    assert identity is not None and identity[3] is not None
    config["signing"]["identity"] = {
        "issuer": sigstore.issuer,
        "san-regex": kit_policy(kit_workflows),
        "repository": f"https://github.com/{REPOSITORY}",
        "caller-regex": identity[3],
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def rollback_workflow(trust_config: Path, scratch: Path) -> str:
    """The example as its header says to copy it, with the test's trust root for the kit."""
    workflow = load_workflow(EXAMPLE)
    workflow["jobs"]["rollback"]["with"]["trust-config"] = str(trust_config)
    dump_workflow(workflow, scratch)
    return scratch.read_text()


def run_rollback(promoted: Promoted, sigstore: LocalSigstore, tmp_path: Path) -> tuple[Path, Path]:
    """The example's run for dev from the fresh clone, on main, the kit at its pinned commit;
    returns the directory the steps write to and the one artifacts go to."""
    repo = promoted.fresh
    head = git(repo, "rev-parse", "HEAD").strip()
    caller = f"{REPOSITORY}/{WORKFLOW}@{MAIN}"
    granted = grant_id_tokens(
        repo / WORKFLOW, sigstore, repository=REPOSITORY, defined_in=f"{REPOSITORY}/{WORKFLOW}", ref=MAIN, sha=head
    )
    assert granted == {}  # the caller's own jobs (the deploy) hold no pair
    kit, kit_sha = kit_repository(tmp_path)
    (call,) = called_workflows(repo / WORKFLOW, repository=REPOSITORY, ref=MAIN)
    assert call.defined_in == f"{KIT_REPOSITORY}/.github/workflows/rollback.yml" and call.ref == PINNED
    kit_granted = grant_id_tokens(
        kit / ".github" / "workflows" / "rollback.yml",
        sigstore,
        repository=REPOSITORY,
        defined_in=call.defined_in,
        called_at=call.ref,
        caller_permissions=call.permissions,
        ref=MAIN,
        sha=head,
        job_workflow_sha=kit_sha,
        workflow_ref=caller,
    )
    assert list(kit_granted) == ["rollback"]
    out, artifacts = tmp_path / "out", tmp_path / "artifacts"
    out.mkdir()
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"ref": MAIN, "inputs": {"environment": "dev", "reason": "errors up"}}))
    result = act_with_kit(
        repo,
        tmp_path,
        kit,
        WORKFLOW,
        event,
        "workflow_dispatch",
        TEST_PYTHON=sys.executable,
        TEST_OUT=str(out),
        TEST_ARTIFACTS=str(artifacts),
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    return out, artifacts


def test_the_rollback_workflow_signs_the_hold_in_the_kit_job_only_and_the_deploy_job_deploys_it(
    cli: Cli, signed: Path, sigstore: LocalSigstore, token: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from sigstore.models import Bundle

    trust = ["--trust-config", str(sigstore.trust_config_path)]
    set_policy(signed, sigstore, "sign-release|arrive|rollback")
    files = {WORKFLOW: rollback_workflow(sigstore.trust_config_path, tmp_path / "rollback.yml"), "deploy.sh": DEPLOY}
    promoted = promoted_twice(cli, signed, sigstore, trust, monkeypatch, files)
    for checkout in (promoted.project, promoted.fresh):
        (checkout / "deploy.sh").chmod(0o755)
        (checkout / "tools").mkdir(exist_ok=True)
        shutil.copy(HARVEST, checkout / "tools" / "harvest.py")
    minted = len(sigstore.github_tokens)  # (the instance serves the session's other tests too)
    out, _ = run_rollback(promoted, sigstore, tmp_path)

    # the deploy job deployed good, by the digest its own signed evidence has, told by the outputs
    assert (out / "deploys.txt").read_text().split() == ["dev", promoted.digest, promoted.good]
    # ... and found no signing credential in its environment or in any process above it
    harvest = json.loads((out / "harvest-deploy.json").read_text())
    assert harvest["found"] == {} and harvest["minted_from"] is None and "signed_as" not in harvest, harvest
    assert "error" not in harvest and [a["name"] for a in harvest["ancestors"]][-1] == "act", harvest
    # only the kit's rollback.yml asked for a Sigstore token
    tokens = {t["job_workflow_ref"] for t in sigstore.github_tokens[minted:] if t["aud"] == "sigstore"}
    assert tokens == {f"{KIT_REPOSITORY}/.github/workflows/rollback.yml@{PINNED}"}

    # the shared ledger: rolled-back, deploy elsewhere, the hold signed by the kit's workflow
    ledger = GitLedger(promoted.project, str(promoted.remote), REF)
    last = ledger.verify()[-1]
    assert (last.kind, last.release, last.details["from"]) == ("rolled-back", promoted.good, promoted.bad)
    assert last.details["deploy"] == "elsewhere"
    hold = ledger.attachment(str(last.details["hold"]))
    assert hold is not None
    assert certificate_identity(Bundle.from_json(hold).signing_certificate)[0] == KIT_ROLLBACK
    # the config's local deploy command never ran in the kit's job: only the two promotions'
    assert len(promoted.deploys.read_text().splitlines()) == 2

    # a later plan: bad is held out of dev, on the hold the kit's workflow signed
    git(promoted.project, "fetch", "-q", str(promoted.remote), f"{REF}:{REF}")
    plan = cli(["plan", "--to", "dev", "--json", *trust], cwd=promoted.project)
    assert plan.code == 1, plan.out + plan.err
    gate = next(g for g in json.loads(plan.out)["gates"] if g["gate"] == "rollback-hold")
    assert gate["verdict"] == "denied" and "(signed," in gate["reason"], gate
    # the same plan under the policy before `rollback` joined it: the hold's signature is not
    # accepted, and only the ledger's line holds bad out (the kit's hold is what made it signed)
    set_policy(promoted.project, sigstore, "sign-release|arrive")
    before = cli(["plan", "--to", "dev", "--json", *trust], cwd=promoted.project)
    gate = next(g for g in json.loads(before.out)["gates"] if g["gate"] == "rollback-hold")
    assert "(signed," not in gate["reason"], gate


def gitlab_pipeline(sigstore: LocalSigstore) -> str:
    """rollback-apart.yml for dev, the kit's interpreter and the test's trust, and the user's
    deploy job after it, as the template's header says: it records what it deploys, and harvests."""
    return (
        "include:\n"
        "  - local: gitlab-templates/rollback-apart.yml\n"
        "    inputs:\n"
        f"      python: {sys.executable}\n"
        f"      trust-config: {sigstore.trust_config_path}\n"
        "      environment: dev\n"
        "      needs: []\n"
        "      reason: errors up\n"
        "rollback-deploy-dev:\n"
        "  stage: .post\n"
        "  needs: [pipeline-kit-rollback-dev]\n"
        "  environment: {name: dev}\n"
        "  script:\n"
        """    - 'echo "$PIPELINE_KIT_RELEASE_ID $PIPELINE_KIT_DIGEST" >> "$TEST_OUT/deploys.txt"'\n"""
        """    - '"$TEST_PYTHON" "$TEST_HARVEST" "$TEST_OUT/harvest-deploy.json"'\n"""
    )


def test_the_rollback_apart_template_signs_the_hold_in_its_job_only_and_the_deploy_job_deploys_it(
    cli: Cli, signed: Path, sigstore: LocalSigstore, token: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import jwt
    from sigstore.models import Bundle

    from tests.test_gitlab_templates import (
        GITLAB_PROJECT,
        GITLAB_SAN,
        TEMPLATES,
        job_results,
        run_offline,
    )
    from tests.test_gitlab_templates import grant_id_tokens as grant_gitlab_tokens

    trust = ["--trust-config", str(sigstore.trust_config_path)]
    path = signed / "pipeline-kit.yml"
    config = yaml.safe_load(path.read_text())
    config["signing"]["identity"] = {  # the test signer before, the pipeline's identity now
        "issuer": sigstore.issuer,
        "san-regex": f"^({re.escape(SIGNER)}|{re.escape(GITLAB_SAN)})$",
    }  # (no repository: the example's provenance names its GitHub one, the pipeline its GitLab one)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    files = {".gitlab-ci.yml": gitlab_pipeline(sigstore)}
    files[".gitignore"] = (signed / ".gitignore").read_text() + ".gitlab-ci-local/\n"
    files |= {f"gitlab-templates/{p.name}": p.read_text() for p in TEMPLATES.glob("*.yml")}
    promoted = promoted_twice(cli, signed, sigstore, trust, monkeypatch, files)
    repo = promoted.fresh
    git(repo, "remote", "set-url", "origin", f"https://gitlab.com/{GITLAB_PROJECT}.git")
    granted, jobs = grant_gitlab_tokens(repo, sigstore, git(repo, "rev-parse", "HEAD").strip())
    assert list(granted) == ["pipeline-kit-rollback-dev"]  # not the deploy job
    job = jobs["pipeline-kit-rollback-dev"]
    assert job["variables"]["PIPELINE_KIT_APART"] == "true" and job["script"] == [
        "pipeline-kit rollback --deploy-elsewhere"
    ]
    certified: list[dict[str, object]] = []
    issue = sigstore.signing_cert

    def recording(authorization: str, body: dict[str, object]) -> tuple[int, dict[str, object]]:
        certified.append(jwt.decode(authorization.removeprefix("Bearer ").strip(), options={"verify_signature": False}))
        return issue(authorization, body)

    monkeypatch.setattr(sigstore, "signing_cert", recording)
    # the runner's own environment holds no token (the promotions before had one here)
    monkeypatch.delenv("SIGSTORE_IDENTITY_TOKEN")
    out = tmp_path / "out"
    out.mkdir()
    result = run_offline(
        repo,
        "--shell-isolation",
        "--manual",
        "pipeline-kit-rollback-dev",
        GITLAB_CI="true",  # gitlab-ci-local says false: ask for GitLab's behaviour (dotenv reports)
        TEST_PYTHON=sys.executable,
        TEST_HARVEST=str(HARVEST),
        TEST_OUT=str(out),
    )
    log = result.stdout[-6000:] + result.stderr[-2000:]
    assert job_results(result.stdout) == {"pipeline-kit-rollback-dev": "PASS", "rollback-deploy-dev": "PASS"}, log

    # the deploy job deployed good by its digest, from the rollback job's dotenv report
    assert (out / "deploys.txt").read_text().split() == [promoted.good, promoted.digest]
    harvest = json.loads((out / "harvest-deploy.json").read_text())
    assert harvest["own_environment"] == [] and harvest["found"] == {}, harvest
    assert "error" not in harvest and "signed_as" not in harvest, harvest
    # only the rollback job got a certificate; the hold names the pipeline's identity
    assert {c["job_id"] for c in certified} == {granted["pipeline-kit-rollback-dev"]}, certified
    ledger = GitLedger(promoted.project, str(promoted.remote), REF)
    last = ledger.verify()[-1]
    assert (last.kind, last.release, last.details["deploy"]) == ("rolled-back", promoted.good, "elsewhere")
    hold = ledger.attachment(str(last.details["hold"]))
    assert hold is not None
    assert certificate_identity(Bundle.from_json(hold).signing_certificate)[0] == GITLAB_SAN
    assert len(promoted.deploys.read_text().splitlines()) == 2  # environments.dev.deploy never ran
    git(promoted.project, "fetch", "-q", str(promoted.remote), f"{REF}:{REF}")
    plan = cli(["plan", "--to", "dev", "--json", *trust], cwd=promoted.project)
    gate = next(g for g in json.loads(plan.out)["gates"] if g["gate"] == "rollback-hold")
    assert plan.code == 1 and gate["verdict"] == "denied" and "(signed," in gate["reason"], gate
