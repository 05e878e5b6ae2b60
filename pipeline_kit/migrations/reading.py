"""Reading PostgreSQL migrations within bounds, in time, memory and stack.

libpg_query is C: a statement whose parse tree nests deep enough (`SELECT 1+1+...` with 70,000
terms) overflows the thread's stack while the tree is written out, and a SIGSEGV cannot be caught.
Its recursion takes under 140 bytes of stack per nesting level, and every level costs at least
two bytes of SQL, so the parser runs on a stack of `STACK_PER_BYTE` times its input (the main
thread's own for small inputs, a thread of that size for larger ones): it can then never
overflow, and a tree deeper than Python's recursion limit stops in `json.loads` as an error we
report. Files are parsed in chunks of whole statements (split at top-level semicolons), so
memory follows the chunk, not the file; a statement larger than `MAX_STATEMENT_BYTES` is refused
before the parser sees it. What cannot be read is exit 2 naming the file and line.
"""

from __future__ import annotations

import gc
import re
import resource
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from functools import cache, partial
from typing import Any, NamedTuple, TypeVar

from pipeline_kit.errors import EnvironmentFailure, InputError
from pipeline_kit.migrations.interface import Finding, Lines

MAX_STATEMENT_BYTES = 1 << 20  # one statement; larger ones (seed data?) belong in several
CHUNK_CHARS = 256 << 10  # statements parsed at once: bounds the tree held in memory
STACK_PER_BYTE = 256  # about 4x the most libpg_query was seen to use (a 2-byte `+1` level: 2 x 65)
STACK_MARGIN = 16 << 20  # a parser thread's room for the Python frames around the parser

T = TypeVar("T")

# What can hide a semicolon, and the semicolons and parentheses themselves: strings (E'' with
# backslash escapes), quoted identifiers, dollar quotes, comments (/* nests in PostgreSQL), and
# BEGIN ATOMIC, whose body runs to its END (CASE ... END inside it counted). Each begins with a
# character of its own, so the search skips the text between them in C.
_LEXEMES = r"""(?P<semicolon>;)|(?P<open>\()|(?P<close>\))
    |(?P<string>'(?:[^']|'')*(?:'|\Z)|"(?:[^"]|"")*(?:"|\Z))
    |(?P<line>--[^\n]*)|(?P<block>/\*)
    |(?P<dollar>\$(?:[^\W\d]\w*)?\$)
    |(?P<atomic>[bB][eE][gG][iI][nN]\s+[aA][tT][oO][mM][iI][cC]\b)"""
_ESCAPED = r"""'(?:[^'\\]|\\.|'')*(?:'|\Z)"""  # E'...': a backslash escapes the quote
_ATOMIC = r"""\b([cC][aA][sS][eE]|[eE][nN][dD])\b|'(?:[^']|'')*(?:'|\Z)|"(?:[^"]|"")*(?:"|\Z)|--[^\n]*"""
_BLOCK = r"""/\*|\*/"""
_BLANK = r"""(?:\s++|--[^\n]*+)*+"""
# Most statements hold none of these but strings and parentheses (two deep): matched to their `;`
# in one call. Possessive: text that does not match fails at once, never by backtracking.
_STRING = r"""(?<![eE])'(?:[^']|'')*+'|"(?:[^"]|"")*+" """.strip()
_INNER = rf"""\((?:[^;()'"\-/$]++|{_STRING}|-(?!-)|/(?!\*)|\((?:[^;()'"\-/$]++|{_STRING})*+\))*+\)"""
_NOT_ATOMIC = r"""[bB](?![eE][gG][iI][nN]\s+[aA][tT][oO][mM][iI][cC])"""
_SIMPLE = rf"""(?:[^;()'"\-/$bB]++|{_STRING}|-(?!-)|/(?!\*)|{_NOT_ATOMIC}|{_INNER})*+;"""


@cache
def _pattern(source: str) -> re.Pattern[str]:
    """Compiled when first needed: only files over a chunk are split here."""
    return re.compile(source, re.VERBOSE | re.DOTALL)


def statement_ends(sql: str) -> Iterator[int]:
    """The offset just past each top-level `;` of `sql` (and its end, when a statement follows
    the last); blanks and comments after the last statement are none."""
    index, end = 0, len(sql)
    simple = _pattern(_SIMPLE)
    while True:
        index = _skip_blank(sql, index)
        if index >= end:
            return
        match = simple.match(sql, index)  # most statements: one call, in C
        index = match.end() if match else _statement_end(sql, index)
        yield index


