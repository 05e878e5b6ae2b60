"""A scripted history of three releases, built once per test session: really built, described and
signed by the kit (each from a commit at a scripted time), then promoted through dev, staging and
prod by ledger entries whose signed records (VSAs, a rollback's hold, a root cause, rollout steps)
the real sigstore client signs against the local instance at the times the script says.

R1 goes dev -> staging -> prod (its analysis there passes); R2 goes dev -> staging -> prod, where
its analysis fails: its kill switch is tripped and it is rolled back to R1 (signed), then its root
cause is signed; R3 goes dev -> staging, then into prod by a canary rollout of two signed steps;
a release plan puts services api and web into prod (api done, web failed, api compensated).
Every figure the tests expect is computed by hand from the minutes below.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from pipeline_kit.ledger import Draft, Entry, FileLedger, head
from pipeline_kit.models import Subject
from tests.conftest import EXAMPLE, LEDGER, REPOSITORY, SIGNER, git
from tests.sigstore_instance import LocalSigstore, clock

ENVIRONMENTS = ("dev", "staging", "prod")
XSS = '<img src=x onerror="document.title=\'pwned\'"><script>document.title="pwned"</script>'
CONFIG = f"""version: 1
artifact:
  name: hello-service
  version: "0.1.0"
  build: "python build.py"
  outputs: ["dist/*.whl"]
sbom:
  sources: [uv.lock]
signing:
  identity:
    issuer: %(issuer)s
    san: {SIGNER}
