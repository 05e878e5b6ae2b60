"""The ledger: tamper evidence, concurrent writers, a writer killed mid-append, the git backend."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from pipeline_kit.errors import VerificationError
from pipeline_kit.ledger import Draft, FileLedger, GitLedger, Ledger
from tests.conftest import LEDGER, Cli, git

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)


def draft(n: int, env: str = "dev") -> Draft:
    return Draft(kind="promoted", environment=env, release=f"r{n:04}", actor="t", time=NOW, reason=f"entry {n}")


def filled(tmp_path: Path, count: int = 5) -> FileLedger:
    ledger = FileLedger(tmp_path / "ledger.jsonl")
    for n in range(count):
        ledger.append(draft(n))
    return ledger


def test_append_chains_and_verifies(tmp_path: Path) -> None:
    ledger = filled(tmp_path)
    entries = ledger.verify()
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert entries[0].prev == "0" * 64
    assert all(b.prev == a.hash for a, b in itertools.pairwise(entries))


def lines(ledger: FileLedger) -> list[bytes]:
    return ledger.path.read_bytes().splitlines(keepends=True)


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        ("edit", "line 3 (seq 3) was edited"),
        ("byte", "line 3"),
        ("drop", "line 3 has seq 4: an entry was dropped, inserted or reordered before it"),
        ("insert", "line 4 (seq 4) does not follow the entry before it"),
        ("reorder", "line 2 has seq 3"),
        ("truncate-front", "line 1 has seq 2"),
    ],
)
def test_tampering_is_detected_and_named(tmp_path: Path, tamper: str, message: str) -> None:
    ledger = filled(tmp_path)
    content = lines(ledger)
    if tamper == "edit":
        entry = json.loads(content[2])
        entry["reason"] = "nothing to see"
        content[2] = (json.dumps(entry, sort_keys=True, separators=(",", ":")) + "\n").encode()
    elif tamper == "byte":
        content[2] = content[2].replace(b"entry 2", b"entry X")
    elif tamper == "drop":
        del content[2]
    elif tamper == "insert":
        # a well-formed entry, correctly hashed, spliced in from another ledger
        other = FileLedger(tmp_path / "other.jsonl")
        for n in range(4):
            other.append(draft(n, env="prod"))
        content.insert(3, lines(other)[3])
    elif tamper == "reorder":
        content[1], content[2] = content[2], content[1]
    elif tamper == "truncate-front":
        del content[0]
    ledger.path.write_bytes(b"".join(content))
    with pytest.raises(VerificationError, match=re.escape(message)):
        ledger.verify()


def test_a_line_is_hashed_over_its_stored_bytes(tmp_path: Path) -> None:
    """The oracle is hashlib over the bytes on disk, not the kit's own serialiser."""
    ledger = filled(tmp_path, 2)
    first, second = (line.rstrip(b"\n") for line in lines(ledger))
    head, body = first.split(b",", 1)
    assert head.startswith(b'{"hash":"')
    assert hashlib.sha256(b"{" + body).hexdigest() == json.loads(first)["hash"]
    assert json.loads(second)["prev"] == json.loads(first)["hash"]
    assert ledger.check() == (2, json.loads(second)["hash"])


def legacy_line(fields: dict[str, Any]) -> bytes:
    """A line as 0.1 wrote it: sorted keys, the hash over the canonical JSON of every other field."""
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    return (json.dumps({**fields, "hash": digest}, sort_keys=True, separators=(",", ":")) + "\n").encode()


def test_a_ledger_written_by_0_1_still_verifies_and_grows(tmp_path: Path) -> None:
    prev, content = "0" * 64, b""
    for seq in (1, 2):
        fields = {**draft(seq).model_dump(mode="json"), "seq": seq, "prev": prev}
        line = legacy_line(fields)
        content, prev = content + line, json.loads(line)["hash"]
    ledger = FileLedger(tmp_path / "ledger.jsonl")
    ledger.path.write_bytes(content)
    appended = ledger.append(draft(3))
    assert appended.prev == prev
    assert [e.release for e in ledger.verify()] == ["r0001", "r0002", "r0003"]
    edited = content.replace(b"entry 2", b"entry X") + lines(ledger)[-1]
    ledger.path.write_bytes(edited)
    with pytest.raises(VerificationError, match=re.escape("line 2 (seq 2) was edited")):
        ledger.check()


