"""One HTTP request with a total deadline, never following a redirect.

urllib's `timeout` bounds each socket operation, not the request: a server answering one byte a
second within it keeps a job waiting for days. Here a timer closes the connection when the
deadline passes, whatever the request is doing. A redirect is an error, never followed: urllib
replays a request, credentials included, to whatever address the answer names.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass


class HttpProblem(Exception):
    """Why a request got no answer: one line, naming no credential."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes


def request(
    method: str,
    url: str,
    *,
    deadline: float,
    max_bytes: int,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    context: ssl.SSLContext | None = None,
) -> Answer:
    """`method url` answered within `deadline` seconds, its body at most `max_bytes` (more is an
    error). Any status is an Answer, except 3xx: a redirect raises HttpProblem, as does a refused
    connection, a deadline passed or an answer that is not HTTP."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as exc:  # a port out of range, an unclosed IPv6 address
        raise HttpProblem(f"not a valid URL: {_why(exc)}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise HttpProblem(f"not an http(s) URL: {parts.scheme}://{parts.hostname or ''}")
    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        secure = context or ssl.create_default_context()
        connection = http.client.HTTPSConnection(parts.hostname, port, timeout=deadline, context=secure)
    else:
        connection = http.client.HTTPConnection(parts.hostname, port, timeout=deadline)
    path = urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, ""))
    expired = threading.Event()
    started = time.monotonic()
    try:
        connection.connect()  # bounded by the socket timeout, the whole deadline
    except (OSError, ValueError) as exc:  # ValueError: a host name IDNA cannot encode
        connection.close()
        raise HttpProblem(_why(exc)) from None
    sock: socket.socket = connection.sock  # held: the connection forgets it once the answer says "close"

    def expire() -> None:
        expired.set()
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)  # wakes a blocked read at once

    timer = threading.Timer(max(0.0, deadline - (time.monotonic() - started)), expire)
    timer.daemon = True
    timer.start()
    try:
        connection.request(method, path, body=body, headers=dict(headers or {}))
        response = connection.getresponse()
        if 300 <= response.status < 400:
            raise HttpProblem(
                f"HTTP {response.status}: redirected to {_where(response.getheader('Location') or '')}: "
                "refused (a request with credentials never follows a redirect)"
            )
        data = b""
        while len(data) <= max_bytes:
            chunk = response.read1(min(65536, max_bytes + 1 - len(data)))
            if not chunk:
                break
            data += chunk
        if expired.is_set():  # the cut connection reads as the end of the answer
            raise HttpProblem(f"timed out: no complete answer within {deadline:g}s")
        if len(data) > max_bytes:
            raise HttpProblem(f"answer larger than {max_bytes} bytes")
        return Answer(response.status, data)
    except ValueError:  # http.client quotes the bad header value (a token with a line break)
        raise HttpProblem("the request could not be sent: a header value is not valid") from None
    except (OSError, http.client.HTTPException) as exc:
        # the socket's own timeout and the timer share the deadline: whichever fires first, one reason
        if expired.is_set() or isinstance(exc, TimeoutError):
            raise HttpProblem(f"timed out: no complete answer within {deadline:g}s") from None
        raise HttpProblem(_why(exc)) from None
    finally:
        timer.cancel()
        connection.close()


def _why(exc: BaseException) -> str:
    """One line: the OS's or the library's reason, never a request's contents."""
    if isinstance(exc, TimeoutError):
        return "timed out"
    reason = str(getattr(exc, "reason", None) or getattr(exc, "strerror", None) or exc)
    if not reason.strip():
        return type(exc).__name__
    return _printable(reason.splitlines()[0])  # http.client quotes what the server sent (a status line)


def all_within(calls: Sequence[Callable[[], object]], deadline: float, what: str) -> None:
    """Run `calls` at once, each in a daemon thread; raise the first failure (in order), or
    HttpProblem naming `what` when they are not all done within `deadline` seconds (a library's
    per-read timeout is no deadline; an abandoned thread never keeps the process alive)."""
    failures: dict[int, BaseException] = {}

    def run(index: int, call: Callable[[], object]) -> None:
        try:
            call()
        except BaseException as exc:
            failures[index] = exc

    threads = [threading.Thread(target=run, args=(i, c), name=f"{what}-{i}", daemon=True) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    ends = time.monotonic() + deadline
    for thread in threads:
        thread.join(max(0.0, ends - time.monotonic()))
    if any(thread.is_alive() for thread in threads):
        raise HttpProblem(f"{what}: no answer within {deadline:g}s")
    if failures:
        raise failures[min(failures)]


def _where(location: str) -> str:
    """Where a redirect points, as host and port only (no userinfo, path or query, which may carry
    secrets), printable."""
    try:
        parts = urllib.parse.urlsplit(location)
        host = parts.hostname or "(no host)"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(an unreadable address)"
    return _printable(f"{parts.scheme}://{host}{port}" if parts.scheme else host)


def _printable(text: str) -> str:
    """What a server sent, as one short line no terminal takes for an escape."""
    return "".join(ch if ch.isprintable() else "?" for ch in text)[:200]
