"""Hostile input, secrets and scale: each case an adversarial run found, shown fixed."""

from __future__ import annotations

import hashlib
import itertools
import os
import re
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, Cli
from tests.sigstore_instance import LocalSigstore


def documented_secrets() -> dict[str, str]:
    """Every variable the docs name as holding a token, a password or a secret, each with a canary
    value of its own: the oracle is what users are told, not the kit's own list."""
    texts = [
        ROOT / "README.md",
        *ROOT.glob("docs/*.md"),
        *ROOT.glob("actions/*/*.md"),
        *ROOT.glob("actions/*/action.yml"),
    ]
    texts += [*ROOT.glob("gitlab-templates/*")]
    found: set[str] = set()
    for path in texts:
        text = path.read_text()
        found |= set(re.findall(r"\b[A-Z][A-Z0-9_]*(?:TOKEN|PASSWORD|SECRET|JWT)[A-Z0-9_]*\b", text))
        found |= set(re.findall(r"token-variable: *([A-Z_][A-Z0-9_]*)", text))
    found |= {"ACTIONS_ID_TOKEN_REQUEST_URL", "CI_REPOSITORY_URL"}  # the docs name them as a pair / as secret-bearing
    return {name: f"canary-{n:03d}-{name.lower()}" for n, name in enumerate(sorted(found))}


# Secrets the test config names (token-variable, a header's value) under prefixes a child may
# otherwise see, with names that do not say they are secrets.
CONFIGURED = {
    "CI_PROM_READER": "canary-prom-reader",
    "GITHUB_ORG_HEADER": "canary-org-header",
    "RUNNER_FORGE_PAT": "canary-forge-pat",
}


def dump(name: str) -> str:
    return f"env > {name}.env"