def test_a_field_repeated_after_the_framing_is_refused(tmp_path: Path) -> None:
    """JSON parsers keep the last of two equal keys: a second "release" is covered by the hash, but
    a second "hash", "prev" or "seq" would let the parsed entry differ from the verified chain."""
    ledger = filled(tmp_path, 1)
    line = lines(ledger)[0].rstrip(b"\n")
    forged = line[:-1] + b',"seq":7}'
    digest = hashlib.sha256(b"{" + forged.split(b",", 1)[1]).hexdigest().encode()
    forged = forged[:9] + digest + forged[73:]
    ledger.path.write_bytes(forged + b"\n")
    assert ledger.check() == (1, digest.decode())  # the bytes are intact...
    with pytest.raises(VerificationError, match="line 1: not a ledger entry"):
        ledger.verify()  # ...but what a parser reads is not what was chained


def test_cli_ledger_verify_names_the_edited_line(cli: Cli, tmp_path: Path) -> None:
    ledger = FileLedger(tmp_path / LEDGER)
    for n in range(3):
        ledger.append(draft(n))
    assert cli(["ledger", "verify"], cwd=tmp_path).code == 0
    data = bytearray(ledger.path.read_bytes())
    data[data.index(b"entry 1")] ^= 0x01  # one byte of one line
    ledger.path.write_bytes(bytes(data))
    result = cli(["ledger", "verify"], cwd=tmp_path)
    assert result.code == 1
    assert "ledger.jsonl: line 2 (seq 2) was edited" in result.err
    shown = cli(["ledger", "show", "--json"], cwd=tmp_path)
    assert [e["seq"] for e in json.loads(shown.out)] == [1, 2, 3]


APPENDER = """
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from pipeline_kit.ledger import Draft, FileLedger, GitLedger
backend, where, name, count = sys.argv[1], Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
ledger = FileLedger(where) if backend == "file" else GitLedger(where)
for n in range(count):
    ledger.append(Draft(kind="promoted", environment="dev", release=f"{name}-{n}", actor=name,
                        time=datetime.now(timezone.utc), reason="x" * 2000))
"""


def appenders(backend: str, places: list[Path], count: int) -> None:
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", APPENDER, backend, str(place), f"w{i}", str(count)],
            stderr=subprocess.PIPE,
            text=True,
        )
        for i, place in enumerate(places)
    ]
    for process in processes:
        _, err = process.communicate(timeout=300)
        assert process.returncode == 0, err


def test_concurrent_file_appenders_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    appenders("file", [path] * 4, 40)
    entries = FileLedger(path).verify()
    assert len(entries) == 160
    assert sorted(e.release or "" for e in entries) == sorted(f"w{i}-{n}" for i in range(4) for n in range(40))


