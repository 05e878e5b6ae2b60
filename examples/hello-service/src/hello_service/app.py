"""The service: `GET /hello/<name>`, `GET /healthz`."""

from __future__ import annotations

import os

from flask import Flask, jsonify

from hello_service import __version__


def create_app() -> Flask:
    app = Flask(__name__)

    @app.get("/hello/<name>")
    def hello(name: str):  # type: ignore[no-untyped-def]
        return jsonify(greeting=f"hello, {name}", version=__version__)

    @app.get("/healthz")
    def healthz():  # type: ignore[no-untyped-def]
        return jsonify(status="ok", version=__version__)

    return app


def main() -> None:
    create_app().run(host="127.0.0.1", port=int(os.environ.get("PORT", "8080")))
