"""Signing and verification against the local Sigstore instance, and the tamper matrix."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pipeline_kit.models import Subject, release_id
from tests.conftest import (
    REPOSITORY,
    SIGNER,
    WHEEL,
    Cli,
    describe,
    init_repo,
    job_env,
    policy_flags,
    run_kit,
    sign,
    stock_verify,
)
from tests.sigstore_instance import LocalSigstore

SUBJECT_BUNDLE = f".pipeline-kit/bundles/{WHEEL}.sigstore.json"


def verify(
    cli: Cli,
    project: Path,
    sigstore: LocalSigstore,
    *extra: str,
    identity: str = SIGNER,
    issuer: str | None = None,
    trust: Path | None = None,
) -> tuple[int, str, str]:
    result = cli(
        [
            "verify",
            "--trust-config",
            str(trust or sigstore.trust_config_path),
            "--cert-identity",
            identity,
            "--cert-oidc-issuer",
            issuer or sigstore.issuer,
            *extra,
        ],
        cwd=project,
    )
    return result.code, result.out, result.err


@pytest.mark.parametrize("rekor", ["1", "2"])
def test_sign_then_verify(
    cli: Cli, described: Path, sigstore: LocalSigstore, monkeypatch: pytest.MonkeyPatch, rekor: str
) -> None:
    code, err = sign(cli, described, sigstore, monkeypatch, "--rekor-version", rekor)
    assert code == 0, err
    evidence = described / ".pipeline-kit"
    release = json.loads((evidence / "release.json").read_text())
    for name in (
        f"bundles/{WHEEL}.sigstore.json",
        "bundles/provenance.sigstore.json",
        "bundles/sbom.sigstore.json",
    ):
        assert (evidence / name).is_file()
        assert name in release["evidence"]
        bundle = json.loads((evidence / name).read_text())
        assert bundle["mediaType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
        kind = bundle["verificationMaterial"]["tlogEntries"][0]["kindVersion"]
        # statements go to the log asked for; a subject's digest always to Rekor v1 (signing.py:
        # on v2 a signature over a chosen digest could be passed off as a signed statement)
        statement = "dsseEnvelope" in bundle
        assert kind["version"] == ("0.0.2" if rekor == "2" and statement else "0.0.1")
    sbom_statement = json.loads(
        __import__("base64").b64decode(
            json.loads((evidence / "bundles/sbom.sigstore.json").read_text())["dsseEnvelope"]["payload"]
        )
    )
    assert sbom_statement["predicateType"] == "https://cyclonedx.org/bom"
    code, out, err = verify(cli, described, sigstore, "--json", "--repository", REPOSITORY)
    assert code == 0, err + out
    report = json.loads(out)
    assert report["ok"] and all(c["ok"] for c in report["checks"])
    assert {c["check"] for c in report["checks"]} == {
        "digest",
        "signature",
        "subjects",
        "matches attestation",
        "matches provenance",
        "source",
    }


def test_one_certificate_for_all_subjects(
    cli: Cli, hello: Path, sigstore: LocalSigstore, monkeypatch: pytest.MonkeyPatch
) -> None:
    (hello / "pipeline-kit.yml").write_text(
        (hello / "pipeline-kit.yml").read_text().replace('"dist/*.whl"', '"dist/*"')
    )
    init_repo(hello, remote=REPOSITORY)
    result = cli(
        [
            "build",
            "--",
            "sh",
            "-c",
            "python build.py && for i in 1 2 3; do echo $i > dist/extra-$i.txt; done",
        ],
        cwd=hello,
    )
    assert result.code == 0, result.err
    for command in (["sbom"], ["provenance"]):
        assert cli(command, cwd=hello).code == 0
    code, err = sign(cli, hello, sigstore, monkeypatch)
    assert code == 0, err
    bundles = [json.loads(path.read_text()) for path in (hello / ".pipeline-kit" / "bundles").rglob("*.sigstore.json")]
    assert len(bundles) == 6
    # one certificate for the subjects (Rekor v1) and one for the statements (the instance's newest log)
    for statements in (False, True):
        certificates = {certificate_of(b) for b in bundles if ("dsseEnvelope" in b) == statements}
        assert len(certificates) == 1


def certificate_of(bundle: dict[str, Any]) -> str:
    """A bundle's signing certificate (base64 DER), as a v0.3 bundle holds it."""
    return str(bundle["verificationMaterial"]["certificate"]["rawBytes"])


