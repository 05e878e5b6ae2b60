"""Asking an environment what it runs: the `probe:` command or URL, bounded in time and in what it
may answer. The probe is never told what the kit expects (no release id, no digest): a probe that
could echo the expectation would always be in sync."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

from pipeline_kit._internal.proc import child_environment, run_capped
from pipeline_kit.config import ProbeConfig
from pipeline_kit.errors import first_line

# An answer is one short token (a digest, a release id or a version): more is not an answer.
MAX_ANSWER_BYTES = 4096
SHOWN = 80  # characters of an answer or a diagnostic quoted in the report and the ledger


@dataclass(frozen=True)
class Answer:
    """What a probe answered (`text`, None: nothing usable, and `why`)."""

    text: str | None
    why: str = ""


def quoted(text: str) -> str:
    """An answer or diagnostic as the report and the ledger quote it: printable, one line, short."""
    clean = "".join(c if c.isprintable() else "?" for c in text.strip())
    return clean if len(clean) <= SHOWN else clean[: SHOWN - 3] + "..."


@dataclass(frozen=True)
class Asking:
    """How to ask: the probe, where its commands run, and the variables no command may see (the
    config's secrets)."""

    probe: ProbeConfig
    workdir: Path
    secrets: Collection[str]


def ask(asking: Asking, environment: str, slot: tuple[str, str] | None) -> Answer:
    """The probe's answer for `environment` (for one rollout `slot`: name, address)."""
    probe = asking.probe
    if probe.url is not None:
        return _ask_url(probe, slot)
    assert probe.command is not None  # checked by the config
    variables = {"PIPELINE_KIT_ENVIRONMENT": environment}
    if slot is not None:
        variables |= {"PIPELINE_KIT_SLOT": slot[0], "PIPELINE_KIT_SLOT_ADDRESS": slot[1]}
    return run_probe(probe.command, asking, variables)


def run_probe(command: str | list[str], asking: Asking, variables: Mapping[str, str]) -> Answer:
    """A probe command's output, or why there is none: it could not start (or may not: the apart
    layout), timed out, failed, printed more than an answer or something that is not text."""
    probe = asking.probe
    env = {**child_environment(os.environ, probe.pass_env, asking.secrets), **variables}
    try:
        done = run_capped(command, timeout=probe.timeout, max_bytes=MAX_ANSWER_BYTES, cwd=asking.workdir, env=env)
    except subprocess.TimeoutExpired:
        return Answer(None, f"the probe did not answer within {probe.timeout:g}s (killed)")
    except OSError as exc:
        return Answer(None, f"the probe could not run: {quoted(first_line(exc))}")
    if done.over:
        return Answer(None, f"the probe printed more than {MAX_ANSWER_BYTES} bytes (killed): not an answer")
    if done.returncode != 0:
        tail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [f"exit code {done.returncode}"]
        return Answer(None, f"the probe failed: {quoted(tail[0])}")
    return _text(done.stdout)


def _ask_url(probe: ProbeConfig, slot: tuple[str, str] | None) -> Answer:
    from pipeline_kit._internal.http import HttpProblem, request

    assert probe.url is not None
    url = probe.url
    if slot is not None:
        url = re.sub(r"\{\{\s*slot\s*\}\}", slot[0], url)
        url = re.sub(r"\{\{\s*address\s*\}\}", slot[1], url)
    try:
        answer = request("GET", url, deadline=probe.timeout, max_bytes=MAX_ANSWER_BYTES)
    except HttpProblem as exc:
        return Answer(None, f"the probe URL gave no answer: {quoted(str(exc))}")
    if answer.status != 200:
        return Answer(None, f"the probe URL answered HTTP {answer.status}")
    return _text(answer.body)


def _text(data: bytes) -> Answer:
    try:
        text = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        return Answer(None, "the probe answered bytes that are not text")
    if not text:
        return Answer(None, "the probe answered nothing")
    return Answer(text)


def command_weights(asking: Asking, slots: Mapping[str, str]) -> dict[str, int] | str:
    """`probe.weights`: a command printing `SLOT PERCENT` lines, for every slot, summing to 100;
    else why its answer is none."""
    assert asking.probe.weights is not None
    answer = run_probe(asking.probe.weights, asking, {})
    if answer.text is None:
        return answer.why.replace("the probe", "the weights probe", 1)
    weights: dict[str, int] = {}
    for line in answer.text.splitlines():
        match = re.fullmatch(r"\s*([A-Za-z]+)\s+(\d{1,3})\s*", line)
        if match is None or match[1] not in slots or match[1] in weights:
            return f"the weights probe answered {quoted(line)!r}, not one `SLOT PERCENT` line per slot"
        weights[match[1]] = int(match[2])
    if set(weights) != set(slots) or sum(weights.values()) != 100:
        return f"the weights probe answered {weights}: not every slot, or not 100 in all"
    return weights
