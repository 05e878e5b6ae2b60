"""The git backend: the ledger as a JSON-lines file on a dedicated ref of a shared remote.

Each append is one commit on `refs/pipeline-kit/ledger` whose tree holds `ledger.jsonl` with every
entry so far; the previous tip is its only parent, so history is linear. The commit is pushed
without force: the remote accepts it only if the ref still points at the tip it was built on
(compare-and-swap). On a lost race the appender fetches the new tip, re-chains its entry on top
and tries again, so concurrent CI jobs share one history and no entry is lost. Only plumbing
commands are used: the working tree and index are never touched. Attachments are blobs named by
their sha256 under `attachments/` in the same tree, committed with the entry that names them.
"""

from __future__ import annotations

import base64
import os
import random
import subprocess
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline_kit._internal.files import MAX_EVIDENCE_BYTES
from pipeline_kit._internal.proc import child_environment, run_bounded
from pipeline_kit.digest import HEX_SHA256, sha256_bytes
from pipeline_kit.errors import EnvironmentFailure
from pipeline_kit.ledger.interface import Guard, Ledger

if TYPE_CHECKING:
    from pipeline_kit.ledger.entries import Draft, Entry

FILE = "ledger.jsonl"
ATTACHMENTS = "attachments"
# what git needs to reach a remote, besides the scrubbed environment
GIT_TRANSPORT = ("SSH_AUTH_SOCK", "GIT_SSH_COMMAND", "GIT_SSH", "GIT_SSL_CAINFO", "GIT_ASKPASS")
NO_REPOSITORY_PROGRAMS = ("-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false")
ATTEMPTS = 20
MOST_LISTED = 20_000  # attachments kept listed for a tip (about 12 MB); beyond, each is looked up by name


def _credential(token: str) -> dict[str, str]:
    """git configuration, through the environment, that sends `token` as HTTP basic auth (the
    `x-access-token` user GitHub documents; GitLab takes any user with an access token). Kept off
    command lines and out of .git/config, where an uploaded workspace would carry it."""
    existing = os.environ.get("GIT_CONFIG_COUNT", "")
    count = int(existing) if existing.isdigit() else 0
    basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    return {
        "GIT_CONFIG_COUNT": str(count + 1),
        f"GIT_CONFIG_KEY_{count}": "http.extraHeader",
        f"GIT_CONFIG_VALUE_{count}": f"Authorization: Basic {basic}",
    }


