"""Drift: a real environment (an HTTP server answering what its deploy wrote; nginx in front of two
slots for a rollout) asked what it runs, against the release signed evidence says it runs."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import LEDGER, ROOT, SIGNER, Cli, describe, forge_line, git, offline_installs
from tests.mermaid_parser import github_summary
from tests.nginx_instance import Backend, LocalNginx
from tests.sigstore_instance import LocalSigstore
from tests.test_rollout import nginx_slots, roll_out_first, set_steps, with_rollout

__all__ = ["nginx_slots"]  # a fixture, used by name


def configure(project: Path, **dev: Any) -> None:
    path = project / "pipeline-kit.yml"
    config = yaml.safe_load(path.read_text())
    config["environments"]["dev"].update(dev)
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def release_of(project: Path) -> tuple[str, str]:
    """(release id, sha256 of its one subject) of the evidence dir's top-level release."""
    release = json.loads((project / ".pipeline-kit" / "release.json").read_text())
    return release["id"], release["subjects"][0]["digest"]["sha256"]


def ledger(project: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (project / LEDGER).read_text().splitlines()]


@pytest.fixture
def served(tmp_path: Path, signed: Path) -> Iterator[Path]:
    """dev is a real HTTP server answering what dev's deploy wrote (the digest it deployed), and
    dev's probe asks it; the file it serves is outside the project."""
    answer = tmp_path / "dev-serves"
    backend = Backend(answer)
    configure(
        signed,
        deploy=f'echo "$PIPELINE_KIT_DIGEST" > {answer}',
        probe={"url": f"http://{backend.address}/version", "timeout": 5},
    )
    yield answer
    backend.stop()


def test_drift_is_found_recorded_and_reconciled_through_a_promotion(
    cli: Cli, signed: Path, policy: list[str], token: None, served: Path
) -> None:
    nothing = cli(["drift", "--env", "dev", *policy], cwd=signed)
    assert nothing.code == 3 and "nothing signed shows what dev runs" in nothing.out, nothing.out + nothing.err
    assert cli(["promote", "--to", "dev", *policy], cwd=signed).code == 0
    release, digest = release_of(signed)
    assert served.read_text().strip() == f"sha256:{digest}"  # the deploy really wrote it
    in_sync = cli(["drift", "--env", "dev", *policy], cwd=signed)
    assert in_sync.code == 0 and "in-sync" in in_sync.out, in_sync.out + in_sync.err
    # the unknown before any promotion is recorded; in sync since the arrival, nothing more
    assert [e["kind"] for e in ledger(signed)] == ["drift", "promoted", "deployed"]

    served.write_text("sha256:" + "ab" * 32 + "\n")  # someone deployed by hand
    drifted = cli(["drift", "--env", "dev", "--json", *policy], cwd=signed)
    assert drifted.code == 1, drifted.out + drifted.err
    report = json.loads(drifted.out)
    assert report["state"] == "drift" and report["expected"]["release"] == release
    assert report["findings"][0]["answer"] == "sha256:" + "ab" * 32
    first = ledger(signed)[-1]
    assert first["kind"] == "drift" and first["details"]["state"] == "drift" and first["release"] == release
    again = cli(["drift", "--env", "dev", "--json", *policy], cwd=signed)
    assert again.code == 1 and json.loads(again.out)["since"] == first["time"].replace("Z", "+00:00")
    shown = cli(["ledger", "show", "--env", "dev"], cwd=signed)
    assert shown.out.count(" drift ") == 3 and "drift: found sha256:ababab" in shown.out, shown.out

    # a reconcile is a promotion: a gate that denies stops it, recorded, nothing deployed
    gates = yaml.safe_load((signed / "pipeline-kit.yml").read_text())["environments"]["dev"]["gates"]
    configure(signed, gates=[*gates, {"command": {"run": "exit 1"}}])
    denied = cli(["drift", "--env", "dev", "--reconcile", *policy], cwd=signed)
    assert denied.code == 1 and "reconcile: denied" in denied.out, denied.out + denied.err
    assert served.read_text().strip() == "sha256:" + "ab" * 32
    assert ledger(signed)[-1]["kind"] == "denied" and ledger(signed)[-1]["details"]["purpose"] == "reconcile"
    configure(signed, gates=gates)
    repaired = cli(["drift", "--env", "dev", "--reconcile", *policy], cwd=signed)
    assert repaired.code == 0, repaired.out + repaired.err
    assert "reconcile: passed" in repaired.out and "dev: in-sync: expected" in repaired.out
    assert served.read_text().strip() == f"sha256:{digest}"  # put back by the deploy command
    kinds = [e["kind"] for e in ledger(signed)]
    assert kinds[-2:] == ["reconciled", "deployed"], kinds
    decision = next(e for e in ledger(signed) if e["kind"] == "reconciled")
    assert decision["release"] == release and decision["reason"].startswith("reconcile: dev: drift")
    statement = signed_statement(signed, ledger(signed)[-1]["details"]["vsa"])
    assert "PIPELINE_KIT_RECONCILED" in statement["predicate"]["verifiedLevels"]
    assert statement["predicate"]["verificationResult"] == "PASSED"
    assert statement["predicate"]["policy"]["annotations"]["purpose"] == "reconcile"
    assert cli(["ledger", "verify", *policy], cwd=signed).code == 0


