"""An installed Python environment, inspected by running its own interpreter.

The interpreter runs isolated (`-I -S`: no user site, no working directory on the path, no
`.pth` files executed) with a small script that reads the distributions' metadata from the
environment's site-packages (found as site.py would, without running it) and prints JSON; the
kit never imports foreign code.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
from pathlib import Path
from typing import Any

from pipeline_kit._internal.proc import child_environment, run_bounded
from pipeline_kit._internal.redact import strip_credentials
from pipeline_kit.errors import EnvironmentFailure, InputError, UsageError
from pipeline_kit.sbom._graph import by_name
from pipeline_kit.sbom.interface import (
    Distribution,
    Package,
    SbomSource,
    SourceResult,
    make_purl,
    normalize_python_name,
)

TIMEOUT_SECONDS = 120

# Runs inside the target interpreter: keep it compatible with Python 3.8 and self-contained.
_INSPECT = r"""
import json, os, platform, site, sys
from importlib import metadata
# site.main() is not run (-S), so find a virtual environment the way site.venv() does, but
# only compute its site-packages paths: addsitedir() would execute .pth files.
prefixes = [sys.prefix]
exe_dir = os.path.dirname(os.path.abspath(sys.executable))
for conf in (os.path.join(exe_dir, "pyvenv.cfg"), os.path.join(os.path.dirname(exe_dir), "pyvenv.cfg")):
    if os.path.isfile(conf):
        system_site = False
        with open(conf, encoding="utf-8") as handle:
            for line in handle:
                key, sep, value = line.partition("=")
                if sep and key.strip().lower() == "include-system-site-packages":
                    system_site = value.strip().lower() == "true"
        prefixes = [os.path.dirname(conf)] + (prefixes if system_site else [])
        break
paths = []
for p in site.getsitepackages(prefixes):
    if p not in paths and os.path.isdir(p):
        paths.append(p)
out, seen = [], set()
for dist in metadata.distributions(path=paths):
    meta = dist.metadata
    name = meta["Name"]
    if not name:
        continue
    key = name.lower().replace("_", "-").replace(".", "-")
    if key in seen:
        continue
    seen.add(key)
    direct = None
    try:
        text = dist.read_text("direct_url.json")
        direct = json.loads(text) if text else None
    except Exception:
        direct = None
    out.append({
        "name": name,
        "version": meta["Version"],
        "license_expression": meta.get("License-Expression"),
        "license": meta.get("License"),
        "classifiers": [c for c in (meta.get_all("Classifier") or []) if c.startswith("License ::")],
        "requires": dist.requires or [],
        "direct_url": direct,
    })
env = {
    "implementation_name": sys.implementation.name,
    "implementation_version": platform.python_version(),
    "os_name": os.name,
    "platform_machine": platform.machine(),
    "platform_release": platform.release(),
    "platform_system": platform.system(),
    "platform_version": platform.version(),
    "python_full_version": platform.python_version(),
    "platform_python_implementation": platform.python_implementation(),
    "python_version": ".".join(platform.python_version_tuple()[:2]),
    "sys_platform": sys.platform,
}
json.dump({"paths": paths, "environment": env, "distributions": out}, sys.stdout)
"""


class Environment(SbomSource):
    kind = "environment"
    licensed = True

    def read(self, path: Path, label: str) -> SourceResult:
        report = self._inspect(path)
        markers = report.get("environment", {})
        packages = []
        requires: dict[str, list[str]] = {}
        for dist in report.get("distributions", []):
            name, version = dist["name"], dist.get("version")
            purl = make_purl("pypi", normalize_python_name(name), version)
            distributions: tuple[Distribution, ...] = ()
            direct = dist.get("direct_url")
            url = direct.get("url") if isinstance(direct, dict) else None
            # file: URLs name a path on the machine that installed it, not a distribution.
            if isinstance(url, str) and not url.startswith("file:"):
                distributions = (Distribution(strip_credentials(url)),)
            packages.append(
                Package(
                    ref=purl,
                    name=name,
                    version=version,
                    purl=purl,
                    licenses=_licenses(dist),
                    distributions=distributions,
                )
            )
            requires[purl] = dist.get("requires") or []
        index = by_name(packages)
        linked = []
        for package in packages:
            refs: dict[str, None] = {}
            for text in requires[package.ref]:
                dep = _applicable(text, markers)
                for candidate in index.get(normalize_python_name(dep or ""), ()):
                    refs[candidate.ref] = None
            linked.append(dataclasses.replace(package, dependencies=tuple(refs)))
        return SourceResult(label, self.kind, tuple(linked))

    @staticmethod
    def _inspect(interpreter: Path) -> dict[str, Any]:
        if not interpreter.exists():
            raise UsageError(f"{interpreter}: Python interpreter not found")
        try:
            result = run_bounded(
                [str(interpreter), "-I", "-S", "-c", _INSPECT],
                env=child_environment(os.environ),  # the project's interpreter: not the kit's secrets
                timeout=TIMEOUT_SECONDS,
                text=True,
            )
        except subprocess.TimeoutExpired:
            raise EnvironmentFailure(
                f"{interpreter}: inspecting the environment timed out after {TIMEOUT_SECONDS}s"
            ) from None
        except OSError as exc:
            raise UsageError(f"{interpreter}: cannot run it as a Python interpreter: {exc.strerror}") from exc
        if result.returncode != 0:
            last = (result.stderr.strip().splitlines() or ["no output"])[-1]
            raise EnvironmentFailure(f"{interpreter}: environment inspection failed: {last}")
        try:
            report = json.loads(result.stdout)
        except json.JSONDecodeError as exc:
            raise InputError(interpreter, None, "the interpreter printed something other than JSON") from exc
        if not isinstance(report, dict):
            raise InputError(interpreter, None, "unexpected inspection output")
        return report


def _applicable(text: str, environment: dict[str, str]) -> str | None:
    """The name a Requires-Dist entry names, if its marker holds here without extras."""
    # packaging loads in a few hundredths of a second: only where an environment is described
    from packaging.markers import InvalidMarker, UndefinedComparison, UndefinedEnvironmentName
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        requirement = Requirement(text)
        if requirement.marker is not None and not requirement.marker.evaluate({**environment, "extra": ""}):
            return None
    except (InvalidRequirement, InvalidMarker, UndefinedComparison, UndefinedEnvironmentName):
        return None
    return requirement.name


def _licenses(dist: dict[str, Any]) -> tuple[str, ...]:
    """PEP 639 expression first, then the licence classifiers, then a short License field."""
    if dist.get("license_expression"):
        return (str(dist["license_expression"]),)
    classifiers = [c.split(" :: ")[-1] for c in dist.get("classifiers", [])]
    if classifiers:
        return tuple(dict.fromkeys(classifiers))
    text = (dist.get("license") or "").strip()
    if text and "\n" not in text and len(text) <= 100 and text.upper() != "UNKNOWN":
        return (text,)
    return ()
