"""Issue 28: signing power only where no user code runs.

GitHub gives a job granted `id-token: write` a token request pair (ACTIONS_ID_TOKEN_REQUEST_URL
and _TOKEN) in every step's environment; whoever reads it can mint the job's OIDC token and get
a Fulcio certificate naming the job's workflow. tests/github_runner.py emulates that for act
(which has no OIDC) against the local Sigstore instance; tests/assets/harvest.py is the attack a
build command can run. The act test below documents the CURRENT layout (build and sign in one
job): the build command walks up to the kit's own process, takes the pair and signs a forged
provenance that verifies as the release workflow. That is why the layout must change.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jwt
import pytest
import urllib3
import yaml

from pipeline_kit.identity import IdentityPolicy
from tests.conftest import EXAMPLE, ROOT, Cli, git, kit_checkout, offline_installs
from tests.github_runner import (
    DEFAULT_PERMISSIONS,
    ID_TOKEN_VARIABLES,
    WorkflowNotValid,
    called_workflows,
    dump_workflow,
    effective_permissions,
    grant_id_tokens,
    load_workflow,
    run_act,
)
from tests.sigstore_instance import LocalSigstore

BIN = Path(sys.executable).parent
HARVEST = Path(__file__).parent / "assets" / "harvest.py"
REPOSITORY = "pipeline-kit/hello-service"
TAG = "refs/tags/v0.1.0"
RELEASE_FILE = ".github/workflows/release.yml"
SAN = f"https://github.com/{REPOSITORY}/{RELEASE_FILE}@{TAG}"
KIT = "pipeline-kit/pipeline-kit"

# The single-job layout of the actions' README: build, SBOM, provenance and signing in one job
# granted id-token: write. The build command is the user's (or a dependency's) code.
RELEASE_WORKFLOW = """\
name: release
on: push
permissions: {}
jobs:
  release:
    runs-on: ubuntu-latest
    permissions:
      contents: read
      id-token: write
    steps:
      - uses: actions/checkout@v4
      - uses: pipeline-kit/pipeline-kit/actions/release@v0
        with:
          trust-config: ${{ env.TEST_TRUST_CONFIG }}
          command: '"$TEST_PYTHON" tools/harvest.py && python build.py'
      - name: Hand the workspace to the test
        run: cp -a . "$TEST_OUT/workspace"
"""

# Two jobs of one workflow: one inherits the workflow's id-token: write, one narrows it away.
LINT_WORKFLOW = """\
name: lint
on: push
permissions:
  contents: read
  id-token: write
