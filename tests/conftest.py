"""Shared fixtures: a copy of the example project, a CLI runner, a CI-free environment."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast

import pytest

from pipeline_kit.cli import main
from pipeline_kit.models import Build, Release, Source, Subject, release_id
from tests.mariadb_instance import LocalMariaDB
from tests.postgres_instance import LocalPostgres
from tests.prometheus_instance import Exporter, LocalPrometheus
from tests.shared_services import KEY, RECORDS, Services, locked
from tests.sigstore_instance import LocalSigstore
from tests.unleash_instance import LocalUnleash

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "hello-service"
ASSETS = Path(__file__).resolve().parent / "assets"

# As on a CI runner (this machine sets it): the kit's venvs that the runner tests install without
# compiling (uv; pip --no-compile) keep the bytecode of what they import instead of compiling
# every module again in every call (`run --dry-run`: 0.66 s of CPU against 0.38 s).
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)

# Variables by which the kit detects a CI platform; tests choose the platform explicitly.
CI_VARIABLES = ("GITHUB_ACTIONS", "GITLAB_CI", "PIPELINE_KIT_EVIDENCE_DIR", "PIPELINE_KIT_CONFIG")


def _checkout_changes() -> set[str] | None:
    """`git status` of the checkout, untracked files included (None outside a git checkout)."""
    found = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"], cwd=ROOT, capture_output=True, text=True
    )
    return set(found.stdout.splitlines()) if found.returncode == 0 else None


def pytest_sessionstart(session: pytest.Session) -> None:
    if not hasattr(session.config, "workerinput"):  # the controller, once
        session.config.stash[_BEFORE] = _checkout_changes()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The suite fails when it leaves a file in the checkout (a test writes only under tmp_path)."""
    before = session.config.stash.get(_BEFORE, None)
    after = _checkout_changes()
    if before is None or after is None:
        return
    left = sorted(after - before)
    if left:
        session.config.get_terminal_writer().line(f"the tests left files in the checkout: {left}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


_BEFORE = pytest.StashKey[set[str] | None]()


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto`: two workers a core. Much of the suite waits (on a scrape, an analysis interval, a
    runner's job); on 2 cores, 2 workers kept them 63% busy (7m02s), 4 workers 91% (5m18s)."""
    return 2 * (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Tests never reach the internet: resolving any host but this machine is refused, and the
    test fails even if the code under test swallowed the refusal."""
    import socket

    resolve = socket.getaddrinfo
    attempts: list[str] = []

    def local_only(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in (None, "localhost", "127.0.0.1", "::1", b"localhost", b"127.0.0.1"):
            attempts.append(str(host))
            raise OSError(f"tests must stay on 127.0.0.1, not {host!r}")
        return resolve(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", local_only)
    yield
    assert not attempts, f"the test tried to reach {sorted(set(attempts))}"


@pytest.fixture(autouse=True)
def no_ambient_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name in CI_VARIABLES or name.startswith(("GITHUB_", "CI_", "RUNNER_")):
            monkeypatch.delenv(name, raising=False)
    # output as a log sees it (xdist's workers get COLUMNS=80): tables keep one line per row
    monkeypatch.delenv("COLUMNS", raising=False)


@dataclass
class Result:
    code: int
    out: str
    err: str


class Cli(Protocol):
    def __call__(self, args: Sequence[str], cwd: Path | None = None) -> Result: ...


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Iterator[Cli]:
    """`cli(args, cwd=...)` runs pipeline-kit in-process and returns its exit code and output."""

    def run(args: Sequence[str], cwd: Path | None = None) -> Result:
        argv = (["-C", str(cwd)] if cwd else []) + list(args)
        capsys.readouterr()
        try:
            main(argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        else:  # pragma: no cover - main always exits
            code = 0
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    yield run


@pytest.fixture
def hello(tmp_path: Path) -> Path:
    """A fresh copy of examples/hello-service (without build outputs)."""
    target = tmp_path / "hello-service"
    shutil.copytree(EXAMPLE, target, ignore=shutil.ignore_patterns("dist", ".pipeline-kit", "__pycache__"))
    return target


def git(cwd: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout.strip()


def init_repo(path: Path, remote: str | None = None) -> str:
    """Make `path` a git repository with one commit; returns the commit."""
    git(path, "init", "-q", "-b", "main")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "initial")
    if remote:
        git(path, "remote", "add", "origin", remote)
    return git(path, "rev-parse", "HEAD")


def run_kit(args: Sequence[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """pipeline-kit in a separate process (for import checks and real exit codes); a run that
    hangs fails the test (TimeoutExpired) instead of the suite."""
    return subprocess.run(
        [sys.executable, "-m", "pipeline_kit", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


@pytest.fixture(scope="session")
def sigstore(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSigstore]:
    """The local Sigstore instance, served in this process for the whole session."""
    instance = LocalSigstore(tmp_path_factory.mktemp("sigstore")).start()
    yield instance
    instance.stop()


# Servers ONE per run, shared by all xdist workers (CPU budget: one per worker cost ~0.9 s of CPU
# each to start, Unleash 3.9 s and ~2.7% of a core while idle); how and why in
# tests/shared_services.py. Tests in them make names of their own (shared_services.unique_name).
WHOLE_UNLEASH = "unleash-whole.lock"  # held shared by each test on Unleash, exclusive by one that changes it all


_RECORDS = pytest.StashKey[Path]()


def pytest_configure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):  # the controller: where the run records its shared services
        config.stash[_RECORDS] = Services.directory_for(os.getpid())


def pytest_unconfigure(config: pytest.Config) -> None:
    if _RECORDS in config.stash:
        Services(config.stash[_RECORDS], os.getpid()).forget_if_unused()


@pytest.hookimpl(optionalhook=True)  # an xdist hook, called in the controller for each worker
def pytest_configure_node(node: Any) -> None:
    node.workerinput[KEY] = os.getpid()  # the shared services end once this process has
    node.workerinput[RECORDS] = str(node.config.stash[_RECORDS])


@pytest.fixture(scope="session")
def services(pytestconfig: pytest.Config) -> Services:
    """The run's shared services, recorded where the controller said (outside pytest's basetemp,
    which pytest removes at the end of a run that passed: the watchdog reads the records after)."""
    workerinput = getattr(pytestconfig, "workerinput", None)
    if workerinput:
        return Services(Path(workerinput[RECORDS]), int(workerinput[KEY]))
    return Services(pytestconfig.stash[_RECORDS], os.getpid())


@pytest.fixture(scope="session")
def postgres_server(services: Services) -> LocalPostgres:
    """The run's PostgreSQL; each test makes its own databases in it."""
    return services.get("postgres", LocalPostgres)


@pytest.fixture(scope="session")
def mariadb(services: Services) -> LocalMariaDB:
    """The run's MariaDB; each test makes its own databases in it."""
    return services.get("mariadb", LocalMariaDB)


@pytest.fixture(scope="session")
def unleash_server(services: Services) -> LocalUnleash:
    return services.get("unleash", LocalUnleash)


@pytest.fixture
def unleash(unleash_server: LocalUnleash, services: Services) -> Iterator[LocalUnleash]:
    """The run's Unleash (on its own PostgreSQL); each test makes flags of its own. Held shared
    for the test: a test that changes the whole server (`unleash_alone`) waits for none to use it."""
    with locked(services.directory / WHOLE_UNLEASH, shared=True):
        yield unleash_server


@pytest.fixture
def unleash_alone(unleash_server: LocalUnleash, services: Services) -> Iterator[LocalUnleash]:
    """The run's Unleash, no test of another worker using it meanwhile."""
    with locked(services.directory / WHOLE_UNLEASH):
        yield unleash_server


SIGNER = "dev@example.com"
REPOSITORY = "https://github.com/pipeline-kit/hello-service"


def describe(cli: Cli, project: Path) -> None:
    """build, sbom and provenance for `project`, asserting each succeeds."""
    for command in (["build"], ["sbom"], ["provenance"]):
        result = cli(command, cwd=project)
        assert result.code == 0, result.err


T = TypeVar("T")


class Snapshots:
    """What an expensive, deterministic fixture made of a project, kept for the session: a later
    test whose project is the same bytes (and whose environment is the same) gets a copy of the
    result instead of making it again. Each test still owns its copy, so none sees another's
    changes; the result of each step is made for real at least once per session (per worker)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.made: dict[str, tuple[Path, Any]] = {}

    def reuse(self, project: Path, step: str, make: Callable[[], T]) -> T:
        """`make()`, which changes `project` by `step`, or a copy of what it made before (and
        what it returned then)."""
        key = hashlib.sha256(f"{step}\0{_environment()}\0{tree_digest(project)}".encode()).hexdigest()
        if key in self.made:
            done, value = self.made[key]
            if project.exists():
                shutil.rmtree(project)
            shutil.copytree(done, project, symlinks=True)
            return cast(T, value)
        value = make()
        keep = self.root / f"{len(self.made)}-{step}"
        shutil.copytree(project, keep, symlinks=True)
        self.made[key] = (keep, value)
        return value


def _environment() -> str:
    """The environment a fixture's commands see, without what changes from test to test."""
    ignored = ("PYTEST_CURRENT_TEST", "SIGSTORE_IDENTITY_TOKEN")
    return repr(sorted((k, v) for k, v in os.environ.items() if k not in ignored))


def tree_digest(path: Path) -> str:
    """The names and bytes of every file under `path` (a missing path digests as empty); git's
    index is left out: it holds inode numbers and times, which a copy changes."""
    digest = hashlib.sha256()
    if path.exists():
        for item in sorted(path.rglob("*")):
            relative = item.relative_to(path).as_posix()
            if relative == ".git/index":
                continue
            digest.update(relative.encode() + b"\0")
            if item.is_symlink():
                digest.update(b"->" + os.readlink(item).encode())
            elif item.is_file():
                digest.update(hashlib.sha256(item.read_bytes()).digest())
    return digest.hexdigest()


@pytest.fixture(scope="session")
def snapshots(tmp_path_factory: pytest.TempPathFactory) -> Snapshots:
    return Snapshots(tmp_path_factory.mktemp("snapshots"))


@pytest.fixture
def described(cli: Cli, hello: Path, snapshots: Snapshots) -> Path:
    """A git checkout of hello-service with release.json, SBOM and provenance (not signed)."""

    def make() -> None:
        init_repo(hello, remote=REPOSITORY + ".git")
        describe(cli, hello)

    snapshots.reuse(hello, "described", make)
    return hello


WHEEL = "dist/hello_service-0.1.0-py3-none-any.whl"
LEDGER = ".pipeline-kit-ledger/ledger.jsonl"  # the default file ledger, relative to the project


def sign(
    cli: Cli,
    project: Path,
    sigstore: LocalSigstore,
    monkeypatch: pytest.MonkeyPatch,
    *extra: str,
    token: str | None = None,
) -> tuple[int, str]:
    monkeypatch.setenv("SIGSTORE_IDENTITY_TOKEN", token or sigstore.mint_token(SIGNER))
    result = cli(["sign", "--trust-config", str(sigstore.trust_config_path), *extra], cwd=project)
    monkeypatch.delenv("SIGSTORE_IDENTITY_TOKEN")
    return result.code, result.err


@pytest.fixture
def signed(
    cli: Cli, described: Path, sigstore: LocalSigstore, monkeypatch: pytest.MonkeyPatch, snapshots: Snapshots
) -> Path:
    def make() -> None:
        code, err = sign(cli, described, sigstore, monkeypatch, "--rekor-version", "1")
        assert code == 0, err

    snapshots.reuse(described, "signed", make)
    return described


def policy_flags(sigstore: LocalSigstore) -> list[str]:
    """Trust the local instance and accept only the test signer."""
    return [
        "--trust-config",
        str(sigstore.trust_config_path),
        "--cert-identity",
        SIGNER,
        "--cert-oidc-issuer",
        sigstore.issuer,
    ]


@pytest.fixture
def policy(sigstore: LocalSigstore) -> list[str]:
    return policy_flags(sigstore)


@pytest.fixture
def token(sigstore: LocalSigstore, monkeypatch: pytest.MonkeyPatch) -> None:
    """The test signer's identity token, for commands that sign (promote, rollback, attest)."""
    monkeypatch.setenv("SIGSTORE_IDENTITY_TOKEN", sigstore.mint_token(SIGNER))


def stock_verify(sigstore: LocalSigstore, bundle: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The stock `sigstore verify identity` CLI on `bundle` against the example wheel."""
    return subprocess.run(
        [
            str(Path(sys.executable).parent / "sigstore"),
            "--trust-config",
            str(sigstore.trust_config_path),
            "verify",
            "identity",
            "--offline",
            "--bundle",
            bundle,
            "--cert-identity",
            SIGNER,
            "--cert-oidc-issuer",
            sigstore.issuer,
            WHEEL,
        ],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )


WHEELHOUSE = ROOT / ".ci" / "tools" / "wheelhouse"  # the setup lock's wheels, from .ci/test-tools
NEWER = ROOT / ".ci" / "tools" / "newer"  # newer releases than the lock pins (pydantic, pip), offered beside it


def kit_checkout(target: Path) -> Path:
    """What a runner checks out for `uses: pipeline-kit/pipeline-kit/actions/...@v0`."""
    target.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, target / name)
    for name in ("pipeline_kit", "actions"):
        shutil.copytree(ROOT / name, target / name, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def offline_installs(scratch: Path) -> dict[str, str]:
    """Environment under which the setup action really installs the lock, from local wheels only."""
    if not (WHEELHOUSE / ".stamp").is_file() or not (NEWER / ".complete").is_file():
        pytest.fail(f"no wheelhouse at {WHEELHOUSE}: run .ci/test-tools first")
    # A newer pydantic is offered too: a locked install must take the pin all the same (pip 23.x
    # used to pick the newer one for the pydantic[email] extra and refuse it).
    return {
        "UV_OFFLINE": "1",  # uv reads no UV_NO_INDEX; offline forbids any index
        "UV_FIND_LINKS": f"{WHEELHOUSE},{NEWER}",
        "UV_CACHE_DIR": str(scratch / "uv-cache"),
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": f"{WHEELHOUSE} {NEWER}",
    }


def another_release(cli: Cli, project: Path, sigstore: LocalSigstore, monkeypatch: pytest.MonkeyPatch) -> str:
    """A changed build of `project`, described and signed, the identity token set for what
    follows; its release id."""
    (project / "src" / "hello_service" / "bad.py").write_text("BROKEN = True\n")
    describe(cli, project)
    code, err = sign(cli, project, sigstore, monkeypatch)
    assert code == 0, err
    monkeypatch.setenv("SIGSTORE_IDENTITY_TOKEN", sigstore.mint_token(SIGNER))
    return str(json.loads((project / ".pipeline-kit" / "release.json").read_text())["id"])


def forge_line(project: Path, **fields: Any) -> None:
    """Append one line to the project's file ledger as whoever can write it: no signature, a
    well-formed chain (an unkeyed hash chain lets anyone append)."""
    from datetime import datetime, timezone

    from pipeline_kit.ledger import Draft, FileLedger

    FileLedger(project / LEDGER).append(Draft(actor="mallory", time=datetime.now(timezone.utc), **fields))


def local_release(n: int, name: str = "") -> Release:
    """A release of one subject whose digest is byte `n` repeated: distinct n, distinct ids."""
    subjects = (Subject(name=name or f"dist/app-{n}.whl", digest={"sha256": f"{n:02x}" * 32}, size=1),)
    return Release(
        id=release_id(subjects),
        name="app",
        subjects=subjects,
        source=Source(),
        build=Build(platform="local", builder_id="x"),
        kit_version="0",
    )


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[Exporter, LocalPrometheus]]:
    exporter = Exporter(tmp_path / "deployed-release.txt")
    prometheus = LocalPrometheus(tmp_path / "prometheus-live", scrape=exporter.target).start()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # the first scrape comes a few seconds after start
        with urllib.request.urlopen(f"{prometheus.url}/api/v1/query?query=up", timeout=2) as response:
            if json.loads(response.read())["data"]["result"]:
                break
        time.sleep(0.2)
    yield exporter, prometheus
    prometheus.stop()
    exporter.stop()


def job_env(sigstore: LocalSigstore) -> dict[str, str]:
    """A CI job's environment: the signer's token, none of this runner's CI variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "CI_", "GITLAB_"))}
    env["SIGSTORE_IDENTITY_TOKEN"] = sigstore.mint_token(SIGNER)
    return env


def killed_at(args: Sequence[str], cwd: Path, sigstore: LocalSigstore, marker: Path) -> dict[str, str]:
    """`pipeline-kit ARGS` in a job of its own (a CI job's environment), killed with all it started
    (-9, as a runner dies) once `marker` exists; returns that job's environment (its token)."""
    env = job_env(sigstore)
    job = subprocess.Popen(
        [sys.executable, "-m", "pipeline_kit", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 90
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # inside the state the marker announces
    os.killpg(job.pid, signal.SIGKILL)
    job.wait()
    return env