def seen(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def test_children_get_a_scrubbed_environment(
    cli: Cli, signed: Path, policy: list[str], token: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The attack: a build script, a command gate, a deploy script or a traffic command reads (or
    # mints, with the ACTIONS_ID_TOKEN_REQUEST_* pair) the signing identity and the tokens.
    secrets = {**documented_secrets(), **CONFIGURED}
    assert {"GITHUB_TOKEN", "PIPELINE_KIT_LEDGER_TOKEN", "SIGSTORE_ID_TOKEN", "UNLEASH_ADMIN_TOKEN"} <= set(secrets)
    for name, value in secrets.items():
        if name != "SIGSTORE_IDENTITY_TOKEN":  # the token fixture set the real one
            monkeypatch.setenv(name, value)
    monkeypatch.setenv("MY_BUILD_TOKEN", "npm-registry")  # named by pass-env: the build may see it
    config_path = signed / "pipeline-kit.yml"
    config = yaml.safe_load(config_path.read_text())
    config["artifact"]["build"] = f"{dump('build')} && python build.py"
    config["artifact"]["pass-env"] = ["MY_BUILD_TOKEN"]
    config["metrics"] = {
        "prom": {
            "type": "prometheus",
            "url": "http://127.0.0.1:9",
            "token-variable": "CI_PROM_READER",
            "headers": {"X-Scope-OrgID": "GITHUB_ORG_HEADER"},
        }
    }
    config["forge"] = {"type": "none", "token-variable": "RUNNER_FORGE_PAT"}
    config["environments"]["dev"] = {
        "gates": [{"command": {"run": dump("gate")}}],
        "deploy": dump("deploy"),
        "strategy": {"canary": {"steps": [{"weight": 100}]}},
        "traffic": {
            "type": "command",
            "command": dump("traffic"),
            "slots": {"blue": "127.0.0.1:8001", "green": "127.0.0.1:8002"},
        },
    }
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    (signed / "src" / "hello_service" / "scrubbed.py").write_text("X = 1\n")  # a new release: the signed one stays
    assert cli(["build"], cwd=signed).code == 0
    for step in ("sbom", "provenance"):
        assert cli([step], cwd=signed).code == 0
    assert cli(["sign", *policy[:2]], cwd=signed).code == 0  # policy[:2]: --trust-config FILE
    result = cli(["promote", "--to", "dev", *policy], cwd=signed)
    assert result.code == 0, result.out + result.err
    values = [value for name, value in secrets.items() if name != "SIGSTORE_IDENTITY_TOKEN"]
    values.append(os.environ["SIGSTORE_IDENTITY_TOKEN"])
    for step in ("build", "gate", "deploy", "traffic"):
        text = (signed / f"{step}.env").read_text()
        env = seen(signed / f"{step}.env")
        assert "PATH" in env and "HOME" in env, step
        assert not [name for name in secrets if name in env], step
        assert not [value for value in values if value in text], step
        assert ("MY_BUILD_TOKEN" in env) == (step == "build"), step  # opt-in, per command
    assert seen(signed / "deploy.env")["PIPELINE_KIT_ENVIRONMENT"] == "dev"
    assert not [value for value in values if value in result.out + result.err]


@pytest.mark.parametrize("name", ["PROM_TOKEN", "SIGSTORE_IDENTITY_TOKEN", "ACTIONS_ID_TOKEN_REQUEST_TOKEN"])
def test_pass_env_may_not_name_a_secret_the_kit_uses(cli: Cli, hello: Path, name: str) -> None:
    config_path = hello / "pipeline-kit.yml"
    config = yaml.safe_load(config_path.read_text())
    config["metrics"] = {"prom": {"type": "prometheus", "url": "http://127.0.0.1:9", "token-variable": "PROM_TOKEN"}}
    config["environments"]["dev"]["pass-env"] = [name]
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    result = cli(["plan", "--to", "dev", "--offline"], cwd=hello)
    assert result.code == 2 and f"environments.dev.pass-env names {name}, a secret the kit uses" in result.err


def test_a_release_json_that_is_no_file_is_one_line(hello: Path) -> None:
    # a FIFO hung every command that reads the release; /dev/zero filled memory
    from tests.conftest import run_kit

    evidence = hello / ".pipeline-kit"
    evidence.mkdir()
    os.mkfifo(evidence / "release.json")
    result = run_kit(["show"], hello)
    assert result.returncode == 1 and "release.json: not a regular file" in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) <= 2 and "Traceback" not in result.stderr


@pytest.mark.parametrize("include", ["/proc/self/environ", "../../../../../../../proc/self/environ", "escape"])
def test_a_requirements_include_may_not_leave_the_project(
    cli: Cli, hello: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, include: str
) -> None:
    # The attack: `-r /proc/self/environ` quoted the whole environment, token included, in the
    # "not a valid requirement" error.
    monkeypatch.setenv("SIGSTORE_IDENTITY_TOKEN", "eyJ-secret-token")
    if include == "escape":  # a link inside the project to a file outside it
        (tmp_path / "outside.txt").write_text("flask==3.0.0\n")
        (hello / "base.txt").symlink_to(tmp_path / "outside.txt")
        include = "base.txt"
    (hello / "requirements.txt").write_text(f"-r {include}\n")
    assert cli(["build"], cwd=hello).code == 0
    result = cli(["sbom", "--source", "requirements.txt"], cwd=hello)
    assert result.code == 2, result.err
    assert "requirements.txt: line 1: include" in result.err and "leaves the project" in result.err
    assert "eyJ-secret-token" not in result.out + result.err


def test_a_found_dependency_record_may_not_lead_out_of_the_project(
    cli: Cli, hello: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The attack: requirements.txt, found automatically, is a link to /proc/self/environ; the
    # error quoted the start of the environment (`not a valid requirement: 'CANARY_TOKEN=...`),
    # and under GitHub Actions as an annotation. The child's view of /proc/self/environ is the
    # kit's own environment at start, so the canary is set for a new process.
    from tests.conftest import run_kit

    config = yaml.safe_load((hello / "pipeline-kit.yml").read_text())
    config.pop("sbom", None)  # every record found automatically
    (hello / "pipeline-kit.yml").write_text(yaml.safe_dump(config))
    (hello / "requirements.txt").symlink_to("/proc/self/environ")
    assert cli(["build"], cwd=hello).code == 0
    result = run_kit(["sbom"], hello, {**os.environ, "CANARY_TOKEN": "canary-environ", "GITHUB_ACTIONS": "true"})
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert "requirements.txt" in line and "a link leading out of the project" in line
    assert "canary-environ" not in result.stdout + result.stderr and "PATH=" not in result.stderr


def test_a_dependency_record_that_is_not_a_regular_file_is_refused(cli: Cli, hello: Path) -> None:
    # /dev/zero or a FIFO reports no size: reading it whole never ends (the process was OOM-killed).
    os.mkfifo(hello / "requirements.txt")
    assert cli(["build"], cwd=hello).code == 0
    result = cli(["sbom", "--source", "requirements.txt"], cwd=hello)
    assert result.code == 2 and "requirements.txt: not a regular file" in result.err


BOMB = """\
version: 1
a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
artifact: {name: *h, outputs: ["dist/*"]}
"""


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (BOMB, "the file expands its YAML aliases to more than 100,000 values: refused"),
        # a large file is not an alias bomb: it says so
        ("version: 1\n" + "".join(f"k{n}: 1\n" for n in range(300_000)), "the file has more than 100,000 values"),
        ("version: 1\nenvironments: {? [a, b] : {}}\n", "a key must be a plain value"),
        # true and 1.0 equal 1 in Python, and loaded as version 1
        ("version: true\nartifact: {name: a, outputs: [x]}\n", "version: expected the integer 1, got bool"),
        ("version: 1.0\nartifact: {name: a, outputs: [x]}\n", "version: expected the integer 1, got float"),
    ],
)
def test_hostile_yaml_is_one_line_and_exit_2(tmp_path: Path, text: str, message: str) -> None:
    # The attack: a 1.3 KB alias bomb took 38 s and 4.3 GB before exit 2; an unhashable key crashed.
    import subprocess
    import sys

    (tmp_path / "pipeline-kit.yml").write_text(text)
    result = subprocess.run(
        [sys.executable, "-m", "pipeline_kit", "build"], cwd=tmp_path, capture_output=True, text=True, timeout=20
    )
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.splitlines()) <= 2


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("{command: {run: 'true', timeout: -1}}", "timeout: Input should be greater than 0"),
        ("{command: {run: 'true', timeout: true}}", "timeout: Input should be a valid number"),
        ("{command: {run: 'true', timeout: .inf}}", "timeout: Input should be a finite number"),
        ("{command: {run: 'true', timeout: .nan}}", "timeout: Input should be a finite number"),
        ("{command: {run: []}}", "run"),
        ("{checks: {junit: x, min: -1}}", "min: Input should be greater than or equal to 1"),
        ("{sbom: {max-findings: -1}}", "max-findings: Input should be greater than or equal to 0"),
        (
            "{freeze: {windows: [{start: 2026-12-24T00:00:00, end: 2026-12-20T00:00:00}]}}",
            "the window ends before it starts",
        ),
    ],
)
def test_meaningless_gate_options_are_refused_at_load_by_every_command(
    cli: Cli, hello: Path, change: str, message: str
) -> None:
    config = hello / "pipeline-kit.yml"
    config.write_text(config.read_text().replace("gates: [signature, provenance, sbom]", f"gates: [{change}]"))
    result = cli(["build"], cwd=hello)  # build reads the config too: it must not accept it
    assert result.code == 2 and message in result.err, result.err
    assert len(result.err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("    soak: 30m\n", "    soak: 99999999999999999999d\n", "is too long"),
        ("  staging:\n    after: dev\n", "  staging:\n", "soak: needs after:"),
    ],
)
def test_meaningless_environments_are_refused(cli: Cli, hello: Path, old: str, new: str, message: str) -> None:
    config = hello / "pipeline-kit.yml"
    config.write_text(config.read_text().replace(old, new))
    result = cli(["build"], cwd=hello)
    assert result.code == 2 and message in result.err, result.err


