"""Run the local Sigstore instance as a process, or mint a token for a running one.

python -m tests.sigstore_instance serve --state DIR [--port N] [--latency S] [--inclusion-delay S]
python -m tests.sigstore_instance mint-token --state DIR --email ADDRESS
"""

from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path

from tests.sigstore_instance import LocalSigstore, mint_from_state


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.sigstore_instance")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve until SIGTERM; writes DIR/trust_config.json and DIR/ready")
    serve.add_argument("--state", type=Path, required=True)
    serve.add_argument("--port", type=int, default=0)
    serve.add_argument("--latency", type=float, default=0.0, help="seconds added to every request")
    serve.add_argument("--inclusion-delay", type=float, default=0.0, help="seconds a Rekor v2 entry takes")
    mint = commands.add_parser("mint-token", help="print a token the instance in DIR accepts")
    mint.add_argument("--state", type=Path, required=True)
    identity = mint.add_mutually_exclusive_group(required=True)
    identity.add_argument("--email")
    identity.add_argument("--subject", help="a URI identity (no email claim)")
    mint.add_argument("--lifetime", type=int, default=600, help="seconds; negative for an expired token")
    args = parser.parse_args()

    if args.command == "mint-token":
        if args.email:
            print(mint_from_state(args.state, args.email, lifetime=args.lifetime))
        else:
            print(mint_from_state(args.state, args.subject, email=False, lifetime=args.lifetime))
        return

    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    instance = LocalSigstore(args.state, args.port)
    instance.latency, instance.inclusion_delay = args.latency, args.inclusion_delay
    instance.start()
    print(instance.url, flush=True)
    stopped.wait()
    instance.stop()


if __name__ == "__main__":
    main()