def _skip_blank(sql: str, index: int) -> int:
    """Past the blanks and comments at `index` (nested block comments counted)."""
    blank = _pattern(_BLANK)
    while True:
        index = blank.match(sql, index).end()  # type: ignore[union-attr]  # it matches at least ""
        if not sql.startswith("/*", index):
            return index
        index = _block_end(sql, index + 2)


def _in_word(sql: str, index: int) -> bool:
    """Whether `index` continues an identifier (so `x$a$` and `begin_atomic` are no lexemes)."""
    return index > 0 and (sql[index - 1].isalnum() or sql[index - 1] in "_$")


def _statement_end(sql: str, index: int) -> int:
    """Past the first top-level `;` from `index` (or the end of `sql`), lexeme by lexeme."""
    depth, end = 0, len(sql)
    lexemes = _pattern(_LEXEMES)
    while True:
        match = lexemes.search(sql, index)
        if match is None:
            return end
        index, kind, start = match.end(), match.lastgroup, match.start()
        if kind == "semicolon" and depth == 0:
            return index
        if kind == "open":
            depth += 1
        elif kind == "close":
            depth = max(depth - 1, 0)
        elif kind == "string" and sql[start - 1 : start] in ("e", "E") and start and not _in_word(sql, start - 1):
            index = _pattern(_ESCAPED).match(sql, start).end()  # type: ignore[union-attr]  # always matches
        elif kind == "block":
            index = _block_end(sql, index)
        elif kind in ("dollar", "atomic") and _in_word(sql, start):
            index = start + 1
        elif kind == "dollar":
            closing = sql.find(match.group(), index)
            index = end if closing < 0 else closing + len(match.group())
        elif kind == "atomic":
            index = _atomic_end(sql, index)


def _block_end(sql: str, index: int) -> int:
    """Past the `*/` closing a block comment opened just before `index` (nested ones counted)."""
    depth = 1
    for match in _pattern(_BLOCK).finditer(sql, index):
        depth += 1 if match.group() == "/*" else -1
        if depth == 0:
            return match.end()
    return len(sql)


def _atomic_end(sql: str, index: int) -> int:
    """Past the END closing a BEGIN ATOMIC body that starts at `index`."""
    depth = 1
    for match in _pattern(_ATOMIC).finditer(sql, index):
        word = (match.group(1) or "").upper()
        depth += {"CASE": 1, "END": -1}.get(word, 0)
        if depth == 0:
            return match.end()
    return len(sql)


def _main_stack_bytes() -> int:
    """What the main thread's stack may give a parse: its limit, less room for Python's frames."""
    limit = resource.getrlimit(resource.RLIMIT_STACK)[0]
    return (8 << 20 if limit == resource.RLIM_INFINITY else limit) - (1 << 20)


