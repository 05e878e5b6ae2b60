"""The metric and slo gates and the Prometheus provider against a real Prometheus, backfilled with
series whose answers are known exactly; every way of having no answer denies."""

from __future__ import annotations

import http.server
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, ClassVar

import pytest

from pipeline_kit.analysis import judge, measure, release_values
from pipeline_kit.config import MetricCheck, parse_config
from pipeline_kit.errors import ConfigError
from pipeline_kit.evidence import EvidenceDir
from pipeline_kit.gates import GATES, evaluate
from pipeline_kit.gates.interface import PromotionContext
from pipeline_kit.metrics.prometheus import Prometheus
from pipeline_kit.models import Release
from pipeline_kit.queries import escape, render
from tests.conftest import ROOT, local_release
from tests.prometheus_instance import Latency, LocalPrometheus, Traffic, free_port, openmetrics

ERROR_RATIO = (
    'sum(rate(http_requests_total{release="{{ release }}",code=~"5.."}[{{ window }}]))'
    ' / sum(rate(http_requests_total{release="{{ release }}"}[{{ window }}]))'
)
REQUESTS = 'sum(increase(http_requests_total{release="{{ release }}"}[{{ window }}]))'


GOOD, BAD, IDLE, UNKNOWN, QUIET = (local_release(n) for n in range(1, 6))


@pytest.fixture(scope="module")
def prom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalPrometheus, datetime]]:
    """6.5 hours of traffic ending a minute ago: GOOD at 0.05% errors (burn 0.5 of a 99.9% SLO),
    BAD at 2% (burn 20), IDLE with no requests at all (0/0), QUIET at 0.1 requests a second."""
    end = int(datetime.now(timezone.utc).timestamp()) // 60 * 60 - 60
    start = end - int(6.5 * 3600)
    instance = LocalPrometheus(tmp_path_factory.mktemp("prometheus"))
    instance.backfill(
        openmetrics(
            [
                Traffic(GOOD.id, 10, 0.0005),
                Traffic(BAD.id, 10, 0.02),
                Traffic(IDLE.id, 0, 0.0),
                Traffic(QUIET.id, 0.1, 0.0),
            ],
            start,
            end,
        )
    )
    instance.start()
    yield instance, datetime.fromtimestamp(end, timezone.utc)
    instance.stop()


def config_text(url: str, gates: str) -> str:
    return (
        "version: 1\n"
        "artifact: {name: app, outputs: ['dist/*']}\n"
        f"metrics: {{prometheus: {{type: prometheus, url: '{url}', timeout: 2.0}}}}\n"
        f"environments:\n  dev: {{}}\n  prod: {{after: dev, gates: [{gates}]}}\n"
    )


def context(tmp_path: Path, url: str, gates: str, release: Release, now: datetime) -> PromotionContext:
    config = parse_config(config_text(url, gates), tmp_path / "pipeline-kit.yml")
    return PromotionContext(
        release=release,
        environment="prod",
        config=config,
        evidence=EvidenceDir(tmp_path / ".pipeline-kit"),
        workdir=tmp_path,
        history=[],
        now=now,
        actor="t",
    )


def judged(tmp_path: Path, url: str, name: str, options: dict[str, Any], release: Release, now: datetime) -> Any:
    gate = GATES[name](GATES[name].options_model.model_validate(options))
    (result,) = evaluate([gate], context(tmp_path, url, "", release, now))
    return result


SLO = {"provider": "prometheus", "objective": 0.999, "error-ratio": ERROR_RATIO}


def test_slo_gate_passes_a_release_within_budget_with_the_margins(
    tmp_path: Path, prom: tuple[LocalPrometheus, datetime]
) -> None:
    instance, end = prom
    result = judged(tmp_path, instance.url, "slo", SLO, GOOD, end)
    assert result.verdict == "passed", result.reason
    # 0.05% errors of a 0.1% budget: burn 0.5 over every window, far under 14.4x and 6x
    assert "budget 0.1% (99.9% objective)" in result.reason
    assert "0.5x/0.5x of 14.4x over 1h/5m" in result.reason and "0.5x/0.5x of 6x over 6h/30m" in result.reason


