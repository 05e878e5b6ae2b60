"""Kill switches in a flagd flag file (https://flagd.dev/reference/flag-definitions/).

`state: DISABLED` is not "off": flagd then answers with the caller's code default. So a kill makes
the flag ENABLED with `defaultVariant` set to its off variant (the variant named `off`, else the
one variant whose value is `false`) and no targeting, so every evaluation gets the off value. What
was there before is kept in the flag's metadata (`pipelineKitKilled`, a JSON string, as flagd's
metadata holds only scalars) for `restore`. The file is validated before anything is written and
replaced atomically (temporary file, then rename): a reader never sees half a file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pipeline_kit._internal.fs import atomic_write
from pipeline_kit.errors import InputError, UsageError
from pipeline_kit.flags.interface import KillSwitches

KILLED = "pipelineKitKilled"
MAX_FILE = 16 << 20


class FlagdFile(KillSwitches):
    kind = "flagd"

    def __init__(self, path: Path) -> None:
        self.path = path

    def _load(self) -> dict[str, Any]:
        try:
            with self.path.open("rb") as handle:
                raw = handle.read(MAX_FILE + 1)
        except OSError as exc:
            raise InputError(self.path, None, f"cannot read the flag file: {exc.strerror}") from exc
        if len(raw) > MAX_FILE:
            raise InputError(self.path, None, f"larger than {MAX_FILE} bytes")
        try:
            document = json.loads(raw)
        except (ValueError, RecursionError) as exc:  # RecursionError: nested past the parser's depth
            raise InputError(self.path, None, f"not JSON: {exc}") from exc
        if not isinstance(document, dict) or not isinstance(document.get("flags"), dict):
            raise InputError(self.path, "flags", "expected a flagd flag file with a flags mapping")
        return document

    def _flag(self, document: dict[str, Any], flag: str) -> dict[str, Any]:
        found = document["flags"].get(flag)
        if not isinstance(found, dict) or not isinstance(found.get("variants"), dict) or not found["variants"]:
            known = ", ".join(sorted(document["flags"])) or "none"
            raise InputError(self.path, f"flags.{flag}", f"no such flag with variants (flags here: {known})")
        return found

    def _off_variant(self, flag: str, variants: dict[str, Any]) -> str:
        if "off" in variants:
            return "off"
        falses = [name for name, value in variants.items() if value is False]
        if len(falses) == 1:
            return falses[0]
        raise InputError(
            self.path, f"flags.{flag}.variants", "no off variant: name one `off`, or give exactly one the value false"
        )

    def kill(self, flag: str, environment: str) -> str:
        document = self._load()
        entry = self._flag(document, flag)
        off = self._off_variant(flag, entry["variants"])
        metadata = _metadata(entry)
        if KILLED in metadata and entry.get("defaultVariant") == off and not entry.get("targeting"):
            return f"{flag} already off in {self.path.name}"
        before = {key: entry[key] for key in ("state", "defaultVariant", "targeting") if key in entry}
        entry.update(
            state="ENABLED",
            defaultVariant=off,
            targeting={},
            metadata={**metadata, KILLED: json.dumps(before, sort_keys=True)},
        )
        self._write(document)
        return f"{flag} off in {self.path.name} (default variant {off}, targeting removed)"

    def restore(self, flag: str, environment: str) -> str:
        document = self._load()
        entry = self._flag(document, flag)
        metadata = _metadata(entry)
        if KILLED not in metadata:
            raise UsageError(f"{flag} in {self.path.name} was not turned off by pipeline-kit: nothing to restore")
        try:
            before = json.loads(metadata.pop(KILLED))
        except (TypeError, ValueError) as exc:
            raise InputError(self.path, f"flags.{flag}.metadata.{KILLED}", "not the saved state") from exc
        for key in ("state", "defaultVariant", "targeting"):
            entry.pop(key, None)
        entry.update(before)
        if metadata:
            entry["metadata"] = metadata
        else:
            entry.pop("metadata", None)
        self._write(document)
        return f"{flag} restored in {self.path.name} (default variant {entry.get('defaultVariant')})"

    def _write(self, document: dict[str, Any]) -> None:
        atomic_write(self.path, (json.dumps(document, indent=2) + "\n").encode())


def _metadata(entry: dict[str, Any]) -> dict[str, Any]:
    found = entry.get("metadata")
    return dict(found) if isinstance(found, dict) else {}
