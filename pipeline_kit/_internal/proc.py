"""Running other programs: capture what we need, keep the tail for error messages."""

from __future__ import annotations

import atexit
import contextlib
import errno
import os
import re
import signal
import subprocess
import threading
from collections import deque
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, overload

from pipeline_kit.oidc import SIGNING_CREDENTIALS

TAIL_LINES = 20
# Set in a process that signs apart from user code (the isolated layout: `arrive`, and the kit's
# own signing jobs, which set PIPELINE_KIT_APART): every program the project names (a build, a
# deploy, a command gate, an interpreter, a verifier) is refused there, because a child can read
# its ancestors' environments, and the signing credentials are in this process's.
APART_VARIABLE = "PIPELINE_KIT_APART"
_apart: list[str] = []


def run_apart(why: str | None) -> None:
    """From now on this process runs no program the project names (see APART_VARIABLE), or
    (None) it may again: each command of the CLI starts by saying which."""
    _apart[:] = [why] if why else []


@contextlib.contextmanager
def apart(why: str) -> Iterator[None]:
    """No program the project names runs inside this block."""
    before = list(_apart)
    _apart[:] = [why]
    try:
        yield
    finally:
        _apart[:] = before


def _refuse_apart(command: str | Sequence[str]) -> None:
    if _apart:
        shown = command if isinstance(command, str) else " ".join(command)
        # an OSError, as for a program that cannot start: every caller already reports that, failing closed
        raise PermissionError(errno.EPERM, f"{_apart[0]}: it runs no program the project names ({shown[:80]})")


@dataclass(frozen=True)
class Completed:
    returncode: int
    tail: str


