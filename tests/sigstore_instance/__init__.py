"""A local Sigstore instance for tests: Fulcio, Rekor v1 and v2, an RFC 3161 TSA, an OIDC issuer,
and GitHub Actions' OIDC token service.

Everything is served by one HTTP server on 127.0.0.1 so the real sigstore-python client (and
the stock `sigstore` CLI) can sign and verify against it with a client trust config:

    instance = LocalSigstore(state_dir)
    instance.start()                      # writes state_dir/trust_config.json and state_dir/ready
    token = instance.mint_token("dev@example.com")
    ...
    instance.stop()

GitHub Actions jobs get their tokens as on GitHub: `instance.github_job(repository=...,
job_workflow_ref=..., ...)` registers a job and returns the two variables GitHub's runner gives
the steps of a job granted `id-token: write` (ACTIONS_ID_TOKEN_REQUEST_URL and _TOKEN); a GET on
that URL with `Authorization: bearer <request token>` and `audience=<aud>` answers `{"value":
<jwt>}` with GitHub's claims, signed by this instance's issuer (standing in for
https://token.actions.githubusercontent.com). The local Fulcio maps those claims as Fulcio's
`github-workflow` provider does (ca.py): SAN `https://github.com/<job_workflow_ref>`, Source
Repository URI `https://github.com/<repository>`, and the other CI extensions.
tests/github_runner.py hands the pair to the jobs of a workflow act runs.

It also runs as a process (see __main__.py) for tests that drive other processes.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import secrets
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.sigstore_instance.ca import Fulcio, spki_der
from tests.sigstore_instance.log import MerkleLog
from tests.sigstore_instance.tsa import TimestampAuthority

TRUST_CONFIG = "trust_config.json"
OIDC_KEY = "oidc_key.pem"
ISSUER_FILE = "issuer"
READY = "ready"
TOKEN_LIFETIME = 600


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _der(certificate: x509.Certificate) -> str:
    return _b64(certificate.public_bytes(serialization.Encoding.DER))


def make_token(
    key: ec.EllipticCurvePrivateKey,
    issuer: str,
    subject: str,
    *,
    email: bool = True,
    lifetime: int = TOKEN_LIFETIME,
    extra: dict[str, Any] | None = None,
    audience: str = "sigstore",
) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": audience,
        "sub": subject,
        "iat": now,
        "nbf": now,
        "exp": now + lifetime,
    }
    if email:
        claims.update(email=subject, email_verified=True)
    claims.update(extra or {})
    return jwt.encode(claims, key, algorithm="ES256")


def mint_from_state(state: Path, subject: str, **options: Any) -> str:
    """A token the instance whose state is in `state` accepts (usable from another process)."""
    key = serialization.load_pem_private_key((state / OIDC_KEY).read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return make_token(key, (state / ISSUER_FILE).read_text().strip(), subject, **options)


def _numeric_id(name: str) -> str:
    """A stable stand-in for a GitHub database id (repository_id, repository_owner_id)."""
    return str(int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big"))


def github_claims(
    *,
    repository: str,
    job_workflow_ref: str,
    ref: str,
    sha: str,
    workflow_ref: str | None = None,
    job_workflow_sha: str | None = None,
    workflow_sha: str | None = None,
    environment: str | None = None,
    event_name: str = "push",
    actor: str = "octocat",
    workflow: str = "release",
    run_id: str = "1",
    run_attempt: str = "1",
    runner_environment: str = "github-hosted",
    repository_visibility: str = "public",
) -> dict[str, str]:
    """The claims (but iss/aud/iat/nbf/exp) of a GitHub Actions OIDC token for a job of a run of
    `repository` at `ref`/`sha`, the job defined by the workflow file `job_workflow_ref`
    (`owner/repo/path@ref`: a reusable workflow's own file and the ref it was called at).
    `workflow_ref` is the run's top-level workflow (the caller's, for a reusable workflow);
    it defaults to `job_workflow_ref`, as for a job defined in the workflow that runs."""
    owner = repository.split("/")[0]
    # sub: repo:<repository>:environment:<name> for a job with an environment, else the ref
    subject = f"repo:{repository}:environment:{environment}" if environment else f"repo:{repository}:ref:{ref}"
    claims = {
        "jti": str(uuid.uuid4()),
        "sub": subject,
        "ref": ref,
        "sha": sha,
        "repository": repository,
        "repository_owner": owner,
        "repository_owner_id": _numeric_id(owner),
        "repository_id": _numeric_id(repository),
        "repository_visibility": repository_visibility,
        "run_id": run_id,
        "run_number": run_id,
        "run_attempt": run_attempt,
        "actor": actor,
        "actor_id": _numeric_id(f"user:{actor}"),
        "workflow": workflow,
        "head_ref": "",
        "base_ref": "",
        "event_name": event_name,
        "ref_type": "tag" if ref.startswith("refs/tags/") else "branch",
        "ref_protected": "false",
        "workflow_ref": workflow_ref or job_workflow_ref,
        "workflow_sha": workflow_sha or sha,
        "job_workflow_ref": job_workflow_ref,
        "job_workflow_sha": job_workflow_sha or sha,
        "runner_environment": runner_environment,
    }
    if environment:
        claims["environment"] = environment
    return claims


# The path of a job's token request URL, as GitHub's (under the Actions service of the run)
GITHUB_IDTOKEN_PATH = "/_apis/distributedtask/hubs/Actions/plans/{plan}/jobs/{job}/idtoken"


class _Server(ThreadingHTTPServer):
    # socketserver's default listen backlog is 5: a client opening more connections at once than
    # that waits a second for its SYN to be retried, which no real Sigstore service makes it do
    request_queue_size = 128


class LocalSigstore:
    def __init__(self, state: Path, port: int = 0) -> None:
        self.state = state
        self.fulcio = Fulcio.create()
        self.tsa = TimestampAuthority()
        self.oidc_key = ec.generate_private_key(ec.SECP256R1())
        self.server = _Server(("127.0.0.1", port), _handler(self))
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.issuer = f"{self.url}/oidc"
        host = f"127.0.0.1:{self.server.server_port}"
        self.logs = {1: MerkleLog(1, host), 2: MerkleLog(2, host)}
        self._thread: threading.Thread | None = None
        # What users see on a real instance: seconds added to every request, and a Rekor v2
        # entry answered only once it is in the log (v2 waits for inclusion)
        self.latency = 0.0
        self.inclusion_delay = 0.0
        self.in_flight = 0  # requests being answered now, and the most there ever were at once
        self.most_in_flight = 0
        self._counting = threading.Lock()
        # GitHub Actions jobs (github_job): the job's URL path -> (its request token, its claims),
        # and the claims of every token the service minted, in order
        self.github_jobs: dict[str, tuple[str, dict[str, str]]] = {}
        self.github_tokens: list[dict[str, Any]] = []

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> LocalSigstore:
        self.state.mkdir(parents=True, exist_ok=True)
        (self.state / TRUST_CONFIG).write_text(json.dumps(self.trust_config(), indent=2))
        (self.state / OIDC_KEY).write_bytes(
            self.oidc_key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        (self.state / ISSUER_FILE).write_text(self.issuer)
        self._thread = threading.Thread(target=self.server.serve_forever, name="local-sigstore", daemon=True)
        self._thread.start()
        (self.state / READY).write_text(self.url)
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        (self.state / READY).unlink(missing_ok=True)

    @property
    def trust_config_path(self) -> Path:
        return self.state / TRUST_CONFIG

    def mint_token(self, subject: str, **options: Any) -> str:
        return make_token(self.oidc_key, self.issuer, subject, **options)

    def mint_workflow_token(
        self, platform: str, repository: str, workflow: str, ref: str, sha: str = "a" * 40, **claims: Any
    ) -> str:
        """A CI workflow's token as GitHub Actions or GitLab CI issue it (the claims Fulcio reads):
        Fulcio certifies the workflow file at `ref` as a URI SAN, with the CI extensions. `claims`:
        more of a GitLab job's (job_id, pipeline_id, environment, ...), which Fulcio does not read."""
        if platform == "github":
            if claims:
                raise TypeError("GitHub claims come from github_claims (github_job), not from here")
            github = github_claims(
                repository=repository, job_workflow_ref=f"{repository}/{workflow}@{ref}", ref=ref, sha=sha
            )
            return make_token(self.oidc_key, self.issuer, github.pop("sub"), email=False, extra=github)
        server = "https://gitlab.com"
        identity = f"{server}/{repository}//{workflow}@{ref}"
        extra = {
            "ci_config_ref_uri": f"gitlab.com/{repository}//{workflow}@{ref}",
            "project_path": repository,
            "build_signer_uri": identity,
            "build_config_uri": identity,
            "runner_environment": "gitlab-hosted",
            "source_repository_uri": f"{server}/{repository}",
            "source_repository_digest": sha,
            "source_repository_ref": ref,
            **claims,
        }
        subject = f"project_path:{repository}:ref_type:branch:ref:{ref}"
        return make_token(self.oidc_key, self.issuer, subject, email=False, extra=extra)

    # -- GitHub Actions' OIDC token service -----------------------------------------------
    def github_job(
        self,
        *,
        repository: str,
        job_workflow_ref: str,
        ref: str,
        sha: str,
        job_workflow_sha: str | None = None,
        workflow_ref: str | None = None,
        **claims: Any,
    ) -> dict[str, str]:
        """Register one job of a GitHub Actions run and return what GitHub's runner puts in the
        environment of each step of that job when it is granted `id-token: write`: the job's token
        request URL and its request token (random, valid for this job's URL only). The arguments
        are `github_claims`'s: the run's repository, ref and sha; the job's workflow file at the
        ref it runs or is called at (`owner/repo/path@ref`) and that file's commit; the run's
        top-level workflow; and optionally environment, event_name, actor, ..."""
        claims |= {
            "repository": repository,
            "job_workflow_ref": job_workflow_ref,
            "ref": ref,
            "sha": sha,
            "job_workflow_sha": job_workflow_sha,
            "workflow_ref": workflow_ref,
        }
        github_claims(**claims)  # the arguments are checked now, not at the first request
        path = GITHUB_IDTOKEN_PATH.format(plan=uuid.uuid4(), job=uuid.uuid4())
        request_token = secrets.token_urlsafe(32)
        self.github_jobs[path] = (request_token, claims)
        return {
            "ACTIONS_ID_TOKEN_REQUEST_URL": f"{self.url}{path}?api-version=2.0",
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN": request_token,
        }

    def end_github_job(self, job: dict[str, str]) -> None:
        """The job finished: its request token no longer gets a token (as GitHub's expires)."""
        self.github_jobs.pop(urlsplit(job["ACTIONS_ID_TOKEN_REQUEST_URL"]).path, None)

    def github_id_token(self, path: str, authorization: str, query: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        """GitHub's answer to a job's token request: a JWT for the requested audience (default:
        the repository owner's URL, as GitHub's), any audience; 401 for a wrong request token."""
        scheme, _, presented = authorization.partition(" ")
        job = self.github_jobs.get(path)
        if job is None or scheme.lower() != "bearer" or not hmac.compare_digest(presented.strip(), job[0]):
            return 401, {"message": "the request token is not valid for this job"}
        claims = github_claims(**job[1])
        audience = query.get("audience", [f"https://github.com/{claims['repository_owner']}"])[0]
        subject = claims.pop("sub")
        token = make_token(self.oidc_key, self.issuer, subject, email=False, extra=claims, audience=audience)
        self.github_tokens.append({"sub": subject, "aud": audience, **claims})
        return 200, {"value": token}

    # -- trust config ----------------------------------------------------------------------
    def trust_config(self) -> dict[str, Any]:
        start = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        valid = {"start": start}

        def tlog(log: MerkleLog, details: str) -> dict[str, Any]:
            return {
                "baseUrl": self.url,
                "hashAlgorithm": "SHA2_256",
                "publicKey": {"rawBytes": _b64(log.spki), "keyDetails": details, "validFor": valid},
                "logId": {"keyId": _b64(log.key_id)},
            }

        def service(url: str, version: int = 1) -> dict[str, Any]:
            return {"url": url, "majorApiVersion": version, "validFor": valid, "operator": "local"}

        ct_key = self.fulcio.ct_key.public_key()
        return {
            "mediaType": "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json",
            "trustedRoot": {
                "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
                "tlogs": [tlog(self.logs[1], "PKIX_ECDSA_P256_SHA_256"), tlog(self.logs[2], "PKIX_ED25519")],
                "certificateAuthorities": [
                    {
                        "subject": {"organization": "pipeline-kit tests", "commonName": "local fulcio"},
                        "uri": self.url,
                        "certChain": {
                            "certificates": [
                                {"rawBytes": _der(self.fulcio.intermediate)},
                                {"rawBytes": _der(self.fulcio.root)},
                            ]
                        },
                        "validFor": valid,
                    }
                ],
                "ctlogs": [
                    {
                        "baseUrl": self.url,
                        "hashAlgorithm": "SHA2_256",
                        "publicKey": {
                            "rawBytes": _b64(spki_der(ct_key)),
                            "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                            "validFor": valid,
                        },
                        "logId": {"keyId": _b64(__import__("hashlib").sha256(spki_der(ct_key)).digest())},
                    }
                ],
                "timestampAuthorities": [
                    {
                        "subject": {"organization": "pipeline-kit tests", "commonName": "local tsa"},
                        "uri": f"{self.url}/api/v1/timestamp",
                        "certChain": {"certificates": [{"rawBytes": _der(c)} for c in self.tsa.chain()]},
                        "validFor": valid,
                    }
                ],
            },
            "signingConfig": {
                "mediaType": "application/vnd.dev.sigstore.signingconfig.v0.2+json",
                "caUrls": [service(self.url)],
                "oidcUrls": [service(self.issuer)],
                "rekorTlogUrls": [service(self.url, 1), service(self.url, 2)],
                "tsaUrls": [service(f"{self.url}/api/v1/timestamp")],
                "rekorTlogConfig": {"selector": "ANY"},
                "tsaConfig": {"selector": "ANY"},
            },
        }

    # -- services --------------------------------------------------------------------------
    def signing_cert(self, authorization: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        token = authorization.removeprefix("Bearer ").strip()
        try:
            claims = jwt.decode(
                token,
                self.oidc_key.public_key(),
                algorithms=["ES256"],
                audience="sigstore",
                issuer=self.issuer,
            )
        except jwt.PyJWTError as exc:
            return 401, {"code": 16, "message": f"invalid identity token: {exc}"}
        csr = x509.load_pem_x509_csr(base64.b64decode(body["certificateSigningRequest"]))
        public_key = csr.public_key()
        if not csr.is_signature_valid or not isinstance(public_key, ec.EllipticCurvePublicKey):
            return 400, {"code": 3, "message": "invalid certificate signing request"}
        leaf = self.fulcio.issue(public_key, claims)
        return 201, {"signedCertificateEmbeddedSct": {"chain": {"certificates": self.fulcio.chain_pem(leaf)}}}

    def authorize(self, query: dict[str, list[str]]) -> str:
        """The interactive flow, auto-approved: redirect back with a code naming the identity."""
        code = self.mint_token(query.get("login_hint", ["interactive@example.com"])[0])
        params = {"code": code, "state": query.get("state", [""])[0]}
        return f"{query['redirect_uri'][0]}?{urlencode(params)}"

    def token(self, form: dict[str, list[str]]) -> dict[str, Any]:
        grant = form.get("grant_type", [""])[0]
        if grant == "authorization_code":
            return {"access_token": form["code"][0], "token_type": "Bearer"}
        if grant == "urn:local:mint":
            subject = (form.get("email") or form.get("sub") or ["dev@example.com"])[0]
            return {"access_token": self.mint_token(subject, email="email" in form), "token_type": "Bearer"}
        raise ValueError(f"unsupported grant_type {grant!r}")


def _handler(instance: LocalSigstore) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _reply(self, status: int, body: bytes, content_type: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, value: Any) -> None:
            self._reply(status, json.dumps(value).encode())

        def do_GET(self) -> None:
            if instance.latency:
                time.sleep(instance.latency)
            url = urlsplit(self.path)
            if url.path == "/oidc/.well-known/openid-configuration":
                self._json(
                    200,
                    {
                        "issuer": instance.issuer,
                        "authorization_endpoint": f"{instance.issuer}/authorize",
                        "token_endpoint": f"{instance.issuer}/token",
                    },
                )
            elif url.path.endswith("/idtoken"):  # a GitHub job's token request (github_job)
                status, value = instance.github_id_token(
                    url.path, self.headers.get("Authorization", ""), parse_qs(url.query)
                )
                self._json(status, value)
            elif url.path == "/oidc/authorize":
                self.send_response(302)
                self.send_header("Location", instance.authorize(parse_qs(url.query)))
                self.send_header("Content-Length", "0")
                self.end_headers()
            else:
                self._json(404, {"message": "not found"})

        def do_POST(self) -> None:
            with instance._counting:
                instance.in_flight += 1
                instance.most_in_flight = max(instance.most_in_flight, instance.in_flight)
            try:
                self._post()
            finally:
                with instance._counting:
                    instance.in_flight -= 1

        def _post(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            path = urlsplit(self.path).path
            if instance.latency:
                time.sleep(instance.latency)
            if path == "/api/v2/log/entries" and instance.inclusion_delay:
                time.sleep(instance.inclusion_delay)
            try:
                if path == "/api/v2/signingCert":
                    status, value = instance.signing_cert(self.headers.get("Authorization", ""), json.loads(body))
                    self._json(status, value)
                elif path == "/api/v1/log/entries":
                    self._json(201, instance.logs[1].entry_v1(json.loads(body)))
                elif path == "/api/v2/log/entries":
                    self._json(201, instance.logs[2].entry_v2(json.loads(body)))
                elif path == "/api/v1/timestamp":
                    self._reply(200, instance.tsa.respond(body), "application/timestamp-reply")
                elif path == "/oidc/token":
                    self._json(200, instance.token(parse_qs(body.decode())))
                else:
                    self._json(404, {"message": "not found"})
            except (ValueError, KeyError, TypeError) as exc:
                self._json(400, {"message": f"bad request: {exc}"})

    return Handler
