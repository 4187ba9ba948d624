"""A real RFC 3161 TSA for tests: ``openssl ts -reply`` behind a loopback HTTP endpoint.

Usage: python tsa_server.py --config tsa.cnf --port PORT [--replay] [--ber]

Every ``POST`` with an ``application/timestamp-query`` body is answered with
what ``openssl ts -reply -config tsa.cnf`` produces for it, as
``application/timestamp-reply`` (RFC 3161 §3.4). ``openssl`` keeps the TSA's
serial number in a file, so requests are answered one at a time. With
``--replay`` the server answers every request with the first response it
produced (a replayed token: wrong nonce and imprint for any later request).
With ``--ber`` every response is re-encoded in BER as Bouncy Castle TSAs send
it (indefinite lengths, a segmented TSTInfo; see ``token_forms.ber_response``).
Prints ``listening PORT`` once it accepts connections.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # for token_forms' verifier

from token_forms import ber_response

MAX_QUERY = 16 * 1024


class _State:
    def __init__(self, config: Path, replay: bool, ber: bool) -> None:
        self.config = config
        self.replay = replay
        self.ber = ber
        self.first: bytes | None = None
        self.lock = threading.Lock()
        self.count = 0

    def reply(self, query: bytes) -> bytes:
        with self.lock, tempfile.TemporaryDirectory() as tmp:
            if self.replay and self.first is not None:
                return self.first
            q, r = Path(tmp) / "q.tsq", Path(tmp) / "r.tsr"
            q.write_bytes(query)
            cmd = ["openssl", "ts", "-reply", "-config", str(self.config)]
            subprocess.run(
                [*cmd, "-queryfile", str(q), "-out", str(r)],
                check=True,
                capture_output=True,
                timeout=30,
            )
            data = r.read_bytes()
            if self.ber:
                data = ber_response(data)
            self.count += 1
            if self.first is None:
                self.first = data
            return data


def _handler(state: _State) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _send(self, status: int, ctype: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length <= 0 or length > MAX_QUERY:
                self._send(400, "text/plain", b"bad length\n")
                return
            query = self.rfile.read(length)
            if self.headers.get("Content-Type") != "application/timestamp-query":
                self._send(415, "text/plain", b"expected application/timestamp-query\n")
                return
            try:
                body = state.reply(query)
            except subprocess.CalledProcessError as e:
                self._send(400, "text/plain", e.stderr[-500:])
                return
            self._send(200, "application/timestamp-reply", body)

    return Handler


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True, type=Path)
    ap.add_argument("--port", required=True, type=int)
    ap.add_argument("--replay", action="store_true")
    ap.add_argument("--ber", action="store_true")
    args = ap.parse_args()
    state = _State(args.config, args.replay, args.ber)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), _handler(state))
    print(f"listening {args.port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        sys.stdout.flush()


if __name__ == "__main__":
    main()
