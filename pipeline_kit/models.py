"""Typed value objects for everything the kit writes to disk.

Frozen pydantic models that forbid unknown keys and round-trip through JSON with the camelCase
names the files use. A model is the only way evidence is read or written, so a file that does
not match its schema is rejected with the field named, never half-understood.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

from pipeline_kit._internal.validation import dotted, first_problem
from pipeline_kit.digest import HEX_SHA256, check_subject_name
from pipeline_kit.errors import UsageError, VerificationError

Platform = Literal["github", "gitlab", "local"]


class Model(BaseModel):
    # defer_build: a model's validator is built on first use, so a command pays only for the
    # models it reads (building all of them took a tenth of a second at every start)
    model_config = ConfigDict(
        frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True, defer_build=True
    )

    def to_json(self, *, exclude_none: bool = False) -> bytes:
        """Stable, human-readable JSON (two-space indent, trailing newline)."""
        text = self.model_dump_json(by_alias=True, indent=2, exclude_none=exclude_none)
        return (text + "\n").encode()


M = TypeVar("M", bound=Model)


def load_model(model: type[M], path: Path) -> M:
    """Read a model from a JSON file; a corrupt file names the file and field (exit 1)."""
    from pipeline_kit._internal.files import MAX_EVIDENCE_BYTES, read_regular
    from pipeline_kit.errors import PipelineKitError

    if not path.exists() and not path.is_symlink():
        raise FileNotFoundError(path)
    try:  # regular and bounded: a FIFO or /dev/zero in its place must not hang or fill memory
        text = read_regular(path, MAX_EVIDENCE_BYTES)
    except PipelineKitError as exc:
        raise VerificationError(exc.message) from None
    except OSError as exc:
        raise VerificationError(f"{path}: cannot read ({exc.strerror})") from exc
    try:
        return model.model_validate_json(text)
    except ValidationError as exc:
        loc, problem = first_problem(exc)
        raise VerificationError(f"{path}: {dotted(loc)}: {problem}") from exc


class Subject(Model):
    """One artifact of the release, identified by its digest."""

    name: str
    digest: dict[str, str]
    size: int | None = None

    @field_validator("name")
    @classmethod
    def _name_is_relative_path(cls, value: str) -> str:
        problem = check_subject_name(value)
        if problem:
            raise ValueError(f"subject name {problem}")
        return value

    @field_validator("digest")
    @classmethod
    def _has_sha256(cls, value: dict[str, str]) -> dict[str, str]:
        if not HEX_SHA256.match(value.get("sha256", "")):
            raise ValueError("digest must contain a lowercase hex sha256")
        return value

    @property
    def sha256(self) -> str:
        return self.digest["sha256"]


class Source(Model):
    """Where the release came from; URIs never carry credentials."""

    repository: str | None = None
    commit: str | None = None
    ref: str | None = None


class Build(Model):
    """Who built the release, how, and when."""

    platform: Platform
    builder_id: str
    invocation_uri: str | None = None
    command: tuple[str, ...] | None = None
    started_on: datetime | None = None
    finished_on: datetime | None = None


LABEL = r"^[^\x00-\x1f\x7f]+$"  # a release name or version: one line, no control characters
LABEL_MAX = 200


def label_problem(value: str) -> str | None:
    """Why `value` cannot be a release name or version, if it cannot."""
    if not value or len(value) > LABEL_MAX:
        return f"must be 1 to {LABEL_MAX} characters"
    if not re.match(LABEL, value):
        return "must be one line without control characters"
    return None


class Release(Model):
    """release.json: the subjects of one release and the evidence recorded about them."""

    schema_: Literal["pipeline-kit/release/v1"] = Field(default="pipeline-kit/release/v1", alias="schema")
    id: str
    name: str = Field(min_length=1, max_length=LABEL_MAX, pattern=LABEL)  # one printable line
    version: str | None = Field(default=None, max_length=LABEL_MAX, pattern=LABEL)
    subjects: tuple[Subject, ...] = Field(min_length=1)
    source: Source
    build: Build
    kit_version: str
    evidence: dict[str, dict[str, str]] = Field(default_factory=dict)

    @field_validator("subjects")
    @classmethod
    def _unique_names(cls, value: tuple[Subject, ...]) -> tuple[Subject, ...]:
        names = [subject.name for subject in value]
        if len(set(names)) != len(names):
            raise ValueError("subject names must be unique")
        return value

    @model_validator(mode="after")
    def _id_is_derived(self) -> Release:
        # The id is an index, never a claim: it is recomputed from the subjects on every load,
        # so a release relabelled with another's id (to inherit its promotions) is refused.
        expected = release_id(self.subjects)
        if self.id != expected:
            raise ValueError(f"id {self.id[:40]!r} is not the one its subjects give ({expected})")
        return self

    def with_evidence(self, name: str, sha256: str) -> Release:
        evidence = dict(self.evidence)
        evidence[name] = {"sha256": sha256}
        return self.model_copy(update={"evidence": dict(sorted(evidence.items()))})


RELEASE_ID = re.compile(r"[0-9a-f]{32}")  # 128 bits of sha256: ids name directories and authorise history


def release_id(subjects: tuple[Subject, ...]) -> str:
    """A stable handle derived only from the subjects' names and digests."""
    return release_id_of((subject.name, subject.sha256) for subject in subjects)


def release_id_of(subjects: Iterable[tuple[str, str]]) -> str:
    """`release_id` of (name, sha256) pairs, as a signed statement's subjects give them."""
    canonical = json.dumps(sorted([name, sha256] for name, sha256 in subjects), separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def check_release_id(value: str) -> str:
    """`value` if it has the shape of a release id (so it is safe as a path component), else exit 2."""
    if not RELEASE_ID.fullmatch(value):
        raise UsageError(f"{value[:40]!r} is not a release id (32 lowercase hex digits)")
    return value
