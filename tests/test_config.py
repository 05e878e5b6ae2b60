from __future__ import annotations

from pathlib import Path

import pytest

from pipeline_kit.config import load_config, parse_config
from pipeline_kit.errors import ConfigError
from tests.conftest import EXAMPLE, Cli

VALID = """\
version: 1
artifact:
  name: app
  build: make
  outputs: ["dist/*"]
"""


def test_example_config_loads() -> None:
    config = load_config(EXAMPLE / "pipeline-kit.yml")
    assert config.artifact.name == "hello-service"
    assert config.artifact.outputs == ["dist/*.whl"]
    assert config.signing.identity is not None
    assert config.signing.identity.san_regex is not None


def test_defaults() -> None:
    config = parse_config(VALID, Path("p.yml"))
    assert config.sbom.sources is None
    assert config.signing.identity is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "p.yml: file is empty"),
        ("- a\n- b\n", "p.yml: line 1: expected a mapping, got list"),
        ("version: 1\nartifact: {name: a, outputs: [x]\n", "p.yml: line 3: invalid YAML"),
        (VALID + "surprise: true\n", "p.yml: line 6: surprise: unknown key"),
        (
            VALID.replace('  outputs: ["dist/*"]\n', ""),
            "p.yml: line 2: artifact.outputs: required key is missing",
        ),
        (VALID.replace("version: 1", "version: 2"), "p.yml: line 1: version: Input should be 1"),
        (VALID.replace('outputs: ["dist/*"]', "outputs: []"), "p.yml: line 5: artifact.outputs:"),
        (VALID.replace("dist/*", "../outside/*"), "must be relative"),
        (VALID.replace("dist/*", "/abs/*"), "must be relative"),
        (VALID + "artifact: {}\n", "duplicate key 'artifact'"),
        (
            VALID + "sbom:\n  sources:\n    - {path: x.lock, type: gradle}\n",
            "p.yml: line 8: sbom.sources[0].type",
        ),
        (
            VALID + "signing:\n  identity: {issuer: i, san: a, san-regex: b}\n",
            "exactly one of san or san-regex",
        ),
        (
            VALID + "signing:\n  identity: {issuer: i, san-regex: '(unclosed'}\n",
            "not a valid regular expression",
        ),
        ("version: 1\nartifact: !!python/object:os.system {}\n", "invalid YAML"),
        # a token in a git remote's URL would be on git's command line, in every message naming
        # the ledger, and (the org's) in the signed stop-the-line statements
        (
            VALID + "ledger: {backend: git, remote: 'https://x-access-token:s3cret@github.com/a/b.git'}\n",
            "p.yml: line 6: ledger.remote: credentials in the URL",
        ),
        (
            VALID + "org:\n  ledger: {remote: 'http://s3cret@git.example.com/org.git'}\n"
            "  stop: {identity: {issuer: i, san: a}}\n  resume: {identity: {issuer: i, san: b}}\n",
            "org.ledger.remote: credentials in the URL",
        ),
        # a secret never crosses the network in the clear: plain http only to this machine
        (
            VALID + "flags: {type: unleash, url: 'http://flags.example.com'}\n",
            "flags: http://flags.example.com: would send UNLEASH_ADMIN_TOKEN in the clear; use https",
        ),
        (
            VALID + "metrics:\n  prom: {type: prometheus, url: 'http://prom.example.com', headers: {X-Scope: S}}\n",
            "http://prom.example.com: would send S in the clear",
        ),
        (
            VALID + "annotations: {url: 'http://push.example.com:9091', token-variable: PUSH}\n",
            "would send PUSH in the clear",
        ),
        (VALID + "forge: {url: 'HTTP://ghe.example.com/api', token-variable: T}\n", "would send T in the clear"),
    ],
)
def test_bad_config_is_one_precise_line(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, Path("p.yml"))
    message = caught.value.message
    assert expected in message, message
    assert "\n" not in message and "s3cret" not in message


def test_cli_reports_config_error_with_exit_2(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "pipeline-kit.yml").write_text(VALID + "typo: 1\n")
    result = cli(["build"], cwd=tmp_path)
    assert result.code == 2
    assert result.err.startswith("error: ")
    assert "pipeline-kit.yml: line 6: typo: unknown key" in result.err
    assert "Traceback" not in result.err
    assert not (tmp_path / ".pipeline-kit").exists()


def test_missing_config_hints_init(cli: Cli, tmp_path: Path) -> None:
    result = cli(["build"], cwd=tmp_path)
    assert result.code == 2
    assert "pipeline-kit.yml: file not found" in result.err
    assert "pipeline-kit init" in result.err


@pytest.mark.parametrize(
    "name", ["ACTIONS_ID_TOKEN_REQUEST_TOKEN", "ACTIONS_ID_TOKEN_REQUEST_URL", "SIGSTORE_ID_TOKEN"]
)
@pytest.mark.parametrize(
    "where",
    [
        "metrics:\n  prom: {{type: prometheus, url: 'http://127.0.0.1:9', headers: {{X-A: {name}}}}}\n",
        "metrics:\n  prom: {{type: prometheus, url: 'http://127.0.0.1:9', token-variable: {name}}}\n",
        "ledger: {{backend: git, token-variable: {name}}}\n",
        "forge: {{token-variable: {name}}}\n",
    ],
)
def test_no_config_sends_a_signing_credential_anywhere(tmp_path: Path, name: str, where: str) -> None:
    # Attack (found in review): a config naming the job's OIDC request pair as a metrics header
    # ships it to the metrics server, where anyone can mint the signing workflow's identity.
    path = tmp_path / "pipeline-kit.yml"
    path.write_text("version: 1\nartifact: {name: a, build: 'true', outputs: [x]}\n" + where.format(name=name))
    with pytest.raises(ConfigError, match="carries signing power"):
        load_config(path)


def test_secrets_go_in_the_clear_only_to_this_machine() -> None:
    """Plain http is taken where nothing secret is sent, or to this machine (the tests' servers)."""
    for section in (
        "flags: {type: unleash, url: 'http://127.0.0.1:4242'}\n",
        "flags: {type: unleash, url: 'https://flags.example.com'}\n",
        "metrics:\n  prom: {type: prometheus, url: 'http://prom.example.com'}\n",
        "metrics:\n  prom: {type: prometheus, url: 'http://localhost:9090', token-variable: T}\n",
        "annotations: {url: 'http://push.example.com:9091'}\n",
        "annotations: {url: 'http://[::1]:9091', token-variable: T}\n",
    ):
        parse_config(VALID + section, Path("p.yml"))
