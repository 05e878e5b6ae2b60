"""Private helpers: filesystem, subprocesses, redaction. Not a public API."""
