"""The command line end to end: show, init, run --dry-run, import discipline, exit codes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from pipeline_kit.config import load_config
from tests.conftest import Cli, init_repo, run_kit
from tests.test_provenance import GITHUB_ENV

HEAVY = ("sigstore", "github", "gitlab", "cyclonedx", "jsonschema", "jsonschema_rs")


def imported_modules(args: list[str], cwd: Path) -> set[str]:
    """Top-level packages imported while running `pipeline-kit ARGS` in a fresh interpreter."""
    script = (
        "import sys, runpy\n"
        f"sys.argv = ['pipeline-kit', *{args!r}]\n"
        "try:\n    runpy.run_module('pipeline_kit', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "print('MODULES=' + ','.join(sorted({m.split('.')[0] for m in sys.modules})), file=sys.stderr)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=cwd, capture_output=True, text=True, check=False)
    line = next(line for line in result.stderr.splitlines() if line.startswith("MODULES="))
    return set(line.removeprefix("MODULES=").split(","))


def test_help_and_show_import_nothing_heavy(cli: Cli, hello: Path) -> None:
    help_modules = imported_modules(["--help"], hello)
    assert not set(HEAVY) & help_modules
    assert "pydantic" not in help_modules  # the models load with the command that needs them
    for command in (["build"], ["sbom"], ["provenance"]):
        assert cli(command, cwd=hello).code == 0
    modules = imported_modules(["show"], hello)
    assert "pipeline_kit" in modules
    assert not set(HEAVY) & modules
    assert not set(HEAVY) & imported_modules(["build"], hello)


def test_help_lists_every_command_without_importing_one(hello: Path) -> None:
    import click

    from pipeline_kit.cli import COMMANDS, cli, load

    script = (
        "import sys, runpy\n"
        "sys.argv = ['pipeline-kit', '--help']\n"
        "try:\n    runpy.run_module('pipeline_kit', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "print('MODULES=' + ','.join(m for m in sys.modules if m.startswith('pipeline_kit')), file=sys.stderr)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=hello, capture_output=True, text=True, check=False)
    modules = next(line for line in result.stderr.splitlines() if line.startswith("MODULES=")).split("=")[1]
    assert sorted(modules.split(",")) == ["pipeline_kit", "pipeline_kit.cli", "pipeline_kit.errors"]
    for name, (_, shown) in COMMANDS.items():
        # the listing's line is the start of the command's own help
        assert " ".join((load(name).help or "").split()).startswith(shown.removesuffix("...")), name
        assert f"  {name}" in result.stdout and shown in result.stdout
    context = click.Context(cli)
    assert cli.get_command(context, "nope") is None
    assert {c.name for c in map(load, COMMANDS)} == set(COMMANDS)


def test_checking_a_bare_ledger_loads_no_models(tmp_path: Path) -> None:
    """`ledger verify` hashes the stored bytes: neither the config nor the entry models load."""
    from datetime import datetime, timezone

    from pipeline_kit.ledger import DEFAULT_FILE, Draft, FileLedger

    ledger = FileLedger(tmp_path / DEFAULT_FILE)
    for n in range(3):
        ledger.append(
            Draft(kind="promoted", environment="dev", actor="t", time=datetime.now(timezone.utc), release=f"r{n}")
        )
    assert "pydantic" not in imported_modules(["ledger", "verify"], tmp_path)
    assert "pydantic" in imported_modules(["ledger", "show"], tmp_path)  # the oracle: reading entries does


def test_show_summarizes(cli: Cli, hello: Path) -> None:
    for command in (["build"], ["sbom"], ["provenance"]):
        assert cli(command, cwd=hello).code == 0
    result = cli(["show", "--json"], cwd=hello)
    assert result.code == 0, result.err
    summary = json.loads(result.out)
    assert summary["release"]["name"] == "hello-service"
    assert summary["sbom"]["components"] == 7
    assert summary["sbom"]["sources"] == ["uv.lock"]
    assert summary["sbom"]["subjects_match"] and summary["provenance"]["subjects_match"]
    assert {f["name"]: f["state"] for f in summary["files"]} == {
        "release.json": "recorded",
        "SHA256SUMS": "recorded",
        "sbom.cdx.json": "recorded",
        "provenance.intoto.json": "recorded",
    }
    sbom_text = (hello / ".pipeline-kit" / "sbom.cdx.json").read_text()
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(sbom_text) is None
    text = cli(["show"], cwd=hello)
    assert text.code == 0
    assert "CycloneDX 1.6, 7 components from uv.lock; subjects match" in text.out


def test_show_flags_a_modified_file(cli: Cli, hello: Path) -> None:
    for command in (["build"], ["sbom"]):
        assert cli(command, cwd=hello).code == 0
    path = hello / ".pipeline-kit" / "sbom.cdx.json"
    path.write_text(path.read_text().replace('"name": "flask"', '"name": "f1ask"'))
    result = cli(["show"], cwd=hello)
    assert result.code == 1
    assert "sbom.cdx.json changed since release.json recorded its digest" in result.err


def test_show_without_release(cli: Cli, tmp_path: Path) -> None:
    result = cli(["show"], cwd=tmp_path)
    assert result.code == 2
    assert "no release here" in result.err


@pytest.mark.parametrize(
    ("remote", "issuer", "fragment"),
    [
        (
            "git@github.com:acme/web.git",
            "https://token.actions.githubusercontent.com",
            r"github\.com/pipeline-kit/pipeline-kit/\.github/workflows/(sign-release|arrive|rollback)\.yml@",
        ),
        (
            "https://gitlab.com/group/sub/proj.git",
            "https://gitlab.com",
            r"gitlab\.com/group/sub/proj//",
        ),
        (None, None, None),
    ],
)
def test_init_writes_a_valid_starter(
    cli: Cli, hello: Path, remote: str | None, issuer: str | None, fragment: str | None
) -> None:
    (hello / "pipeline-kit.yml").unlink()
    (hello / "requirements.txt").write_text("flask==3.1.3\n")
    if remote:
        init_repo(hello, remote=remote)
    result = cli(["init"], cwd=hello)
    assert result.code == 0, result.err
    config = load_config(hello / "pipeline-kit.yml")
    assert config.artifact.name == "hello-service"
    assert config.sbom.sources == ["uv.lock", "requirements.txt"]
    if issuer:
        assert config.signing.identity is not None
        assert config.signing.identity.issuer == issuer
        assert fragment is not None and fragment in (config.signing.identity.san_regex or "")
    else:
        assert config.signing.identity is None
    assert "#" in (hello / "pipeline-kit.yml").read_text()  # commented for humans


def test_init_refuses_to_overwrite(cli: Cli, hello: Path) -> None:
    before = (hello / "pipeline-kit.yml").read_text()
    result = cli(["init"], cwd=hello)
    assert result.code == 2
    assert "already exists" in result.err
    assert (hello / "pipeline-kit.yml").read_text() == before
    assert cli(["init", "--force"], cwd=hello).code == 0


def test_run_dry_run_on_the_example(cli: Cli, hello: Path) -> None:
    init_repo(hello, remote="https://github.com/pipeline-kit/hello-service.git")
    result = cli(["run", "--dry-run"], cwd=hello)
    assert result.code == 0, result.err
    assert "uv.lock  uv    7" in result.out
    assert "bundles/provenance.sigstore.json" in result.out
    assert "a local signature would not satisfy a CI identity policy" in result.out
    assert "local build: not produced by CI" in result.out
    assert "built dist/hello_service-0.1.0-py3-none-any.whl" in result.err  # build output streamed
    for name in ("release.json", "SHA256SUMS", "sbom.cdx.json", "provenance.intoto.json"):
        assert (hello / ".pipeline-kit" / name).is_file()
    subprocess.run(["sha256sum", "-c", ".pipeline-kit/SHA256SUMS"], cwd=hello, check=True, capture_output=True)


def test_run_dry_run_in_github_checks_the_identity_policy(
    cli: Cli, hello: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the example's policy wants the kit's signing workflows (the isolated layout), for its repository
    kit = f"https://github.com/pipeline-kit/pipeline-kit/.github/workflows/sign-release.yml@{'a' * 40}"
    env = {
        **GITHUB_ENV,
        "GITHUB_REPOSITORY": "pipeline-kit/hello-service",
        "GITHUB_WORKFLOW_REF": "pipeline-kit/hello-service/.github/workflows/release.yml@refs/tags/v0.1.0",
        "PIPELINE_KIT_BUILDER_ID": kit,  # as the kit's workflow sets it, from its token
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    result = cli(["run", "--dry-run"], cwd=hello)
    assert result.code == 0, result.err
    assert f"as       {kit}" in result.out
    assert "the identity policy accepts this signer" in result.out
    # the caller's own workflow signing (the shared layout) is not what this policy accepts
    monkeypatch.delenv("PIPELINE_KIT_BUILDER_ID")
    result = cli(["run", "--dry-run"], cwd=hello)
    assert (
        "as       https://github.com/pipeline-kit/hello-service/.github/workflows/release.yml@refs/tags/v0.1.0"
        in result.out
    )
    assert "does not match" in result.out
    # the kit's workflow, run for another repository: signed for the wrong source
    monkeypatch.setenv("PIPELINE_KIT_BUILDER_ID", kit)
    monkeypatch.setenv("GITHUB_REPOSITORY", "mallory/app")
    result = cli(["run", "--dry-run"], cwd=hello)
    assert "signed for https://github.com/mallory/app, not https://github.com/pipeline-kit/hello-service" in result.out


def test_run_to_an_unknown_environment_stops_before_building(cli: Cli, hello: Path) -> None:
    result = cli(["run", "--to", "qa"], cwd=hello)
    assert result.code == 2
    assert "unknown environment 'qa'; the config has: dev, staging, prod" in result.err
    assert not (hello / ".pipeline-kit").exists() and not (hello / "dist").exists()


def test_run_loads_the_trust_root_during_the_build_and_reports_its_failure_once(
    cli: Cli, hello: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `run` loads the trust root in a thread while the build runs; one that cannot be loaded is
    # the same one line and exit code as before, and it is not asked for a second time (offline,
    # a second attempt would wait out a second timeout).
    import pipeline_kit.trust

    calls: list[Path | None] = []
    load = pipeline_kit.trust.load_trust_config

    def counted(path: Path | None, **kwargs: Any) -> Any:
        calls.append(path)
        return load(path, **kwargs)

    monkeypatch.setattr(pipeline_kit.trust, "load_trust_config", counted)
    monkeypatch.setenv("SIGSTORE_IDENTITY_TOKEN", "unused: the trust root fails first")
    bad = hello / "not-a-trust-config.json"
    bad.write_text('{"not": "a trust config"}')
    result = cli(["run", "--trust-config", str(bad)], cwd=hello)
    assert result.code == 2, result.err
    [error] = [line for line in result.err.splitlines() if line.startswith("error:")]
    assert error.startswith(f"error: {bad}: not a Sigstore client trust config: ")
    assert "Traceback" not in result.err and calls == [bad]
    assert (hello / ".pipeline-kit" / "release.json").is_file()  # it failed after the build, not before


def test_a_failed_build_is_reported_while_the_trust_root_still_loads(
    cli: Cli, hello: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Offline, the public-good trust root's refresh waits out its timeout: a build that failed
    # meanwhile is reported at once, not after it.
    import threading

    import pipeline_kit.trust

    loading, released, finished = (hello / "loading"), threading.Event(), threading.Event()

    def slow(path: Path | None, **kwargs: Any) -> Any:
        loading.touch()
        released.wait(120)
        finished.set()
        raise pipeline_kit.trust.TrustRootUnavailable("offline")

    monkeypatch.setattr(pipeline_kit.trust, "load_trust_config", slow)
    monkeypatch.setenv("SIGSTORE_IDENTITY_TOKEN", "unused: the build fails first")
    config = hello / "pipeline-kit.yml"  # a build that fails once the trust root began loading
    build = "build: 'while [ ! -f loading ]; do sleep 0.05; done; echo broken; exit 1'"
    config.write_text(config.read_text().replace('build: "python build.py"', build))
    try:
        result = cli(["run"], cwd=hello)
        assert result.code == 3 and "error: build command exited with code 1" in result.err, result.err
        assert not finished.is_set()  # reported while the trust root was still loading
    finally:
        released.set()


def test_real_process_exit_codes(hello: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "GITLAB_", "CI_"))}
    assert run_kit(["--version"], hello, env).returncode == 0
    unknown = run_kit(["frobnicate"], hello, env)
    assert unknown.returncode == 2 and "No such command" in unknown.stderr
    (hello / "pipeline-kit.yml").write_text("version: 1\nartifact: [\n")
    bad = run_kit(["build"], hello, env)
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr
    verbose = run_kit(["-v", "build"], hello, env)
    assert verbose.returncode != 0 and "Traceback" in verbose.stderr  # --verbose shows the cause


# The order every command lists the options it shares: evidence, trust, signer, policy, output.
SHARED_OPTIONS = (
    "--evidence-dir",
    "--config",
    "--trust-config",
    "--offline",
    "--rekor-version",
    "--interactive",
    "--cert-identity",
    "--cert-identity-regex",
    "--cert-oidc-issuer",
    "--repository",
    "--ref",
    "--junit",
    "--json",
)


@pytest.mark.parametrize("command", ["sign", "verify", "plan", "promote", "rollback", "run"])
def test_commands_list_shared_options_in_one_order(command: str) -> None:
    from pipeline_kit.cli import load

    names = [o for p in load(command).params for o in p.opts if o in SHARED_OPTIONS]
    assert names, command
    assert names == sorted(names, key=SHARED_OPTIONS.index), f"{command}: {names}"
    if command in ("sign", "promote", "rollback", "run"):  # every command that signs
        assert "--rekor-version" in names and "--interactive" in names


def test_tables_wrap_their_last_column_to_columns_and_logs_keep_one_line_per_row(
    cli: Cli, hello: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first run's gate table on an 80-column terminal stays within it, the reasons continued
    under themselves, word for word; written to a log (no terminal, no COLUMNS) a row is a line."""
    from pipeline_kit.cli._render import table

    reason = "to be signed in CI by identity ~ ^https://github\\.com/acme/shop/\\.github/workflows/release\\.yml@refs/tags/v.*$"
    monkeypatch.delenv("COLUMNS", raising=False)
    assert table(["gate", "reason"], [("signature", reason)]).splitlines()[2] == f"signature  {reason}"
    monkeypatch.setenv("COLUMNS", "80")
    lines = table(["gate", "reason"], [("signature", reason), ("sbom", "short")]).splitlines()
    assert all(len(line) <= 80 for line in lines) and len(lines) > 4
    assert lines[3].startswith(" " * len("signature  ")) and lines[-1] == "sbom       short"
    wrapped = "".join(lines[2:-1]).replace("signature", "", 1)
    assert "".join(wrapped.split()) == "".join(reason.split())  # every character, in order
    result = cli(["run", "--dry-run"], cwd=hello)
    tables = [line for line in result.out.splitlines() if re.match(r"(signature|provenance|sbom) +(pass|DENY) ", line)]
    assert tables and all(len(line) <= 80 for line in tables), result.out