def other_release(
    cli: Cli, tmp_path: Path, sigstore: LocalSigstore, monkeypatch: pytest.MonkeyPatch, source: Path
) -> Path:
    """A second, different release of the same project, signed by the same identity."""
    other = tmp_path / "other"
    shutil.copytree(source, other, ignore=shutil.ignore_patterns(".pipeline-kit", "dist"))
    (other / "src" / "hello_service" / "extra.py").write_text("X = 2\n")
    describe(cli, other)
    code, err = sign(cli, other, sigstore, monkeypatch)
    assert code == 0, err
    return other / ".pipeline-kit"


def flip_byte(project: Path) -> None:
    path = project / WHEEL
    data = bytearray(path.read_bytes())
    data[100] ^= 1
    path.write_bytes(bytes(data))


def edit_release(project: Path, change: Callable[[dict], None]) -> None:  # type: ignore[type-arg]
    path = project / ".pipeline-kit" / "release.json"
    release = json.loads(path.read_text())
    change(release)
    # as an attacker would: the id recomputed for the new subjects, so only the signatures tell
    release["id"] = release_id(tuple(Subject.model_validate(s) for s in release["subjects"]))
    path.write_text(json.dumps(release))


def add_subject(release: dict) -> None:  # type: ignore[type-arg]
    release["subjects"].append({"name": "dist/extra.bin", "digest": {"sha256": "ab" * 32}, "size": 1})


def remove_subject(release: dict) -> None:  # type: ignore[type-arg]
    release["subjects"].append({"name": "dist/extra.bin", "digest": {"sha256": "ab" * 32}, "size": 1})
    release["subjects"] = release["subjects"][1:]


def truncate_bundle(project: Path) -> None:
    path = project / SUBJECT_BUNDLE
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])


def test_verify_happy_path_exits_zero(cli: Cli, signed: Path, sigstore: LocalSigstore) -> None:
    code, out, err = verify(cli, signed, sigstore)
    assert code == 0, err
    assert "FAILED" not in out