jobs:
  inherits:
    runs-on: ubuntu-latest
    steps:
      - run: '"$TEST_PYTHON" "$TEST_HARVEST" "$TEST_OUT/inherits.json"'
  narrowed:
    runs-on: ubuntu-latest
    permissions:
      contents: read
    steps:
      - run: '"$TEST_PYTHON" "$TEST_HARVEST" "$TEST_OUT/narrowed.json"'
      - name: What the id package (sigstore's ambient detection) makes of this job
        run: |
          "$TEST_PYTHON" - <<'EOF' > "$TEST_OUT/detect.txt"
          import id
          try:
              print("token", bool(id.detect_credential("sigstore")))
          except id.IdentityError as exc:
              print(type(exc).__name__, exc)
          EOF
"""


def forged_provenance() -> dict[str, Any]:
    """What the attacker wants signed: SLSA provenance for a wheel the release never built."""
    return {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "hello_service-0.1.0-py3-none-any.whl", "digest": {"sha256": "e" * 64}}],
        "predicateType": "https://slsa.dev/provenance/v1",
        "predicate": {
            "buildDefinition": {
                "buildType": "https://github.com/pipeline-kit/pipeline-kit/build/v1",
                "externalParameters": {"workflow": {"repository": f"https://github.com/{REPOSITORY}"}},
            },
            "runDetails": {"builder": {"id": SAN}},
        },
    }


def project(
    tmp_path: Path, sigstore: LocalSigstore, workflows: dict[str, str], san_regex: str | None = None
) -> tuple[Path, str]:
    """The example project as `pipeline-kit/hello-service` with `workflows`, committed; its
    policy names the local issuer (and `san_regex` instead of the example's, the kit's signing
    workflows). Returns the repository and its commit."""
    repo = tmp_path / "repo"
    shutil.copytree(EXAMPLE, repo, ignore=shutil.ignore_patterns("dist", ".pipeline-kit", "__pycache__"))
    (repo / ".github" / "workflows").mkdir(parents=True)
    for name, text in workflows.items():
        (repo / ".github" / "workflows" / name).write_text(text)
    (repo / "tools").mkdir()
    shutil.copy(HARVEST, repo / "tools" / "harvest.py")
    config = yaml.safe_load((repo / "pipeline-kit.yml").read_text())
    config["signing"]["identity"]["issuer"] = sigstore.issuer
    if san_regex is not None:
        config["signing"]["identity"]["san-regex"] = san_regex
    # what the harvester is told (a real one knows it); none of it is a credential
    config["artifact"]["pass-env"] = ["TEST_PYTHON", "TEST_TRUST_CONFIG", "HARVEST_REPORT", "HARVEST_STATEMENT"]
    config["artifact"]["pass-env"] += ["HARVEST_BUNDLE"]
    (repo / "pipeline-kit.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    git(repo, "init", "-q")
    git(repo, "remote", "add", "origin", f"https://github.com/{REPOSITORY}.git")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "init")
    return repo, git(repo, "rev-parse", "HEAD")


def act(repo: Path, tmp_path: Path, sigstore: LocalSigstore, workflow: str, **variables: str) -> tuple[str, Path]:
    """act on a push of TAG (GITHUB_REF), the kit mapped to a local copy; no identity token is
    given: a job signs with what grant_id_tokens gave it or not at all. Returns act's output and
    the directory the steps write to (TEST_OUT)."""
    out = tmp_path / "out"
    out.mkdir()
    scratch = tmp_path / "act"
    tools = scratch / "bin"  # uv for the setup action; no pipeline-kit but the one it installs
    tools.mkdir(parents=True)
    (tools / "uv").symlink_to(BIN / "uv")
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"ref": TAG}))
    result = run_act(
        repo,
        scratch,
        workflow=workflow,
        event=event,
        extra=("--local-repository", f"{KIT}@v0={kit_checkout(tmp_path / 'kit')}"),
        variables={
            "TEST_PYTHON": sys.executable,
            "TEST_TRUST_CONFIG": str(sigstore.trust_config_path),
            "TEST_OUT": str(out),
            "TEST_HARVEST": str(HARVEST),
            **offline_installs(scratch),
            **variables,
        },
        path=f"{tools}:{Path(sys.executable).parent}:/usr/bin:/bin",
    )
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
    return result.stdout, out


def identity_policy(repo: Path) -> Any:
    """The project's own policy (signing.identity) and the source repository Fulcio certified."""
    from sigstore.verify import policy

    from pipeline_kit.config import load_config

    config = load_config(repo / "pipeline-kit.yml")
    assert config.signing.identity is not None
    ours = IdentityPolicy.from_config(config.signing.identity).sigstore_policy()
    return policy.AllOf([ours, policy.OIDCSourceRepositoryURI(f"https://github.com/{REPOSITORY}")])


def granted_in_release_workflow(repo: Path, sigstore: LocalSigstore, head: str) -> dict[str, dict[str, str]]:
    """GitHub's runner on the project's release workflow, pushed as TAG at `head`: the token
    request pair for each of its jobs granted id-token (grant_id_tokens)."""
    return grant_id_tokens(
        repo / RELEASE_FILE,
        sigstore,
        repository=REPOSITORY,
        defined_in=f"{REPOSITORY}/{RELEASE_FILE}",
        ref=TAG,
        sha=head,
    )


def test_a_build_command_of_the_signing_job_signs_as_the_release_workflow(
    tmp_path: Path, sigstore: LocalSigstore, cli: Cli
) -> None:
    from sigstore.models import Bundle
    from sigstore.verify import Verifier

    from pipeline_kit.trust import load_trust_config

    # the single-job layout's policy: the caller's release workflow, which its build can sign as
    repo, head = project(tmp_path, sigstore, {"release.yml": RELEASE_WORKFLOW}, re.escape(SAN))
    granted = granted_in_release_workflow(repo, sigstore, head)
    assert list(granted) == ["release"]
    statement = tmp_path / "forged.intoto.json"
    statement.write_text(json.dumps(forged_provenance()))
    minted = len(sigstore.github_tokens)
    output, out = act(
        repo,
        tmp_path,
        sigstore,
        RELEASE_FILE,
        HARVEST_REPORT=str(tmp_path / "harvest.json"),
        HARVEST_STATEMENT=str(statement),
        HARVEST_BUNDLE=str(tmp_path / "forged.sigstore.json"),
    )

    # The kit signed through ambient OIDC (no SIGSTORE_IDENTITY_TOKEN anywhere), as the workflow
    assert f"as {SAN} ({sigstore.issuer}); token from ambient CI credentials" in output
    workspace = out / "workspace"
    verified = cli(["verify", "--trust-config", str(sigstore.trust_config_path), "--ref", TAG], cwd=workspace)
    assert verified.code == 0, verified.out + verified.err
    trust = load_trust_config(sigstore.trust_config_path, offline=True)
    verifier = Verifier(trusted_root=trust.trusted_root)
    provenance = Bundle.from_json((workspace / ".pipeline-kit" / "bundles" / "provenance.sigstore.json").read_bytes())
    verifier.verify_dsse(provenance, identity_policy(repo))
    # Both tokens came from the job's pair: the kit's and the harvester's, audience sigstore
    tokens = [
        t for t in sigstore.github_tokens[minted:] if t["job_workflow_ref"] == f"{REPOSITORY}/{RELEASE_FILE}@{TAG}"
    ]
    assert [(t["aud"], t["ref"], t["sha"], t["repository"]) for t in tokens] == [
        ("sigstore", TAG, head, REPOSITORY)
    ] * 2

    # The attack: the kit scrubbed the build's environment, but not its own
    report = json.loads((tmp_path / "harvest.json").read_text())
    assert "error" not in report, report["error"]
    assert report["own_environment"] == []
    assert [a["name"] for a in report["ancestors"]][-1] == "act" and all("error" not in a for a in report["ancestors"])
    holders = {a["pid"]: a for a in report["ancestors"] if set(ID_TOKEN_VARIABLES) <= set(a.get("found", ()))}
    # the kit's own process (`pipeline-kit build`, the build's parent's parent) and the step's shell
    assert any("pipeline-kit" in a["command"] for a in holders.values()), report["ancestors"]
    assert report["found"]["ACTIONS_ID_TOKEN_REQUEST_TOKEN"] == list(holders)
    assert report["minted_from"] == "ACTIONS_ID_TOKEN_REQUEST_URL"
    assert report["signed_as"] == SAN
    # ... and its forged provenance verifies as the release workflow, under the project's policy
    forged = Bundle.from_json((tmp_path / "forged.sigstore.json").read_bytes())
    payload_type, payload = verifier.verify_dsse(forged, identity_policy(repo))
    assert payload_type == "application/vnd.in-toto+json"
    assert json.loads(payload) == forged_provenance()


def test_a_job_without_id_token_write_gets_no_pair(tmp_path: Path, sigstore: LocalSigstore) -> None:
    repo, head = project(tmp_path, sigstore, {"lint.yml": LINT_WORKFLOW})
    workflow = repo / ".github" / "workflows" / "lint.yml"
    granted = grant_id_tokens(
        workflow,
        sigstore,
        repository=REPOSITORY,
        defined_in=f"{REPOSITORY}/.github/workflows/lint.yml",
        ref=TAG,
        sha=head,
    )
    assert list(granted) == ["inherits"]  # job-level permissions replace the workflow's
    assert "env" not in load_workflow(workflow)["jobs"]["narrowed"]
    _, out = act(repo, tmp_path, sigstore, ".github/workflows/lint.yml")

    narrowed = json.loads((out / "narrowed.json").read_text())
    assert narrowed["found"] == {} and narrowed["minted_from"] is None and "error" not in narrowed
    # it did look: at the step's shell and at the runner, act, where the walk stops
    assert [a["name"] for a in narrowed["ancestors"]] == ["bash", "act"], narrowed["ancestors"]
    assert all("error" not in a for a in narrowed["ancestors"])
    detect = (out / "detect.txt").read_text()
    assert detect.startswith("GitHubOidcPermissionCredentialError"), detect
    # the job next to it (same workflow, same runner) does get one: the emulation is not vacuous
    inherits = json.loads((out / "inherits.json").read_text())
    assert set(inherits["own_environment"]) == set(ID_TOKEN_VARIABLES)
    assert inherits["minted_from"] == "ACTIONS_ID_TOKEN_REQUEST_URL", inherits  # from the step's shell


# -- the token service and the permission rules, without act -----------------------------------
def request(url: str, token: str) -> urllib3.BaseHTTPResponse:
    return urllib3.request("GET", url, headers={"Authorization": f"bearer {token}"}, timeout=10)


def test_the_token_service_answers_a_job_as_github_does(
    sigstore: LocalSigstore, monkeypatch: pytest.MonkeyPatch
) -> None:
    import id as ambient

    caller = "acme/app/.github/workflows/ci.yml@refs/heads/main"
    job = sigstore.github_job(
        repository="acme/app",
        job_workflow_ref="acme/ci/.github/workflows/sign.yml@refs/tags/v2",
        job_workflow_sha="c" * 40,
        ref="refs/heads/main",
        sha="b" * 40,
        workflow_ref=caller,
    )
    assert set(job) == set(ID_TOKEN_VARIABLES) and "?api-version=" in job["ACTIONS_ID_TOKEN_REQUEST_URL"]
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    for name, value in job.items():
        monkeypatch.setenv(name, value)
    token = ambient.detect_credential("sigstore")  # the id package's GitHub detection, as the kit's
    assert token is not None
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["aud"] == "sigstore" and claims["iss"] == sigstore.issuer
    assert claims["sub"] == "repo:acme/app:ref:refs/heads/main"
    assert claims["repository"] == "acme/app" and claims["repository_owner"] == "acme"
    assert claims["workflow_ref"] == caller and claims["runner_environment"] == "github-hosted"
    assert claims["job_workflow_ref"] == "acme/ci/.github/workflows/sign.yml@refs/tags/v2"
    assert claims["job_workflow_sha"] == "c" * 40 and claims["sha"] == "b" * 40

    # any audience is minted (GitHub does); only `sigstore` gets a certificate
    other = request(job["ACTIONS_ID_TOKEN_REQUEST_URL"] + "&audience=https://vault.example", job[ID_TOKEN_VARIABLES[1]])
    assert other.status == 200
    assert jwt.decode(other.json()["value"], options={"verify_signature": False})["aud"] == "https://vault.example"
    status, _ = sigstore.signing_cert(f"Bearer {other.json()['value']}", {"certificateSigningRequest": ""})
    assert status == 401
    # a request token is good for its own job only, and not after the job
    assert request(job["ACTIONS_ID_TOKEN_REQUEST_URL"], "guessed").status == 401
    second = sigstore.github_job(repository="acme/app", job_workflow_ref=caller, ref="refs/heads/main", sha="b" * 40)
    assert request(second["ACTIONS_ID_TOKEN_REQUEST_URL"], job[ID_TOKEN_VARIABLES[1]]).status == 401
    sigstore.end_github_job(job)
    assert request(job["ACTIONS_ID_TOKEN_REQUEST_URL"], job[ID_TOKEN_VARIABLES[1]]).status == 401


def test_a_called_workflow_certificate_names_its_file_and_the_caller(sigstore: LocalSigstore) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec
    from sigstore.verify import policy

    job = sigstore.github_job(
        repository="acme/app",
        job_workflow_ref="acme/ci/.github/workflows/sign.yml@refs/tags/v2",
        ref="refs/tags/v1.0.0",
        sha="b" * 40,
        workflow_ref="acme/app/.github/workflows/release.yml@refs/tags/v1.0.0",
        environment="prod",
    )
    url = job["ACTIONS_ID_TOKEN_REQUEST_URL"] + "&audience=sigstore"
    token = request(url, job[ID_TOKEN_VARIABLES[1]]).json()["value"]
    assert jwt.decode(token, options={"verify_signature": False})["sub"] == "repo:acme/app:environment:prod"
    key = ec.generate_private_key(ec.SECP256R1())
    claims = jwt.decode(token, sigstore.oidc_key.public_key(), algorithms=["ES256"], audience="sigstore")
    certificate = sigstore.fulcio.issue(key.public_key(), claims)
    san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [
        "https://github.com/acme/ci/.github/workflows/sign.yml@refs/tags/v2"
    ]
    for check in (
        policy.OIDCSourceRepositoryURI("https://github.com/acme/app"),
        policy.OIDCSourceRepositoryRef("refs/tags/v1.0.0"),
        policy.OIDCBuildSignerURI("https://github.com/acme/ci/.github/workflows/sign.yml@refs/tags/v2"),
        policy.OIDCBuildConfigURI("https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1.0.0"),
        policy.GitHubWorkflowRepository("acme/app"),
        policy.OIDCRunnerEnvironment("github-hosted"),
    ):
        check.verify(certificate)


CALLER = """\
name: release
on: push
permissions:
  contents: read
jobs:
  build:
    uses: ./.github/workflows/build.yml
  sign:
    needs: build
    permissions:
      contents: read
      id-token: write
    uses: pipeline-kit/pipeline-kit/.github/workflows/sign.yml@v1
"""
CALLED = """\
on:
  workflow_call:
jobs:
  sign:
    runs-on: ubuntu-latest
    permissions:
      id-token: write
    steps:
      - run: echo signing
  check:
    runs-on: ubuntu-latest
    steps:
      - run: |
          echo one
          echo two
"""


def test_a_called_workflow_gets_the_pair_only_within_its_caller_job_permissions(
    tmp_path: Path, sigstore: LocalSigstore
) -> None:
    caller = tmp_path / "release.yml"
    caller.write_text(CALLER)
    calls = called_workflows(caller, repository="acme/app", ref=TAG)
    assert [(c.job, c.defined_in, c.ref) for c in calls] == [
        ("build", "acme/app/.github/workflows/build.yml", TAG),
        ("sign", "pipeline-kit/pipeline-kit/.github/workflows/sign.yml", "v1"),
    ]
    build, sign = calls
    assert build.permissions["id-token"] == "none" and build.permissions["contents"] == "read"
    assert sign.permissions["id-token"] == "write"
    called = tmp_path / "sign.yml"
    called.write_text(CALLED)
    granted = grant_id_tokens(
        called,
        sigstore,
        repository="acme/app",
        defined_in=sign.defined_in,
        ref=TAG,
        sha="b" * 40,
        caller_permissions=sign.permissions,
        called_at=sign.ref,
        workflow_ref=f"acme/app/.github/workflows/release.yml@{TAG}",
    )
    # `check` asks nothing: it inherits the caller job's permissions, id-token included
    assert sorted(granted) == ["check", "sign"]
    rewritten = load_workflow(called)
    assert (
        "workflow_call" in rewritten["on"] and rewritten["jobs"]["check"]["steps"][0]["run"] == "echo one\necho two\n"
    )
    assert called.read_text().count("ACTIONS_ID_TOKEN_REQUEST_URL") == 2
    token = request(granted["sign"]["ACTIONS_ID_TOKEN_REQUEST_URL"], granted["sign"][ID_TOKEN_VARIABLES[1]])
    claims = jwt.decode(token.json()["value"], options={"verify_signature": False})
    assert claims["job_workflow_ref"] == "pipeline-kit/pipeline-kit/.github/workflows/sign.yml@v1"
    assert claims["repository"] == "acme/app" and claims["ref"] == TAG
    # the same called workflow from a caller job without id-token: GitHub refuses the run
    called.write_text(CALLED)
    with pytest.raises(WorkflowNotValid, match="The nested job 'sign' is requesting 'id-token: write', but is only"):
        grant_id_tokens(
            called,
            sigstore,
            repository="acme/app",
            defined_in="acme/app/.github/workflows/build.yml",
            ref=TAG,
            sha="b" * 40,
            caller_permissions=build.permissions,
            workflow_ref=f"acme/app/.github/workflows/release.yml@{TAG}",
        )


@pytest.mark.parametrize(
    ("workflow_level", "job_level", "granted"),
    [
        (None, None, False),  # the default never includes id-token
        ({"id-token": "write"}, None, True),
        ({"id-token": "write"}, {"contents": "read"}, False),  # the job's replace the workflow's
        ({}, {"id-token": "write"}, True),
        ("write-all", None, True),
        ("read-all", None, False),
        ({"contents": "write"}, None, False),  # naming one scope sets the others to none
    ],
)
def test_effective_permissions_follow_github(workflow_level: Any, job_level: Any, granted: bool) -> None:
    job: dict[str, Any] = {"runs-on": "ubuntu-latest", "steps": []}
    if job_level is not None:
        job["permissions"] = job_level
    workflow: dict[str, Any] = {"jobs": {"job": job}}
    if workflow_level is not None:
        workflow["permissions"] = workflow_level
    assert (effective_permissions(workflow, "job")["id-token"] == "write") is granted
    assert DEFAULT_PERMISSIONS["id-token"] == "none"


# --- the isolated layout: the recommended pipeline, signing only in the kit's reusable workflows ---

EXAMPLE_PIPELINE = ROOT / "examples" / "github" / "release-pipeline.yml"
ARTIFACT_ACTIONS = ROOT / "tests" / "assets" / "artifact-actions"
PINNED = "0" * 40  # the example's placeholder for the kit release's commit
ENVIRONMENTS = ("dev", "staging", "prod")
# the deploy script the example names: it deploys the file the digest names, from the build's
# artifact, and runs the harvest (a deploy script, or a dependency it loads, turned hostile)
DEPLOY = """\
#!/bin/sh
set -e
echo "$1 $2 sha256:$(sha256sum dist/*.whl | cut -d" " -f1)" >> "$TEST_OUT/deploys.txt"
"$TEST_PYTHON" - "$1" "$2" > "$TEST_OUT/forged-$1.intoto.json" <<'PY'
import json, sys
environment, digest = sys.argv[1], sys.argv[2].removeprefix("sha256:")
print(json.dumps({
    "_type": "https://in-toto.io/Statement/v1",
    "subject": [{"name": "hello_service-0.1.0-py3-none-any.whl", "digest": {"sha256": digest}}],
    "predicateType": "https://slsa.dev/verification_summary/v1",
    "predicate": {"resourceUri": "urn:pipeline-kit:environment:prod", "verificationResult": "PASSED",
                  "verifiedLevels": ["PIPELINE_KIT_PROMOTED_PROD"], "timeVerified": "2026-01-01T00:00:00Z",
                  "verifier": {"id": "https://github.com/pipeline-kit/pipeline-kit/promote"}},
}))
PY
"$TEST_PYTHON" tools/harvest.py "$TEST_OUT/harvest-$1.json" "$TEST_OUT/forged-$1.intoto.json" \
  "$TEST_OUT/forged-$1.sigstore.json" "$TEST_TRUST_CONFIG"
"""


def isolated_pipeline(repo: Path, trust_config: Path) -> None:
    """The example pipeline as its header says to copy it, with the test's trust root for the
    kit, and each deploy job granted id-token: write, as a cloud login (AWS, GCP) would have it."""
    workflow = load_workflow(EXAMPLE_PIPELINE)
    for name, job in workflow["jobs"].items():
        if "uses" in job:  # the kit's reusable workflows
            job["with"]["trust-config"] = str(trust_config)
        for step in job.get("steps", ()):
            if "/actions/promote@" in step.get("uses", ""):
                step["with"]["trust-config"] = str(trust_config)
        if name.endswith("-deploy"):
            job["permissions"]["id-token"] = "write"
    dump_workflow(workflow, repo / RELEASE_FILE)


def kit_repository(tmp_path: Path) -> tuple[Path, str]:
    """The kit at one commit, with its reusable workflows: what `uses: pipeline-kit/pipeline-kit/
    ...@<commit>` fetches, and what those workflows clone to install the kit."""
    kit = kit_checkout(tmp_path / "kit")
    shutil.copytree(ROOT / ".github" / "workflows", kit / ".github" / "workflows")
    git(kit, "init", "-q")
    git(kit, "add", "-A")
    git(kit, "commit", "-q", "-m", "kit")
    return kit, git(kit, "rev-parse", "HEAD").strip()


def act_with_kit(
    repo: Path, tmp_path: Path, kit: Path, workflow: str, event: Path, event_name: str = "push", **variables: str
) -> subprocess.CompletedProcess[str]:
    """act on `workflow` of `repo`, `uses: pipeline-kit/pipeline-kit/...@PINNED` served from
    `kit` (kit_repository), which its workflows also clone at their own commit, and the artifact
    actions the example pins emulated (tests/assets/artifact-actions: TEST_ARTIFACTS)."""
    scratch = tmp_path / "act"
    scratch.mkdir()
    # the kit's workflows clone the kit from GitHub at their own commit: here, from the local copy
    (scratch / ".gitconfig").write_text(f'[url "file://{kit}"]\n\tinsteadOf = https://github.com/{KIT}.git\n')
    tools = scratch / "bin"
    tools.mkdir()
    (tools / "uv").symlink_to(BIN / "uv")
    pins = dict(re.findall(r"uses: (actions/\w+(?:-\w+)*)@([0-9a-f]{40})", EXAMPLE_PIPELINE.read_text()))
    artifact_actions = (
        f"actions/{action}-artifact@{pins[f'actions/{action}-artifact']}={ARTIFACT_ACTIONS / action}"
        for action in ("upload", "download")
    )
    return run_act(
        repo,
        scratch,
        workflow=workflow,
        event=event,
        event_name=event_name,
        extra=(
            *("--local-repository", f"{KIT}@{PINNED}={kit}"),
            *(arg for mapping in artifact_actions for arg in ("--local-repository", mapping)),
        ),
        variables={**offline_installs(scratch), **variables},
        path=f"{tools}:/usr/bin:/bin",
    )


def test_the_recommended_pipeline_signs_only_in_the_kit_workflows_and_refuses_the_harvest(
    tmp_path: Path, sigstore: LocalSigstore
) -> None:
    from sigstore.models import Bundle
    from sigstore.verify import Verifier, policy

    from pipeline_kit.config import load_config
    from pipeline_kit.trust import load_trust_config

    repo, _ = project(tmp_path, sigstore, {})
    config = yaml.safe_load((repo / "pipeline-kit.yml").read_text())
    config["artifact"]["build"] = '"$TEST_PYTHON" tools/harvest.py "$HARVEST_REPORT" && python build.py'
    for environment in config["environments"].values():  # the jobs and what they hand on, not the policy gates
        environment.pop("soak", None)
        environment["gates"] = ["signature", "provenance", "sbom"]
    (repo / "pipeline-kit.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    (repo / "deploy.sh").write_text(DEPLOY)
    (repo / "deploy.sh").chmod(0o755)
    isolated_pipeline(repo, sigstore.trust_config_path)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "the release pipeline")
    head = git(repo, "rev-parse", "HEAD").strip()
    caller = f"{REPOSITORY}/{RELEASE_FILE}@{TAG}"
    # GitHub's runner: the pair for the jobs granted id-token (the deploy jobs, and the kit's
    # signing jobs, capped by their callers), job_workflow_ref naming the file defining each job
    granted = granted_in_release_workflow(repo, sigstore, head)
    assert sorted(granted) == sorted(f"{env}-deploy" for env in ENVIRONMENTS)  # build and decide: none
    kit, kit_sha = kit_repository(tmp_path)
    calls = {call.defined_in: call for call in called_workflows(repo / RELEASE_FILE, repository=REPOSITORY, ref=TAG)}
    assert sorted(calls) == [f"{KIT}/.github/workflows/{name}.yml" for name in ("arrive", "sign-release")]
    for defined_in, call in calls.items():
        grant_id_tokens(
            kit / defined_in.removeprefix(f"{KIT}/"),
            sigstore,
            repository=REPOSITORY,
            defined_in=defined_in,
            called_at=call.ref,
            caller_permissions=call.permissions,
            ref=TAG,
            sha=head,
            job_workflow_sha=kit_sha,
            workflow_ref=caller,
        )
    out, artifacts = tmp_path / "out", tmp_path / "artifacts"
    out.mkdir()
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"ref": TAG}))
    minted = len(sigstore.github_tokens)  # (the instance serves the session's other tests too)
    result = act_with_kit(
        repo,
        tmp_path,
        kit,
        RELEASE_FILE,
        event,
        TEST_PYTHON=sys.executable,
        TEST_TRUST_CONFIG=str(sigstore.trust_config_path),
        TEST_OUT=str(out),
        TEST_ARTIFACTS=str(artifacts),
        HARVEST_REPORT=str(out / "harvest-build.json"),
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]

    # Built once, signed once, the same file deployed dev -> staging -> prod by its signed digest
    release = json.loads((artifacts / "release" / "release.json").read_text())
    digest = f"sha256:{release['subjects'][0]['digest']['sha256']}"
    deploys = [line.split() for line in (out / "deploys.txt").read_text().splitlines()]
    assert deploys == [[env, digest, digest] for env in ENVIRONMENTS]

    trust = load_trust_config(sigstore.trust_config_path, offline=True)
    verifier = Verifier(trusted_root=trust.trusted_root)
    identity = load_config(repo / "pipeline-kit.yml").signing.identity
    assert identity is not None
    ours = IdentityPolicy.from_config(identity).sigstore_policy()  # the kit's workflows, for this repository

    def signer(bundle: Path) -> str:
        from pipeline_kit.identity import certificate_identity

        return certificate_identity(Bundle.from_json(bundle.read_bytes()).signing_certificate)[0]

    # Only the kit's workflows signed, each as itself, at the commit the caller pinned
    provenance = artifacts / "release" / "bundles" / "provenance.sigstore.json"
    assert signer(provenance) == f"https://github.com/{KIT}/.github/workflows/sign-release.yml@{PINNED}"
    verifier.verify_dsse(Bundle.from_json(provenance.read_bytes()), ours)
    statement = json.loads((artifacts / "release" / "provenance.intoto.json").read_text())
    assert statement["predicate"]["runDetails"]["builder"]["id"] == signer(provenance)
    vsa = artifacts / "arrived-prod" / ".pipeline-kit" / "promotions" / "prod.vsa.sigstore.json"
    assert signer(vsa) == f"https://github.com/{KIT}/.github/workflows/arrive.yml@{PINNED}"
    _, payload = verifier.verify_dsse(Bundle.from_json(vsa.read_bytes()), ours)
    assert json.loads(payload)["predicate"]["verifiedLevels"][-1] == "PIPELINE_KIT_SIGNED_APART"
    kit_tokens = {t["job_workflow_ref"] for t in sigstore.github_tokens[minted:] if t["aud"] == "sigstore"}
    assert kit_tokens == {
        f"{KIT}/.github/workflows/sign-release.yml@{PINNED}",
        f"{KIT}/.github/workflows/arrive.yml@{PINNED}",
        caller,  # the harvests in the deploy jobs, below
    }

    # The attack. The build job has no signing power: its harvest finds nothing to sign with.
    build = json.loads((out / "harvest-build.json").read_text())
    assert build["found"] == {} and "signed_as" not in build, build
    # A deploy job granted id-token (for its cloud login) can sign, as the caller's workflow:
    # genuine signatures, refused by the policy, which names the kit's workflows for this repository
    for env in ENVIRONMENTS:
        harvest = json.loads((out / f"harvest-{env}.json").read_text())
        assert harvest["signed_as"] == f"https://github.com/{caller}", harvest
        forged = Bundle.from_json((out / f"forged-{env}.sigstore.json").read_bytes())
        verifier.verify_dsse(forged, policy.Identity(identity=f"https://github.com/{caller}", issuer=sigstore.issuer))
        with pytest.raises(Exception, match="does not match"):
            verifier.verify_dsse(forged, ours)
