"""Keep credentials out of anything the kit writes: URLs lose their user-info and secret params."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

_SECRET_PARAMS = re.compile(r"(token|secret|password|passwd|pwd|key|sig|signature|auth)", re.I)
_SCP_LIKE = re.compile(r"^(?:[^@/]+@)?(?P<host>[^:/]+):(?P<path>[^/].*)$")


def strip_credentials(url: str) -> str:
    """`https://user:tok@host/p?token=x&a=1` -> `https://host/p?a=1`. Non-URLs pass unchanged."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if not parts.scheme or not parts.netloc:
        return url
    netloc = parts.netloc.rsplit("@", 1)[-1]
    query = parts.query
    if query:
        kept = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if not _SECRET_PARAMS.search(k)]
        query = urlencode(kept)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def repository_web_uri(remote: str) -> str:
    """A git remote as a browsable https URI without credentials or `.git`.

    `git@github.com:acme/hello.git` -> `https://github.com/acme/hello`;
    `https://x-token:abc@gitlab.com/acme/hello.git` -> `https://gitlab.com/acme/hello`.
    """
    remote = remote.strip()
    scp = _SCP_LIKE.match(remote) if "://" not in remote else None
    if scp:
        remote = f"https://{scp['host']}/{scp['path']}"
    elif remote.startswith(("ssh://", "git://", "git+ssh://")):
        parts = urlsplit(remote)
        remote = f"https://{parts.hostname}{parts.path}"
    remote = strip_credentials(remote)
    return remote[:-4] if remote.endswith(".git") else remote.rstrip("/")
