"""Consumer-driven contracts without a broker: a real consumer and provider pair (two projects,
a tiny HTTP provider), the consumer's Pact file in its signed evidence, the provider's
verification by the real Pact verifier (`pact verifier`, PyPI pact-python-cli) signed about its
release, and the contracts gate answering can-i-deploy from signed evidence only."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest
import yaml

from tests.conftest import EXAMPLE, REPOSITORY, ROOT, SIGNER, Cli, Result, describe, init_repo, sign
from tests.prometheus_instance import free_port
from tests.sigstore_instance import LocalSigstore

PACT = {
    "consumer": {"name": "web"},
    "provider": {"name": "orders"},
    "interactions": [
        {
            "description": "an order",
            "request": {"method": "GET", "path": "/orders/1"},
            "response": {
                "status": 200,
                "headers": {"Content-Type": "application/json"},
                "body": {"id": 1, "total": 10},
            },
        }
    ],
    "metadata": {"pactSpecification": {"version": "3.0.0"}},
}

# The provider, in its package (a change to it is a new release): the field the consumer reads is `total`.
SERVER_PATH = "src/hello_service/server.py"
SERVER = """import json, sys
from http.server import BaseHTTPRequestHandler, HTTPServer

ORDER = {"id": 1, "total": 10}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        found = self.path == "/orders/1"
        body = json.dumps(ORDER if found else {}).encode()
        self.send_response(200 if found else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""


def service(root: Path, name: str, contracts: dict[str, object]) -> Path:
    project = root / name
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("dist", ".pipeline-kit", "__pycache__"))
    config_path = project / "pipeline-kit.yml"
    config = yaml.safe_load(config_path.read_text())
    config["contracts"] = contracts
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    return project


def release(cli: Cli, project: Path, sigstore: LocalSigstore, monkeypatch: pytest.MonkeyPatch) -> str:
    describe(cli, project)
    code, err = sign(cli, project, sigstore, monkeypatch)
    assert code == 0, err
    monkeypatch.setenv("SIGSTORE_IDENTITY_TOKEN", sigstore.mint_token(SIGNER))
    return str(json.loads((project / ".pipeline-kit" / "release.json").read_text())["id"])


# The consumer's client, in its package: what it reads of an order is what its Pact file promises.
CLIENT_PATH = "src/hello_service/client.py"
CLIENT = """import json, sys, urllib.request


def order_total(base_url):
    with urllib.request.urlopen(base_url + "/orders/1", timeout=5) as response:
        return json.loads(response.read())["total"]


if __name__ == "__main__":
    print(order_total(sys.argv[1]))
"""


def client_reads(project: Path, url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(project / CLIENT_PATH), url], capture_output=True, text=True, timeout=30, check=False
    )


@contextmanager
def serving(project: Path) -> Iterator[str]:
    """The provider's server from its source tree, on a free port."""
    port = free_port()
    process = subprocess.Popen([sys.executable, str(project / SERVER_PATH), str(port)])
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{url}/orders/1", timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        yield url
    finally:
        process.kill()
        process.wait()


def verify_web(cli: Cli, orders: Path, url: str, policy: list[str]) -> Result:
    """orders verifies web's signed contracts against itself running at `url`."""
    return cli(["contracts", "verify", "--consumer", "../web", "--provider-url", url, *policy], cwd=orders)


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path]:
    """web calls orders: web's Pact file says what it expects of GET /orders/1."""
    web = service(tmp_path, "web", {"name": "web", "pacts": ["pacts"], "peers": {"orders": "../orders"}})
    (web / "pacts").mkdir()
    (web / "pacts" / "web-orders.json").write_text(json.dumps(PACT, indent=2))
    (web / CLIENT_PATH).write_text(CLIENT)
    orders = service(tmp_path, "orders", {"name": "orders", "peers": {"web": "../web"}})
    (orders / SERVER_PATH).write_text(SERVER)
    for project in (web, orders):
        init_repo(project, remote=REPOSITORY + ".git")
    return web, orders


