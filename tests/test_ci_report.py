"""Outputs the CI platform's way: GitHub output file and summary, annotations, masks; GitLab dotenv."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipeline_kit.ci import reporter
from tests.conftest import SIGNER, Cli, run_kit
from tests.sigstore_instance import LocalSigstore
from tests.test_provenance import GITHUB_ENV, GITLAB_ENV


def parse_github_output(text: str) -> dict[str, str]:
    values, lines = {}, iter(text.splitlines())
    for line in lines:
        if "<<" in line:
            name, delimiter = line.split("<<", 1)
            body = []
            for inner in lines:
                if inner == delimiter:
                    break
                body.append(inner)
            values[name] = "\n".join(body)
        else:
            name, _, value = line.partition("=")
            values[name] = value
    return values


def test_github_outputs_summary_and_annotations(
    cli: Cli, hello: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in GITHUB_ENV.items():
        monkeypatch.setenv(key, value)
    output, summary = tmp_path / "output", tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_OUTPUT", str(output))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    assert cli(["build"], cwd=hello).code == 0
    values = parse_github_output(output.read_text())
    assert re.fullmatch(r"[0-9a-f]{32}", values["release-id"])
    assert values["digest"].startswith("sha256:")
    assert values["subjects"].endswith("  dist/hello_service-0.1.0-py3-none-any.whl")
    assert "| dist/hello_service-0.1.0-py3-none-any.whl |" in summary.read_text()
    (hello / "pipeline-kit.yml").write_text("version: 1\nartifact: {name: x}\n")
    result = cli(["build"], cwd=hello)
    assert result.code == 2
    assert result.err.startswith("::error file=") and "pipeline-kit.yml" in result.err.splitlines()[0]


def test_github_delimiter_cannot_be_forged(tmp_path: Path) -> None:
    output = tmp_path / "out"
    report = reporter({"GITHUB_ACTIONS": "true", "GITHUB_OUTPUT": str(output)}, tmp_path)
    hostile = "line1\nghadelimiter_0\nevil=1"
    report.outputs({"value": hostile, "plain": "x"})
    assert parse_github_output(output.read_text()) == {"value": hostile, "plain": "x"}
    assert re.search(r"^value<<ghadelimiter_[0-9a-f]{32}$", output.read_text(), re.M)


def test_annotation_escapes_newlines(tmp_path: Path) -> None:
    report = reporter({"GITHUB_ACTIONS": "true"}, tmp_path)
    assert report.error_line("bad\n::warning::injected", "a,b:c") == "::error file=a%2Cb%3Ac::bad%0A::warning::injected"


def test_gitlab_dotenv(cli: Cli, hello: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in GITLAB_ENV.items():
        monkeypatch.setenv(key, value)
    assert cli(["build"], cwd=hello).code == 0
    dotenv = dict(line.split("=", 1) for line in (hello / "pipeline-kit.env").read_text().splitlines())
    assert re.fullmatch(r"[0-9a-f]{32}", dotenv["PIPELINE_KIT_RELEASE_ID"])
    assert dotenv["PIPELINE_KIT_DIGEST"].startswith("sha256:")
    # the build's evidence-dir output, a path in this job's workspace, would set the next job's
    # PIPELINE_KIT_EVIDENCE_DIR over its own (a dotenv variable wins over the job's variables)
    assert "PIPELINE_KIT_EVIDENCE_DIR" not in dotenv


def test_token_is_masked_before_use_and_never_printed(described: Path, sigstore: LocalSigstore, tmp_path: Path) -> None:
    import json
    import os
    import subprocess
    import sys

    token = sigstore.mint_token(SIGNER)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "CI_", "GITLAB_"))}
    env.update({k: v for k, v in GITHUB_ENV.items() if k != "ACTIONS_ID_TOKEN_REQUEST_URL"})
    env.update({"SIGSTORE_IDENTITY_TOKEN": token, "GITHUB_OUTPUT": str(tmp_path / "out")})
    trust = ["--trust-config", str(sigstore.trust_config_path)]
    # --json: stdout stays pure JSON with no token; the mask goes to stderr (a pipe, as the runner's)
    result = run_kit(["sign", *trust, "--json"], described, env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["identity"] == SIGNER and token not in result.stdout
    assert result.stderr.splitlines()[0] == f"::add-mask::{token}" and result.stderr.count(token) == 1
    assert token not in (tmp_path / "out").read_text()
    # stderr saved to a file (no runner reads it): the token is written nowhere
    with open(tmp_path / "stderr.txt", "w") as saved:
        quiet = subprocess.run(
            [sys.executable, "-m", "pipeline_kit", "sign", *trust, "--json"],
            cwd=described,
            env=env,
            stdout=subprocess.PIPE,
            stderr=saved,
            text=True,
            check=False,
        )
    assert quiet.returncode == 0 and token not in quiet.stdout
    assert token not in (tmp_path / "stderr.txt").read_text()