def run_streaming(
    command: str | Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    on_line: Callable[[str], None] | None = None,
) -> Completed:
    """Run `command` (a string goes through /bin/sh), forwarding each output line to `on_line`
    as it arrives and keeping the last lines for diagnostics. Raises OSError if it cannot start
    (or may not: see run_apart)."""
    # No deadline here (builds and deploys take what they take), so the kit never abandons the
    # command: it returns once the command exited and closed its output. It stays in the kit's
    # process group on purpose, where Ctrl-C and a CI runner's kill of the job still reach it.
    _refuse_apart(command)
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    with subprocess.Popen(
        command,
        shell=isinstance(command, str),
        cwd=cwd,
        env=dict(env) if env is not None else None,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        bufsize=1,
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            tail.append(line.rstrip("\n"))
            if on_line is not None:
                on_line(line.rstrip("\n"))
        returncode = process.wait()
    return Completed(returncode, "\n".join(tail))


# What a child the kit starts (build, command gate, deploy) may see of the kit's environment:
# the system, the toolchains, proxies and CA bundles, and the CI context that is not a secret.
# Everything else (the identity token, ACTIONS_ID_TOKEN_REQUEST_*, forge tokens, CI_JOB_TOKEN,
# any variable of the user's) is dropped unless the config names it (`pass-env`).
CHILD_NAMES = frozenset(
    {
        "PATH", "HOME", "USER", "LOGNAME", "SHELL", "TERM", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TEMP", "TMP",
        "PWD", "HOSTNAME", "SOURCE_DATE_EPOCH", "CI", "GITHUB_ACTIONS", "GITLAB_CI", "DEBIAN_FRONTEND",
        "JAVA_HOME", "GOPATH", "GOROOT", "GOCACHE", "GOMODCACHE", "GOFLAGS", "GOPROXY", "GOPRIVATE",
        "CARGO_HOME", "RUSTUP_HOME", "RUSTFLAGS", "VIRTUAL_ENV", "PYENV_ROOT", "NVM_DIR", "PYTHONPATH",
        "LD_LIBRARY_PATH", "PKG_CONFIG_PATH", "CC", "CXX", "CFLAGS", "CXXFLAGS", "LDFLAGS", "MAKEFLAGS",
        "NODE_ENV", "JAVA_TOOL_OPTIONS", "MAVEN_OPTS", "GRADLE_USER_HOME",
        "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS",
        "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
    }
)  # fmt: skip
# Not PIPELINE_KIT_: the kit's own inputs and tokens live there; a child gets what the kit sets
# for it (PIPELINE_KIT_RELEASE_ID, PIPELINE_KIT_ENVIRONMENT, ...) explicitly.
CHILD_PREFIXES = ("LC_", "XDG_", "PIP_", "UV_", "RUNNER_", "GITHUB_", "CI_")
# A name that says it holds a secret is dropped even under an allowed prefix (GITHUB_PAT_TOKEN,
# CI_REGISTRY_PASSWORD, UV_INDEX_..._PASSWORD), unless the config names it in `pass-env`.
SECRET_NAME = re.compile(r"TOKEN|PASSWORD|PASSWD|SECRET|CREDENTIAL|PRIVATE|_KEY|JWT|AUTH", re.IGNORECASE)
# Secrets under the allowed prefixes (GitLab's CI_REPOSITORY_URL embeds the job token).
CHILD_SECRETS = SIGNING_CREDENTIALS | frozenset(
    {
        "GITHUB_TOKEN", "CI_JOB_TOKEN", "CI_JOB_JWT", "CI_JOB_JWT_V1", "CI_JOB_JWT_V2", "CI_REGISTRY_PASSWORD",
        "CI_DEPLOY_PASSWORD", "CI_DEPENDENCY_PROXY_PASSWORD", "CI_REPOSITORY_URL", "PIPELINE_KIT_GITLAB_TOKEN",
        "PIPELINE_KIT_LEDGER_TOKEN",
    }
)  # fmt: skip


def child_environment(
    source: Mapping[str, str], pass_env: Sequence[str] = (), secrets: Collection[str] = ()
) -> dict[str, str]:
    """`source` scrubbed for a child process: the allow-list above, plus the names in `pass_env`;
    never the kit's secrets (`CHILD_SECRETS`, and `secrets`: the variables the config names as
    holding a token or header), `pass-env` or not."""
    kept = {
        name: value
        for name, value in source.items()
        if (name in CHILD_NAMES or (name.startswith(CHILD_PREFIXES) and not SECRET_NAME.search(name)))
    }
    kept.update({name: source[name] for name in pass_env if name in source})
    return {name: value for name, value in kept.items() if name not in CHILD_SECRETS and name not in secrets}


# After a timeout, how long the output of the killed group is still read (a process that left the
# group, with setsid, may hold it open for ever).
DRAIN_SECONDS = 0.25
# Process groups of bounded commands still running: killed if the kit exits while one runs (Ctrl-C,
# or a gate thread the engine abandoned), since the terminal's signals no longer reach them.
_RUNNING: set[int] = set()
_RUNNING_LOCK = threading.Lock()


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL to `process`'s group (its own session: the pgid is its pid). The leader is not reaped
    yet, or the group still has members, so the number names no other group."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except OSError:
        process.kill()  # the group is gone, or holds a process we may not signal


def _kill_running() -> None:
    with _RUNNING_LOCK:
        for pgid in _RUNNING:
            with contextlib.suppress(OSError):
                os.killpg(pgid, signal.SIGKILL)


atexit.register(_kill_running)


def _text(data: bytes) -> str:
    """Output as text mode would give it (universal newlines), undecodable bytes replaced."""
    return data.decode("utf-8", errors="replace").replace("\r\n", "\n").replace("\r", "\n")


@overload
def run_bounded(
    command: str | Sequence[str],
    *,
    timeout: float,
    cwd: Path | None = ...,
    env: Mapping[str, str] | None = ...,
    input: bytes | None = ...,
    text: Literal[False] = ...,
    git: bool = ...,
) -> subprocess.CompletedProcess[bytes]: ...


@overload
def run_bounded(
    command: str | Sequence[str],
    *,
    timeout: float,
    cwd: Path | None = ...,
    env: Mapping[str, str] | None = ...,
    input: bytes | None = ...,
    text: Literal[True],
    git: bool = ...,
) -> subprocess.CompletedProcess[str]: ...


def run_bounded(
    command: str | Sequence[str],
    *,
    timeout: float,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    input: bytes | None = None,
    text: bool = False,
    git: bool = False,
) -> subprocess.CompletedProcess[bytes] | subprocess.CompletedProcess[str]:
    """Run `command` (a string goes through /bin/sh) with its output captured and `input` (or
    nothing) on its stdin, for at most `timeout` seconds. Raises OSError if it cannot start, and
    subprocess.TimeoutExpired only once the command and all it started in its session are dead.

    The command runs in a session of its own, so its whole process group can be killed: killing
    only /bin/sh left what it had started (a script's `sleep 3; apply-weight`) running, and weight
    100 was set after the kit had reported the timeout. A command whose output is still open at
    the deadline (held by a process it started) has not finished either: all of it is killed.
    After a normal exit the group is left alone: the exit status is the command's answer, and what
    it left running on purpose, its output redirected (a daemon, a port-forward), is its business;
    nginx daemonizes into a session of its own anyway.

    `git`: the command is git run by the kit itself (the ledger, the source's metadata), not a
    program the project names, so it runs where those are refused (run_apart): in a fresh
    checkout, with hooks and fsmonitor off where it writes."""
    if not (git and isinstance(command, list) and command[:1] == ["git"]):
        _refuse_apart(command)
    process = subprocess.Popen(
        command,
        shell=isinstance(command, str),
        cwd=cwd,
        env=dict(env) if env is not None else None,
        stdin=subprocess.DEVNULL if input is None else subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    with _RUNNING_LOCK:
        _RUNNING.add(process.pid)
    try:
        try:
            stdout, stderr = process.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(process)
            try:
                stdout, stderr = process.communicate(timeout=DRAIN_SECONDS)
            except subprocess.TimeoutExpired as held:
                stdout, stderr = held.output or b"", held.stderr or b""
            raise subprocess.TimeoutExpired(process.args, timeout, stdout, stderr) from None
        except BaseException:  # KeyboardInterrupt: Ctrl-C no longer reaches the command itself
            _kill_group(process)
            raise
    finally:
        for pipe in (process.stdin, process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()
        process.wait()  # killed, or exited: at once
        with _RUNNING_LOCK:
            _RUNNING.discard(process.pid)
    if text:
        return subprocess.CompletedProcess(process.args, process.returncode, _text(stdout), _text(stderr))
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def git(cwd: Path, *args: str) -> str | None:
    """Output of a git command, or None when git is missing or the command fails."""
    try:
        result = run_bounded(["git", "-C", str(cwd), *args], timeout=10, text=True, git=True)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if result.returncode != 0:
        return None
    return result.stdout.strip()


@dataclass(frozen=True)
class Capped:
    returncode: int
    stdout: bytes  # at most the cap
    stderr: bytes  # its first bytes, for a diagnostic
    over: bool  # it printed more than the cap: killed there, its answer refused


def run_capped(
    command: str | Sequence[str], *, timeout: float, max_bytes: int, cwd: Path, env: Mapping[str, str]
) -> Capped:
    """Run `command` (a string goes through /bin/sh) for at most `timeout` seconds, reading at
    most `max_bytes` of its output: a command printing without end is killed at the cap (with
    everything it started), not read into memory. Raises OSError if it cannot start (or may not:
    see run_apart), subprocess.TimeoutExpired once it and its session are dead."""
    import selectors
    import time

    _refuse_apart(command)
    process = subprocess.Popen(
        command,
        shell=isinstance(command, str),
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    with _RUNNING_LOCK:
        _RUNNING.add(process.pid)
    deadline = time.monotonic() + timeout
    assert process.stdout is not None and process.stderr is not None
    out, err = process.stdout.fileno(), process.stderr.fileno()
    read = {out: bytearray(), err: bytearray()}
    over = False
    try:
        with selectors.DefaultSelector() as selector:
            for fd in read:
                selector.register(fd, selectors.EVENT_READ)
            while selector.get_map() and not over:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise subprocess.TimeoutExpired(process.args, timeout)
                for key, _ in selector.select(left):
                    chunk = os.read(key.fd, 65536)
                    if not chunk:
                        selector.unregister(key.fd)
                    read[key.fd] += chunk[: max_bytes + 1 - len(read[key.fd])]
                    over = over or len(read[out]) > max_bytes
                    if len(read[key.fd]) > max_bytes and key.fd == err and key.fd in selector.get_map():
                        selector.unregister(key.fd)  # a chatty stderr: its start is enough
        if over:
            _kill_group(process)
        process.wait(max(0.0, deadline - time.monotonic()))
    except BaseException:  # the deadline, Ctrl-C: nothing it started outlives this call
        _kill_group(process)
        raise
    finally:
        for pipe in (process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()
        process.wait()
        with _RUNNING_LOCK:
            _RUNNING.discard(process.pid)
    return Capped(process.returncode, bytes(read[out][:max_bytes]), bytes(read[err][:max_bytes]), over)