def test_verbose_is_the_kits_flag_not_any_v_in_argv(hello: Path) -> None:
    # `-v` after `--` belongs to the build command: the exit code stays 3, no traceback.
    from tests.conftest import run_kit

    result = run_kit(["build", "-o", "x", "--", "sh", "-c", "exit 5", "-v"], hello)
    assert result.returncode == 3 and "Traceback" not in result.stderr, result.stderr
    verbose = run_kit(["-v", "build", "-o", "x", "--", "sh", "-c", "exit 5"], hello)
    assert verbose.returncode == 3 and "Traceback" in verbose.stderr  # the cause, and the same code


def test_recorded_strings_are_printed_escaped(cli: Cli, signed: Path, policy: list[str], token: None) -> None:
    # The attack: a reason with a newline starts a workflow command (`::error::`) in a GitHub log;
    # an OSC escape retitles the terminal.
    reason = "ok\n::error::pwned \x1b]0;owned\x07"
    assert cli(["promote", "--to", "dev", "--reason", reason, *policy], cwd=signed).code == 0
    shown = cli(["ledger", "show"], cwd=signed)
    assert shown.code == 0
    assert not any(line.startswith("::") for line in shown.out.splitlines())
    assert "\x1b" not in shown.out and "\\n::error::pwned \\x1b]0;owned\\x07" in shown.out