def on_stack(call: Callable[[], T], stack: int, *, thread: bool = False) -> T:
    """`call()` on a stack of at least `stack` bytes: here when the main thread has room, else in
    a thread of that size (the caller waits)."""
    result: list[T] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            result.append(call())
        except BaseException as exc:  # handed to the waiting caller, which raises it
            failure.append(exc)

    if not thread and stack <= _main_stack_bytes() and threading.current_thread() is threading.main_thread():
        run()
    else:
        size = -(-(STACK_MARGIN + stack) // (1 << 20)) << 20  # whole MiB: whole pages on any system
        previous = threading.stack_size(size)
        try:
            worker = threading.Thread(target=run, name="pipeline-kit-parser")
            worker.start()
        except RuntimeError as exc:  # the system has no room for the stack
            raise EnvironmentFailure(f"cannot start a parser thread with a {size >> 20} MiB stack: {exc}") from exc
        finally:
            threading.stack_size(previous)
        worker.join()
    if failure:
        raise failure[0]
    return result[0]


@contextmanager
def collector_paused() -> Iterator[None]:
    """The garbage collector at rest while a file is read and classified: libpg_query's trees
    hold no cycles, and its passes over their millions of fresh dicts made a large file
    superlinear. They are freed by reference counts, chunk by chunk; any cycle made meanwhile
    waits for the next pass. (Not for sqlglot's trees: their nodes point to their parents.)"""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class Unparsable(Exception):
    """Text libpg_query refuses: the file is one `review` finding at the error's line."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset  # in characters, into the file


class PostgresStatements:
    """libpg_query's statements of one file, a chunk at a time, each `stmt_location` a UTF-8
    byte offset into the whole file (as libpg_query gives it for a file parsed at once)."""

    def __init__(self, sql: str, file: str, line: Callable[[int], int]) -> None:
        self.sql, self.file, self.line = sql, file, line

    def __iter__(self) -> Iterator[dict[str, Any]]:
        ascii_only = self.sql.isascii()
        base = previous = 0  # the chunk's start, in bytes and in characters
        for start, end in self._chunks():
            base += start - previous if ascii_only else len(self.sql[previous:start].encode())
            previous = start
            for raw in self._parse(start, end):
                raw["stmt_location"] = base + raw.get("stmt_location", 0)
                yield raw

    def _chunks(self) -> Iterator[tuple[int, int]]:
        """(start, end) of runs of whole statements, each near `CHUNK_CHARS` at most."""
        if len(self.sql) <= CHUNK_CHARS:
            yield 0, len(self.sql)
            return
        start = previous = 0
        for end in statement_ends(self.sql):
            if end - previous > MAX_STATEMENT_BYTES // 4 and len(self.sql[previous:end].encode()) > MAX_STATEMENT_BYTES:
                self._too_large(previous)
            if end - start > CHUNK_CHARS and previous > start:
                yield start, previous
                start = previous
            previous = end
        if previous > start:
            yield start, previous

    def _parse(self, start: int, end: int) -> list[dict[str, Any]]:
        import pgparse  # type: ignore[import-not-found,unused-ignore]  # ships no type information

        text = self.sql[start:end]
        stack = STACK_PER_BYTE * len(text.encode())
        try:
            statements: list[dict[str, Any]] = on_stack(partial(pgparse.parse, text), stack)
        except pgparse.PGQueryError as exc:
            if exc.message.startswith("memory exhausted"):  # bison's stack: 10,000 open levels
                raise self._too_deep(start, end) from None
            raise Unparsable(exc.message, start + max(exc.position - 1, 0)) from None
        except RecursionError:
            raise self._too_deep(start, end) from None
        return statements

    def _too_large(self, offset: int) -> None:
        raise InputError(
            self.file,
            f"line {self.line(offset)}",
            f"a statement over {MAX_STATEMENT_BYTES >> 20} MiB: more than the check reads (split it)",
        )

    def _too_deep(self, start: int, end: int) -> InputError:
        """The error naming the first statement in `start:end` nested too deep to read."""
        import pgparse

        previous = start
        for stop in statement_ends(self.sql[start:end]):
            text = self.sql[previous : start + stop]
            try:
                on_stack(partial(pgparse.parse, text), STACK_PER_BYTE * len(text.encode()))
            except RecursionError:
                break
            except pgparse.PGQueryError as exc:
                if exc.message.startswith("memory exhausted"):
                    break
            previous = start + stop
        return InputError(self.file, f"line {self.line(previous)}", "a statement nests deeper than the check reads")


def token_chunks(tokenize: Callable[[str], list[Any]], sql: str, ends: Callable[[Any], bool]) -> Iterator[Chunk]:
    """`sql` tokenized a chunk of whole statements at a time (for sqlglot, whose token list of a
    whole large file held hundreds of bytes per character). A window is cut after a `;` and
    tokenized; the chunk runs to its last token that `ends` a statement, and the next
    window starts there. A cut inside a string or comment leaves it unterminated, so tokenizing
    fails and the window doubles: a semicolon token in a window that tokenized is a real one.
    A tokenizer error on the whole rest of the file is raised."""
    start, lines = 0, 0
    while start < len(sql):
        window = CHUNK_CHARS
        while True:
            stop = len(sql) if len(sql) - start <= window else sql.rfind(";", start, start + window) + 1
            if stop <= start:  # no statement end in the window: a longer one
                window *= 2
                continue
            try:
                tokens = tokenize(sql[start:stop])
            except Exception:  # the tokenizer's own error type, or a cut inside a string
                if stop == len(sql):
                    raise
                window *= 2
                continue
            last = max((n for n, token in enumerate(tokens) if ends(token)), default=-1)
            if stop == len(sql) or last >= 0:
                break
            window *= 2
        cut = len(tokens) if stop == len(sql) else last + 1
        yield Chunk(start, lines, sql[start:stop], tokens[:cut])
        end = start + tokens[cut - 1].end + 1 if cut and stop != len(sql) else len(sql)
        lines += sql.count("\n", start, end)
        start = end


class Chunk(NamedTuple):
    offset: int  # where the chunk's text starts in the file
    lines: int  # the file's lines before it
    text: str
    tokens: list[Any]


MAX_NESTING = 1_000  # parentheses open at once in a MySQL or SQLite statement
FRAMES_PER_LEVEL = 80  # Python frames sqlglot (and a rule's walk) takes per level, with room


def nesting(tokens: list[Any]) -> int:
    """How many parentheses a statement's sqlglot tokens hold open at once, at most."""
    depth = deepest = 0
    for token in tokens:
        name = token.token_type.name
        if name == "L_PAREN":
            depth += 1
            deepest = max(deepest, depth)
        elif name == "R_PAREN":
            depth -= 1
    return deepest


def nested(call: Callable[[], T], levels: int, file: str, line: int) -> T:
    """`call()` (sqlglot reading a statement `levels` parentheses deep) with room for its
    recursion: in place when shallow (nearly always); else in a thread with a stack and a
    recursion limit for the depth. Deeper than `MAX_NESTING`, or still too deep, is exit 2."""
    import sys

    refused = InputError(file, f"line {line}", "a statement nests deeper than the check reads")
    if levels > MAX_NESTING:
        raise refused
    try:
        if levels <= 20:
            return call()
        limit = sys.getrecursionlimit()
        sys.setrecursionlimit(max(limit, 1_000 + FRAMES_PER_LEVEL * levels))
        try:  # each frame's C stack, when sqlglot calls through C, is a few KiB at most
            return on_stack(call, (64 << 20) + levels * FRAMES_PER_LEVEL * (4 << 10), thread=True)
        finally:
            sys.setrecursionlimit(limit)
    except RecursionError:
        raise refused from None


def read_postgres(
    sql: str, file: str, classify: Callable[[Lines, Iterable[dict[str, Any]]], list[Finding]]
) -> list[Finding]:
    """`classify(lines, statements)` over the statements of one PostgreSQL file read within bounds,
    the collector paused; a syntax error is the whole file's one `review` finding, at its line."""
    lines = Lines(sql)
    readable, refused = len(sql), None
    with collector_paused():
        while True:  # the statements before a syntax error are checked; the rest is said unchecked
            try:
                findings = classify(lines, PostgresStatements(sql[:readable], file, lines.line))
            except Unparsable as exc:
                refused, readable = exc, _statement_start(sql[:readable], exc.offset)
                continue
            except RecursionError:  # a tree deeper than a rule's walk (the parser's own depth is checked)
                raise InputError(file, None, "a statement nests deeper than the check reads") from None
            if refused is None:
                return findings
            return [*findings, _refused(file, lines, refused, readable)]


def _statement_start(sql: str, offset: int) -> int:
    """Where the statement holding `offset` starts: the last statement end at or before it (one
    short of the end of `sql`, so an error at the end of the text leaves its statement out)."""
    start = 0
    for end in statement_ends(sql):
        if end > offset or end >= len(sql):
            break
        start = end
    return start


# what another dialect's migration shows PostgreSQL's parser: MySQL's column and table options, backticks
MYSQL_SYNTAX = re.compile(r"`|\bAUTO_INCREMENT\b|\b(?:ENGINE|ALGORITHM|CHARSET)\s*=", re.IGNORECASE)


def _refused(file: str, lines: Lines, refused: Unparsable, readable: int) -> Finding:
    """The syntax error, as a `review` finding at its line, saying what went unchecked: the
    statement it is in and the rest of the file (the migration tool refuses the file there too)."""
    start = lines.line(readable)
    message = (
        f"not PostgreSQL the parser accepts: {refused} (line {lines.line(refused.offset)}); "
        f"line {start} (this statement) to the end of the file went unchecked"
    )
    statement = lines.text[readable : refused.offset + next(statement_ends(lines.text[refused.offset :]), 0)]
    fix = (
        "MySQL syntax: check it with --dialect mysql (or `migrations: {dialect: mysql}` in the config)"
        if MYSQL_SYNTAX.search(statement)
        else "correct the statement, then check the file again"
    )
    return Finding(file, start, "review", "n/a", "unparsable", message, fix)