def test_a_release_built_outside_a_checkout_verifies_and_cannot_claim_a_source(
    cli: Cli, hello: Path, sigstore: LocalSigstore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No git here: the signed provenance resolves no source, and release.json has none either
    (the policy asks for no source repository)."""
    config = hello / "pipeline-kit.yml"
    config.write_text(config.read_text().replace("    repository: https://github.com/pipeline-kit/hello-service\n", ""))
    describe(cli, hello)
    code, err = sign(cli, hello, sigstore, monkeypatch)
    assert code == 0, err
    code, out, err = verify(cli, hello, sigstore)
    assert code == 0, out + err
    # attack: release.json claims a reviewed commit the unsigned build never had
    release_path = hello / ".pipeline-kit" / "release.json"
    release = json.loads(release_path.read_text())
    release["source"] = {"repository": "https://github.com/pipeline-kit/hello-service", "commit": "a" * 40}
    release_path.write_text(json.dumps(release))
    code, out, err = verify(cli, hello, sigstore)
    assert code == 1 and "release.json: source failed: source repository" in err


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("flipped byte", f"{WHEEL}: digest failed: sha256 is"),
        ("bundle of another subject", f"bundles/{WHEEL}.sigstore.json: signature failed: does not verify"),
        (
            "wrong identity",
            "signer not accepted: identity dev@example.com is not the expected evil@example.com",
        ),
        ("wrong issuer", "signer not accepted: issuer http://127.0.0.1"),
        (
            "provenance of another release",
            "bundles/provenance.sigstore.json: subjects failed: the attested subjects are not release.json's",
        ),
        (
            "sbom of another release",
            "bundles/sbom.sigstore.json: subjects failed: the attested subjects are not release.json's",
        ),
        ("subject added", "bundles/dist/extra.bin.sigstore.json: signature failed: bundle missing"),
        ("subject removed", "bundles/dist/extra.bin.sigstore.json: signature failed: bundle missing"),
        ("foreign trust root", "signature failed: does not verify"),
        ("truncated bundle", f"bundles/{WHEEL}.sigstore.json: signature failed: not a valid Sigstore bundle"),
        (
            "wrong repository",
            "provenance.intoto.json: source failed: built from https://github.com/pipeline-kit/hello-service, not https://github.com/evil/fork",
        ),
    ],
)
def test_tamper_matrix(
    cli: Cli,
    signed: Path,
    sigstore: LocalSigstore,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    case: str,
    expected: str,
) -> None:
    kwargs: dict[str, object] = {}
    extra: list[str] = []
    if case == "flipped byte":
        flip_byte(signed)
    elif case == "bundle of another subject":
        other = other_release(cli, tmp_path, sigstore, monkeypatch, signed)
        shutil.copy(other / "bundles" / f"{WHEEL}.sigstore.json", signed / SUBJECT_BUNDLE)
    elif case == "wrong identity":
        kwargs["identity"] = "evil@example.com"
    elif case == "wrong issuer":
        kwargs["issuer"] = "http://127.0.0.1:1/oidc"
    elif case in ("provenance of another release", "sbom of another release"):
        other = other_release(cli, tmp_path, sigstore, monkeypatch, signed)
        kind = "provenance" if case.startswith("provenance") else "sbom"
        shutil.copy(
            other / "bundles" / f"{kind}.sigstore.json",
            signed / ".pipeline-kit" / "bundles" / f"{kind}.sigstore.json",
        )
        name = "provenance.intoto.json" if kind == "provenance" else "sbom.cdx.json"
        shutil.copy(other / name, signed / ".pipeline-kit" / name)
    elif case == "subject added":
        edit_release(signed, add_subject)
    elif case == "subject removed":
        edit_release(signed, remove_subject)
    elif case == "foreign trust root":
        foreign = LocalSigstore(tmp_path / "foreign").start()
        foreign.stop()
        kwargs["trust"] = foreign.trust_config_path
    elif case == "truncated bundle":
        truncate_bundle(signed)
    elif case == "wrong repository":
        extra = ["--repository", "https://github.com/evil/fork"]
    code, out, err = verify(cli, signed, sigstore, *extra, **kwargs)  # type: ignore[arg-type]
    assert code == 1, out
    assert expected in err, err
    if "bundle missing" in expected:  # one line, and what to do: sign, or bring CI's evidence
        assert err.count("\n") == 2 and "\nhint: sign first with `pipeline-kit sign`" in err, err
    else:
        assert err.count("\n") == 1  # one line
    assert "FAILED" in out


def test_expired_token_is_refused_before_signing(
    cli: Cli, described: Path, sigstore: LocalSigstore, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, err = sign(cli, described, sigstore, monkeypatch, token=sigstore.mint_token(SIGNER, lifetime=-60))
    assert code == 3
    assert "identity token ($SIGSTORE_IDENTITY_TOKEN) rejected" in err
    assert not (described / ".pipeline-kit" / "bundles").exists()


def test_token_from_another_issuer_is_refused_by_fulcio(
    cli: Cli, described: Path, sigstore: LocalSigstore, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    stranger = LocalSigstore(tmp_path / "stranger")
    code, err = sign(cli, described, sigstore, monkeypatch, token=stranger.mint_token(SIGNER))
    assert code == 3
    assert "signing failed" in err
    assert not (described / ".pipeline-kit" / "bundles").exists()


def test_sign_refuses_modified_evidence(
    cli: Cli, described: Path, sigstore: LocalSigstore, monkeypatch: pytest.MonkeyPatch
) -> None:
    sbom = described / ".pipeline-kit" / "sbom.cdx.json"
    sbom.write_text(sbom.read_text().replace('"name": "flask"', '"name": "f1ask"'))
    code, err = sign(cli, described, sigstore, monkeypatch)
    assert code == 1
    assert "sbom.cdx.json: changed since release.json recorded its digest" in err
    assert not (described / ".pipeline-kit" / "bundles").exists()


def test_sign_refuses_a_changed_subject(
    cli: Cli, described: Path, sigstore: LocalSigstore, monkeypatch: pytest.MonkeyPatch
) -> None:
    flip_byte(described)
    code, err = sign(cli, described, sigstore, monkeypatch)
    assert code == 1
    assert f"{WHEEL}: sha256" in err


def test_sign_without_any_token(cli: Cli, described: Path, sigstore: LocalSigstore) -> None:
    result = cli(["sign", "--trust-config", str(sigstore.trust_config_path)], cwd=described)
    assert result.code == 3
    assert "no identity token" in result.err
    assert "hint: locally, pass --interactive to sign in with a browser" in result.err  # `sign` has it


def test_interactive_sign_in(
    cli: Cli, described: Path, sigstore: LocalSigstore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The browser flow, with curl as the browser: the local issuer approves at once."""
    monkeypatch.setenv("BROWSER", "curl -sfL -o /dev/null %s")
    result = cli(["sign", "--interactive", "--trust-config", str(sigstore.trust_config_path)], cwd=described)
    assert result.code == 0, result.err
    assert "as interactive@example.com" in result.out


def test_verify_uses_the_config_policy(cli: Cli, signed: Path, sigstore: LocalSigstore) -> None:
    config = signed / "pipeline-kit.yml"
    text = config.read_text()
    start = text.index("  identity:")
    config.write_text(
        text[:start] + f"  identity:\n    issuer: {sigstore.issuer}\n    san-regex: ^dev@example\\.com$\n"
        f"    repository: {REPOSITORY}\n"
    )
    result = cli(["verify", "--trust-config", str(sigstore.trust_config_path)], cwd=signed)
    assert result.code == 0, result.err
    config.write_text(
        text[:start] + f"  identity:\n    issuer: {sigstore.issuer}\n    san-regex: ^ops@example\\.com$\n"
    )
    result = cli(["verify", "--trust-config", str(sigstore.trust_config_path)], cwd=signed)
    assert result.code == 1
    assert "does not match ^ops@example\\.com$" in result.err


def test_verify_needs_a_policy(cli: Cli, signed: Path, sigstore: LocalSigstore) -> None:
    config = signed / "pipeline-kit.yml"
    text = config.read_text()
    config.write_text(text[: text.index("signing:")])
    result = cli(["verify", "--trust-config", str(sigstore.trust_config_path)], cwd=signed)
    assert result.code == 2
    assert "no identity policy" in result.err


def test_stock_sigstore_cli_verifies_our_bundles(signed: Path, sigstore: LocalSigstore) -> None:
    for bundle in (
        SUBJECT_BUNDLE,
        ".pipeline-kit/bundles/provenance.sigstore.json",
        ".pipeline-kit/bundles/sbom.sigstore.json",
    ):
        result = stock_verify(sigstore, bundle, signed)
        assert result.returncode == 0, result.stderr
        assert f"OK: {WHEEL}" in result.stderr + result.stdout


def test_identity_command(cli: Cli, hello: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.test_provenance import GITHUB_ENV

    local = cli(["identity"], cwd=hello)
    assert local.code == 0 and "the account you sign in with" in local.out
    # locally: the command that accepts what you sign, and the config's policy for what CI signs
    info = json.loads(cli(["identity", "--json"], cwd=hello).out)
    assert info["verify"].endswith("--cert-oidc-issuer https://oauth2.sigstore.dev/auth")
    assert "sign-release|arrive|rollback" in info["policy"] and info["verify_ci"] == "pipeline-kit verify"
    for key, value in GITHUB_ENV.items():
        monkeypatch.setenv(key, value)
    result = cli(["identity", "--json"], cwd=hello)
    info = json.loads(result.out)
    assert info["identity"] == "https://github.com/acme/hello/.github/workflows/release.yml@refs/tags/v1.0.0"
    assert info["issuer"] == "https://token.actions.githubusercontent.com"
    assert "reusable workflow" in info["note"]
    assert info["verify"].startswith("pipeline-kit verify --cert-identity https://github.com/acme/hello/")


def test_non_signing_commands_never_import_sigstore(cli: Cli, described: Path) -> None:
    from tests.test_cli import imported_modules

    for args in (["--help"], ["build"], ["provenance"], ["show"], ["sbom"]):
        assert "sigstore" not in imported_modules(args, described), args


def test_stock_cli_process_round_trip(described: Path, sigstore: LocalSigstore) -> None:
    """pipeline-kit as a separate process, token only in the environment."""
    env = job_env(sigstore)
    signed = run_kit(["sign", "--trust-config", str(sigstore.trust_config_path)], described, env)
    assert signed.returncode == 0, signed.stderr
    assert env["SIGSTORE_IDENTITY_TOKEN"] not in signed.stdout + signed.stderr
    verified = run_kit(["verify", *policy_flags(sigstore)], described, env)
    assert verified.returncode == 0, verified.stderr


def test_instance_runs_as_a_process(described: Path, tmp_path: Path) -> None:
    """`python -m tests.sigstore_instance serve` for tests that drive other processes."""
    import signal
    import time

    from tests.conftest import ROOT

    state = tmp_path / "state"
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.sigstore_instance", "serve", "--state", str(state)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not (state / "ready").exists():
            assert server.poll() is None, server.stderr.read() if server.stderr else ""
            assert time.monotonic() < deadline, "instance did not become ready"
            time.sleep(0.05)
        token = subprocess.run(
            [
                sys.executable,
                "-m",
                "tests.sigstore_instance",
                "mint-token",
                "--state",
                str(state),
                "--email",
                SIGNER,
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "CI_", "GITLAB_"))}
        env["SIGSTORE_IDENTITY_TOKEN"] = token
        trust = str(state / "trust_config.json")
        assert run_kit(["sign", "--trust-config", trust], described, env).returncode == 0
        issuer = json.loads((state / "trust_config.json").read_text())["signingConfig"]["oidcUrls"][0]["url"]
        verified = run_kit(
            ["verify", "--trust-config", trust, "--cert-identity", SIGNER, "--cert-oidc-issuer", issuer],
            described,
            env,
        )
        assert verified.returncode == 0, verified.stderr
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=10) == 0
    assert not (state / "ready").exists()


