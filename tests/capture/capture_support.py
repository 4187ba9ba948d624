"""Helpers for the capture tests: a test-made CA, a local HTTP(S) site, a PNG decoder.

The site is a real ``ThreadingHTTPServer`` on 127.0.0.1 (HTTPS through
``ssl`` with a server certificate issued by a CA made here), serving a page
with images, CSS, a script that changes the DOM after load, a redirect of the
page and a redirect of an image. Other paths exercise failures: a 404, a
download, a page that never answers, a large body, many requests.

For recorded captures, ``/clock.html`` changes every 100 ms (a counter and a
bar of changing width), has a button whose click adds ``#bought`` to the DOM,
a login form posted to ``/login`` (answered 303 to ``/welcome.html``; the
bodies are kept in :attr:`Site.posts`) and a link to a private address.
"""

from __future__ import annotations

import gzip
import http.server
import ipaddress
import socket
import ssl
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

# -- PKI -----------------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    ca_pem: Path
    cert_pem: Path
    key_pem: Path
    ca_cert: x509.Certificate
    leaf_cert: x509.Certificate


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_pki(directory: Path, cn: str = "Capture Test Root CA") -> Pki:
    """A root CA and a server certificate for 127.0.0.1 and localhost."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC) - timedelta(minutes=5)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(_name("capture-test-site"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    (directory / "ca.pem").write_bytes(ca.public_bytes(pem))
    (directory / "server.pem").write_bytes(leaf.public_bytes(pem) + ca.public_bytes(pem))
    (directory / "server.key").write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return Pki(directory / "ca.pem", directory / "server.pem", directory / "server.key", ca, leaf)


# -- PNG -----------------------------------------------------------------------


def decode_png(data: bytes) -> tuple[int, int, list[bytes]]:
    """Decode an 8-bit RGB or RGBA, non-interlaced PNG: (width, height, rows of RGB)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + n]
        (crc,) = struct.unpack(">I", data[pos + 8 + n : pos + 12 + n])
        assert zlib.crc32(kind + body) == crc, f"bad CRC in {kind!r}"
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
        pos += 12 + n
    assert header is not None
    width, height, depth, color, _, _, interlace = header
    assert depth == 8 and color in (2, 6) and interlace == 0, header
    bpp = 3 if color == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows: list[bytes] = []
    prev = bytearray(stride)
    for y in range(height):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 0xFF
            elif f == 2:
                line[i] = (line[i] + b) & 0xFF
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 0xFF
        rows.append(bytes(line) if bpp == 3 else bytes(x for j, x in enumerate(line) if j % 4 != 3))
        prev = line
    return width, height, rows


def pixel(rows: list[bytes], x: int, y: int) -> tuple[int, int, int]:
    r = rows[y]
    return r[3 * x], r[3 * x + 1], r[3 * x + 2]


def png_bytes(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A solid-colour RGB PNG."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    row = b"\x00" + bytes(rgb) * width
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


# -- the site ------------------------------------------------------------------

RED = (220, 20, 60)
BLUE = (30, 90, 200)
GREEN = (20, 160, 80)

PAGE = b"""<!doctype html>
<html><head><meta charset="utf-8"><title>Capture test page</title>
<link rel="stylesheet" href="/static/style.css">
</head><body>
<h1 id="status">loading</h1>
<img id="red" src="/img/red.png" width="200" height="100">
<img id="blue" src="/img/moved.png" width="200" height="100">
<div class="band"></div>
<p style="height:1600px">tall content</p>
<p id="bottom">bottom</p>
<script src="/static/app.js"></script>
</body></html>
"""

STYLE = b"""body { margin: 0; background: rgb(250, 250, 250); font-family: sans-serif; }
h1 { margin: 0; height: 40px; }
img { display: block; }
.band { width: 300px; height: 60px; background: rgb(20, 160, 80); }
"""

APP_JS = b"""window.addEventListener('load', function () {
  document.getElementById('status').textContent = 'changed-by-script';
  var p = document.createElement('p');
  p.id = 'added';
  p.textContent = 'added after load';
  document.body.appendChild(p);
});
"""


CLOCK_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>录屏测试 clock</title>
<style>
body { margin: 0; font-family: sans-serif; background: rgb(250, 250, 250); }
#tick { position: absolute; left: 20px; top: 20px; font-size: 40px; }
#bar { position: absolute; left: 20px; top: 90px; height: 40px; width: 10px;
       background: rgb(30, 90, 200); }
