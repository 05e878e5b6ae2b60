"""Licence strings as CycloneDX `licenses` entries, by cyclonedx-python-lib: it knows SPDX
ids and parses expressions. Imported only when a package carries licences."""

from __future__ import annotations

import json

from cyclonedx.model.component import Component, ComponentType
from cyclonedx.model.license import License
from cyclonedx.schema.schema import SchemaVersion1Dot6

try:  # cyclonedx-python-lib >= 11.1 moved the factory; the old path warns
    from cyclonedx.contrib.license.exceptions import InvalidSpdxLicenseException
    from cyclonedx.contrib.license.factories import LicenseFactory
except ImportError:  # pragma: no cover - older library versions
    from cyclonedx.exception.factory import InvalidSpdxLicenseException
    from cyclonedx.factory.license import LicenseFactory


def licenses_json(values: tuple[str, ...]) -> str:
    """The JSON `licenses` array of a component licensed under `values`."""
    holder = Component(type=ComponentType.LIBRARY, name="licences", licenses=license_objects(values))
    return json.dumps(json.loads(holder.as_json(view_=SchemaVersion1Dot6))["licenses"])  # type: ignore[attr-defined]


def license_objects(values: tuple[str, ...]) -> list[License]:
    factory = LicenseFactory()
    if len(values) == 1:
        return [factory.make_from_string(values[0])]
    # CycloneDX allows an expression only on its own; several licences are listed by id/name.
    return [factory.make_with_id(v) if _is_spdx_id(factory, v) else factory.make_with_name(v) for v in values]


def _is_spdx_id(factory: LicenseFactory, value: str) -> bool:
    try:
        factory.make_with_id(value)
    except InvalidSpdxLicenseException:
        return False
    return True