@pytest.mark.parametrize("command", ["drift", "rollback", "promote"])
def test_help_explains_the_deploy_argument(command: str) -> None:
    from click.testing import CliRunner

    from pipeline_kit.cli import load

    shown = CliRunner().invoke(load(command), ["--help"], prog_name=f"pipeline-kit {command}")
    assert shown.exit_code == 0 and "[DEPLOY]..." in shown.output
    # the text under the usage line says what DEPLOY is, not only the usage line naming it
    assert "DEPLOY (after `--`" in " ".join(shown.output.split()), shown.output


def test_init_without_a_remote_says_what_to_add_and_the_dry_run_agrees_nothing_is_accepted(
    cli: Cli, hello: Path
) -> None:
    (hello / "pipeline-kit.yml").unlink()  # not a git repository: no origin to derive the identity from
    init = cli(["init"], cwd=hello)
    assert init.code == 0, init.err
    assert "could not derive signing.identity: no git remote `origin` here" in init.out
    assert "every signed-evidence gate denies" in init.out
    # the printed example is what to write: pasted under `signing:`, the kit takes it as the policy
    shown = init.out.splitlines()
    start = shown.index(next(line for line in shown if line.startswith("    identity:")))
    example = [line.removeprefix("  ") for line in shown[start:] if line.startswith("    ")]
    config = (hello / "pipeline-kit.yml").read_text()
    assert "\nsigning:\n" in config
    pasted = hello / "pasted.yml"
    pasted.write_text(config.replace("\nsigning:\n", "\nsigning:\n" + "\n".join(example) + "\n", 1))
    identity = load_config(pasted).signing.identity
    assert identity is not None and identity.issuer == "https://token.actions.githubusercontent.com"
    pasted.unlink()

    dry = cli(["run", "--dry-run"], cwd=hello)
    assert dry.code == 0, dry.err
    # fail closed, said the same way in the signing section and the gates; the next step is not `init` again
    assert "any signer would be accepted" not in dry.out
    assert "no signer is accepted" in dry.out.split("summary: ")[0]
    nxt = next(line for line in dry.out.splitlines() if line.startswith("next: "))
    assert "pipeline-kit init" not in nxt and "signing.identity" in nxt and "README.md#" in nxt


def test_run_dry_run_reads_a_git_ledger_without_its_push_token(
    cli: Cli, hello: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # docs/multi-job.md's git ledger names `token-variable: GITHUB_TOKEN`, unset on a laptop: a dry
    # run only reads the ledger, so it works; nothing is pushed
    import yaml

    bare = tmp_path / "ledger.git"
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
    config_path = hello / "pipeline-kit.yml"
    config = yaml.safe_load(config_path.read_text())
    config["ledger"] = {"backend": "git", "remote": str(bare), "token-variable": "GITHUB_TOKEN"}
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    init_repo(hello, remote="https://github.com/pipeline-kit/hello-service.git")
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    result = cli(["run", "--dry-run"], cwd=hello)
    assert result.code == 0, result.err
    assert "GITHUB_TOKEN" not in result.err and "would pass in CI" in result.out
    refs = subprocess.run(["git", "-C", str(bare), "for-each-ref"], capture_output=True, text=True, check=True)
    assert refs.stdout == ""  # nothing pushed