#buy { position: absolute; left: 20px; top: 160px; width: 160px; height: 40px; }
#user { position: absolute; left: 20px; top: 240px; width: 240px; height: 30px; }
#code { position: absolute; left: 20px; top: 300px; width: 240px; height: 30px;
        font-size: 20px; }
#go { position: absolute; left: 20px; top: 360px; }
#private { position: absolute; left: 20px; top: 420px; }
#tall { position: absolute; left: 0; top: 0; width: 1px; height: 3000px; }
</style></head><body>
<div id="tick">tick 0</div><div id="bar"></div>
<button id="buy" type="button">购买 buy</button>
<form method="post" action="/login">
<input id="user" name="user" autocomplete="off">
<input id="code" name="code" autocomplete="off">
<button id="go" type="submit">登录</button>
</form>
<a id="private" href="http://10.0.0.1/secret">内网 intranet</a>
<div id="tall"></div>
<script>
var n = 0;
setInterval(function () {
  n++;
  document.getElementById('tick').textContent = 'tick ' + n;
  document.getElementById('bar').style.width = (10 + (n * 37) % 600) + 'px';
}, 100);
document.getElementById('buy').addEventListener('click', function () {
  var p = document.createElement('p');
  p.id = 'bought';
  p.textContent = '已购买 bought';
  p.style.cssText = 'position: absolute; left: 220px; top: 160px; margin: 0;';
  document.body.appendChild(p);
});
</script>
</body></html>
""".encode()

WELCOME_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>欢迎 welcome</title></head>
<body><h1 id="welcome">欢迎 welcome</h1><p id="tick">0</p>
<script>var n = 0; setInterval(function () {
  document.getElementById('tick').textContent = ++n; }, 100);</script>
</body></html>
""".encode()


@dataclass
class Site:
    """A running local site; ``base`` is ``http(s)://127.0.0.1:PORT``."""

    base: str
    server: http.server.ThreadingHTTPServer
    hits: list[str] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)
    """The Host header of every request, in order."""
    cookies: list[tuple[str, str]] = field(default_factory=list)
    """(path, Cookie header) of every request, in order."""
    extra: dict[str, tuple[int, dict[str, str], bytes]] = field(default_factory=dict)
    posts: list[tuple[str, bytes]] = field(default_factory=list)
    """(path, body) of every POST, in order."""


