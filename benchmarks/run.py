"""pipeline-kit benchmarks: every figure is a ratio against a reference measured in the same run.

    python benchmarks/run.py                 # all benchmarks
    python benchmarks/run.py startup hash    # a subset (see the list in --help)
    python benchmarks/run.py --hash-size-mib 256

Needs `pipeline-kit` installed in the running interpreter, `openssl` on PATH, and for the SBOM
comparison `cyclonedx-py` (PyPI cyclonedx-bom) installed beside it; the signing benchmark runs
the test suite's local Sigstore instance (so run it from a checkout, with the test extras).
Nothing here is a pass/fail test; it prints a Markdown table to paste into a closing note.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

PYTHON = sys.executable
BIN = Path(PYTHON).parent


def timed(
    command: Sequence[str],
    *,
    runs: int,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    ok: Sequence[int] = (0,),
) -> float:
    """Median wall time of `command` over `runs` runs (after one warm-up), in seconds; an exit
    code outside `ok` stops the benchmark."""

    def once() -> None:
        done = subprocess.run(command, cwd=cwd, env=env, check=False, capture_output=True)
        if done.returncode not in ok:
            raise subprocess.CalledProcessError(done.returncode, list(command), done.stdout, done.stderr)

    once()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        once()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def timed_cpu(command: Sequence[str], *, runs: int, ok: Sequence[int] = (0,)) -> tuple[float, float]:
    """Median wall time and median CPU time (user + system, of the command and its children) of
    `command` over `runs` runs after one warm-up, in seconds: CPU time says how much work a
    command does even on a machine busy with other work, where wall time also counts waiting."""
    import resource

    def once() -> tuple[float, float]:
        before, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
        done = subprocess.run(command, check=False, capture_output=True)
        wall, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode not in ok:
            raise subprocess.CalledProcessError(done.returncode, list(command), done.stdout, done.stderr)
        return wall, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)

    once()
    samples = [once() for _ in range(runs)]
    return statistics.median(w for w, _ in samples), statistics.median(c for _, c in samples)


def median_time(call: Callable[[], object], repeat: int) -> float:
    """Median wall time of an in-process `call` over `repeat` runs (after one warm-up), in seconds."""
    call()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def peak_rss_mib(command: Sequence[str]) -> float:
    """Peak resident memory of one run of `command`, in MiB (Linux reports KiB)."""
    script = (
        "import resource, subprocess, sys\n"
        "subprocess.run(sys.argv[1:], check=True, capture_output=True)\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    out = subprocess.run([PYTHON, "-c", script, *command], check=True, capture_output=True, text=True)
    return int(out.stdout.strip()) / 1024


def row(name: str, ours: float, reference: float, reference_name: str, unit: str = "s") -> list[str]:
    return [name, f"{ours:.3f} {unit}", f"{reference:.3f} {unit}", reference_name, f"{ours / reference:.2f}x"]


def paired(ours: Sequence[str], reference: Sequence[str], runs: int, cwd: Path | None = None) -> tuple[float, float]:
    """Median wall times of `ours` and `reference` run in `runs` alternating pairs (after one
    warm-up each): a load that comes and goes on a shared machine falls on both alike."""
    samples: tuple[list[float], list[float]] = ([], [])
    for i in range(runs + 1):
        for command, times in ((ours, samples[0]), (reference, samples[1])):
            start = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True, cwd=cwd)
            if i:
                times.append(time.perf_counter() - start)
    return statistics.median(samples[0]), statistics.median(samples[1])


def bench_startup(runs: int) -> list[list[str]]:
    help_time, baseline = paired([str(BIN / "pipeline-kit"), "--help"], [PYTHON, "-c", "pass"], runs)
    return [row("pipeline-kit --help", help_time, baseline, "python -c pass")]


def bench_hash(size_mib: int, runs: int) -> list[list[str]]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "blob"
        block = os.urandom(1 << 20)
        with open(path, "wb") as handle:
            for _ in range(size_mib):
                handle.write(block)
        hasher = [
            PYTHON,
            "-c",
            "import sys, pathlib; from pipeline_kit.digest import hash_file; "
            "print(hash_file(pathlib.Path(sys.argv[1])).sha256)",
            str(path),
        ]
        openssl = ["openssl", "dgst", "-sha256", str(path)]
        ours_digest = subprocess.run(hasher, check=True, capture_output=True, text=True).stdout.strip()
        ref_digest = subprocess.run(openssl, check=True, capture_output=True, text=True).stdout.split()[-1]
        assert ours_digest == ref_digest, "digests differ"
        ours = timed(hasher, runs=runs)
        reference = timed(openssl, runs=runs)
        size_gb = size_mib * (1 << 20) / 1e9
        rss_ours = peak_rss_mib(hasher)
        rss_python = peak_rss_mib([PYTHON, "-c", "import hashlib, pathlib"])
    return [
        row(f"sha256 of {size_mib} MiB (time)", ours, reference, "openssl dgst -sha256"),
        [
            f"sha256 of {size_mib} MiB (throughput)",
            f"{size_gb / ours:.2f} GB/s",
            f"{size_gb / reference:.2f} GB/s",
            "openssl dgst -sha256",
            f"{reference / ours:.0%} of openssl",
        ],
        [
            f"sha256 of {size_mib} MiB (peak RSS)",
            f"{rss_ours:.1f} MiB",
            f"{rss_python:.1f} MiB",
            "python importing hashlib",
            f"+{rss_ours - rss_python:.1f} MiB",
        ],
    ]


def component_set(path: Path) -> set[str]:
    """Components as `name@version` (PEP 503-normalised names), comparable across tools."""
    document = json.loads(path.read_text())
    out = set()
    for component in document.get("components", []):
        name = component["name"].lower().replace("_", "-").replace(".", "-")
        out.add(f"{name}@{component.get('version', '')}")
    return out


def bench_sbom(python: str, runs: int) -> tuple[list[list[str]], list[str]]:
    cyclonedx_py = shutil.which("cyclonedx-py", path=str(BIN)) or shutil.which("cyclonedx-py")
    if cyclonedx_py is None:
        return [], ["cyclonedx-py not installed: `pip install cyclonedx-bom` to compare SBOM generation"]
    rows, notes = [], []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "artifact.bin").write_bytes(b"benchmark subject\n")
        kit = str(BIN / "pipeline-kit")
        subprocess.run(
            [kit, "build", "--name", "bench", "-o", "artifact.bin"], cwd=work, check=True, capture_output=True
        )
        freeze = subprocess.run(
            [python, "-m", "pip", "list", "--format=json"], check=True, capture_output=True, text=True
        )
        pins = sorted(f"{p['name']}=={p['version']}" for p in json.loads(freeze.stdout))
        (work / "requirements.txt").write_text("\n".join(pins) + "\n")
        cases: list[tuple[str, list[str], Callable[[str], list[str]]]] = [
            (
                "environment",
                ["--python", python],
                lambda flag: [cyclonedx_py, "environment", flag, "-o", "ref.json", python],
            ),
            (
                "requirements",
                ["--source", "requirements.txt"],
                lambda flag: [cyclonedx_py, "requirements", flag, "-o", "ref.json", "requirements.txt"],
            ),
        ]
        for label, args, reference in cases:
            ours = timed([kit, "sbom", *args], runs=runs, cwd=work)
            ours_set = component_set(work / ".pipeline-kit" / "sbom.cdx.json")
            validated = timed(reference("--validate"), runs=runs, cwd=work)
            ref_set = component_set(work / "ref.json")
            # the two fast commands alternate, so that other work on the machine falls on both alike
            ours_paired, unvalidated = paired([kit, "sbom", *args], reference("--no-validate"), runs, cwd=work)
            rows.append(
                row(
                    f"SBOM, {label} ({len(ours_set)} components, validated)",
                    ours,
                    validated,
                    "cyclonedx-py (validating)",
                )
            )
            rows.append(
                row(
                    f"SBOM, {label} ({len(ours_set)} components, validated)",
                    ours_paired,
                    unvalidated,
                    "cyclonedx-py --no-validate",
                )
            )
            if ours_set == ref_set:
                notes.append(f"{label}: same {len(ours_set)} components as cyclonedx-py")
            else:
                notes.append(
                    f"{label}: components differ; only pipeline-kit: {sorted(ours_set - ref_set)}; "
                    f"only cyclonedx-py: {sorted(ref_set - ours_set)}"
                )
    return rows, notes


def sign_workspace(work: Path, count: int, env: dict[str, str]) -> tuple[Path, list[str]]:
    """A described release of `count` 4 KiB subjects, ready to sign; the subject files."""
    kit = str(BIN / "pipeline-kit")
    (work / "dist").mkdir(parents=True)
    for i in range(count):
        (work / "dist" / f"artifact-{i:03}.bin").write_bytes(os.urandom(4096))
    (work / "requirements.txt").write_text("click==8.1.7\n")
    for args in (["build", "--name", "bench", "-o", "dist/*.bin"], ["sbom"], ["provenance"]):
        subprocess.run([kit, *args], cwd=work, env=env, check=True, capture_output=True)
    return work, sorted(str(p) for p in (work / "dist").glob("*.bin"))


def bench_sign_latency(latency: float) -> tuple[list[list[str]], list[str]]:
    """Signing 1, 10, 30 and 100 subjects with `latency` seconds added to every request to the
    local Sigstore instance (a real instance is that far away, or further), against the stock
    sigstore CLI on the same files in the same run; one timed run each after a warm-up."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.sigstore_instance import LocalSigstore

    kit = str(BIN / "pipeline-kit")
    sigstore_cli = str(BIN / "sigstore")
    rows: list[list[str]] = []
    ours: dict[int, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        instance = LocalSigstore(Path(tmp) / "instance")
        instance.latency = latency
        instance.start()
        trust = str(instance.trust_config_path)
        env = {**os.environ, "SIGSTORE_IDENTITY_TOKEN": instance.mint_token("bench@example.com")}
        env.pop("GITHUB_ACTIONS", None)
        env.pop("GITLAB_CI", None)
        try:
            for count in (1, 10, 30, 100):
                work, files = sign_workspace(Path(tmp) / f"n{count}", count, env)
                ours[count] = timed([kit, "sign", "--trust-config", trust], runs=1, cwd=work, env=env)
                stock = timed(
                    [sigstore_cli, "--trust-config", trust, "sign", "--overwrite", *files], runs=1, cwd=work, env=env
                )
                rows.append(
                    row(
                        f"sign {count} subject(s) (+ provenance, SBOM), {latency * 1000:.0f} ms per request",
                        ours[count],
                        stock,
                        "sigstore sign of the same files",
                    )
                )
        finally:
            instance.stop()
    growth = ", ".join(f"{n}: {ours[n] / ours[1]:.2f}x" for n in (10, 30, 100))
    return rows, [f"signing with latency, against one subject: {growth}"]


def bench_sign(runs: int) -> tuple[list[list[str]], list[str]]:
    """sign/verify of 1, 10 and 100 subjects against the local Sigstore instance (from tests/)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.sigstore_instance import LocalSigstore

    kit = str(BIN / "pipeline-kit")
    sigstore_cli = str(BIN / "sigstore")
    rows: list[list[str]] = []
    times: dict[tuple[str, int], float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        instance = LocalSigstore(Path(tmp) / "instance").start()
        trust = str(instance.trust_config_path)
        env = {**os.environ, "SIGSTORE_IDENTITY_TOKEN": instance.mint_token("bench@example.com")}
        env.pop("GITHUB_ACTIONS", None)
        env.pop("GITLAB_CI", None)
        try:
            for count in (1, 10, 100):
                work, files = sign_workspace(Path(tmp) / f"n{count}", count, env)
                identity = ["--cert-identity", "bench@example.com", "--cert-oidc-issuer", instance.issuer]
                times["ours-sign", count] = timed([kit, "sign", "--trust-config", trust], runs=runs, cwd=work, env=env)
                times["ours-verify", count] = timed(
                    [kit, "verify", "--trust-config", trust, *identity], runs=runs, cwd=work, env=env
                )
                times["ref-sign", count] = timed(
                    [sigstore_cli, "--trust-config", trust, "sign", "--overwrite", *files],
                    runs=runs,
                    cwd=work,
                    env=env,
                )
                times["ref-verify", count] = timed(
                    [
                        sigstore_cli,
                        "--trust-config",
                        trust,
                        "verify",
                        "identity",
                        "--offline",
                        *identity,
                        *files,
                    ],
                    runs=runs,
                    cwd=work,
                    env=env,
                )
                rows.extend(
                    row(
                        f"{kind} {count} subject(s) (+ provenance, SBOM)",
                        times[f"ours-{kind}", count],
                        times[f"ref-{kind}", count],
                        f"sigstore {kind} of the same files",
                    )
                    for kind in ("sign", "verify")
                )
        finally:
            instance.stop()
    notes = []
    for kind in ("sign", "verify"):
        ours_per = (times[f"ours-{kind}", 100] - times[f"ours-{kind}", 1]) / 99
        ref_per = (times[f"ref-{kind}", 100] - times[f"ref-{kind}", 1]) / 99
        ours_fixed = times[f"ours-{kind}", 1] - ours_per
        ref_fixed = times[f"ref-{kind}", 1] - ref_per
        notes.append(
            f"{kind}: per subject {ours_per * 1000:.1f} ms vs {ref_per * 1000:.1f} ms for sigstore "
            f"({ours_per / ref_per:.2f}x); fixed cost (imports, certificate, attestations) "
            f"{ours_fixed:.2f} s vs {ref_fixed:.2f} s ({ours_fixed / ref_fixed:.2f}x)"
        )
    return rows, notes


def bench_sbom_scale(sizes: Sequence[int]) -> list[list[str]]:
    """`pipeline-kit sbom` from requirements files of growing size, each against the smallest:
    linear growth is the size ratio (20,000 : 2,000 is about 10x), quadratic its square."""
    kit = str(BIN / "pipeline-kit")
    times: dict[int, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "out.bin").write_bytes(b"x")
        subprocess.run([kit, "build", "-o", "out.bin", "--", "true"], cwd=work, check=True, capture_output=True)
        for size in sizes:
            lines = "".join(f"pkg{i}==1.0.{i} --hash=sha256:{i:064x}\n" for i in range(size))
            (work / "requirements.txt").write_text(lines)
            times[size] = timed([kit, "sbom", "-s", "requirements.txt"], runs=1, cwd=work)
    base = sizes[0]
    return [
        row(
            f"sbom, {size:,} requirements (x{size // base} the input)",
            times[size],
            times[base],
            f"{base:,} requirements",
        )
        for size in sizes[1:]
    ]


def bench_ledger(sizes: Sequence[int], runs: int) -> list[list[str]]:
    """`pipeline-kit ledger verify` of N entries against json.loads of every line, at each size."""
    return [bench_ledger_size(entries, runs) for entries in sizes]


def bench_ledger_size(entries: int, runs: int) -> list[str]:
    from datetime import datetime, timezone

    from pipeline_kit.ledger import GENESIS, Draft, Entry

    with tempfile.TemporaryDirectory() as tmp:
        now = datetime.now(timezone.utc)
        prev, lines = GENESIS, []
        for seq in range(1, entries + 1):
            draft = Draft(
                kind="promoted",
                environment="dev",
                release=f"r{seq}",
                actor="ci",
                time=now,
                subjects={"dist/app.whl": "ab" * 32},
            )
            entry = Entry.chain(draft, seq, prev)
            prev = entry.hash
            lines.append(entry.line())
        path = Path(tmp) / ".pipeline-kit-ledger" / "ledger.jsonl"
        path.parent.mkdir()
        path.write_bytes(b"".join(lines))
        ours = timed([str(BIN / "pipeline-kit"), "ledger", "verify"], runs=runs, cwd=Path(tmp))
        floor = timed([PYTHON, "-c", f"import json; [json.loads(l) for l in open({str(path)!r}, 'rb')]"], runs=runs)
    return row(f"ledger verify, {entries:,} entries", ours, floor, "python json.loads of every line")


def bench_setup(runs: int) -> list[list[str]]:
    """The setup action's install.sh: a fresh install (uv, offline from the wheelhouse that
    .ci/test-tools fetches) against installing the same lock with bare uv, and a cache hit
    against `python -c pass`."""
    root = Path(__file__).resolve().parent.parent
    wheelhouse = root / ".ci" / "tools" / "wheelhouse"
    if not (wheelhouse / ".stamp").is_file():
        sys.exit(f"no wheelhouse at {wheelhouse}: run .ci/test-tools first")
    script = root / "actions" / "setup" / "install.sh"
    lock = root / "actions" / "setup" / "requirements.lock"
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "PATH": f"{BIN}:{os.environ['PATH']}",  # uv
            "UV_OFFLINE": "1",
            "UV_FIND_LINKS": str(wheelhouse),
            "UV_CACHE_DIR": f"{tmp}/uv-cache",
            "RUNNER_TOOL_CACHE": f"{tmp}/tool-cache",
            "PIPELINE_KIT_SETUP_PYTHON": "python3",
        }
        env.pop("PIPELINE_KIT_PYTHON", None)
        fresh = timed(["sh", "-c", f'rm -rf "{tmp}/tool-cache" && "{script}"'], runs=runs, env=env)
        venv = f"{tmp}/bare"
        bare = timed(
            [
                "sh",
                "-c",
                f'rm -rf "{venv}" && uv venv -q --python python3 "{venv}" && uv pip install -q --python'
                f' "{venv}/bin/python" --no-deps --require-hashes --only-binary :all: -r "{lock}"',
            ],
            runs=runs,
            env=env,
        )
        hit = timed([str(script)], runs=runs, env=env)
        baseline = timed([PYTHON, "-c", "pass"], runs=runs)
    return [
        row("setup action, fresh install (uv, warm uv cache)", fresh, bare, "uv venv + uv pip install of the lock"),
        row("setup action, tool-cache hit", hit, baseline, "python -c pass"),
    ]


@dataclass
class Workspace:
    """The example, built, described and signed against the local Sigstore instance."""

    work: Path
    env: dict[str, str]
    trust: list[str]  # --trust-config FILE
    identity: list[str]  # the policy that accepts the bench signer, and the source repository


@contextmanager
def signed_example(environments: str, prepare: Callable[[Path], None] = lambda _: None) -> Iterator[Workspace]:
    """The example with `environments` (YAML, replacing the example's) as its last section,
    `prepare`d, then built, described and signed; the local Sigstore instance runs meanwhile."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.sigstore_instance import LocalSigstore

    example = Path(__file__).resolve().parent.parent / "examples" / "hello-service"
    origin = "https://github.com/pipeline-kit/hello-service"
    with tempfile.TemporaryDirectory() as tmp:
        instance = LocalSigstore(Path(tmp) / "instance").start()
        try:
            work = Path(tmp) / "hello"
            shutil.copytree(example, work, ignore=shutil.ignore_patterns("dist", ".pipeline-kit"))
            config = work / "pipeline-kit.yml"
            text = config.read_text()
            config.write_text(text[: text.index("environments:")] + environments)
            prepare(work)
            env = {**os.environ, "SIGSTORE_IDENTITY_TOKEN": instance.mint_token("bench@example.com")}
            env.pop("GITHUB_ACTIONS", None)
            env.pop("GITLAB_CI", None)
            trust = ["--trust-config", str(instance.trust_config_path)]
            identity = ["--cert-identity", "bench@example.com", "--cert-oidc-issuer", instance.issuer]
            subprocess.run(["git", "init", "-q"], cwd=work, check=True)
            subprocess.run(["git", "remote", "add", "origin", origin], cwd=work, check=True)
            for args in (["build"], ["sbom"], ["provenance"], ["sign", *trust]):
                subprocess.run([str(BIN / "pipeline-kit"), *args], cwd=work, env=env, check=True, capture_output=True)
            yield Workspace(work, env, trust, [*identity, "--repository", origin])
        finally:
            instance.stop()


# A build that computes for about two seconds on one core, then builds the example.
SLOW_BUILD = """import hashlib, runpy
block = bytes(1 << 20)
for _ in range(3200):
    block = hashlib.sha256(block).digest() * (1 << 15)
runpy.run_path("build.py", run_name="__main__")
"""


def bench_promote(runs: int) -> tuple[list[list[str]], list[str]]:
    """`promote --to dev` with every file-based gate, against `verify` alone and `sigstore sign`;
    `promote --to prod` at the end of a dev -> staging -> prod chain (previous-stage verifies
    staging's signed VSA) against `verify`; and the whole local pipeline (`pipeline-kit run`)
    against the build command it wraps, with the example's instant build and with a build of about
    two seconds (the kit imports the Sigstore client while a build runs). Issue 27's goal: `run`
    adds under 0.5 s to the build; the floor is the Sigstore client's import, measured here too,
    and the least the Sigstore CLI does for one artifact (sign, verify) is the reference."""
    kit = str(BIN / "pipeline-kit")
    environments = (
        "environments:\n  dev:\n    gates:\n      - signature\n      - provenance\n"
        "      - sbom: {deny-licenses: [GPL-3.0-only], vulnerabilities: vulns.json, unsigned-reports: true}\n"
        '      - checks: {junit: "reports/*.xml", unsigned-reports: true}\n'
        '      - freeze: {windows: [{cron: "0 3 1 1 *", duration: 1h}]}\n'
        '      - command: {run: "true"}\n      - rollback-hold\n'
        "  staging: {after: dev, gates: []}\n  prod: {after: staging, gates: []}\n"
    )

    def reports(work: Path) -> None:
        (work / "reports").mkdir()
        (work / "reports" / "junit.xml").write_text('<testsuite><testcase name="t"/></testsuite>')
        (work / "vulns.json").write_text('{"matches": []}')

    with signed_example(environments, reports) as ws:
        work, env, trust, identity = ws.work, ws.env, ws.trust, ws.identity
        ours = timed([kit, "promote", "--to", "dev", *trust, *identity], runs=runs, cwd=work, env=env)
        verify = timed([kit, "verify", *trust, *identity], runs=runs, cwd=work, env=env)
        subprocess.run([kit, "promote", "--to", "staging", *trust, *identity], cwd=work, env=env, check=True)
        chain = timed([kit, "promote", "--to", "prod", *trust, *identity], runs=runs, cwd=work, env=env)
        wheel = next(str(p) for p in (work / "dist").glob("*.whl"))
        reference = timed([str(BIN / "sigstore"), *trust, "sign", "--overwrite", wheel], runs=runs, cwd=work, env=env)
        # each run from an evidence dir of its own: a release signed here before is not signed again
        fresh = ["sh", "-c", 'rm -rf .pipeline-kit && exec "$0" "$@"', kit]
        whole = timed([*fresh, "run", *trust, *identity], runs=runs, cwd=work, env=env)
        # the build as the kit runs it: the configured command through /bin/sh, on the same PATH
        own_build = timed(["sh", "-c", "python build.py"], runs=runs, cwd=work, env=env)
        # the least a signing pipeline does with the Sigstore CLI: sign the artifact, verify it
        sigstore = shlex.join([str(BIN / "sigstore"), *trust])
        bare = f"{sigstore} sign --overwrite {wheel} && {sigstore} verify identity {shlex.join(identity[:4])} {wheel}"
        sign_verify = timed(["sh", "-c", bare], runs=runs, cwd=work, env=env)
        client = timed([PYTHON, "-c", "import sigstore.models, sigstore.sign, sigstore.verify"], runs=runs)
        # a build that works for a while (one core, as most do): the kit loads its signing meanwhile
        (work / "slow_build.py").write_text(SLOW_BUILD)
        config = work / "pipeline-kit.yml"
        config.write_text(config.read_text().replace('build: "python build.py"', 'build: "python slow_build.py"'))
        whole_slow = timed([*fresh, "run", *trust, *identity], runs=runs, cwd=work, env=env)
        slow_build = timed(["sh", "-c", "python slow_build.py"], runs=runs, cwd=work, env=env)
    note = (
        f"full local run (build, SBOM, provenance, sign, verify, promote dev with 7 gates + VSA, one process):"
        f" {whole:.2f} s, of which the build command itself {own_build:.2f} s: the kit adds {whole - own_build:.2f} s"
        f" ({whole_slow - slow_build:.2f} s to a build of {slow_build:.1f} s); importing the Sigstore client alone"
        f" takes {client:.2f} s, and `sigstore sign` + `sigstore verify identity` of the wheel {sign_verify:.2f} s"
    )
    return [
        row("run (build .. promote dev, one process)", whole, own_build, "python build.py (the build alone)"),
        row("run with a build of ~2 s of CPU", whole_slow, slow_build, "that build alone"),
        row("run minus its build", whole - own_build, sign_verify, "sigstore sign + verify identity of the wheel"),
        row("promote --to dev, 7 file-based gates + VSA", ours, verify, "pipeline-kit verify (its first step)"),
        row("promote --to prod after dev, staging (signed-VSA previous-stage)", chain, verify, "pipeline-kit verify"),
        row("promote --to dev, 7 file-based gates + VSA", ours, reference, "sigstore sign of one file"),
    ], [note]


def bench_timeline(sizes: Sequence[int], runs: int) -> list[list[str]]:
    """What an environment runs is read from signatures: `plan` of a release with a contract
    migration replays every signed VSA of each environment. Its cost after N signed promotions of
    dev, against `verify` of the release in the same run: how it grows with the history."""
    kit = str(BIN / "pipeline-kit")

    def migrations(work: Path) -> None:
        (work / "migrations").mkdir()
        (work / "migrations" / "001_expand.sql").write_text(
            "SET lock_timeout = '2s';\nALTER TABLE t ADD COLUMN b text;\n"
        )
        (work / "migrations" / "002_contract.sql").write_text(
            "-- pipeline-kit: expand-step migrations/001_expand.sql\n"
            "SET lock_timeout = '2s';\nALTER TABLE t DROP COLUMN a;\n"
        )

    rows = []
    environments = "environments:\n  dev:\n    gates: [signature]\nmigrations: {paths: [migrations]}\n"
    with signed_example(environments, migrations) as ws:
        work, env, trust, identity = ws.work, ws.env, ws.trust, ws.identity
        promoted = 0
        for size in sizes:
            while promoted < size:
                promote = [kit, "promote", "--to", "dev", "--break-glass", "--reason", "bench", *trust, *identity]
                subprocess.run(promote, cwd=work, env=env, check=True, capture_output=True)
                promoted += 1
            planned = timed([kit, "plan", "--to", "dev", *trust, *identity], runs=runs, cwd=work, env=env, ok=(0, 1))
            verify = timed([kit, "verify", *trust, *identity], runs=runs, cwd=work, env=env)
            what = f"plan with a contract step after {size} signed promotion(s)"
            rows.append(row(what, planned, verify, "pipeline-kit verify"))
    return rows


def bench_drift(sizes: Sequence[int], runs: int) -> list[list[str]]:
    """`drift` (in sync: it records nothing) after N signed promotions of dev, against `verify` of
    the release in the same run: the signed timeline it replays grows with the history, the
    probe (a command reading what the deploy wrote) does not."""
    kit = str(BIN / "pipeline-kit")
    environments = (
        "environments:\n  dev:\n    gates: [signature]\n"
        "    deploy: 'echo \"$PIPELINE_KIT_DIGEST\" > served.txt'\n"
        "    probe: {command: cat served.txt}\n"
    )
    rows = []
    with signed_example(environments) as ws:
        work, env, trust, identity = ws.work, ws.env, ws.trust, ws.identity
        promoted = 0
        for size in sizes:
            while promoted < size:
                promote = [kit, "promote", "--to", "dev", *trust, *identity]
                subprocess.run(promote, cwd=work, env=env, check=True, capture_output=True)
                promoted += 1
            checked = timed([kit, "drift", "--env", "dev", *trust, *identity], runs=runs, cwd=work, env=env)
            verify = timed([kit, "verify", *trust, *identity], runs=runs, cwd=work, env=env)
            rows.append(
                row(f"drift, in sync, after {size} signed promotion(s)", checked, verify, "pipeline-kit verify")
            )
    return rows


def bench_line(sizes: Sequence[int], runs: int) -> list[list[str]]:
    """The org's line is read from every signed statement in the org ledger before each
    promotion: `plan --to dev` after N stop/resume statements, against `verify` of the release in
    the same run (the line's share of a promotion, and how it grows with the org ledger)."""
    kit = str(BIN / "pipeline-kit")
    rows = []
    with signed_example("environments:\n  dev:\n    gates: [signature]\n") as ws:
        work, env, trust, identity = ws.work, ws.env, ws.trust, ws.identity
        org = work.parent / "org.git"
        subprocess.run(["git", "init", "-q", "--bare", str(org)], check=True)
        policy = f"{{identity: {{issuer: {identity[3]}, san: {identity[1]}}}}}"
        with (work / "pipeline-kit.yml").open("a") as config:
            config.write(f"org:\n  ledger: {{remote: {org}}}\n  stop: {policy}\n  resume: {policy}\n")
        statements = 0
        for size in sizes:
            while statements < size:
                command = "stop-the-line" if statements % 2 == 0 else "resume-the-line"
                line = [kit, command, "--reason", "bench", *trust]
                subprocess.run(line, cwd=work, env=env, check=True, capture_output=True)
                statements += 1
            planned = timed([kit, "plan", "--to", "dev", *trust, *identity], runs=runs, cwd=work, env=env, ok=(0, 1))
            verify = timed([kit, "verify", *trust, *identity], runs=runs, cwd=work, env=env)
            rows.append(
                row(f"plan with org: after {size} signed line statement(s)", planned, verify, "pipeline-kit verify")
            )
    return rows


def bench_report(sizes: Sequence[int], runs: int) -> list[list[str]]:
    """`pipeline-kit report` (the verified history drawn as one HTML file) and `report dora` of a
    ledger of N entries, against `ledger verify` of the same ledger in the same run: how both grow
    with the history. One real signed promotion; the other entries name its VSA again (each
    distinct record is verified once, so this measures the drawing and counting, not N signatures)
    or are unsigned lines (kill switches, rollout moves)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from pipeline_kit.ledger import Draft, FileLedger

    kit = str(BIN / "pipeline-kit")
    rows = []
    with signed_example("environments:\n  dev:\n    gates: [signature]\n") as ws:
        work, env, trust, identity = ws.work, ws.env, ws.trust, ws.identity
        subprocess.run(
            [kit, "promote", "--to", "dev", *trust, *identity], cwd=work, env=env, check=True, capture_output=True
        )
        ledger = FileLedger(work / ".pipeline-kit-ledger" / "ledger.jsonl")
        first = ledger.entries()[0]
        for size in sizes:
            for n in range(len(ledger.entries()), size):
                kind = ("promoted", "flag-killed", "rollout")[n % 3]
                details = {"vsa": first.details["vsa"], "deploy": "none"} if kind == "promoted" else {"flag": "f"}
                draft = Draft(
                    kind=kind,
                    environment="dev",
                    release=first.release,
                    subjects=first.subjects,
                    actor="bench",
                    time=first.time,
                    reason=f"line {n}",
                    details=details,
                )
                ledger.append(draft)
            policy = [*trust, *identity]
            page = work / "report.html"
            drawn = timed([kit, "report", *policy, "-o", str(page)], runs=runs, cwd=work, env=env)
            counted = timed([kit, "report", *policy, "dora", "--json"], runs=runs, cwd=work, env=env)
            verify = timed([kit, "ledger", "verify", *policy], runs=runs, cwd=work, env=env)
            kib = page.stat().st_size / 1024
            rows.append(row(f"report of {size} ledger entries ({kib:.0f} KiB)", drawn, verify, "ledger verify"))
            rows.append(row(f"report dora of {size} ledger entries", counted, verify, "ledger verify"))
    return rows


def bench_analysis(runs: int) -> list[list[str]]:
    """One analysis interval (render, query, judge, count) with 1, 4 and 16 checks, against the raw
    HTTP queries to the same Prometheus (backfilled, from tests/) in the same run."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import urllib.parse
    import urllib.request
    from datetime import datetime, timezone

    from pipeline_kit.analysis import analyse
    from pipeline_kit.config import AnalysisConfig
    from pipeline_kit.metrics.prometheus import Prometheus
    from pipeline_kit.queries import render
    from tests.prometheus_instance import LocalPrometheus, Traffic, openmetrics

    query = (
        'sum(rate(http_requests_total{release="{{ release }}",code="500"}[5m]))'
        ' / sum(rate(http_requests_total{release="{{ release }}"}[5m]))'
    )
    values = {"release": "r1", "digest": "sha256:x", "environment": "prod", "interval": "5m"}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        end = int(time.time()) // 60 * 60 - 60
        instance = LocalPrometheus(Path(tmp) / "prometheus")
        instance.backfill(openmetrics([Traffic(f"r{i}", 10, 0.001) for i in range(1, 21)], end - 7200, end))
        instance.start()
        at = datetime.fromtimestamp(end, timezone.utc)
        try:
            rendered = render(query, values)
            body = urllib.parse.urlencode({"query": rendered, "time": str(end)}).encode()

            def raw() -> None:
                request = urllib.request.Request(f"{instance.url}/api/v1/query", data=body, method="POST")
                with urllib.request.urlopen(request, timeout=10) as response:
                    json.loads(response.read())

            one_query = median_time(raw, max(runs, 5) * 10)
            provider = Prometheus("bench", instance.url)
            for checks in (1, 4, 16):
                settings = AnalysisConfig.model_validate(
                    {
                        "provider": "bench",
                        "count": 1,
                        "interval": "1s",
                        "checks": [{"name": f"c{i}", "query": query, "max": 0.01} for i in range(checks)],
                    }
                )

                def interval(settings: AnalysisConfig = settings) -> object:
                    return analyse(provider, settings, values, clock=lambda: at, sleep=lambda _: None)

                ours = median_time(interval, max(runs, 5) * 4)
                rows.append(
                    row(
                        f"analysis interval, {checks} check(s)",
                        ours * 1000,
                        one_query * checks * 1000,
                        f"{checks} raw HTTP quer{'y' if checks == 1 else 'ies'} to Prometheus",
                        "ms",
                    )
                )
        finally:
            instance.stop()
    return rows


def bench_rollout(runs: int) -> list[list[str]]:
    """Through a real nginx (from tests/): a rollout step (render, nginx -t, reload, ledger entry)
    and a failing step's way back to stable (until new connections reach stable only), against
    `nginx -t` plus `nginx -s reload` run directly, the provider's own cost."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from datetime import datetime, timezone

    from pipeline_kit.ledger import Draft, FileLedger
    from pipeline_kit.traffic import Split
    from pipeline_kit.traffic.nginx import NginxTraffic
    from tests.nginx_instance import Backend, LocalNginx

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "blue").write_text("stable")
        (root / "green").write_text("canary")
        blue, green = Backend(root / "blue"), Backend(root / "green")
        upstream = root / "upstream.conf"
        upstream.write_text(f"upstream pipeline_kit {{ server {blue.address}; }}\n")
        nginx = LocalNginx(root / "nginx", upstream).start()
        provider = NginxTraffic(upstream, "pipeline_kit", nginx.test_command, nginx.reload_command, root, 60)
        ledger = FileLedger(root / "ledger.jsonl")
        env = dict(os.environ)
        try:

            def direct() -> None:
                subprocess.run(nginx.test_command, check=True, capture_output=True)
                subprocess.run(nginx.reload_command, check=True, capture_output=True)

            reference = median_time(direct, runs)
            weights = iter(range(1, 1000))

            def step() -> None:
                weight = next(weights) % 99 + 1
                provider.apply(Split("blue", blue.address, "green", green.address, weight), env)
                now = datetime.now(timezone.utc)
                ledger.append(
                    Draft(kind="rollout", environment="prod", actor="bench", time=now, details={"weight": weight})
                )

            ours = median_time(step, runs)
            rows.append(
                row(
                    "rollout step through nginx (+ ledger entry)",
                    ours * 1000,
                    reference * 1000,
                    "nginx -t + nginx -s reload",
                    "ms",
                )
            )

            def back_to_stable() -> float:
                provider.apply(Split("blue", blue.address, "green", green.address, 50), env)
                time.sleep(0.2)
                start = time.perf_counter()
                provider.apply(Split("blue", blue.address, "green", green.address, 0), env)
                streak = 0
                while streak < 20:  # new connections answered by stable only, 20 in a row
                    answers = nginx.count(1)
                    streak = streak + 1 if answers == {"stable": 1} else 0
                return time.perf_counter() - start

            back_to_stable()
            stable = statistics.median(back_to_stable() for _ in range(runs))
            rows.append(
                row(
                    "failed step: traffic back on stable, 20 requests in a row",
                    stable * 1000,
                    reference * 1000,
                    "nginx -t + nginx -s reload",
                    "ms",
                )
            )
        finally:
            nginx.stop()
            blue.stop()
            green.stop()
    return rows


MIGRATION_STATEMENTS = (
    "SET lock_timeout = '2s';",
    "ALTER TABLE t{n} ADD COLUMN c{n} text;",
    "CREATE INDEX CONCURRENTLY i{n} ON t{n} (c{n});",
    "ALTER TABLE t{n} ADD CONSTRAINT f{n} FOREIGN KEY (u) REFERENCES u (id) NOT VALID;",
    "ALTER TABLE t{n} VALIDATE CONSTRAINT f{n};",
    "UPDATE t{n} SET c{n} = 'x' WHERE id BETWEEN 1 AND 1000;",
    "ALTER TABLE t{n} DROP COLUMN old{n};",
    "CREATE TABLE n{n} (id bigserial PRIMARY KEY, v text);",
)


def bench_migrations(sizes: Sequence[int], runs: int) -> tuple[list[list[str]], list[str]]:
    """`pipeline-kit migrations check` on directories of `sizes` PostgreSQL statements (files of
    48), against squawk (squawk-cli, a Rust binary: PyPI's, in the dev extra, is the newest; npm's
    lags) linting the same files in the same run: our table against its default report, our
    `--json` against its `--reporter json`; and one file of the largest size, read in chunks."""
    kit = str(BIN / "pipeline-kit")
    squawk = shutil.which("squawk", path=str(BIN)) or shutil.which("squawk")
    if squawk is None:
        return [], ["squawk not installed (`pip install squawk-cli`, in the dev extra): no migration comparison"]
    version = subprocess.run([squawk, "--version"], capture_output=True, text=True, check=False).stdout.strip()
    rows, rates, cpu = [], [], []
    per_file = len(MIGRATION_STATEMENTS) * 6
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            directory = Path(tmp) / f"m{size}"
            directory.mkdir()
            files = -(-size // per_file)
            for n in range(files):
                body = "\n".join(s.format(n=n) for s in MIGRATION_STATEMENTS) + "\n"
                (directory / f"{n:05}_step.sql").write_text(body * 6)
            statements = files * per_file
            paths = sorted(str(p) for p in directory.glob("*.sql"))
            # both exit 1 on findings
            ours, ours_cpu = timed_cpu([kit, "migrations", "check", str(directory)], runs=runs, ok=(1,))
            theirs, theirs_cpu = timed_cpu([squawk, *paths], runs=runs, ok=(1,))
            json_command = [kit, "migrations", "check", "--json", str(directory)]
            ours_json, ours_json_cpu = timed_cpu(json_command, runs=runs, ok=(1,))
            theirs_json, theirs_json_cpu = timed_cpu([squawk, "--reporter", "json", *paths], runs=runs, ok=(1,))
            rates.append(statements / ours_json_cpu)
            cpu.append(f"{statements:,}: {ours_cpu / theirs_cpu:.2f}x / {ours_json_cpu / theirs_json_cpu:.2f}x")
            rows.append(row(f"migrations check, {statements:,} statements", ours, theirs, f"{version}, same files"))
            json_name = f"migrations check --json, {statements:,}"
            rows.append(row(json_name, ours_json, theirs_json, "squawk --reporter json"))
        single = Path(tmp) / "one.sql"
        with single.open("w") as out:
            for path in paths:
                out.write(Path(path).read_text())
        ours, ours_cpu = timed_cpu([kit, "migrations", "check", "--json", str(single)], runs=1, ok=(1,))
        theirs, theirs_cpu = timed_cpu([squawk, "--reporter", "json", str(single)], runs=1, ok=(1,))
        cpu.append(f"one file of {statements:,}, --json: {ours_cpu / theirs_cpu:.2f}x")
        rows.append(row(f"migrations check --json, one file of {statements:,}", ours, theirs, "squawk --reporter json"))
    growth = ", ".join(f"{r:,.0f}" for r in rates)
    return rows, [
        f"migrations check --json: statements per CPU second at the sizes measured: {growth}",
        f"migrations check against squawk in CPU time (table / --json): {'; '.join(cpu)}",
    ]


def bench_pictures(sizes: Sequence[int], repeat: int = 20) -> list[list[str]]:
    """A release plan's summary picture (every label escaped) against the summary's Markdown table
    of the same rows, at each size (the picture stops at 200 nodes: it must not grow past them)."""
    from pipeline_kit.cli._render import markdown_table
    from pipeline_kit.report.mermaid import Node, graph

    out = []
    for size in sizes:
        rows = [(f"service-{i}", f"promoted {'ab' * 6}", "passed") for i in range(size)]
        named = [
            (name, Node((name, words), state), [f"service-{i - 1}"] if i else [])
            for i, (name, words, state) in enumerate(rows)
        ]

        def picture(named: list[tuple[str, Node, list[str]]] = named) -> str:
            return graph(named, "TD").markdown()

        def table(rows: list[tuple[str, str, str]] = rows) -> str:
            return markdown_table(["service", "release", "state"], rows)

        ours, reference = median_time(picture, repeat), median_time(table, repeat)
        out.append(row(f"summary picture, {size:,} plan steps", ours, reference, "its Markdown table"))
    return out


def bench_annotations(runs: int = 50) -> list[list[str]]:
    """A ledger append that is also pushed to a real Pushgateway (Debian's, on 127.0.0.1), against
    the append alone."""
    from datetime import datetime, timezone

    from pipeline_kit.ledger import Draft, FileLedger
    from pipeline_kit.metrics.pushgateway import Pushgateway
    from pipeline_kit.promotion.announcing import AnnouncingLedger

    if shutil.which("prometheus-pushgateway") is None:
        return [["annotations", "skipped: prometheus-pushgateway is not installed", "", "", ""]]
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.prometheus_instance import free_port, ready

    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        gateway = subprocess.Popen(
            ["prometheus-pushgateway", f"--web.listen-address=127.0.0.1:{port}", f"--persistence.file={tmp}/p"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            assert ready(f"http://127.0.0.1:{port}")
            said: list[str] = []
            plain = FileLedger(Path(tmp) / "plain.jsonl")
            pushed = AnnouncingLedger(
                FileLedger(Path(tmp) / "pushed.jsonl"), Pushgateway(f"http://127.0.0.1:{port}", "bench"), said.append
            )
            now = datetime.now(timezone.utc)

            def append(ledger: FileLedger | AnnouncingLedger) -> None:
                ledger.append(Draft(kind="deployed", environment="prod", release="ab" * 16, actor="ci", time=now))

            # one of each in turn (the appends fsync: the disk's state is shared), medians compared
            times: dict[str, list[float]] = {"pushed": [], "plain": []}
            for _ in range(runs):
                for name, ledger in (("plain", plain), ("pushed", pushed)):
                    started = time.perf_counter()
                    append(ledger)
                    times[name].append(time.perf_counter() - started)
            ours, reference = statistics.median(times["pushed"]), statistics.median(times["plain"])
            assert not said, said
        finally:
            gateway.terminate()
            gateway.wait(timeout=10)
    return [row("ledger append + Pushgateway push (arrival)", ours, reference, "the ledger append alone")]


def bench_flags(runs: int) -> list[list[str]]:
    """The tests' Unleash (npm unleash-server on its own PostgreSQL, once per test session): its
    start against the PostgreSQL's alone; a kill and a restore through the kit (each reads the
    state, switches, reads it back, tags or untags) against one plain admin GET of the flag."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from pipeline_kit.flags.unleash import Unleash
    from tests.postgres_instance import LocalPostgres
    from tests.unleash_instance import LocalUnleash

    postgres_starts, unleash_starts = [], []
    starts = max(2, runs // 2)  # each start runs every migration: slow
    for n in range(starts):
        began = time.perf_counter()
        postgres = LocalPostgres().start()
        postgres_starts.append(time.perf_counter() - began)
        postgres.stop()
        instance = LocalUnleash().start()
        unleash_starts.append(instance.started_in)
        if n < starts - 1:  # the last one serves the round trips
            instance.stop()
    try:
        flag = instance.create_flag(on_in=("production",))
        switches = Unleash(instance.url, "default", instance.admin_token, {})
        path = f"/api/admin/projects/default/features/{flag}/environments/production"
        get = median_time(lambda: instance.admin("GET", path), runs * 4)
        round_trip = median_time(
            lambda: (switches.kill(flag, "production"), switches.restore(flag, "production")), runs
        )
    finally:
        instance.stop()
    return [
        row(
            "unleash-server start (PostgreSQL under it included)",
            statistics.median(unleash_starts),
            statistics.median(postgres_starts),
            "PostgreSQL start alone",
        ),
        row("Unleash kill + restore (library)", round_trip, get, "one admin GET of the flag"),
    ]


def bench_release_plan(runs: int, steps: int = 10) -> list[list[str]]:
    """`release apply` of a plan of `steps` small services (no-op deploys), against the same
    promotions run one after another as single `promote` commands."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.sigstore_instance import LocalSigstore

    kit = str(BIN / "pipeline-kit")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        instance = LocalSigstore(root / "instance").start()
        env = {**os.environ, "SIGSTORE_IDENTITY_TOKEN": instance.mint_token("bench@example.com")}
        env.pop("GITHUB_ACTIONS", None)
        env.pop("GITLAB_CI", None)
        trust = ["--trust-config", str(instance.trust_config_path)]
        identity = ["--cert-identity", "bench@example.com", "--cert-oidc-issuer", instance.issuer]
        plan = ["version: 1", "steps:"]
        directories = []
        try:
            for n in range(steps):
                service = root / f"s{n}"
                service.mkdir()
                (service / "requirements.txt").write_text("click==8.1.7\n")
                (service / "pipeline-kit.yml").write_text(
                    f"version: 1\nartifact: {{name: s{n}, build: 'mkdir -p dist && echo {n} > dist/app.txt', "
                    "outputs: ['dist/*.txt']}\nenvironments:\n  dev: {deploy: 'true'}\n"
                )
                subprocess.run(["git", "init", "-q"], cwd=service, check=True)
                subprocess.run(["git", "remote", "add", "origin", f"https://example.com/s{n}"], cwd=service, check=True)
                for args in (["build"], ["sbom"], ["provenance"], ["sign", *trust]):
                    subprocess.run([kit, *args], cwd=service, env=env, check=True, capture_output=True)
                needs = f", needs: [s{n - 1}]" if n else ""
                plan.append(f"  - {{service: s{n}, path: s{n}{needs}}}")
                directories.append(service)
            (root / "release-plan.yml").write_text("\n".join(plan) + "\n")
            single = " && ".join(
                f"(cd {d} && {kit} promote --to dev {' '.join(trust + identity)} >/dev/null)" for d in directories
            )
            reference = timed(["bash", "-c", single], runs=runs, env=env)
            # a finished run of the same plan and releases starts nothing again: each timed run
            # applies a plan of its own (a comment changes its digest), as a new release plan would
            apply = shlex.join([kit, "release", "apply", "--to", "dev", *trust, *identity])
            fresh_plan = f'echo "# run $(date +%s%N)" >> release-plan.yml && {apply} >/dev/null'
            ours = timed(["bash", "-c", fresh_plan], runs=runs, cwd=root, env=env)
        finally:
            instance.stop()
    return [
        row(f"release apply, {steps}-step plan (no-op deploys)", ours, reference, f"{steps} single promotes in a row")
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "which",
        nargs="*",
        metavar="{startup,hash,sbom,sbom-scale,sign,sign-latency,promote,timeline,drift,line,ledger,setup,analysis,rollout,migrations,release-plan,flags}",
        help="default: all",
    )
    parser.add_argument("--ledger-entries", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5, help="timed runs per command (median reported)")
    parser.add_argument("--hash-size-mib", type=int, default=1024)
    parser.add_argument("--latency-ms", type=float, default=100, help="added per request in sign-latency")
    parser.add_argument("--python", default=PYTHON, help="environment to describe in the SBOM benchmark")
    args = parser.parse_args()
    everything = [
        "startup",
        "hash",
        "sbom",
        "sbom-scale",
        "sign",
        "sign-latency",
        "promote",
        "timeline",
        "drift",
        "line",
        "ledger",
        "setup",
        "analysis",
        "rollout",
        "migrations",
        "release-plan",
        "pictures",
        "annotations",
        "flags",
        "report",
    ]
    which = args.which or everything
    unknown = set(which) - set(everything)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    # An installed wheel has its bytecode compiled at install time; a checkout run with
    # PYTHONDONTWRITEBYTECODE would recompile the kit on every start, which no user sees.
    import compileall

    import pipeline_kit

    compileall.compile_dir(Path(pipeline_kit.__file__).parent, quiet=1)
    rows: list[list[str]] = []
    notes: list[str] = []
    if "startup" in which:
        rows += bench_startup(max(args.runs, 15))
    if "hash" in which:
        rows += bench_hash(args.hash_size_mib, args.runs)
    if "sbom" in which:
        sbom_rows, sbom_notes = bench_sbom(args.python, args.runs)
        rows += sbom_rows
        notes += sbom_notes
    if "sbom-scale" in which:
        rows += bench_sbom_scale([2_000, 20_000, 50_000])
    if "sign" in which:
        sign_rows, sign_notes = bench_sign(args.runs)
        rows += sign_rows
        notes += sign_notes
    if "sign-latency" in which:
        latency_rows, latency_notes = bench_sign_latency(args.latency_ms / 1000)
        rows += latency_rows
        notes += latency_notes
    if "promote" in which:
        promote_rows, promote_notes = bench_promote(args.runs)
        rows += promote_rows
        notes += promote_notes
    if "timeline" in which:
        rows += bench_timeline([1, 10, 40], args.runs)
    if "drift" in which:
        rows += bench_drift([1, 10, 40], args.runs)
    if "line" in which:
        rows += bench_line([0, 10, 40], args.runs)
    if "ledger" in which:
        rows += bench_ledger([args.ledger_entries // 10, args.ledger_entries], args.runs)
    if "setup" in which:
        rows += bench_setup(args.runs)
    if "analysis" in which:
        rows += bench_analysis(args.runs)
    if "rollout" in which:
        rows += bench_rollout(args.runs)
    if "release-plan" in which:
        rows += bench_release_plan(args.runs)
    if "report" in which:
        rows += bench_report([100, 300, 1000], args.runs)
    if "pictures" in which:
        rows += bench_pictures([10, 100, 1000])
    if "annotations" in which:
        rows += bench_annotations()
    if "migrations" in which:
        migration_rows, migration_notes = bench_migrations([1_000, 10_000, 100_000], min(args.runs, 3))
        rows += migration_rows
        notes += migration_notes
    if "flags" in which:
        rows += bench_flags(args.runs)
    header = ["benchmark", "pipeline-kit", "reference", "reference is", "ratio"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in rows:
        print("| " + " | ".join(r) + " |")
    for note in notes:
        print(f"\n- {note}")
    python = sys.version.split()[0]
    print(f"\n(median of {args.runs} runs each after a warm-up; {os.cpu_count()} CPUs; Python {python})")


if __name__ == "__main__":
    main()