environments:
  dev: {{gates: [signature]}}
  staging: {{after: dev, gates: [signature]}}
  prod: {{after: staging, url: https://hello.example.com, gates: [signature]}}
"""


@dataclass
class Scripted:
    """The project the history was written into, and what the script did (by hand, not read back)."""

    project: Path
    base: datetime  # minute 0 of the script
    releases: dict[str, str] = field(default_factory=dict)  # R1, R2, R3 -> release id
    commits: dict[str, str] = field(default_factory=dict)  # R1, R2, R3 -> commit sha
    subjects: dict[str, dict[str, str]] = field(default_factory=dict)
    entries: list[Entry] = field(default_factory=list)

    def at(self, minute: float) -> datetime:
        return self.base + timedelta(minutes=minute)

    def policy(self, sigstore: LocalSigstore) -> list[str]:
        return ["--trust-config", str(sigstore.trust_config_path), "--cert-identity", SIGNER]


# Commits: minutes from the base (R1's is before it).
COMMITTED = {"R1": -120, "R2": 60, "R3": 180}


@contextmanager
def _environment(**values: str) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith(("GITHUB_", "CI_", "RUNNER_", "GITLAB_", "PIPELINE_KIT_")):
                patch.delenv(name)
        for name, value in values.items():
            patch.setenv(name, value)
        yield


def _kit(project: Path, *args: str) -> None:
    from pipeline_kit.cli import main

    try:
        main(["-C", str(project), *args])
    except SystemExit as exc:
        assert exc.code in (0, None), f"pipeline-kit {' '.join(args)} exited {exc.code}"


def _release(scripted: Scripted, sigstore: LocalSigstore, name: str) -> None:
    project = scripted.project
    (project / "src" / "hello_service" / "version.py").write_text(f"RELEASE = {name!r}\n")
    when = scripted.at(COMMITTED[name]).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    with _environment(GIT_COMMITTER_DATE=when, GIT_AUTHOR_DATE=when):
        git(project, "add", "-A")
        git(project, "commit", "-q", "-m", f"release {name}")
    scripted.commits[name] = git(project, "rev-parse", "HEAD")
    with _environment(SIGSTORE_IDENTITY_TOKEN=sigstore.mint_token(SIGNER)):
        for command in (["build"], ["sbom"], ["provenance"]):
            _kit(project, *command)
        _kit(project, "sign", "--trust-config", str(sigstore.trust_config_path), "--rekor-version", "1")
    release = json.loads((project / ".pipeline-kit" / "release.json").read_text())
    scripted.releases[name] = release["id"]
    scripted.subjects[name] = {s["name"]: s["digest"]["sha256"] for s in release["subjects"]}


class Writer:
    """Appends the script's entries, signing each record at its scripted minute."""

    def __init__(self, scripted: Scripted, sigstore: LocalSigstore) -> None:
        from pipeline_kit.trust import load_trust_config

        self.scripted = scripted
        self.sigstore = sigstore
        self.ledger = FileLedger(scripted.project / LEDGER)
        self.trust = load_trust_config(sigstore.trust_config_path, rekor_version=1)

    def uri(self, environment: str) -> str:
        return "https://hello.example.com" if environment == "prod" else f"urn:pipeline-kit:environment:{environment}"

    def sign(self, name: str, environment: str, minute: float, predicate_type: str, predicate: dict[str, Any]) -> bytes:
        from pipeline_kit.signing import Signable, sign_all, statement_json

        subjects = tuple(Subject(name=n, digest={"sha256": d}, size=1) for n, d in self.scripted.subjects[name].items())
        seq, digest = head(self.ledger.entries())
        predicate = {
            "resourceUri": self.uri(environment),
            "inputAttestations": [{"name": "ledger", "digest": {"sha256": digest}, "annotations": {"seq": seq}}],
            **predicate,
        }
        statement = statement_json(subjects, predicate_type, predicate)
        with clock.fixed(self.scripted.at(minute).timestamp()):
            signed = sign_all(
                self.trust, self.sigstore.mint_token(SIGNER), "test", [Signable("x", statement=statement)]
            )
        return signed.files["x"]

    def vsa(
        self, name: str, environment: str, minute: float, result: str = "PASSED", *levels: str, **notes: Any
    ) -> bytes:
        from pipeline_kit.vsa import VSA_PREDICATE

        upper = environment.upper()
        predicate = {
            "verificationResult": result,
            "verifiedLevels": [f"PIPELINE_KIT_PROMOTED_{upper}", "PIPELINE_KIT_GATE_SIGNATURE_PASSED", *levels],
            "policy": {"uri": "pipeline-kit.yml", "annotations": notes},
        }
        return self.sign(name, environment, minute, VSA_PREDICATE, predicate)

    def keep(self, name: str, file: str, document: dict[str, Any]) -> str:
        """A record written into the release's archive, as a promotion keeps it; its sha256."""
        from pipeline_kit.digest import sha256_bytes

        data = json.dumps(document, indent=2, sort_keys=True).encode()
        path = self.scripted.project / ".pipeline-kit" / "releases" / self.scripted.releases[name] / file
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return sha256_bytes(data)

    def analysis(self, name: str, verdict: str, reason: str, *measured: tuple[float, float, str, str]) -> str:
        measurements = [
            {"check": "errors", "time": self.scripted.at(m).strftime("%Y-%m-%dT%H:%M:%SZ"), "verdict": v, "value": x}
            | {"detail": detail}
            for m, x, v, detail in measured
        ]
        document: dict[str, Any] = {"release": self.scripted.releases[name], "environment": "prod"}
        document |= {"verdict": verdict, "reason": reason, "intervals": len(measured), "measurements": measurements}
        return self.keep(name, "promotions/prod.analysis.json", document)

    def decision(self, name: str, minute: float, approvers: list[str]) -> str:
        gates = [
            {"gate": "signature", "verdict": "passed", "reason": "1 subject signed", "evidence": {}, "durationMs": 3},
            {
                "gate": "approvals",
                "verdict": "passed",
                "reason": f"{len(approvers)} approvals ({', '.join(approvers)}) from github",
                "evidence": {"approvers": approvers},
                "durationMs": 40,
            },
        ]
        document: dict[str, Any] = {"schema": "pipeline-kit/decision/v1", "release": self.scripted.releases[name]}
        document["gates"] = gates
        document |= {"environment": "prod", "verdict": "passed", "time": self.scripted.at(minute).isoformat()}
        return self.keep(name, "promotions/prod.decision.json", document)

    def add(
        self,
        kind: str,
        environment: str,
        name: str | None,
        minute: float,
        details: dict[str, Any] | None = None,
        attachments: Sequence[bytes] = (),
        reason: str | None = None,
        actor: str = "github:release-bot",
    ) -> Entry:
        from pipeline_kit.digest import sha256_bytes

        keys = {"vsa", "hold", "root_cause", "signed"}
        named = {k: sha256_bytes(attachments[0]) for k in keys if (details or {}).get(k) is True}
        entry = self.ledger.append(
            Draft.model_validate(
                {
                    "kind": kind,
                    "environment": environment,
                    "release": self.scripted.releases.get(name or ""),
                    "subjects": self.scripted.subjects.get(name or "", {}),
                    "actor": actor,
                    "time": self.scripted.at(minute),
                    "reason": reason,
                    "details": {**(details or {}), **named},
                }
            ),
            attachments,
        )
        self.scripted.entries.append(entry)
        return entry


def _promote(w: Writer, name: str, environment: str, minute: float) -> None:
    """A promotion with nothing to deploy: its VSA is its arrival."""
    signed = w.vsa(name, environment, minute)
    w.add("promoted", environment, name, minute, {"deploy": "none", "vsa": True}, [signed])


def _history(w: Writer) -> None:
    from pipeline_kit.promotion.rollout_steps import STEP_PREDICATE
    from pipeline_kit.vsa import ANALYSIS_PASSED, hold_level, root_cause_level

    ids = w.scripted.releases
    _promote(w, "R1", "dev", 10)
    _promote(w, "R1", "staging", 40)
    decided = w.decision("R1", 60, ["dave", f"eve{XSS}"])
    w.add("promoted", "prod", "R1", 60, {"deploy": "pending", "decision": decided}, actor="github:alice")
    w.add("deployed", "prod", "R1", 65, {"exit_code": 0})
    measured = w.analysis(
        "R1",
        "passed",
        "all checks passed",
        (70, 0.002, "passed", "0.002 within max 0.01"),
        (75, 0.003, "passed", "0.003 within max 0.01"),
        (80, 0.001, "passed", "0.001 within max 0.01"),
    )
    passed = w.vsa("R1", "prod", 80, "PASSED", ANALYSIS_PASSED)
    details = {"verdict": "passed", "vsa": True, "analysis": measured}
    w.add("analysed", "prod", "R1", 80, details, [passed], reason="all checks passed")
    _promote(w, "R2", "dev", 120)
    _promote(w, "R2", "staging", 130)
    w.add("promoted", "prod", "R2", 150, {"deploy": "pending"}, actor="github:bob")
    w.add("deployed", "prod", "R2", 155, {"exit_code": 0})
    why = f"errors: 0.05 above max 0.01 {XSS}"
    measured = w.analysis(
        "R2", "failed", why, (160, 0.004, "passed", "0.004 within max 0.01"), (165, 0.05, "failed", why)
    )
    w.add("analysed", "prod", "R2", 170, {"verdict": "failed", "analysis": measured}, reason=why)
    w.add("flag-killed", "prod", "R2", 171, {"flag": "new-checkout", "switches": "flagd", "change": "off"})
    hold = w.vsa("R2", "prod", 175, "FAILED", hold_level("prod"), reason=f"analysis failed: {why}", to=ids["R1"])
    w.add(
        "rolled-back",
        "prod",
        "R1",
        175,
        {"from": ids["R2"], "to": ids["R1"], "hold": True},
        [hold],
        reason=f"analysis failed: {why}",
    )
    cause = w.vsa("R2", "prod", 200, "FAILED", root_cause_level("prod"), cause="bad cache key")
    w.add("annotated", "prod", "R2", 200, {"rollback_seq": 12, "root_cause": True}, [cause], reason="bad cache key")
    _promote(w, "R3", "dev", 210)
    _promote(w, "R3", "staging", 220)
    w.add("promoted", "prod", "R3", 225, {"deploy": "pending"}, actor="github:carol")
    w.add("rollout", "prod", "R3", 230, {"state": "started", "step": 0, "weight": 0})
    for index, (minute, weight) in enumerate(((240, 20), (250, 50))):
        step = w.sign(
            "R3", "prod", minute, STEP_PREDICATE, {"rollout": 17, "step": index, "weight": weight, "steps": 2}
        )
        w.add("rollout-step", "prod", "R3", minute, {"step": index, "weight": weight, "signed": True}, [step])
        w.add("rollout", "prod", "R3", minute, {"state": "step", "step": index, "weight": weight})
    finished = w.vsa("R3", "prod", 260)
    w.add("rollout", "prod", "R3", 260, {"state": "finished", "step": 1, "weight": 100, "vsa": True}, [finished])
    steps = ["api", "web"]
    w.add("saga", "prod", None, 270, {"state": "started", "plan": "p" * 64, "service": None, "steps": steps})
    w.add("saga", "prod", "R3", 271, {"state": "step-done", "plan": "p" * 64, "service": "api"})
    w.add(
        "saga", "prod", None, 272, {"state": "step-failed", "plan": "p" * 64, "service": "web"}, reason="web: timeout"
    )
    w.add("saga", "prod", "R3", 273, {"state": "compensated", "plan": "p" * 64, "service": "api"})
    w.add("saga", "prod", None, 274, {"state": "failed", "plan": "p" * 64, "service": None}, reason="web failed")
    # a line anyone could append: it names a VSA signed by nobody the policy trusts
    forged = w.vsa("R2", "prod", 280)  # signed by the test signer, but for another environment below
    w.add("promoted", "dev", "R2", 280, {"deploy": "none", "vsa": True}, [forged], actor="mallory")


def build_history(root: Path, sigstore: LocalSigstore) -> Scripted:
    project = root / "project"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("dist", ".pipeline-kit", "__pycache__"))
    (project / "pipeline-kit.yml").write_text(CONFIG % {"issuer": sigstore.issuer})
    base = (datetime.now(timezone.utc) + timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    scripted = Scripted(project, base)
    when = scripted.at(COMMITTED["R1"] - 60).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    with _environment(GIT_COMMITTER_DATE=when, GIT_AUTHOR_DATE=when):
        git(project, "init", "-q", "-b", "main")
        git(project, "remote", "add", "origin", REPOSITORY + ".git")
        git(project, "add", "-A")
        git(project, "commit", "-q", "-m", "initial")
    for name in ("R1", "R2", "R3"):
        _release(scripted, sigstore, name)
    _history(Writer(scripted, sigstore))
    return scripted