def signed_statement(project: Path, digest: str) -> dict[str, Any]:
    """The in-toto statement inside a ledger attachment (a Sigstore bundle, DSSE)."""
    from pipeline_kit.ledger import FileLedger

    data = FileLedger(project / LEDGER).attachment(digest)
    assert data is not None
    bundle = json.loads(data)
    return dict(json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"])))


def test_an_unsigned_release_and_a_ledger_line_claiming_it_do_not_change_what_is_expected(
    cli: Cli, signed: Path, policy: list[str], token: None, served: Path
) -> None:
    assert cli(["promote", "--to", "dev", *policy], cwd=signed).code == 0
    good, good_digest = release_of(signed)
    (signed / "src" / "hello_service" / "unsigned.py").write_text("UNSIGNED = True\n")
    describe(cli, signed)  # built and described, never signed nor promoted
    unsigned, unsigned_digest = release_of(signed)
    assert unsigned != good
    forge_line(signed, kind="deployed", environment="dev", release=unsigned, subjects={"x": unsigned_digest})
    served.write_text(f"sha256:{unsigned_digest}\n")  # the environment runs the unsigned build
    result = cli(["drift", "--env", "dev", "--json", *policy], cwd=signed)
    assert result.code == 1, result.out + result.err
    report = json.loads(result.out)
    assert report["expected"]["release"] == good and report["findings"][0]["state"] == "drift"
    served.write_text(f"{good}\n")  # the signed release, answered by its release id: the ledger line changes nothing
    assert cli(["drift", "--env", "dev", *policy], cwd=signed).code == 0
    served.write_text(f"sha256:{good_digest}\n")
    assert cli(["drift", "--env", "dev", *policy], cwd=signed).code == 0
    # a promotion under way (by the ledger's word) makes a difference unknown, never in sync
    served.write_text(f"sha256:{unsigned_digest}\n")
    forge_line(signed, kind="promoted", environment="dev", release=unsigned, details={"deploy": "pending"})
    moving = cli(["drift", "--env", "dev", *policy], cwd=signed)
    assert moving.code == 3 and f"a promotion of {unsigned} is under way" in moving.out, moving.out + moving.err
    forge_line(signed, kind="deploy-failed", environment="dev", release=unsigned)
    # the signed release put back from its archive, never with the unsigned build's files beside
    # it (a deploy reading them would put that build in place under a signed VSA)
    refused = cli(["drift", "--env", "dev", "--reconcile", *policy], cwd=signed)
    assert refused.code == 2 and "here is another build" in refused.err, refused.out + refused.err
    assert "reconciled" not in [e["kind"] for e in ledger(signed)]  # nothing decided, nothing deployed
    assert served.read_text().strip() == f"sha256:{unsigned_digest}"
    for subject in json.loads((signed / ".pipeline-kit" / "release.json").read_text())["subjects"]:
        (signed / subject["name"]).unlink()  # as in a fresh checkout: the built files are not committed
    repaired = cli(["drift", "--env", "dev", "--reconcile", "--json", *policy], cwd=signed)
    assert repaired.code == 0 and json.loads(repaired.out)["state"] == "in-sync", repaired.out + repaired.err
    assert served.read_text().strip() == f"sha256:{good_digest}"
    assert release_of(signed)[0] == unsigned
    assert ledger(signed)[-2]["kind"] == "reconciled" and ledger(signed)[-2]["release"] == good
    assert (signed / ".pipeline-kit" / "releases" / good / "promotions" / "dev.vsa.sigstore.json").is_file()


def test_a_version_answer_is_held_to_the_signed_sbom_version(
    cli: Cli, signed: Path, policy: list[str], token: None, served: Path
) -> None:
    assert cli(["promote", "--to", "dev", *policy], cwd=signed).code == 0
    for answer, code in (("0.1.0", 0), ("v0.1.0", 0), ("0.2.0", 1)):
        served.write_text(answer + "\n")
        result = cli(["drift", "--env", "dev", *policy], cwd=signed)
        assert result.code == code, (answer, result.out + result.err)


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie waiting for its reaper does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def test_a_probe_that_hangs_or_answers_garbage_is_unknown_never_in_sync(
    cli: Cli, signed: Path, policy: list[str], token: None, served: Path, tmp_path: Path
) -> None:
    assert cli(["promote", "--to", "dev", *policy], cwd=signed).code == 0
    _, digest = release_of(signed)
    pidfile = tmp_path / "probe.pid"
    probes = {
        # a probe that hangs (its child holding the output open): killed with all it started
        f"sh -c 'echo $$ > {pidfile}; echo sha256:{digest}; sleep 60'": "did not answer within 1s",
        "yes sha256:" + digest: "printed more than 4096 bytes",  # without end: read up to the cap, killed
        "printf 'sha256:%s\\n%s\\n' " + digest + " extra": "neither a digest",
        "printf '\\377\\376'": "bytes that are not text",
        "echo 'hello; rm -rf /'": "neither a digest",
        "true": "answered nothing",
        "echo boom >&2; exit 7": "the probe failed: boom",
    }
    for command, why in probes.items():
        configure(signed, probe={"command": command, "timeout": 1})
        result = cli(["drift", "--env", "dev", "--json", *policy], cwd=signed)
        assert result.code == 3, (command, result.out + result.err)
        report = json.loads(result.out)
        assert report["state"] == "unknown" and why in report["findings"][0]["why"], (command, report)
        assert ledger(signed)[-1]["details"]["state"] == "unknown"
    assert not alive(int(pidfile.read_text()))
    # the kit's identity token never reaches a probe: the answer would be the token, not the digest
    assert os.environ["SIGSTORE_IDENTITY_TOKEN"]
    configure(signed, probe={"command": f'printf "%s" "${{SIGSTORE_IDENTITY_TOKEN:-sha256:{digest}}}"'})
    assert cli(["drift", "--env", "dev", *policy], cwd=signed).code == 0
    assert ledger(signed)[-1]["details"]["state"] == "in-sync"  # the end of the unknown, recorded


def test_a_probe_url_that_hangs_floods_or_fails_is_unknown(
    cli: Cli, signed: Path, policy: list[str], token: None, served: Path
) -> None:
    import socket

    assert cli(["promote", "--to", "dev", *policy], cwd=signed).code == 0
    served.write_text("sha256:" + "a" * 10_000)  # an answer beginning with a digest, and far more
    flood = cli(["drift", "--env", "dev", "--json", *policy], cwd=signed)
    assert flood.code == 3 and "larger than 4096 bytes" in json.loads(flood.out)["findings"][0]["why"]
    with socket.socket() as silent:  # connects (the kernel's backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        configure(signed, probe={"url": f"http://127.0.0.1:{silent.getsockname()[1]}/", "timeout": 1})
        hung = cli(["drift", "--env", "dev", "--json", *policy], cwd=signed)
    assert hung.code == 3 and "timed out" in json.loads(hung.out)["findings"][0]["why"], hung.out
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        configure(signed, probe={"url": f"http://127.0.0.1:{closed.getsockname()[1]}/version"})
        refused = cli(["drift", "--env", "dev", "--json", *policy], cwd=signed)
    assert refused.code == 3 and "no answer" in json.loads(refused.out)["findings"][0]["why"], refused.out


def test_a_probe_answer_is_shown_in_the_job_summary_as_text_never_as_markdown(
    cli: Cli,
    signed: Path,
    policy: list[str],
    token: None,
    served: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from markdown_it import MarkdownIt

    assert cli(["promote", "--to", "dev", *policy], cwd=signed).code == 0
    # what the environment answers is anyone's who can reach the endpoint: a link, an image, HTML
    served.write_text("![x](https://evil.example/t.png)[login](https://evil.example)<img/src=x>`code`|x")
    summary = github_summary(monkeypatch, tmp_path / "summary.md")
    monkeypatch.setenv("GITHUB_OUTPUT", str(tmp_path / "output"))
    result = cli(["drift", "--env", "dev", *policy], cwd=signed)
    assert result.code == 3, result.out + result.err
    tokens = MarkdownIt("commonmark").enable("table").parse(summary.read_text())
    kinds = {t.type for t in tokens} | {c.type for t in tokens for c in t.children or []}
    assert not kinds & {"link_open", "image", "html_inline", "html_block", "code_inline"}, kinds
    cells = [t for t in tokens if t.type in ("th_open", "td_open")]
    assert len(cells) == 14  # a header and one row of seven columns: no cell broken out of the table
    rendered = MarkdownIt("commonmark").enable("table").render(summary.read_text())
    assert "![x](https://evil.example/t.png)[login](https://evil.example)&lt;img/src=x&gt;`code`|x" in rendered


def test_the_apart_layout_runs_no_probe_command_and_still_asks_a_url(
    cli: Cli, signed: Path, policy: list[str], token: None, served: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli(["promote", "--to", "dev", *policy], cwd=signed).code == 0
    monkeypatch.setenv("PIPELINE_KIT_APART", "true")
    assert cli(["drift", "--env", "dev", *policy], cwd=signed).code == 0  # a URL is no program of the project's
    marker = signed.parent / "probe-ran"
    configure(signed, probe={"command": f"touch {marker}; echo 0.1.0"})
    result = cli(["drift", "--env", "dev", "--json", *policy], cwd=signed)
    assert result.code == 3 and "PIPELINE_KIT_APART is set" in json.loads(result.out)["findings"][0]["why"]
    assert not marker.exists()


def test_a_rollout_is_probed_slot_by_slot_with_the_weights_nginx_serves(
    cli: Cli,
    signed: Path,
    policy: list[str],
    sigstore: LocalSigstore,
    monkeypatch: pytest.MonkeyPatch,
    token: None,
    nginx_slots: tuple[LocalNginx, Path],
) -> None:
    nginx, slots = nginx_slots
    set_steps(signed, [{"weight": 100}])
    configure(signed, probe={"url": "http://{{ address }}/"})
    live, _ = roll_out_first(cli, signed, policy, sigstore, monkeypatch)  # green runs `live`, blue v0
    result = cli(["drift", "--env", "dev", "--json", *policy], cwd=signed)
    assert result.code == 0, result.out + result.err
    findings = {f["slot"]: f for f in json.loads(result.out)["findings"]}
    assert findings["green"]["weight"] == 100 and findings["green"]["state"] == "in-sync"
    assert findings["blue"]["weight"] == 0 and findings["blue"]["state"] == "idle"

    # someone sends a quarter of the traffic back to blue, which runs v0: nginx really serves it
    upstream = signed / "deploy" / "upstream.conf"
    config = yaml.safe_load((signed / "pipeline-kit.yml").read_text())
    addresses = config["environments"]["dev"]["traffic"]["slots"]
    upstream.write_text(
        "upstream pipeline_kit {\n"
        f"    server {addresses['blue']} weight=1;\n    server {addresses['green']} weight=3;\n}}\n"
    )
    assert cli_ok(nginx.reload_command)
    time.sleep(0.2)  # the reload reaching the worker (not a measurement)
    assert nginx.count(40)["v0"] == 10  # the oracle: what nginx itself serves
    result = cli(["drift", "--env", "dev", "--json", *policy], cwd=signed)
    assert result.code == 1, result.out + result.err
    findings = {f["slot"]: f for f in json.loads(result.out)["findings"]}
    assert (findings["blue"]["weight"], findings["blue"]["answer"], findings["blue"]["state"]) == (25, "v0", "drift")
    assert findings["green"]["weight"] == 75 and findings["green"]["state"] == "in-sync"
    # green now runs something else too: a release id that is not the signed one
    (slots / "green").write_text("0" * 32)
    result = cli(["drift", "--env", "dev", "--json", *policy], cwd=signed)
    assert result.code == 1 and {f["slot"]: f["state"] for f in json.loads(result.out)["findings"]}["green"] == "drift"
    assert live != "0" * 32
    # reconciled by a rollout of the signed release, as any promotion of dev, from a checkout
    # without the newer build's files (a deploy reading them would put that build in place)
    shutil.rmtree(signed / "dist")
    repaired = cli(["drift", "--env", "dev", "--reconcile", "--json", *policy], cwd=signed)
    assert repaired.code == 0, repaired.out + repaired.err
    time.sleep(0.2)
    assert nginx.count(20) == {live: 20}


def test_the_command_traffic_provider_needs_the_weights_probe_to_tell_an_idle_slot(
    cli: Cli, signed: Path, policy: list[str], sigstore: LocalSigstore, monkeypatch: pytest.MonkeyPatch, token: None
) -> None:
    with_rollout(signed, [{"weight": 100}])
    configure(
        signed,
        deploy='echo "$PIPELINE_KIT_RELEASE_ID" > "slot-$PIPELINE_KIT_SLOT"',
        probe={"command": 'cat "slot-$PIPELINE_KIT_SLOT" 2>/dev/null || echo none'},
    )
    live, _ = roll_out_first(cli, signed, policy, sigstore, monkeypatch)  # green runs it; blue nothing
    assert (signed / "slot-green").read_text().strip() == live and not (signed / "slot-blue").exists()
    # the command provider cannot say which weights are in force: blue's "none" may be served
    unknown = cli(["drift", "--env", "dev", "--json", *policy], cwd=signed)
    assert unknown.code == 3, unknown.out + unknown.err
    blue = {f["slot"]: f for f in json.loads(unknown.out)["findings"]}["blue"]
    assert blue["weight"] is None and "cannot say which weights are in force" in blue["why"]
    for weights, code in (
        ("echo green 100; echo blue 0", 0),  # blue idle: whatever it runs, nothing reaches it
        ("echo green 50; echo blue 50", 3),  # blue serves half, and answers nothing we know
        ("echo green 100", 3),  # not every slot: no answer
        ("echo green 100; echo blue 100", 3),  # not 100 in all
    ):
        configure(
            signed, probe={"command": 'cat "slot-$PIPELINE_KIT_SLOT" 2>/dev/null || echo none', "weights": weights}
        )
        result = cli(["drift", "--env", "dev", *policy], cwd=signed)
        assert result.code == code, (weights, result.out + result.err)


def cli_ok(command: list[str]) -> bool:
    return subprocess.run(command, capture_output=True, check=False).returncode == 0


def drifted_on_a_git_ledger(
    cli: Cli, project: Path, policy: list[str], served: Path, files: dict[str, str]
) -> tuple[Path, Path, str]:
    """dev promoted with a git ledger on a local bare remote, then changed by hand (its answer no
    longer the signed digest); `files` committed; a fresh clone (no evidence dir, only the ledger).
    Returns the clone, the remote and the signed digest."""
    remote = project.parent / "ledger.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    path = project / "pipeline-kit.yml"
    config = yaml.safe_load(path.read_text())
    config["ledger"] = {"backend": "git", "remote": str(remote), "ref": "refs/pipeline-kit/ledger"}
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    for name, text in files.items():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(text)
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "git ledger, probe")
    assert cli(["promote", "--to", "dev", *policy], cwd=project).code == 0
    _, digest = release_of(project)
    served.write_text("sha256:" + "cd" * 32 + "\n")
    fresh = project.parent / "fresh"
    git(project.parent, "clone", "-q", str(project), str(fresh))
    return fresh, remote, digest


def repaired_in_the_ledger(project: Path, remote: Path, served: Path, digest: str) -> None:
    from pipeline_kit.ledger import GitLedger

    assert served.read_text().strip() == f"sha256:{digest}"
    entries = GitLedger(project, str(remote), "refs/pipeline-kit/ledger").verify()
    kinds = [(e.kind, e.details.get("state")) for e in entries]
    assert kinds[-3:] == [("drift", "drift"), ("reconciled", None), ("deployed", None)], kinds


def test_the_scheduled_github_example_finds_and_reconciles_a_drift_under_act(
    cli: Cli, signed: Path, sigstore: LocalSigstore, policy: list[str], token: None, served: Path
) -> None:
    from tests.test_actions import run_act

    workflow = (ROOT / "examples" / "github" / "drift.yml").read_text()
    workflow = re.sub(r"@0{40} # your kit release", "@v0", workflow).replace("environment: prod", "environment: dev")
    workflow = workflow.replace(
        "          environment: dev\n",
        "          environment: dev\n          trust-config: ${{ env.TEST_TRUST_CONFIG }}\n"
        f"          cert-identity: {SIGNER}\n          cert-oidc-issuer: ${{{{ env.TEST_ISSUER }}}}\n",
    )
    fresh, remote, digest = drifted_on_a_git_ledger(
        cli, signed, policy, served, {".github/workflows/drift.yml": workflow}
    )
    work = signed.parent / "runner"
    work.mkdir()
    result, _ = run_act(
        fresh,
        work,
        sigstore,
        "drift",
        workflow=".github/workflows/drift.yml",
        event="workflow_dispatch",
        extra=("--input", "reconcile=true"),
    )
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
    repaired_in_the_ledger(signed, remote, served, digest)


def test_the_gitlab_drift_template_on_a_schedule_under_gitlab_ci_local(
    cli: Cli, signed: Path, sigstore: LocalSigstore, policy: list[str], token: None, served: Path
) -> None:
    from tests.test_gitlab_templates import one_template, run

    files = one_template(signed, sigstore, "drift.yml", "      environment: dev\n      reconcile: true\n")
    fresh, remote, digest = drifted_on_a_git_ledger(cli, signed, policy, served, files)
    variables = {
        **offline_installs(fresh.parent),
        "SIGSTORE_IDENTITY_TOKEN": sigstore.mint_token(SIGNER),
        "CI_PIPELINE_SOURCE": "schedule",  # the template's default rule: scheduled pipelines only
    }
    result = run(
        fresh,
        "pipeline-kit-drift-dev",
        *(arg for key, value in variables.items() for arg in ("--variable", f"{key}={value}")),
    )
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
    assert "PASS  pipeline-kit-drift-dev" in result.stdout
    repaired_in_the_ledger(signed, remote, served, digest)


@pytest.mark.parametrize(
    ("upstream", "expected"),
    [
        # as the kit renders it (25% to the canary), and as an operator may write it
        ("upstream pipeline_kit {\n    server B weight=75;\n    server G weight=25;\n}\n", {"blue": 75, "green": 25}),
        ("upstream pipeline_kit { server G; }\n", {"blue": 0, "green": 100}),
        ("upstream pipeline_kit {\n    server B weight=1;\n    server G weight=2;\n}\n", {"blue": 33, "green": 67}),
        ("upstream pipeline_kit {\n    server B;\n    server 10.0.0.9:80;\n}\n", "a server of no slot (10.0.0.9:80)"),
        # a server line with more parameters than a weight is still a server: a stranger taking
        # half the requests must not hide behind `max_fails=3`
        (
            "upstream pipeline_kit {\n    server B weight=1;\n    server 10.0.0.9:80 weight=1 max_fails=3;\n}\n",
            "a server of no slot (10.0.0.9:80)",
        ),
        (
            "upstream pipeline_kit {\n    server B max_fails=3 weight=3;\n    server G weight=1;\n}\n",
            {"blue": 75, "green": 25},
        ),
        ("upstream pipeline_kit {\n    server B weight=9 down;\n    server G;\n}\n", {"blue": 0, "green": 100}),
        ("upstream pipeline_kit {\n    server B;\n    include /etc/nginx/more-servers.conf;\n}\n", "an include"),
        ("upstream pipeline_kit { }\n", "no server"),
        (None, "cannot read the upstreams"),
    ],
)
def test_nginx_weights_are_read_from_the_upstream_file_by_slot_address(
    tmp_path: Path, upstream: str | None, expected: dict[str, int] | str
) -> None:
    from pipeline_kit.traffic.nginx import NginxTraffic

    slots = {"blue": "127.0.0.1:8001", "green": "127.0.0.1:8002"}
    path = tmp_path / "upstream.conf"
    if upstream is not None:
        path.write_text(
            upstream.replace("server B", f"server {slots['blue']}").replace("server G", f"server {slots['green']}")
        )
    weights = NginxTraffic(path, "pipeline_kit", None, ["true"], tmp_path, 5).weights(slots)
    if isinstance(expected, dict):
        assert weights == expected
    else:
        assert isinstance(weights, str) and expected in weights, weights