def test_a_writer_killed_mid_append_leaves_a_ledger_that_verifies(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    for attempt in range(5):
        process = subprocess.Popen([sys.executable, "-c", APPENDER, "file", str(path), f"k{attempt}", "100000"])
        deadline = time.monotonic() + 10
        while (not path.exists() or path.stat().st_size < 20000 * (attempt + 1)) and time.monotonic() < deadline:
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
        process.wait()
        before = FileLedger(path).verify()
        assert before, "the writer appended nothing before it was killed"
    # a torn tail, as a kill between write() and its completion would leave
    with open(path, "ab") as handle:
        handle.write(b'{"kind":"promoted","environment":"dev","rel')
    ledger = FileLedger(path)
    count = len(ledger.verify())
    ledger.append(draft(999))
    after = ledger.verify()
    assert len(after) == count + 1 and after[-1].release == "r0999"


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    bare = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
    return bare


def clone(remote: Path, where: Path) -> Path:
    subprocess.run(["git", "clone", "-q", str(remote), str(where)], check=True, capture_output=True)
    return where


def test_git_ledger_concurrent_promoters_share_one_linear_history(tmp_path: Path, remote: Path) -> None:
    jobs = [clone(remote, tmp_path / f"job{i}") for i in range(4)]
    appenders("git", jobs, 8)
    ledger = GitLedger(jobs[0])
    entries = ledger.verify()
    assert len(entries) == 32
    assert sorted(e.release or "" for e in entries) == sorted(f"w{i}-{n}" for i in range(4) for n in range(8))
    history = git(remote, "rev-list", "--parents", "refs/pipeline-kit/ledger").splitlines()
    assert len(history) == 32
    assert all(len(line.split()) <= 2 for line in history)  # one parent each: linear
    # the working tree and index of the job checkouts were never touched
    assert git(jobs[0], "status", "--porcelain") == ""


def test_git_ledger_tampered_remote_is_detected(tmp_path: Path, remote: Path) -> None:
    job = clone(remote, tmp_path / "job")
    ledger = GitLedger(job)
    for n in range(3):
        ledger.append(draft(n))
    # rewrite history on the remote: edit the second entry and force-push
    work = clone(remote, tmp_path / "attacker")
    git(work, "fetch", "-q", "origin", "refs/pipeline-kit/ledger:refs/heads/ledger")
    git(work, "checkout", "-q", "ledger")
    path = work / "ledger.jsonl"
    path.write_text(path.read_text().replace("entry 1", "entry Z"))
    git(work, "commit", "-q", "-am", "edit")
    git(work, "push", "-q", "--force", "origin", "ledger:refs/pipeline-kit/ledger")
    with pytest.raises(VerificationError, match="line 2 \\(seq 2\\) was edited"):
        ledger.verify()


def test_git_ledger_unreachable_remote_fails_closed(tmp_path: Path) -> None:
    job = tmp_path / "job"
    job.mkdir()
    git(job, "init", "-q")
    git(job, "remote", "add", "origin", str(tmp_path / "missing.git"))
    from pipeline_kit.errors import EnvironmentFailure

    with pytest.raises(EnvironmentFailure, match="cannot fetch the ledger"):
        GitLedger(job).append(draft(1))


def writer_and_reader(tmp_path: Path, backend: str) -> tuple[Ledger, Ledger]:
    """Two jobs' views of one ledger: two clones of one remote (git), or one file."""
    if backend == "git":
        bare = tmp_path / "remote.git"
        subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
        return GitLedger(clone(bare, tmp_path / "job1")), GitLedger(clone(bare, tmp_path / "job2"))
    ledger = FileLedger(tmp_path / "ledger.jsonl")
    return ledger, ledger


@pytest.mark.parametrize("backend", ["file", "git"])
def test_attachments_are_kept_beside_the_entries_by_digest(tmp_path: Path, backend: str) -> None:
    # A later job (another clone) finds the VSA an entry names, by its digest, in the ledger itself.
    import hashlib

    writer, reader = writer_and_reader(tmp_path, backend)
    first, second = b'{"vsa": 1}', b'{"vsa": 2}'
    writer.append(draft(1), [first])
    writer.append(draft(2))  # no attachment: the earlier ones stay
    writer.append(draft(3), [second, first])  # an attachment stored twice is the same one
    assert len(reader.verify()) == 3
    for data in (first, second):
        assert reader.attachment(hashlib.sha256(data).hexdigest()) == data
    assert reader.attachment("0" * 64) is None
    assert reader.attachment("../../etc/passwd") is None  # a digest, never a path


# the git backend keeps a tip's attachments listed up to MOST_LISTED, and looks each up by name
# beyond: both ways are tried (git-by-name lists none)
BACKENDS = ["file", "git", "git-by-name"]


def by_name(backend: str, monkeypatch: pytest.MonkeyPatch) -> str:
    if backend == "git-by-name":
        monkeypatch.setattr("pipeline_kit.ledger.git.MOST_LISTED", 0)
        return "git"
    return backend


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_reader_finds_the_attachments_of_the_entries_it_read_last(
    tmp_path: Path, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the git backend lists a tip's attachments once: a reader that read them at one tip must
    # find those a later entry brought once it has read that entry, whatever it listed before
    import hashlib

    writer, reader = writer_and_reader(tmp_path, by_name(backend, monkeypatch))
    first, second = b'{"vsa": 1}', b'{"vsa": 2}'
    writer.append(draft(1), [first])
    assert len(reader.verify()) == 1
    assert reader.attachment(hashlib.sha256(first).hexdigest()) == first
    writer.append(draft(2), [second])
    assert len(reader.verify()) == 2
    assert reader.attachment(hashlib.sha256(second).hexdigest()) == second
    assert reader.attachment(hashlib.sha256(first).hexdigest()) == first


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_attachment_beyond_the_evidence_bound_is_not_read(
    tmp_path: Path, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # whoever can push to a shared ledger can put a blob of any size under attachments/: every
    # reader (a promotion reading VSAs, a project reading the org's line) would hold all of it
    import hashlib

    from pipeline_kit._internal.files import MAX_EVIDENCE_BYTES

    bound = MAX_EVIDENCE_BYTES
    if backend == "git-by-name":  # the same check on another path: at the real bound once is enough
        bound = 4096
        monkeypatch.setattr("pipeline_kit.ledger.git.MAX_EVIDENCE_BYTES", bound)
    writer, reader = writer_and_reader(tmp_path, by_name(backend, monkeypatch))
    big, small = b"x" * (bound + 1), b"y" * bound
    writer.append(draft(1), [big, small])
    assert len(reader.verify()) == 1
    assert reader.attachment(hashlib.sha256(big).hexdigest()) is None
    assert reader.attachment(hashlib.sha256(small).hexdigest()) == small  # the bound itself is read


@pytest.mark.parametrize("backend", ["git", "git-by-name"])
def test_an_attachments_entry_that_is_no_tree_of_the_ledger_holds_nothing(
    tmp_path: Path, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a ledger whose `attachments` is a gitlink to a commit this clone holds (one of the project's
    # own): its files are not the ledger's, and none is read as an attachment
    import hashlib

    by_name(backend, monkeypatch)
    remote, project = tmp_path / "remote.git", tmp_path / "project"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    subprocess.run(["git", "init", "-q", str(project)], check=True)

    def git(*args: str, input: bytes | None = None) -> str:
        done = subprocess.run(["git", "-C", str(project), *args], input=input, capture_output=True, check=True)
        return done.stdout.decode().strip()

    digest = hashlib.sha256(b"not an attachment").hexdigest()
    (project / digest).write_bytes(b"not an attachment")
    git("add", digest)
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "the project's own")
    own = git("rev-parse", "HEAD")
    empty = git("hash-object", "-w", "--stdin", input=b"")
    top = git("mktree", input=f"100644 blob {empty}\tledger.jsonl\n160000 commit {own}\tattachments\n".encode())
    git("push", "-q", str(remote), f"{git('commit-tree', top, '-m', 'ledger')}:refs/pipeline-kit/ledger")
    git("remote", "add", "origin", str(remote))
    reader = GitLedger(project)
    assert reader.lines() == []
    assert reader.attachment(digest) is None


class SmartHttpGit:
    """A real git smart-HTTP server (`git http-backend` behind wsgiref) on 127.0.0.1 that takes
    only one token, as HTTP basic auth the way GitHub and GitLab do for HTTPS remotes."""

    def __init__(self, root: Path, token: str) -> None:
        import base64
        import threading
        from wsgiref.simple_server import WSGIRequestHandler, make_server

        self.root = root
        self.expected = "Basic " + base64.b64encode(f"x-access-token:{token}".encode()).decode()
        self.refused = 0

        class Quiet(WSGIRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = make_server("127.0.0.1", 0, self.app, handler_class=Quiet)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def app(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        if environ.get("HTTP_AUTHORIZATION") != self.expected:
            self.refused += 1
            start_response("401 Unauthorized", [("WWW-Authenticate", 'Basic realm="git"')])
            return [b"unauthorized\n"]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        cgi = {
            "PATH": os.environ["PATH"],
            "GIT_PROJECT_ROOT": str(self.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "REMOTE_USER": "x-access-token",  # authenticated: receive-pack is allowed
            **{k: str(environ.get(k, "")) for k in ("REQUEST_METHOD", "PATH_INFO", "QUERY_STRING", "CONTENT_TYPE")},
            "CONTENT_LENGTH": str(len(body)),
        }
        done = subprocess.run(["git", "http-backend"], input=body, env=cgi, capture_output=True, check=True)
        head, _, payload = done.stdout.partition(b"\r\n\r\n")
        headers = [tuple(h.split(": ", 1)) for h in head.decode().split("\r\n") if h]
        status = dict(headers).pop("Status", "200 OK")
        start_response(status, [(k, v) for k, v in headers if k != "Status"])
        return [payload]

    def stop(self) -> None:
        self.server.shutdown()


def test_git_ledger_pushes_over_https_with_a_token_from_the_named_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline_kit.config import LedgerConfig
    from pipeline_kit.errors import EnvironmentFailure
    from pipeline_kit.ledger import open_ledger

    token = "ghs_" + "s3cr3t" * 6
    bare = tmp_path / "srv" / "app.git"
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
    server = SmartHttpGit(bare.parent, token)
    try:
        job = tmp_path / "job"  # a checkout with persist-credentials: false: no credential at all
        job.mkdir()
        git(job, "init", "-q")
        git(job, "remote", "add", "origin", f"{server.url}/app.git")
        config = LedgerConfig(backend="git", token_variable="LEDGER_TOKEN")
        monkeypatch.delenv("LEDGER_TOKEN", raising=False)
        # unset: only a push demands it; a fetch this remote refuses says which variable to set
        with pytest.raises(EnvironmentFailure, match=r"ledger\.token-variable names LEDGER_TOKEN, which is not set"):
            open_ledger(config, job).append(draft(1))
        with pytest.raises(EnvironmentFailure, match="cannot fetch the ledger") as refused:
            open_ledger(config, job).lines()
        assert refused.value.hint is not None and "set LEDGER_TOKEN" in refused.value.hint
        monkeypatch.setenv("LEDGER_TOKEN", "wrong")
        with pytest.raises(EnvironmentFailure, match="ledger"):
            open_ledger(config, job).append(draft(1))
        assert server.refused >= 1
        # the right token: the entries reach the remote ref, and the token is on no command line
        # and in no git config file
        monkeypatch.setenv("LEDGER_TOKEN", token)
        commands: list[list[str]] = []
        real_run = subprocess.run

        def recording(args: list[str], **kwargs: Any) -> Any:
            commands.append(list(args))
            return real_run(args, **kwargs)

        monkeypatch.setattr(subprocess, "run", recording)
        ledger = open_ledger(config, job)
        ledger.append(draft(1))
        ledger.append(draft(2))
        monkeypatch.setattr(subprocess, "run", real_run)
        assert [e.release for e in ledger.verify()] == ["r0001", "r0002"]
        assert git(bare, "rev-list", "--count", "refs/pipeline-kit/ledger").strip() == "2"
        assert commands and not any(token in " ".join(c) for c in commands)
        assert token not in (job / ".git" / "config").read_text()
    finally:
        server.stop()


def test_git_ledger_reads_without_its_push_token_and_asks_for_it_only_to_push(
    tmp_path: Path, remote: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # docs/multi-job.md recommends `token-variable: GITHUB_TOKEN`; locally it is unset, and a dry
    # run or a plan only reads the ledger: reading works, and only an append asks for the token.
    from pipeline_kit.config import LedgerConfig
    from pipeline_kit.errors import EnvironmentFailure
    from pipeline_kit.ledger import open_ledger

    GitLedger(clone(remote, tmp_path / "ci")).append(draft(1))  # CI wrote one entry, with its token
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    local = open_ledger(LedgerConfig(backend="git", token_variable="GITHUB_TOKEN"), clone(remote, tmp_path / "me"))
    assert [e.release for e in local.verify()] == ["r0001"]
    with pytest.raises(EnvironmentFailure, match="GITHUB_TOKEN, which is not set") as refused:
        local.append(draft(2))
    assert refused.value.hint is not None and "set GITHUB_TOKEN" in refused.value.hint
    assert git(remote, "rev-list", "--count", "refs/pipeline-kit/ledger").strip() == "1"


def test_git_ledger_runs_no_program_planted_in_the_repository(
    tmp_path: Path, remote: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The attack: a deploy script writes .git/hooks/reference-transaction (or an fsmonitor); the
    # kit's next ledger append ran it with the kit's whole environment, tokens included.
    job = clone(remote, tmp_path / "job")
    marker = tmp_path / "hook-ran.txt"
    hook = job / ".git" / "hooks" / "reference-transaction"
    hook.write_text(f"#!/bin/sh\nenv >> {marker}\n")
    hook.chmod(0o755)
    (job / ".git" / "fsmonitor.sh").write_text(f"#!/bin/sh\nenv >> {marker}\n")
    (job / ".git" / "fsmonitor.sh").chmod(0o755)
    subprocess.run(["git", "-C", str(job), "config", "core.fsmonitor", str(job / ".git" / "fsmonitor.sh")], check=True)
    monkeypatch.setenv("SIGSTORE_IDENTITY_TOKEN", "canary-identity")
    ledger = GitLedger(job)
    ledger.append(draft(1))
    assert [e.release for e in ledger.verify()] == ["r0001"]
    assert not marker.exists()