def test_a_release_name_is_one_short_printable_line(cli: Cli, hello: Path) -> None:
    result = cli(["build", "--name", "x\n::error::y"], cwd=hello)
    assert result.code == 2 and "name" in result.err, result.err
    result = cli(["build", "--name", "n" * 100_000], cwd=hello)
    assert result.code == 2 and len(result.err) < 1000


def test_a_hand_edited_checksum_file_fails_verification(cli: Cli, signed: Path, policy: list[str]) -> None:
    # The attack: SHA256SUMS is what `sha256sum -c` users trust; an edited one passed verify.
    sums = signed / ".pipeline-kit" / "SHA256SUMS"
    sums.write_text(sums.read_text().replace(sums.read_text()[:8], "00000000", 1))
    result = cli(["verify", *policy], cwd=signed)
    assert (
        result.code == 1
        and "SHA256SUMS: matches provenance failed: differs from the file the provenance signed" in result.err
    )


def test_concurrent_promotions_keep_every_evidence_digest(signed: Path, policy: list[str], token: None) -> None:
    # The defect: two promotions at once each rewrote release.json from their own copy; the last
    # writer dropped the other's decision from the evidence map (3 of 3 trials).
    import json
    import subprocess
    import sys

    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "pipeline_kit", "promote", "--to", env, *policy],
            cwd=signed,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for env in ("dev", "staging", "prod") * 2
    ]
    for run in runs:
        run.communicate(timeout=120)
    evidence = json.loads((signed / ".pipeline-kit" / "release.json").read_text())["evidence"]
    for env in ("dev", "staging", "prod"):
        name = f"promotions/{env}.decision.json"
        data = (signed / ".pipeline-kit" / name).read_bytes()
        assert evidence[name]["sha256"] == hashlib.sha256(data).hexdigest(), name


def deep_lock(path: Path) -> None:
    nested = '{"x":' * 5000 + "1" + "}" * 5000
    path.write_text('{"lockfileVersion": 3, "packages": {"": {"dependencies": ' + nested + "}}}")


