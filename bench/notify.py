"""How long the webhook notifications hold a command up: a local HTTP server that
answers at once, one that answers after 5 s, a closed port, and all three at once,
each with the manifest's `notify.timeout` (1 s for the bad ones).

Run: .venv/bin/python bench/notify.py [--runs N] [--port 18455]
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from deployer.context import Context
from deployer.manifest.model import NotifyPolicy, Webhook
from deployer.notify import send
from deployer.result import DeployResult, Outcome


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path.startswith("/slow"):
            time.sleep(5)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--port", type=int, default=18455)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{args.port}"
    closed = f"http://127.0.0.1:{args.port + 1}/hook"
    cases = [
        ("answers at once (timeout 5 s)", 5.0, [Webhook(f"{base}/ok", "slack")]),
        ("answers after 5 s (timeout 1 s)", 1.0, [Webhook(f"{base}/slow", "json")]),
        ("closed port (timeout 1 s)", 1.0, [Webhook(closed, "json")]),
        (
            "all three at once (timeout 1 s)",
            1.0,
            [
                Webhook(f"{base}/slow", "json"),
                Webhook(closed, "json"),
                Webhook(f"{base}/ok", "teams"),
            ],
        ),
    ]
    result = DeployResult(app="bench", environment="production", outcome=Outcome.DEPLOYED)
    print(f"{'webhooks':<36} {'median':>8} {'max':>8}  ({args.runs} runs)")
    try:
        for name, timeout, hooks in cases:
            times = []
            for _ in range(args.runs):
                t0 = time.monotonic()
                send(
                    NotifyPolicy(timeout, tuple(hooks)),
                    result,
                    Context(),
                    "deploy",
                    redact=lambda s: s,
                    log=lambda _line: None,
                )
                times.append(time.monotonic() - t0)
            print(f"{name:<36} {statistics.median(times):>7.3f}s {max(times):>7.3f}s")
    finally:
        server.shutdown()
        server.server_close()


if __name__ == "__main__":
    main()