def test_malformed_statement_subjects_never_match_and_never_crash() -> None:
    # a signed statement is still attacker-shaped JSON: `subject: null` or a string digest
    from pipeline_kit.signing import statement_subjects

    assert statement_subjects({"subject": None}) == set()
    assert statement_subjects({"subject": "x"}) == set()
    assert statement_subjects({"subject": [{"name": "a", "digest": "ab"}, 3]}) == {("a", "None")}
    assert statement_subjects({"subject": [{"name": "a", "digest": {"sha256": "ab"}}]}) == {("a", "ab")}


def test_signing_waits_on_the_services_for_all_items_at_once(
    cli: Cli, described: Path, sigstore: LocalSigstore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # with every request 50 ms away (a real instance is further), the subject, the provenance and
    # the SBOM are signed concurrently in one signer session: several requests are in flight at
    # once, where one after another there would only ever be one
    sigstore.latency, sigstore.most_in_flight = 0.05, 0
    try:
        code, err = sign(cli, described, sigstore, monkeypatch)
    finally:
        sigstore.latency = 0.0
    assert code == 0, err
    assert sigstore.most_in_flight >= 3
    bundles = sorted(p.name for p in (described / ".pipeline-kit" / "bundles").rglob("*.sigstore.json"))
    assert len(bundles) == 3  # and every bundle was verified and written


@pytest.mark.parametrize("rekor", [1, 2])
def test_one_sign_in_signs_again_with_its_certificate_while_it_has_time_left(
    sigstore: LocalSigstore, monkeypatch: pytest.MonkeyPatch, rekor: int
) -> None:
    # `run` signs the release and then the VSA, a release plan each step's VSA: with one token,
    # one Fulcio certificate (a real instance is a round trip away), but never one about to end.
    import base64
    import time

    from cryptography import x509

    from pipeline_kit import signing
    from pipeline_kit.errors import EnvironmentFailure
    from pipeline_kit.signing import Signable, sign_all
    from pipeline_kit.trust import load_trust_config

    trust = load_trust_config(sigstore.trust_config_path, rekor_version=rekor)
    token = sigstore.mint_token(SIGNER)
    subject = Subject(name="a.bin", digest={"sha256": "ab" * 32})
    statement = signing.statement_json((subject,), "https://example.com/test", {})
    items = [Signable("digest", sha256="ab" * 32), Signable("statement", statement=statement)]
    asked: list[object] = []
    issue = sigstore.signing_cert

    def counted(*args: Any) -> Any:
        asked.append(args)
        return issue(*args)

    monkeypatch.setattr(sigstore, "signing_cert", counted)

    def certificates(signed: signing.SignedBundles) -> list[x509.Certificate]:
        return [
            x509.load_der_x509_certificate(base64.b64decode(certificate_of(json.loads(data))))
            for data in signed.files.values()
        ]

    first = certificates(sign_all(trust, token, "test", items))
    assert len(set(first)) == len(asked) == (2 if rekor == 2 else 1)  # on v2, digests are signed apart (v1)
    again = certificates(sign_all(trust, token, "test", items))
    assert again == first and len(asked) == len(set(first))  # item by item the same: no new one asked for
    other = certificates(sign_all(trust, sigstore.mint_token(SIGNER), "test", items))
    assert not set(other) & set(first)  # another sign-in, other certificates
    # time is counted on the process's own clock from when each was asked for (the wall clock may
    # be off Sigstore's): just before REUSE_MARGIN before the end, kept; from there on, new ones
    lifetime = min(c.not_valid_after_utc - c.not_valid_before_utc for c in first).total_seconds()
    now = time.monotonic()
    monkeypatch.setattr(signing, "monotonic", lambda: now + lifetime - signing.REUSE_MARGIN - 30)
    assert certificates(sign_all(trust, token, "test", [items[1]])) == first[1:]
    monkeypatch.setattr(signing, "monotonic", lambda: now + lifetime - signing.REUSE_MARGIN + 1)
    fresh = certificates(sign_all(trust, token, "test", [items[1]]))
    assert not set(fresh) & set(first)
    # a signer whose signing failed is not taken again: its certificate's lifetime is unknown
    malformed = [Signable("statement", statement=b'{"_type": "not a statement"}')]
    token = sigstore.mint_token(SIGNER)
    with pytest.raises(EnvironmentFailure, match="signing failed"):
        sign_all(trust, token, "test", malformed)
    before = len(asked)
    sign_all(trust, token, "test", [items[1]])
    assert len(asked) == before + 1


def test_a_trust_config_is_loaded_once_a_process_and_again_when_it_changed(
    sigstore: LocalSigstore, tmp_path: Path
) -> None:
    # a release plan resolves each step's trust: one load (a TUF refresh for the public-good
    # root), so each step's VSA is signed with the certificate the first one got
    from pipeline_kit.errors import InputError
    from pipeline_kit.signing import Signable, sign_all, statement_json
    from pipeline_kit.trust import load_trust_config

    path = tmp_path / "trust.json"
    shutil.copy(sigstore.trust_config_path, path)
    one, two = load_trust_config(path, rekor_version=1), load_trust_config(path, rekor_version=1)
    assert one is two and load_trust_config(path, rekor_version=2) is not one
    token = sigstore.mint_token(SIGNER)
    statement = statement_json((Subject(name="a.bin", digest={"sha256": "ab" * 32}),), "https://example.com/t", {})
    signed = [sign_all(c, token, "test", [Signable("s", statement=statement)]).files["s"] for c in (one, two)]
    certificates = [certificate_of(json.loads(s)) for s in signed]
    assert certificates[0] == certificates[1]
    path.write_text(json.dumps(json.loads(path.read_text()), indent=1))  # the same trust, other bytes
    assert load_trust_config(path, rekor_version=1) is not one
    path.write_text("{}")
    with pytest.raises(InputError, match="not a Sigstore client trust config"):
        load_trust_config(path, rekor_version=1)