def _resources(site: Site) -> dict[str, tuple[int, dict[str, str], bytes]]:
    html = {"Content-Type": "text/html; charset=utf-8"}
    res: dict[str, tuple[int, dict[str, str], bytes]] = {
        "/": (302, {"Location": "/page.html"}, b""),
        "/page.html": (200, html, PAGE),
        "/static/style.css": (200, {"Content-Type": "text/css"}, STYLE),
        "/static/app.js": (200, {"Content-Type": "application/javascript"}, APP_JS),
        "/img/red.png": (200, {"Content-Type": "image/png"}, png_bytes(200, 100, RED)),
        "/img/moved.png": (301, {"Location": "/img/blue.png"}, b""),
        "/img/blue.png": (200, {"Content-Type": "image/png"}, png_bytes(200, 100, BLUE)),
        "/missing": (404, html, b"<h1>Not Found</h1>"),
        "/download": (
            200,
            {"Content-Type": "application/zip", "Content-Disposition": "attachment; name=a.zip"},
            b"PK\x05\x06" + bytes(18),
        ),
        "/octets": (200, {"Content-Type": "application/octet-stream"}, bytes(64)),
    }
    # A page of 30 images: more requests than a small request limit allows.
    imgs = "".join(f'<img src="/many/{i}.png">' for i in range(30))
    res["/many.html"] = (200, html, f"<!doctype html><body>{imgs}</body>".encode())
    for i in range(30):
        res[f"/many/{i}.png"] = (200, {"Content-Type": "image/png"}, png_bytes(4, 4, GREEN))
    # One large image: more bytes than a small size limit allows.
    res["/big.html"] = (200, html, b'<!doctype html><body><img src="/big.bin"></body>')
    res["/big.bin"] = (200, {"Content-Type": "image/png"}, bytes(3 * 1024 * 1024))
    res["/gzip.html"] = (
        200,
        {**html, "Content-Encoding": "gzip"},
        gzip.compress(b"<!doctype html><title>gz</title><p id=gz>compressed page</p>"),
    )
    res["/cookie.html"] = (
        200,
        {**html, "Set-Cookie": "session=s1; Path=/"},
        b'<!doctype html><body><img src="/img/red.png"></body>',
    )
    res["/js-cookie.html"] = (
        200,
        html,
        # The image is requested by the script, after the cookie is set (an <img>
        # tag could be fetched earlier by the preload scanner).
        '<!doctype html><meta charset="utf-8"><body><script>document.cookie = "who=张三; path=/";'
        'var i = new Image(); i.src = "/img/red.png"; document.body.appendChild(i);'
        "</script></body>".encode(),
    )
    res["/hang-img.html"] = (200, html, b'<!doctype html><body><img src="/hang"></body>')
    res["/to-private"] = (302, {"Location": "http://10.0.0.1/secret"}, b"")
    res["/loop"] = (302, {"Location": "/loop"}, b"")
    res["/clock.html"] = (200, html, CLOCK_PAGE)
    res["/welcome.html"] = (200, html, WELCOME_PAGE)
    res.update(site.extra)
    return res


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30  # a client that stops talking frees its thread
    site: Site

    def setup(self) -> None:
        super().setup()
        if isinstance(self.request, ssl.SSLSocket):
            self.request.do_handshake()  # here, not in the accepting thread

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0]
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.site.hits.append(path)
        self.site.posts.append((path, body))
        self.send_response(303 if path == "/login" else 404)
        if path == "/login":
            self.send_header("Location", "/welcome.html")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        self.site.hits.append(path)
        self.site.hosts.append(self.headers.get("Host", ""))
        self.site.cookies.append((path, self.headers.get("Cookie", "")))
        if path == "/hang":
            time.sleep(30)
            return
        if path == "/chunked.html":
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (b"<!doctype html><p id=c>", b"chunked ", b"body</p>"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
            return
        status, headers, body = _resources(self.site).get(
            path, (404, {"Content-Type": "text/plain"}, b"not found")
        )
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@contextmanager
def serve(pki: Pki | None = None) -> Iterator[Site]:
    """Serve the test site on 127.0.0.1 (HTTPS with ``pki``); stop on exit."""
    handler = type("Handler", (_Handler,), {})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    scheme = "http"
    if pki is not None:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(pki.cert_pem, pki.key_pem)
        server.socket = ctx.wrap_socket(
            server.socket, server_side=True, do_handshake_on_connect=False
        )
        scheme = "https"
    # accept() never blocks the serving loop (and so its shutdown) for long:
    # a connection the client dropped before it was accepted can leave it
    # waiting for the next one.
    server.socket.settimeout(1.0)
    site = Site(f"{scheme}://127.0.0.1:{server.server_address[1]}", server)
    handler.site = site  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield site
    finally:
        server.shutdown()
        server.server_close()


def free_port() -> int:
    """A local port with nothing listening on it (for 'never loads' cases)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