def test_slo_gate_denies_a_release_burning_its_budget(tmp_path: Path, prom: tuple[LocalPrometheus, datetime]) -> None:
    instance, end = prom
    result = judged(tmp_path, instance.url, "slo", SLO, BAD, end)
    assert result.verdict == "denied"
    assert "burning the error budget too fast: 20x/20x of 14.4x over 1h/5m; 20x/20x of 6x over 6h/30m" in result.reason


def test_slo_gate_traffic_guard(tmp_path: Path, prom: tuple[LocalPrometheus, datetime]) -> None:
    instance, end = prom
    guarded = {**SLO, "requests": REQUESTS, "min-requests": 1000}
    # QUIET served 0.1 rps: 360 requests in the last hour, under the 1000 asked for
    result = judged(tmp_path, instance.url, "slo", guarded, QUIET, end)
    assert result.verdict == "error"
    assert "too little traffic to judge: 360 requests over 1h (min-requests 1000)" in result.reason
    assert judged(tmp_path, instance.url, "slo", guarded, GOOD, end).verdict == "passed"


@pytest.mark.parametrize(
    ("release", "expected"),
    [
        (IDLE, "error ratio over 1h: inconclusive: NaN"),  # zero traffic: 0/0
        (UNKNOWN, "error ratio over 1h: inconclusive: no data"),  # never seen
    ],
)
def test_slo_gate_without_data_is_an_error_never_a_pass(
    tmp_path: Path, prom: tuple[LocalPrometheus, datetime], release: Release, expected: str
) -> None:
    instance, end = prom
    result = judged(tmp_path, instance.url, "slo", SLO, release, end)
    assert result.verdict == "error" and expected in result.reason


CHECK = {"name": "error-ratio", "query": ERROR_RATIO.replace("{{ window }}", "{{ interval }}"), "max": 0.01}


def test_metric_gate_judges_the_previous_environment_for_this_release(
    tmp_path: Path, prom: tuple[LocalPrometheus, datetime]
) -> None:
    instance, end = prom
    options = {"provider": "prometheus", "checks": [CHECK]}
    good = judged(tmp_path, instance.url, "metric", options, GOOD, end)
    assert good.verdict == "passed" and good.reason == "error-ratio 0.0005 within max 0.01"
    assert good.evidence["measurements"][0]["value"] == pytest.approx(0.0005)
    bad = judged(tmp_path, instance.url, "metric", options, BAD, end)
    assert bad.verdict == "denied" and bad.reason == "error-ratio 0.02 above max 0.01"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        # many-to-many matching: Prometheus answers 422 (execution error)
        ('http_requests_total / on(release) http_requests_total{release="{{ release }}"}', "HTTP 422: execution"),
        ("sum(rate(http_requests_total[", "HTTP 400: bad_data"),  # a query that does not parse
        ('http_requests_total{release="{{ release }}"}', "2 series returned"),  # not one value
        ('sum(http_requests_total{release="{{ release }}"}) / 0', "inconclusive: +Inf"),
    ],
)
def test_metric_gate_denies_every_answer_that_is_not_one_finite_value(
    tmp_path: Path, prom: tuple[LocalPrometheus, datetime], query: str, expected: str
) -> None:
    instance, end = prom
    options = {"provider": "prometheus", "checks": [{"name": "c", "query": query, "max": 1e12}]}
    result = judged(tmp_path, instance.url, "metric", options, GOOD, end)
    assert result.verdict == "error", result.reason
    assert expected in result.reason


