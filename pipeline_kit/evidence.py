"""The evidence directory: where a release's files live and how they are written.

Layout (default `.pipeline-kit/` under the working directory):

    release.json             the current release: subjects, source, build, evidence digests
    SHA256SUMS               the subjects in `sha256sum -c` format (paths relative to the
                             working directory)
    sbom.cdx.json            CycloneDX SBOM
    provenance.intoto.json   in-toto Statement with an SLSA provenance predicate
    bundles/                 Sigstore bundles: <subject>.sigstore.json for each subject,
                             provenance.sigstore.json and sbom.sigstore.json (DSSE attestations)
    releases/<id>/           a copy of every file above for each release ever built here, so a
                             rollback or audit can reach an older release's evidence

Every file is written atomically; release.json records the sha256 of each evidence file
written after it. release.json is unsigned, so those digests decide nothing: signing uses them
to refuse a file swapped since it was recorded, and evidence leaving with the ledger must match
them; verification checks the files against signed evidence instead.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipeline_kit._internal.files import MAX_EVIDENCE_BYTES, excerpt, read_regular
from pipeline_kit._internal.fs import atomic_write, reached_through_symlink
from pipeline_kit.digest import ChecksumLine, format_checksums, sha256_bytes
from pipeline_kit.errors import InputError, PipelineKitError, UsageError, VerificationError
from pipeline_kit.models import Release, check_release_id, load_model

DEFAULT_DIR_NAME = ".pipeline-kit"
RELEASE_FILE = "release.json"
SUMS_FILE = "SHA256SUMS"
SBOM_FILE = "sbom.cdx.json"
PROVENANCE_FILE = "provenance.intoto.json"
MIGRATIONS_FILE = "migrations.json"  # the release's migration files, classified
CONTRACTS_FILE = "contracts.json"  # the contracts (Pact files) the release expects as a consumer
# Records a gate judges, written before the provenance, which signs each one's digest as a byproduct.
SIGNED_RECORDS = (MIGRATIONS_FILE, CONTRACTS_FILE)
ARCHIVE_DIR = "releases"
# Files describing one particular build: a new build removes them from the top level (their
# copies stay under releases/<old id>/) so stale evidence can never pass for the new release.
DERIVED_FILES = (SBOM_FILE, PROVENANCE_FILE, *SIGNED_RECORDS)
BUNDLES_DIR = "bundles"
TEST_RESULT_BUNDLE = f"{BUNDLES_DIR}/test-result.sigstore.json"  # signed by `attest`, after the build
PROMOTIONS_DIR = "promotions"
CONTRACTS_DIR = "contracts"  # signed verifications of consumers' contracts against this release


def _write_once(name: str) -> bool:
    """What a release's signatures are about (its subjects' list, the SBOM, the provenance and the
    records it signs): never rewritten once the release is signed, so its bundles keep verifying.
    Signing again writes new bundles about the same files; release.json is an index."""
    return name in (SUMS_FILE, *DERIVED_FILES)


class EvidenceDir:
    def __init__(self, root: Path) -> None:
        self.root = root

    def __repr__(self) -> str:
        return f"EvidenceDir({str(self.root)!r})"

    def path(self, name: str) -> Path:
        return self.root / name

    def archive(self, release_id: str) -> Path:
        return self.root / ARCHIVE_DIR / check_release_id(release_id)

    def has_release(self) -> bool:
        return self.path(RELEASE_FILE).is_file()

    def load_release(self) -> Release:
        """The current release; a missing one is a usage error, a corrupt one exit 1."""
        path = self.path(RELEASE_FILE)
        try:
            return load_model(Release, path)
        except FileNotFoundError:
            raise UsageError(f"{path}: no release here", hint="run `pipeline-kit build` first") from None

    def start_release(self, release: Release) -> Release:
        """Write release.json and SHA256SUMS for a new build, retiring stale derived files. A
        release signed before (the same subjects built again) is shown from its archive instead:
        its signed evidence stays exactly as it was signed."""
        self._retire()
        if self.is_signed(release.id):
            return self._show_archived(release)
        sums = format_checksums(ChecksumLine(s.name, s.sha256) for s in release.subjects).encode()
        self._write(release.id, SUMS_FILE, sums)
        release = release.with_evidence(SUMS_FILE, sha256_bytes(sums))
        self._write(release.id, RELEASE_FILE, release.to_json())
        return release

    def record(self, release: Release, name: str, data: bytes) -> Release:
        """Write one evidence file for `release` and note its digest in release.json."""
        return self.record_many(release, {name: data})

    def record_many(self, release: Release, files: dict[str, bytes]) -> Release:
        """Write evidence files (names may contain `/`), then release.json with their digests.

        release.json is written last, so it never names a file that is not there yet; under an
        exclusive lock, merged with what concurrent writers (two promotions at once) recorded.
        """
        with self._locked():
            for name, data in files.items():
                self._write(release.id, name, data)
            current = release
            if self.path(RELEASE_FILE).is_file():
                on_disk = self.load_release()
                if on_disk.id == release.id:
                    # what is on disk was recorded last, under this lock, with the file it names: it
                    # wins over this process's earlier copy (another writer may have replaced both since)
                    current = release.model_copy(update={"evidence": {**release.evidence, **on_disk.evidence}})
            updated = current
            for name, data in files.items():
                updated = updated.with_evidence(name, sha256_bytes(data))
            self._write(release.id, RELEASE_FILE, updated.to_json())
        return updated

    @contextmanager
    def _locked(self) -> Iterator[None]:
        import fcntl

        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "a+b") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    def keep(self, release_id: str, name: str, data: bytes) -> None:
        """Write one file into a release's archive only (e.g. a signed rollback of an older release)."""
        atomic_write(self._inside(self.archive(release_id), name), data)

    def travelling(self, release: Release) -> dict[str, bytes]:
        """What a job elsewhere needs to verify `release`: release.json and every evidence file
        it names but the promotion records (decisions and VSAs travel on their own).

        The names come from release.json, which a job can edit, and the bytes leave with the
        ledger: each must be a regular file inside this directory, reached through no link, at
        most MAX_EVIDENCE_BYTES, holding exactly the bytes whose digest is recorded for it
        (a name that is not there travels without it). Anything else is refused (exit 2)."""
        files = {RELEASE_FILE: self.read(RELEASE_FILE)}
        for name, digest in release.evidence.items():
            if name.startswith(f"{PROMOTIONS_DIR}/"):
                continue
            where = f"evidence[{excerpt(name)}]"
            if Path(name).as_posix() != name or name.startswith("./") or name.endswith("/"):
                raise InputError(self.path(RELEASE_FILE), where, "not a plain path inside the evidence directory")
            try:
                files[name] = self.read(name, digest.get("sha256", ""))
            except FileNotFoundError:
                continue
            except PipelineKitError as exc:
                raise InputError(self.path(RELEASE_FILE), where, exc.message) from None
            except OSError as exc:
                raise InputError(self.path(RELEASE_FILE), where, f"cannot read: {exc.strerror}") from None
            if sum(map(len, files.values())) > MAX_EVIDENCE_BYTES:
                raise InputError(self.path(RELEASE_FILE), "evidence", f"more than {MAX_EVIDENCE_BYTES} bytes in all")
        return files

    def read_checked(self, name: str) -> tuple[bytes | None, str]:
        """`read` for a verifier: the bytes, or None and why not (one line)."""
        try:
            return self.read(name), ""
        except FileNotFoundError:
            return None, "file missing"
        except PipelineKitError as exc:
            return None, exc.message
        except OSError as exc:
            return None, f"cannot read: {exc.strerror}"

    def read(self, name: str, sha256: str | None = None) -> bytes:
        """Evidence file `name`: inside this directory, through no link, regular and bounded;
        given `sha256`, exactly the bytes with that digest. FileNotFoundError when absent."""
        path = self._inside(self.root, name)
        if not path.exists() and not path.is_symlink():
            raise FileNotFoundError(name)
        data = read_regular(path, MAX_EVIDENCE_BYTES)
        if sha256 is not None and sha256_bytes(data) != sha256:
            raise VerificationError(f"{path}: not the file recorded for this release (its sha256 differs)")
        return data

    def restore(self, files: dict[str, bytes]) -> None:
        """Write evidence files that travelled, refusing names that leave this directory or pass
        through a link."""
        for name, data in files.items():
            atomic_write(self._inside(self.root, name), data)

    def has_signatures(self) -> bool:
        """Whether the current release's evidence holds any signature bundle at all."""
        bundles = self.path(BUNDLES_DIR)
        return bundles.is_dir() and any(p.is_file() for p in bundles.rglob("*.sigstore.json"))

    def is_signed(self, release_id: str) -> bool:
        """Whether `release_id`'s archive holds a signature: its build evidence is then written once."""
        bundles = self.archive(release_id) / BUNDLES_DIR
        return bundles.is_dir() and any(bundles.iterdir()) and not reached_through_symlink(bundles, self.root)

    def _retire(self) -> None:
        """Remove the current release's build evidence from the top level (its archive keeps it)."""
        for name in DERIVED_FILES:
            self.path(name).unlink(missing_ok=True)
        for directory in (BUNDLES_DIR, PROMOTIONS_DIR, CONTRACTS_DIR):
            shutil.rmtree(self.path(directory), ignore_errors=True)

    def _show_archived(self, release: Release) -> Release:
        """Copy a release's archive to the top level, as it is (nothing in the archive is rewritten):
        only regular files, none reached through a link, and only when the archive is that
        release's, built the same way (a rebuild never changes what was signed)."""
        archive = self.archive(release.id)
        if reached_through_symlink(archive, self.root):
            raise VerificationError(f"{archive}: refusing a path through a symbolic link in the evidence directory")
        archived = load_model(Release, archive / RELEASE_FILE)
        if archived.id != release.id:
            raise VerificationError(f"{archive}: holds release {archived.id}, not {release.id}")
        if (archived.name, archived.version) != (release.name, release.version):
            raise UsageError(
                f"release {release.id} was signed as {archived.name} {archived.version or ''}".rstrip()
                + f", not {release.name} {release.version or ''}".rstrip(),
                hint="a signed release keeps its name and version; change the source to build a new release",
            )
        for path in sorted(archive.rglob("*")):
            if path.is_file() and not reached_through_symlink(path, archive):
                atomic_write(self._inside(self.root, path.relative_to(archive).as_posix()), path.read_bytes())
        return self.load_release()

    def _write(self, release_id: str, name: str, data: bytes) -> None:
        archived = self._inside(self.archive(release_id), name)
        if _write_once(name) and archived.is_file() and self.is_signed(release_id) and archived.read_bytes() != data:
            raise UsageError(
                f"{archived}: release {release_id} is signed, and its build evidence is written once",
                hint="a signed release is promoted as it was signed; build from a changed source for a new release",
            )
        for target in (archived, self._inside(self.root, name)):
            atomic_write(target, data)

    def _inside(self, root: Path, name: str) -> Path:
        """root/name, refused when it would leave the evidence dir or pass through a symlink
        (a planted link would send the kit's writes wherever the planter chose)."""
        parts = Path(name).parts
        if not parts or Path(name).is_absolute() or ".." in parts:
            raise UsageError(f"{name!r}: not a path inside the evidence directory")
        target = root.joinpath(*parts)
        if reached_through_symlink(target, self.root):
            raise VerificationError(f"{target}: refusing a path through a symbolic link in the evidence directory")
        return target
