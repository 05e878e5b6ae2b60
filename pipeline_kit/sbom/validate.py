"""CycloneDX schema validation that does not pay for URL-format checking in pure Python.

cyclonedx-python-lib validates with python-jsonschema, whose `iri-reference` checker builds a
Lark grammar at import and parses every URL with it (python-jsonschema/jsonschema#1392): seconds
for a modest SBOM. The same schemas, shipped inside cyclonedx-python-lib, are checked here with
jsonschema-rs, which implements the same draft-07 keywords and formats natively.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

import jsonschema_rs

SCHEMA_BASE = "http://cyclonedx.org/schema/"
SCHEMA_PACKAGE = "cyclonedx.schema._res"
SCHEMA_FILES = {"1.6": "bom-1.6.SNAPSHOT.schema.json"}


@cache
def _validator(spec_version: str) -> Any:
    files = resources.files(SCHEMA_PACKAGE)
    registry = [
        (SCHEMA_BASE + entry.name, json.loads(entry.read_text(encoding="utf-8")))
        for entry in files.iterdir()
        if entry.name.endswith(".schema.json") and not entry.name.startswith("bom-")
    ]
    schema = json.loads(files.joinpath(SCHEMA_FILES[spec_version]).read_text(encoding="utf-8"))
    return jsonschema_rs.Draft7Validator(
        schema,
        registry=jsonschema_rs.Registry(registry),
        validate_formats=True,
        ignore_unknown_formats=False,
    )


def warm(licensed: bool = False, spec_version: str = "1.6") -> None:
    """Build the validator now (it is cached), so that a later check does not wait for it; and
    import the licence renderer if there may be licences to render. Run in a thread: a failure
    here is left to the code that needs them to report (a thread's traceback would be printed)."""
    try:
        _validator(spec_version)
        if licensed:
            import pipeline_kit.sbom.licenses  # noqa: F401
    except Exception:  # reported where it is used, once, as one line
        return


def schema_errors(document: Any, spec_version: str = "1.6") -> list[str]:
    """Every schema violation in `document`, as `<json path>: <message>` lines."""
    errors = []
    for error in _validator(spec_version).iter_errors(document):
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.instance_path)
        errors.append(f"{where.lstrip('.') or '(document)'}: {error.message}")
    return errors