def hanging_server() -> tuple[int, threading.Event]:
    """Accepts connections and never answers: a Prometheus that hangs."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    stop = threading.Event()

    def hold() -> None:
        held = []
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue
        for connection in held:
            connection.close()
        listener.close()

    threading.Thread(target=hold, daemon=True).start()
    return int(listener.getsockname()[1]), stop


def test_refused_and_hanging_servers_deny_within_the_timeout(tmp_path: Path) -> None:
    import time

    now = datetime.now(timezone.utc)
    options = {"provider": "prometheus", "checks": [CHECK]}
    refused = judged(tmp_path, f"http://127.0.0.1:{free_port()}", "metric", options, GOOD, now)
    assert refused.verdict == "error" and "Connection refused" in refused.reason
    port, stop = hanging_server()
    started = time.monotonic()
    hung = judged(tmp_path, f"http://127.0.0.1:{port}", "metric", options, GOOD, now)
    stop.set()
    assert hung.verdict == "error" and "timed out" in hung.reason, hung.reason
    assert time.monotonic() - started < 5  # the provider's 2 s timeout, not the gate's 60 s


class Recorded(http.server.BaseHTTPRequestHandler):
    """Records every request it gets (path and headers), answers with what the test asked for."""

    seen: ClassVar[list[tuple[str, dict[str, str]]]] = []
    answer: ClassVar[Callable[[http.server.BaseHTTPRequestHandler], None]]

    def do_POST(self) -> None:
        self.seen.append((self.path, dict(self.headers)))
        self.rfile.read(int(self.headers.get("Content-Length") or 0))  # left unread, the close resets the client
        type(self).answer(self)

    do_GET = do_POST

    def log_message(self, *args: Any) -> None:
        pass


def serve(answer: Callable[[http.server.BaseHTTPRequestHandler], None]) -> tuple[str, type[Recorded], Any]:
    handler = type("Handler", (Recorded,), {"seen": [], "answer": staticmethod(answer)})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}", handler, server


def test_a_redirect_is_an_error_and_the_token_never_follows_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The attack: a metrics server (or whoever answers for it) replies 302 to another address;
    # urllib replayed the query there as a GET, Authorization header included, and the
    # redirected answer counted as a pass.
    def zero(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.end_headers()
        handler.wfile.write(b'{"status":"success","data":{"resultType":"scalar","result":[0,"0"]}}')

    elsewhere, taken, far = serve(zero)

    def redirect(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(302)
        handler.send_header("Location", f"{elsewhere}/api/v1/query?query=vector(0)")
        handler.end_headers()

    url, asked, near = serve(redirect)
    try:
        monkeypatch.setenv("PROM_TOKEN", "canary-bearer")
        measured = Prometheus("p", url, headers={"Authorization": "Bearer canary-bearer"}, timeout=2).measure(
            "up", datetime.now(timezone.utc)
        )
        assert measured.status == "error" and "HTTP 302: redirected to http://127.0.0.1:" in measured.detail
        assert "canary-bearer" not in measured.detail
        assert len(asked.seen) == 1 and asked.seen[0][1].get("Authorization") == "Bearer canary-bearer"
        assert taken.seen == []  # nothing, and no token, ever reached the other address
    finally:
        near.shutdown()
        far.shutdown()


def test_a_trickling_server_is_cut_off_at_the_deadline() -> None:
    # The attack: one byte every half second keeps each read within urllib's per-read timeout;
    # the promotion waited as long as the server cared to trickle. The server's own count of
    # what it managed to send before the kit hung up is the oracle.
    sent: list[int] = []
    body = b'{"status":"success","data":{"resultType":"scalar","result":[0,"0.5"]}}'

    def trickle(handler: http.server.BaseHTTPRequestHandler) -> None:
        import time

        handler.send_response(200)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        try:
            for byte in body:
                handler.wfile.write(bytes([byte]))
                handler.wfile.flush()
                sent.append(byte)
                time.sleep(0.5)
        except OSError:
            pass

    url, _, server = serve(trickle)
    try:
        measured = Prometheus("p", url, timeout=1.5).measure("up", datetime.now(timezone.utc))
        assert measured.status == "error" and measured.detail == "p: timed out: no complete answer within 1.5s"
        assert 0 < len(sent) < len(body)  # cut off mid-answer, not served to the end
    finally:
        server.shutdown()


def test_a_hung_gate_never_keeps_the_process_alive(tmp_path: Path) -> None:
    # `plan` with a gate past its timeout gave its verdict, then waited at exit for the gate's
    # thread (a thread pool joins its workers): a second process shows it exits with the verdict.
    script = tmp_path / "hung.py"
    script.write_text(
        "import sys, threading, time\n"
        "from tests.test_gates import Hanging, context\n"
        "from pipeline_kit.gates import evaluate\n"
        "from pipeline_kit.gates.interface import Options\n"
        "from pathlib import Path\n"
        "Hanging.released.clear()\n"
        "(result,) = evaluate([Hanging(Options(timeout=0.2))], context(Path(sys.argv[1]), 'dev'))\n"
        "print(result.verdict, result.reason, flush=True)\n"
    )
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=25, check=False
    )
    # the hanging gate waits 30 s for a release that never comes: exiting before that is the proof
    assert done.returncode == 0 and done.stdout.strip() == "error timed out after 0.2s", done.stderr


# A metric with no data must never pass, however the query supplies a value: the kit shows that
# a series the query reads exists by a query of its own (count(last_over_time(...))), not by
# reading the query's text (every spelling below got past a text match).
RATIO = ERROR_RATIO.replace("{{ window }}", "5m")
DEFAULTED = [
    "({ratio}) or vector(0)",
    "({ratio}) or (vector(0))",
    "({ratio}) or(vector(0))",
    "({ratio}) or ignoring(a) vector(0)",
    "({ratio}) or sum(vector(0))",
    '({ratio}) or label_replace(vector(0), "a", "b", "c", "d")',
    "vector(0)",
]


@pytest.mark.parametrize("template", DEFAULTED)
def test_a_value_made_up_for_missing_data_is_no_data(prom: tuple[LocalPrometheus, datetime], template: str) -> None:
    instance, end = prom
    provider = Prometheus("p", instance.url)
    absent = template.format(ratio=render(RATIO, {"release": UNKNOWN.id}))
    made_up = provider.measure(absent, end)
    assert made_up.status == "inconclusive" and made_up.detail.startswith("no data: "), made_up
    if "{ratio}" in template:  # with the release's series there, the same query measures
        present = provider.measure(template.format(ratio=render(RATIO, {"release": GOOD.id})), end)
        assert present.status == "ok" and present.value == pytest.approx(0.0005, rel=0.2), present


def test_an_error_ratio_of_a_release_without_errors_is_zero_not_missing(prom: tuple[LocalPrometheus, datetime]) -> None:
    # QUIET served requests and no 5xx: its errors series does not exist, its requests do
    instance, end = prom
    query = f"({render(RATIO, {'release': QUIET.id})}) or vector(0)"
    measured = Prometheus("p", instance.url).measure(query, end)
    assert measured.status == "ok" and measured.value == 0.0, measured


def test_placeholder_values_cannot_escape_the_promql_string() -> None:
    # a value that tries to close the label matcher and add its own stays one string
    hostile = 'x"} or vector(1) or {a="'
    query = render('up{release="{{ release }}"}', {"release": hostile})
    assert query == 'up{release="x\\"} or vector(1) or {a=\\""}'
    assert escape("a\\b\nc") == "a\\\\b\\nc"
    with pytest.raises(ValueError, match="not a PromQL duration"):
        render("rate(x[{{ interval }}])", {"interval": "5m]) or vector(1"})


def test_config_refuses_unknown_placeholders_unbounded_checks_and_unknown_providers(tmp_path: Path) -> None:
    path = tmp_path / "pipeline-kit.yml"
    with pytest.raises(ConfigError, match=r"unknown placeholder \{\{ releaes \}\}"):
        parse_config(config_text("http://127.0.0.1:9", "") + _analysis('up{r="{{ releaes }}"}', "max: 1"), path)
    with pytest.raises(ConfigError, match=r"give max or min \(it would judge nothing\)"):
        parse_config(config_text("http://127.0.0.1:9", "") + _analysis("up", ""), path)
    bad_gate = "{metric: {provider: nope, checks: [{name: c, query: up, max: 1}]}}"
    from pipeline_kit.gates import compile_gates

    config = parse_config(config_text("http://127.0.0.1:9", bad_gate), path)
    with pytest.raises(ConfigError, match="provider 'nope' is not an entry of metrics"):
        compile_gates(config, "prod")


def _analysis(query: str, bound: str) -> str:
    check = f"{{name: c, query: '{query}'{', ' + bound if bound else ''}}}"
    return f"  staging: {{analysis: {{provider: prometheus, checks: [{check}]}}}}\n"


def test_a_value_of_exactly_the_bound_passes_and_nan_never_does() -> None:
    from pipeline_kit.metrics.interface import inconclusive, ok

    check = MetricCheck(name="c", query="up", max=0.01, min=0.0)
    assert judge(check, ok(0.01))[0] == "passed" and judge(check, ok(0.0))[0] == "passed"
    assert judge(check, ok(0.010001))[0] == "failed" and judge(check, ok(-1e-9))[0] == "failed"
    assert judge(check, inconclusive("NaN"))[0] == "inconclusive"


def test_measure_sends_the_release_and_an_explicit_time(prom: tuple[LocalPrometheus, datetime]) -> None:
    instance, end = prom
    provider = Prometheus("p", instance.url)
    check = MetricCheck(name="c", query=CHECK["query"], max=1)
    values = release_values(GOOD, "prod", "5m")
    at_end = measure(provider, check, values, end)
    assert at_end.value == pytest.approx(0.0005)
    # long after the data ended the same query has nothing: time= is what makes it exact
    later = measure(provider, check, values, replace(at_end, time=end).time.replace(year=end.year + 1))
    assert later.verdict == "inconclusive"


# -- canary against stable -------------------------------------------------------------------------


def exact_p_greater(x: list[float], y: list[float]) -> float:
    """The exact one-sided p-value of the rank-sum statistic by enumerating every split: an
    oracle independent of the normal approximation the kit uses."""
    from itertools import combinations

    pooled = [*x, *y]
    order = sorted(pooled)

    def rank_sum(group: tuple[int, ...]) -> float:
        total = 0.0
        for index in group:
            value = pooled[index]
            first, last = order.index(value), len(order) - 1 - order[::-1].index(value)
            total += (first + last) / 2 + 1
        return total

    observed = rank_sum(tuple(range(len(x))))
    splits = list(combinations(range(len(pooled)), len(x)))
    return sum(rank_sum(split) >= observed for split in splits) / len(splits)


@pytest.mark.parametrize(
    ("canary", "stable"),
    [
        ([5.0, 6, 7, 8, 9, 10], [1.0, 2, 3, 4, 5, 6]),
        ([1.0, 2, 3, 4, 5, 6], [5.0, 6, 7, 8, 9, 10]),
        ([3.0, 3, 4, 4, 5, 9, 9], [3.0, 4, 4, 5, 5, 6, 2]),
        ([0.2, 0.21, 0.22, 0.3, 0.31, 0.29, 0.5, 0.45], [0.1, 0.12, 0.11, 0.13, 0.4, 0.09, 0.1, 0.2]),
    ],
)
def test_the_rank_test_agrees_with_the_exact_permutation_p_value(canary: list[float], stable: list[float]) -> None:
    from pipeline_kit.judge import mann_whitney_greater

    assert mann_whitney_greater(canary, stable) == pytest.approx(exact_p_greater(canary, stable), abs=0.03)


@pytest.fixture(scope="module")
def latencies(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalPrometheus, datetime]]:
    """Ten minutes of latency: STABLE at 100 ms, SLOW at 300 ms, SAME at 100 ms, all with spread."""
    end = int(datetime.now(timezone.utc).timestamp()) // 60 * 60 - 60
    instance = LocalPrometheus(tmp_path_factory.mktemp("prometheus-latency"))
    instance.backfill(
        openmetrics(
            [],
            end - 600,
            end,
            latencies=[Latency("stable", 0.1, 0.02), Latency("slow", 0.3, 0.05), Latency("same", 0.1, 0.02)],
        )
    )
    instance.start()
    yield instance, datetime.fromtimestamp(end, timezone.utc)
    instance.stop()


LATENCY = 'max(request_latency_seconds{release="{{ release }}"})'


@pytest.mark.parametrize(
    ("canary", "verdict", "detail"),
    [
        ("slow", "failed", "higher than stable: median 0.3 vs stable 0.1 (3x, tolerance 1.1x)"),
        ("same", "passed", "not worse than stable: median 0.1 vs stable 0.1 (1x"),
        ("absent", "inconclusive", "inconclusive: 0 canary and 41 stable samples, 10 needed"),
    ],
)
def test_a_canary_is_judged_against_stable_over_the_step(
    latencies: tuple[LocalPrometheus, datetime], canary: str, verdict: str, detail: str
) -> None:
    from datetime import timedelta

    from pipeline_kit.analysis import compare

    instance, end = latencies
    check = MetricCheck.model_validate(
        {"name": "latency", "query": LATENCY, "max": 10, "compare": {"resolution": "15s"}}
    )
    result = compare(
        Prometheus("p", instance.url),
        check,
        {"release": canary},
        {"release": "stable"},
        end - timedelta(minutes=10),
        end,
    )
    assert result.verdict == verdict and detail in result.detail, result.detail


def test_a_zero_baseline_does_not_hide_a_rise() -> None:
    # Kayenta#377: a stable with no errors left the canary's errors unjudged
    from pipeline_kit.judge import judge

    found = judge([0.01, 0.02, 0.01, 0.03, 0.02], [0.0, 0.0, 0.0, 0.0, 0.0])
    assert found.ratio == float("inf") and found.p_value < 0.01


def test_a_comparison_never_passes_without_two_releases(latencies: tuple[LocalPrometheus, datetime]) -> None:
    # No baseline passed without a single query, and a baseline falling back to the canary's own
    # digest compared the canary with itself: both are inconclusive, and say why.
    from datetime import timedelta

    from pipeline_kit.analysis import compare

    instance, end = latencies
    check = MetricCheck.model_validate({"name": "latency", "query": LATENCY, "max": 10, "compare": {}})
    provider, start = Prometheus("p", instance.url), end - timedelta(minutes=10)
    alone = compare(provider, check, {"release": "slow"}, None, start, end)
    assert (alone.verdict, alone.detail) == (
        "inconclusive",
        "inconclusive: no stable release to compare with (a first rollout)",
    )
    canary = {"release": "slow", "digest": "sha256:" + "a" * 64}
    for baseline in ({"release": "slow"}, {"release": "stable", "digest": canary["digest"]}):
        itself = compare(provider, check, canary, baseline, start, end)
        assert (itself.verdict, itself.detail) == (
            "inconclusive",
            "inconclusive: the stable side is the canary's release",
        )


def test_a_check_that_compares_has_bounds_for_the_first_rollout() -> None:
    with pytest.raises(ValueError, match="give max or min \\(a first rollout has no stable release to compare with\\)"):
        MetricCheck.model_validate({"name": "latency", "query": LATENCY, "compare": {}})


def test_zero_medians_never_hide_a_rise() -> None:
    # error rates are mostly zero on both sides: the medians tie at 0 and the ratio was 1.0, so a
    # canary failing one request in three passed
    from pipeline_kit.judge import judge

    stable = [0.0] * 30
    canary = [0.0, 0.0, 0.4] * 10
    found = judge(canary, stable)
    assert found.canary_median == found.stable_median == 0
    assert found.ratio == float("inf") and found.p_value < 0.01
    quieter = judge([0.0, 0.0, 0.1] * 10, [0.0, 0.0, 0.05] * 10)
    assert quieter.ratio == pytest.approx(2.0)  # means: 0.1/3 against 0.05/3
    same = judge([0.0] * 30, [0.0] * 30)
    assert same.ratio == 1.0 and same.p_value == 1.0


def test_a_hostile_answer_is_an_error_never_a_crash_or_a_leak() -> None:
    # A 200 of 200,000 `[` crashed the analysis (RecursionError: no rollback, no kill switch); a
    # token with a line break was quoted in the error; a Location's userinfo, path and escape
    # sequences were printed.
    def nested(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.end_headers()
        handler.wfile.write(b"[" * 200_000)

    def moved(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(301)
        handler.send_header("Location", "http://user:pw@elsewhere.example:8443/x?token=t0k\x1b[31m")
        handler.end_headers()

    url, _, server = serve(nested)
    moved_url, _, moved_server = serve(moved)
    try:
        deep = Prometheus("p", url).measure("up", datetime.now(timezone.utc))
        assert deep.status == "error" and deep.detail == "p: not a Prometheus query answer"
        broken = Prometheus("p", url, headers={"Authorization": "Bearer s3cret\n"}).measure(
            "up", datetime.now(timezone.utc)
        )
        assert broken.status == "error" and "s3cret" not in broken.detail
        redirect = Prometheus("p", moved_url).measure("up", datetime.now(timezone.utc))
        assert "redirected to http://elsewhere.example:8443: refused" in redirect.detail
        assert not any(secret in redirect.detail for secret in ("user", "pw", "t0k", "\x1b"))
    finally:
        server.shutdown()
        moved_server.shutdown()


def test_a_selector_pinned_to_a_moment_is_no_measurement() -> None:
    from pipeline_kit.metrics.prometheus import selectors

    problem = selectors('sum(rate(http_requests_total{release="r"}[5m] @ 100)) or vector(0)')
    assert isinstance(problem, str) and "at a fixed moment (@)" in problem