@pytest.mark.parametrize(
    ("setup", "args", "message"),
    [
        (None, ["build", "-o", "/etc/passwd", "--", "true"], "output glob '/etc/passwd' must be relative"),
        ("a b ", ["build", "-o", "a b ", "--", "true"], "has leading/trailing whitespace"),
        ("we\\ird", ["build", "-o", "we\\ird", "--", "true"], "contains a control character or a backslash"),
        # ESC and BEL were written raw into SHA256SUMS
        ("red\x1b[31m\x07", ["build", "-o", "red*", "--", "true"], "contains a control character or a backslash"),
        ("ledger-dir", ["ledger", "show"], "the ledger path is a directory"),
        ("deep-lock", ["sbom", "-s", "package-lock.json"], "package-lock.json: nested too deeply"),
        ("huge-number", ["sbom", "-s", "package-lock.json"], "package-lock.json: nested too deeply or too large"),
    ],
)
def test_hostile_inputs_are_one_line_and_exit_2(
    tmp_path: Path, setup: str | None, args: list[str], message: str
) -> None:
    from tests.conftest import run_kit

    (tmp_path / "out.bin").write_bytes(b"x")
    if setup == "ledger-dir":
        (tmp_path / ".pipeline-kit-ledger" / "ledger.jsonl").mkdir(parents=True)
    elif setup in ("deep-lock", "huge-number"):
        assert run_kit(["build", "-o", "out.bin", "--", "true"], tmp_path).returncode == 0
        lock = tmp_path / "package-lock.json"
        deep_lock(lock) if setup == "deep-lock" else lock.write_text('{"lockfileVersion": ' + "9" * 5000 + "}")
    elif setup:
        (tmp_path / setup).write_bytes(b"x")
    result = run_kit(args, tmp_path)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and "\x1b" not in result.stderr


@pytest.mark.parametrize(
    ("token", "message"),
    [("garbage", "not a JWT (expected three dot-separated parts)"), ("expired", "expired ")],
)
def test_a_bad_token_says_whether_it_is_garbage_or_expired(
    cli: Cli, described: Path, sigstore: LocalSigstore, monkeypatch: pytest.MonkeyPatch, token: str, message: str
) -> None:
    value = "garbage" if token == "garbage" else sigstore.mint_token("dev@example.com", lifetime=-60)
    monkeypatch.setenv("SIGSTORE_IDENTITY_TOKEN", value)
    result = cli(["sign", "--trust-config", str(sigstore.trust_config_path)], cwd=described)
    assert result.code == 3 and message in result.err, result.err


def test_a_long_chain_of_environments_loads_in_bounded_time(tmp_path: Path) -> None:
    # 3,000 environments took 27 s to load (a quadratic cycle check), and ordering them recursed.
    import subprocess
    import sys

    from pipeline_kit.config import parse_config

    names = [f"e{i}" for i in range(3000)]
    lines = ["version: 1", 'artifact: {name: x, outputs: ["out.bin"]}', "environments:", "  e0: {}"]
    lines += [f"  {name}: {{after: {before}}}" for before, name in itertools.pairwise(names)]
    text = "\n".join(lines) + "\n"
    (tmp_path / "pipeline-kit.yml").write_text(text)
    (tmp_path / "out.bin").write_bytes(b"x")
    config = parse_config(text, tmp_path / "pipeline-kit.yml")
    assert config.environment_order() == names and config.upstream("e2999")[-1] == "e0"
    result = subprocess.run(
        [sys.executable, "-m", "pipeline_kit", "build"], cwd=tmp_path, capture_output=True, text=True, timeout=20
    )
    assert result.returncode == 0, result.stderr
    cyclic = text.replace("  e0: {}", "  e0: {after: e2999}")
    with pytest.raises(Exception, match=r"environments form a cycle: e0 -> e2999 -> e2998 -> \.\.\. -> e2 -> e1 -> e0"):
        parse_config(cyclic, tmp_path / "pipeline-kit.yml")


def test_calls_that_never_answer_end_at_the_deadline() -> None:
    # A forge answering each read within its timeout, forever: the promotion's records had no
    # deadline in all. The calls that hang are still waiting when the verdict comes.
    import threading

    from pipeline_kit._internal.http import HttpProblem, all_within

    release = threading.Event()
    done: list[int] = []

    def hang() -> None:
        release.wait(30)

    def fail() -> None:
        raise ValueError("HTTP 502")

    try:
        with pytest.raises(HttpProblem, match=r"^forge records: no answer within 0.2s$"):
            all_within([lambda: done.append(1), hang], 0.2, "forge records")
        assert done == [1] and not release.is_set()
        with pytest.raises(ValueError, match="HTTP 502"):
            all_within([lambda: None, fail, fail], 5, "forge records")
        all_within([lambda: done.append(2)], 5, "forge records")
        assert done == [1, 2]
    finally:
        release.set()