def test_can_i_deploy_from_signed_evidence_and_a_breaking_provider_is_denied(
    cli: Cli,
    pair: tuple[Path, Path],
    sigstore: LocalSigstore,
    policy: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    web, orders = pair
    first = release(cli, orders, sigstore, monkeypatch)
    # web's (empty) ledger shows nothing of web in dev: unknown, not "nothing deployed"; the first
    # deploy of the pair is a recorded waiver
    alone = cli(["promote", "--to", "dev", *policy], cwd=orders)
    assert alone.code == 1, alone.out + alone.err
    assert "web: cannot show what it runs in dev: nothing signed shows what dev runs" in alone.out
    waived = ["--break-glass", "--reason", "first deploy of orders: web has never run in dev"]
    assert cli(["promote", "--to", "dev", *waived, *policy], cwd=orders).code == 0

    # the consumer's contract is in its signed evidence; orders in dev never verified it
    consumer = release(cli, web, sigstore, monkeypatch)
    record = json.loads((web / ".pipeline-kit" / "contracts.json").read_text())
    assert [(p["consumer"], p["provider"], p["path"]) for p in record["pacts"]] == [
        ("web", "orders", "pacts/web-orders.json")
    ]
    denied = cli(["promote", "--to", "dev", *policy], cwd=web)
    assert denied.code == 1
    assert f"web -> orders {first} (in dev): pacts/web-orders.json" in denied.out
    assert "is not verified by that release" in denied.out

    # the real Pact verifier checks orders' running code against web's signed contract
    with serving(orders) as url:
        verified = verify_web(cli, orders, url, policy)
        assert client_reads(web, url).stdout.strip() == "10"  # the consumer really works with it
    assert verified.code == 0, verified.out + verified.err
    assert "web -> orders: pacts/web-orders.json: verified, signed" in verified.out
    # the verification travels with orders' ledger: web's promotion finds it without orders' files
    kept = {p.name: p.read_bytes() for p in (orders / ".pipeline-kit" / "contracts").glob("*.sigstore.json")}
    for directory in (
        orders / ".pipeline-kit" / "contracts",
        orders / ".pipeline-kit" / "releases" / first / "contracts",
    ):
        shutil.rmtree(directory)
    assert cli(["promote", "--to", "dev", *policy], cwd=web).code == 0

    # orders renames the field web reads: the verifier fails it, nothing is signed
    (orders / SERVER_PATH).write_text(SERVER.replace('"total": 10', '"amount": 10'))
    second = release(cli, orders, sigstore, monkeypatch)
    assert second != first
    with serving(orders) as url:
        broken = verify_web(cli, orders, url, policy)
        assert "KeyError: 'total'" in client_reads(web, url).stderr  # the breakage the gate keeps out
    assert broken.code == 1 and "pacts/web-orders.json: FAILED" in broken.out
    assert "Verifying a pact between web and orders" in broken.err  # the verifier's own words ...
    assert "tracking" not in broken.err  # ... without its usage-tracking notice
    assert not list((orders / ".pipeline-kit" / "contracts").glob("*.sigstore.json"))
    blocked = cli(["promote", "--to", "dev", *policy], cwd=orders)
    assert blocked.code == 1
    assert f"web {consumer} (in dev) -> orders: its pacts/web-orders.json" in blocked.out
    assert "is not verified by this release" in blocked.out

    # attack: the first release's signed verification copied into the second's evidence
    ((name, data),) = kept.items()
    (orders / ".pipeline-kit" / "contracts").mkdir(exist_ok=True)
    (orders / ".pipeline-kit" / "contracts" / name).write_bytes(data)
    replayed = cli(["promote", "--to", "dev", *policy], cwd=orders)
    assert replayed.code == 1 and "is not verified by this release" in replayed.out
    assert f"(refused: {name}: about another release)" in replayed.out


def test_an_edited_contract_or_a_foreign_signature_counts_for_nothing(
    cli: Cli,
    pair: tuple[Path, Path],
    sigstore: LocalSigstore,
    policy: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    web, orders = pair
    release(cli, orders, sigstore, monkeypatch)
    first = ["--break-glass", "--reason", "first deploy: web has never run in dev"]
    assert cli(["promote", "--to", "dev", *first, *policy], cwd=orders).code == 0
    release(cli, web, sigstore, monkeypatch)
    # attack: a verification signed by someone the policy does not name
    monkeypatch.setenv("SIGSTORE_IDENTITY_TOKEN", sigstore.mint_token("mallory@example.com"))
    with serving(orders) as url:
        foreign = verify_web(cli, orders, url, policy)
    assert foreign.code == 0, foreign.err
    monkeypatch.setenv("SIGSTORE_IDENTITY_TOKEN", sigstore.mint_token(SIGNER))
    refused = cli(["promote", "--to", "dev", *policy], cwd=web)
    assert refused.code == 1 and "is not verified by that release" in refused.out
    assert "refused: " in refused.out and "mallory@example.com" in refused.out, refused.out
    # attack: the consumer's contract edited after signing (the provider would verify a laxer one)
    record_path = web / ".pipeline-kit" / "contracts.json"
    record = json.loads(record_path.read_text())
    record["pacts"][0]["pact"]["interactions"][0]["response"]["body"] = {"id": 1}
    record_path.write_text(json.dumps(record))
    with serving(orders) as url:
        edited = verify_web(cli, orders, url, policy)
    assert edited.code == 1 and "the consumer's evidence does not verify: contracts.json" in edited.err
    gated = cli(["plan", "--to", "dev", *policy], cwd=web)
    assert gated.code == 1 and "contracts.json: differs from the file the provenance signed" in gated.out


def test_a_contract_with_a_service_not_among_the_peers_denies(
    cli: Cli, tmp_path: Path, sigstore: LocalSigstore, policy: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    web = service(tmp_path, "web", {"name": "web", "pacts": ["pacts"]})
    (web / "pacts").mkdir()
    (web / "pacts" / "web-orders.json").write_text(json.dumps(PACT))
    init_repo(web, remote=REPOSITORY + ".git")
    release(cli, web, sigstore, monkeypatch)
    result = cli(["plan", "--to", "dev", *policy], cwd=web)
    assert result.code == 1
    assert "pacts/web-orders.json: its provider orders is not among contracts.peers" in result.out
    (web / "pacts" / "web-orders.json").write_text(json.dumps({**PACT, "consumer": {"name": "shop"}}))
    bad = cli(["provenance"], cwd=web)
    assert bad.code == 2 and "consumer.name: is 'shop', but this service is 'web'" in bad.err


def test_the_consumer_pact_is_what_its_client_really_asks_for(pair: tuple[Path, Path], tmp_path: Path) -> None:
    """The consumer's test: its client against the Pact mock server built from its Pact file;
    the mock answers only the requests the file promises, and says whether each was made."""
    from pipeline_kit.contracts import pact_verifier

    web, _ = pair
    pact, port = pact_verifier(), free_port()
    # the master on the address free_port checked: "localhost" (the CLI's default) may be ::1,
    # where another test's server can hold the same port
    master_at = ["--host", "127.0.0.1", "--port", str(port)]
    # the mock writes the pact it verified into its working directory: the test's, never the checkout
    master = subprocess.Popen(
        [pact, "mock", "start", *master_at],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        created = None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            created = subprocess.run(
                [pact, "mock", *master_at, "create", "--file", str(web / "pacts" / "web-orders.json")],
                capture_output=True,
                text=True,
                check=False,
            )
            if created.returncode == 0:
                break
            time.sleep(0.1)
        assert created is not None and created.returncode == 0, created.stderr if created else "no master"
        mock_port = (created.stdout + created.stderr).rsplit("port", 1)[1].split()[0]
        assert client_reads(web, f"http://127.0.0.1:{mock_port}").stdout.strip() == "10"
        verify = [pact, "mock", *master_at, "verify", "--mock-server-port", mock_port]
        verified = subprocess.run(verify, capture_output=True, text=True, check=False)
        assert verified.returncode == 0, verified.stdout + verified.stderr
        # a client asking for something the contract does not promise fails the mock's verification
        with suppress(OSError):
            urllib.request.urlopen(f"http://127.0.0.1:{mock_port}/orders/2", timeout=5).close()
        assert subprocess.run(verify, capture_output=True, text=True, check=False).returncode != 0
    finally:
        master.kill()
        master.wait()


def documented_pact() -> dict[str, object]:
    """The example Pact file of docs/contracts.md."""
    text = (ROOT / "docs" / "contracts.md").read_text()
    block = text.split("```json\n", 1)[1].split("```", 1)[0]
    document: dict[str, object] = json.loads(block)
    return document


@contextmanager
def answering(order: dict[str, object]) -> Iterator[str]:
    """A provider in this process answering GET /orders/1 with `order`."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from threading import Thread

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps(order if self.path == "/orders/1" else {}).encode()
            self.send_response(200 if self.path == "/orders/1" else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_the_documented_pact_is_read_by_the_kit_and_verified_without_usage_tracking(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline_kit.config import ContractsConfig
    from pipeline_kit.contracts import load_pacts, record_contracts, run_verifier
    from pipeline_kit.evidence import EvidenceDir
    from tests.test_sbom_document import make_release

    document = documented_pact()
    assert document == PACT  # the example the suite's consumer and provider use
    (tmp_path / "pacts").mkdir()
    (tmp_path / "pacts" / "web-orders.json").write_text(json.dumps(document, indent=2))
    evidence = EvidenceDir(tmp_path / ".pipeline-kit")
    config = ContractsConfig(name="web", pacts=["pacts"], peers={"orders": "../orders"})
    record_contracts(config, evidence, make_release("dist/web.whl"), tmp_path)
    name, (pact,) = load_pacts(evidence)
    assert (name, pact.consumer, pact.provider, pact.path) == ("web", "web", "orders", "pacts/web-orders.json")

    monkeypatch.setenv("PACT_DO_NOT_TRACK", "false")  # the opt-out is the kit's, whatever the caller set
    with answering({"id": 1, "total": 10}) as url:
        verified = run_verifier(pact, "orders", url)
    assert verified.passed, verified.output
    with answering({"id": 1, "amount": 10}) as url:
        broken = run_verifier(pact, "orders", url)
    assert not broken.passed and "total" in broken.output
    for result in (verified, broken):
        assert "tracking" not in result.output.lower() and "PACT_DO_NOT_TRACK" not in result.output