class GitLedger(Ledger):
    def __init__(
        self,
        repository: Path,
        remote: str = "origin",
        ref: str = "refs/pipeline-kit/ledger",
        token: str | None = None,
        token_variable: str | None = None,
    ) -> None:
        self.repository = repository
        self.remote = remote
        self.ref = ref
        self._credential = _credential(token) if token else {}
        # the variable the config names when its token is unset: a push needs it, a fetch may not
        self._missing = token_variable if token_variable and not token else None
        self._tip: str | None = None  # the tip entries() last read, for attachment look-ups
        self._listed: tuple[str, dict[str, tuple[str, int]] | None] | None = None  # a tip and its attachments

    def describe(self) -> str:
        return f"{self.remote} {self.ref}"

    def _git(self, *args: str, input: bytes | None = None, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        # git here runs in the project's repository, where a build or deploy script may have
        # planted hooks or an fsmonitor: none runs, and none would see the kit's tokens
        env = {
            **child_environment(os.environ, GIT_TRANSPORT),
            "GIT_AUTHOR_NAME": "pipeline-kit",
            "GIT_AUTHOR_EMAIL": "pipeline-kit@localhost",
            "GIT_COMMITTER_NAME": "pipeline-kit",
            "GIT_COMMITTER_EMAIL": "pipeline-kit@localhost",
            "GIT_TERMINAL_PROMPT": "0",
            **self._credential,
        }
        try:
            result = run_bounded(
                [
                    "git",
                    "-C",
                    str(self.repository),
                    "-c",
                    "core.hooksPath=/dev/null",
                    "-c",
                    "core.fsmonitor=false",
                    *args,
                ],
                input=input,
                env=env,
                timeout=120,
                git=True,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise EnvironmentFailure(f"git {args[0]} failed for the ledger at {self.describe()}: {exc}") from exc
        if check and result.returncode != 0:
            lines = result.stderr.decode(errors="replace").strip().splitlines()
            cause = lines[-1] if lines else f"exit code {result.returncode}"
            raise EnvironmentFailure(f"git {args[0]} failed for the ledger at {self.describe()}: {cause}")
        return result

    def _fetch(self) -> str | None:
        """The remote tip, fetched into a private ref (concurrent jobs in one clone do not clash)."""
        private = f"refs/pipeline-kit/fetch/{uuid.uuid4().hex}"
        result = self._git("fetch", "--quiet", "--no-tags", self.remote, f"+{self.ref}:{private}", check=False)
        if result.returncode != 0:
            stderr = result.stderr.decode(errors="replace")
            if "couldn't find remote ref" in stderr:
                return None  # no ledger yet
            last = stderr.strip().splitlines()[-1:]
            cause = last[0] if last else f"exit code {result.returncode}"
            hint = None
            if self._missing:
                hint = f"the remote may need credentials to fetch: set {self._missing} (ledger.token-variable)"
            raise EnvironmentFailure(f"cannot fetch the ledger {self.describe()}: {cause}", hint=hint)
        tip = self._git("rev-parse", private).stdout.decode().strip()
        self._git("update-ref", "-d", private)
        return tip

    def _content(self, tip: str | None) -> bytes:
        if tip is None:
            return b""
        return self._git("cat-file", "blob", f"{tip}:{FILE}").stdout

    def lines(self) -> list[bytes]:
        self._tip = self._fetch()
        return self._content(self._tip).splitlines()

    def nothing_here(self) -> str:
        if self._tip is None:  # as the last read found it
            return f"no ledger: {self.remote} has no {self.ref}"
        return super().nothing_here()

    def attachment(self, sha256: str) -> bytes | None:
        if not HEX_SHA256.fullmatch(sha256):
            return None
        tip = self._tip or self._fetch()
        if tip is None:
            return None
        listing = self._attachments(tip)
        if listing is None:  # too many to keep listed: by name, its size first
            name = f"{tip}:{ATTACHMENTS}/{sha256}"
            size = self._git("cat-file", "-s", name, check=False).stdout.strip()
            blob, bound = (name, int(size)) if size.isdigit() else (None, 0)
        else:
            blob, bound = listing.get(sha256, (None, 0))
        # whoever can push can put a blob of any size there (the file backend's bound)
        if blob is None or bound > MAX_EVIDENCE_BYTES:
            return None
        found = self._git("cat-file", "blob", blob, check=False)
        return found.stdout if found.returncode == 0 else None

    def _attachments(self, tip: str) -> dict[str, tuple[str, int]] | None:
        """The attachments in `tip`'s tree, name -> (blob, size), listed once a tip so that
        reading many (a timeline, the org line's statements) costs one git call each, not two;
        None when there are more than MOST_LISTED (each is then looked up by name)."""
        if self._listed is None or self._listed[0] != tip:
            # the tree's own entries: an `attachments` that is a gitlink lists as one commit
            listing = self._git("ls-tree", "-l", "-z", tip, "--", f"{ATTACHMENTS}/", check=False)
            records = listing.stdout.split(b"\0")[:-1] if listing.returncode == 0 else []
            found: dict[str, tuple[str, int]] | None = None
            if len(records) <= MOST_LISTED:
                found = {}
                for record in records:
                    fields, _, path = record.decode(errors="replace").partition("\t")
                    parts = fields.split()  # mode, type, blob, size (right-aligned)
                    if len(parts) == 4 and parts[1] == "blob" and parts[3].isdigit():
                        found[path.removeprefix(f"{ATTACHMENTS}/")] = (parts[2], int(parts[3]))
            self._listed = (tip, found)
        return self._listed[1]

    def _tree(self, tip: str | None, ledger: bytes, attachments: Sequence[bytes]) -> str:
        """The tree of the next commit: the ledger file, and every attachment so far plus these."""
        listing = b""
        if tip is not None:
            listing = self._git("ls-tree", f"{tip}:{ATTACHMENTS}", check=False).stdout
        for data in attachments:
            blob = self._git("hash-object", "-w", "--stdin", input=data).stdout.decode().strip()
            listing += f"100644 blob {blob}\t{sha256_bytes(data)}\n".encode()
        blob = self._git("hash-object", "-w", "--stdin", input=ledger).stdout.decode().strip()
        top = f"100644 blob {blob}\t{FILE}\n"
        if listing:
            # mktree wants unique names: an attachment stored again is the same blob
            unique = b"".join(sorted(set(listing.splitlines(keepends=True))))
            subtree = self._git("mktree", input=unique).stdout.decode().strip()
            top += f"040000 tree {subtree}\t{ATTACHMENTS}\n"
        return self._git("mktree", input=top.encode()).stdout.decode().strip()

    def append(self, draft: Draft, attachments: Sequence[bytes] = (), *, guard: Guard | None = None) -> Entry:
        from pipeline_kit.ledger.entries import next_entry, parse_lines

        if self._missing:
            raise EnvironmentFailure(
                f"ledger.token-variable names {self._missing}, which is not set: the git ledger cannot push without it",
                hint=f"set {self._missing} to a token that may push to {self.remote} (in CI, the job's token)",
            )
        for attempt in range(ATTEMPTS):
            tip = self._fetch()
            content = self._content(tip)
            lines = content.splitlines()
            if guard is not None:  # on the tip the push leases: a push after it fails and is judged again
                guard(parse_lines(lines, self.describe()))
            entry = next_entry(draft, lines[-1] if lines else None, self.describe())
            tree = self._tree(tip, content + entry.line(), attachments)
            parents = ["-p", tip] if tip else []
            message = f"{entry.kind} {entry.environment} {entry.release or ''} (seq {entry.seq})".encode()
            commit = self._git("commit-tree", tree, *parents, input=message).stdout.decode().strip()
            # Compare-and-swap: the remote takes the commit only while its ref is still `tip`.
            lease = f"--force-with-lease={self.ref}:{tip or ''}"
            pushed = self._git(
                "push", "--quiet", "--porcelain", lease, self.remote, f"{commit}:{self.ref}", check=False
            )
            if pushed.returncode == 0:
                return entry
            time.sleep(random.uniform(0.01, 0.05) * (attempt + 1))  # noqa: S311 - jitter, not crypto
        raise EnvironmentFailure(f"could not append to the ledger {self.describe()} after {ATTEMPTS} attempts")
