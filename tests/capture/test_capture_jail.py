"""The capture browser's jail, tried as a hostile page would.

A page on an allowed host tries every way out it has: WebRTC with STUN and
TURN servers on loopback and on the machine's own non-loopback address, DNS
prefetch, preconnect, fetch, a WebSocket, a beacon and images to refused
addresses. The test listens on TCP and UDP on those ports (every local
address) while the real Chromium renders the page: nothing arrives, the page
learns no host candidate, and the capture of the page still completes. The
browser's processes are watched while it runs: they run as the unprivileged
browser user, in another network namespace, the renderers under seccomp
(Chromium's sandbox). A command run in the same jail cannot read the
ledger's keys nor reach a local service.

International host names and non-ASCII paths are captured: the host in IDNA
for the request (resolved, then checked, through the capture's resolver),
the path and query percent-encoded, and the manifest keeps both spellings.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from capture_support import RED, Pki, decode_png, make_pki, pixel, png_bytes, serve
from test_capture_browser import capture_ledger

from ledger.capture import CaptureFailed, CaptureOptions
from ledger.capture.guard import AddressPolicy, Refused
from ledger.capture.jail import SETPRIV, Jail, browser_dir, open_jail, sweep_browser_dirs
from ledger.capture.service import capture_evidence
from ledger.config import CaptureConfig

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the jail needs root")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def _local_address() -> str | None:
    """A non-loopback address of this machine, if it has one."""
    out = subprocess.run(
        ["ip", "-4", "-o", "addr", "show", "scope", "global"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    for line in out.splitlines():
        parts = line.split()
        if "inet" in parts:
            return parts[parts.index("inet") + 1].split("/", 1)[0]
    return None


# -- listeners on every local address -----------------------------------------------


@dataclass
class Trap:
    """TCP and UDP listeners on one port of every local address, recording arrivals."""

    port: int
    arrivals: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)


def _tcp_and_udp() -> tuple[socket.socket, socket.socket]:
    for _ in range(50):
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        tcp.bind(("0.0.0.0", 0))  # every local address
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            udp.bind(("0.0.0.0", tcp.getsockname()[1]))
        except OSError:
            tcp.close()
            udp.close()
            continue
        tcp.listen(16)
        return tcp, udp
    raise RuntimeError("no port free for both TCP and UDP")


@contextmanager
def trap() -> Iterator[Trap]:
    tcp, udp = _tcp_and_udp()
    t = Trap(tcp.getsockname()[1])
    tcp.settimeout(0.1)
    udp.settimeout(0.1)

    def accept() -> None:
        while not t.stop.is_set():
            try:
                conn, peer = tcp.accept()
            except TimeoutError:
                continue
            t.arrivals.append(f"tcp from {peer[0]}")
            conn.close()

    def receive() -> None:
        while not t.stop.is_set():
            try:
                data, peer = udp.recvfrom(4096)
            except TimeoutError:
                continue
            t.arrivals.append(f"udp from {peer[0]}: {data[:20]!r}")

    threads = [threading.Thread(target=f, daemon=True) for f in (accept, receive)]
    for th in threads:
        th.start()
    try:
        yield t
    finally:
        t.stop.set()
        for th in threads:
            th.join()
        tcp.close()
        udp.close()


def _knock(t: Trap, address: str) -> None:
    """Show that the trap hears what reaches it (then forget it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.sendto(b"knock", (address, t.port))
    with socket.create_connection((address, t.port), timeout=5):
        pass
    deadline = time.monotonic() + 5
    while len(t.arrivals) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(t.arrivals) == 2, t.arrivals
    t.arrivals.clear()


# -- the browser's processes ----------------------------------------------------------


def _ppid(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


def _ours(pid: int) -> bool:
    me, seen = os.getpid(), 0
    while pid > 1 and seen < 64:
        if pid == me:
            return True
        pid, seen = _ppid(pid), seen + 1
    return False


@dataclass(frozen=True)
class Proc:
    pid: int
    uids: tuple[int, ...]
    net: str
    seccomp: int
    kind: str
    cmdline: str


class Watcher:
    """Every Chromium process descended from this test while it runs (as last seen)."""

    def __init__(self) -> None:
        self.seen: dict[int, Proc] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            for entry in os.scandir("/proc"):
                if not entry.name.isdigit():
                    continue
                pid = int(entry.name)
                try:
                    if "chromium" not in os.readlink(f"/proc/{pid}/exe") or not _ours(pid):
                        continue
                    status = dict(
                        line.split(":", 1)
                        for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                    )
                    cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                    net = os.readlink(f"/proc/{pid}/ns/net")
                except (OSError, ValueError):
                    continue
                # Chromium rewrites its command line as one string (its process title).
                args = b" ".join(cmd).decode(errors="replace").split()
                if not args:
                    continue  # exiting, or between fork and exec: seen again later
                kind = next((a[7:] for a in args if a.startswith("--type=")), "browser")
                self.seen[pid] = Proc(
                    pid,
                    tuple(int(u) for u in status["Uid"].split()),
                    net,
                    int(status["Seccomp"]),
                    kind,
                    " ".join(args),
                )

    def __enter__(self) -> Watcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


# -- a page that tries every way out ----------------------------------------------------


def _hostile_page(port: int, local: str | None) -> bytes:
    targets = ["127.0.0.2", *([local] if local else [])]
    stun = [f"stun:127.0.0.1:{port}", *([f"stun:{local}:{port}"] if local else [])]
    turn = [f"turn:127.0.0.1:{port}?transport=udp", f"turn:127.0.0.1:{port}?transport=tcp"]
    if local:
        turn += [f"turn:{local}:{port}?transport=udp", f"turn:{local}:{port}?transport=tcp"]
    links = "".join(
        f'<link rel="dns-prefetch" href="//{h}:{port}">'
        f'<link rel="preconnect" href="http://{h}:{port}">'
        f'<img src="http://{h}:{port}/img.png" width=1 height=1>'
        for h in targets
    )
    calls = "".join(
        f'fetch("http://{h}:{port}/fetch").catch(function(){{log("fetch failed");}});'
        f'try {{ var w = new WebSocket("ws://{h}:{port}/ws");'
        f' w.onerror = function(){{log("ws failed");}}; }} catch (e) {{ log("ws " + e); }}'
        f'navigator.sendBeacon("http://{h}:{port}/beacon", "x");'
        for h in targets
    )
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>jail</title>
<link rel="dns-prefetch" href="//leak-by-dns.test">{links}
</head><body style="margin:0">
<img id="red" src="/img/red.png" width="200" height="100">
<pre id="log"></pre>
<script>
function log(t) {{ document.getElementById("log").textContent += t + "\\n"; }}
{calls}
var pc = new RTCPeerConnection({{iceServers: [{{urls: {stun!r}}},
  {{urls: {turn!r}, username: "u", credential: "p"}}]}});
pc.createDataChannel("leak");
pc.onicecandidate = function (e) {{
  log("candidate " + (e.candidate ? e.candidate.candidate : "end")); }};
pc.onicegatheringstatechange = function () {{ log("gathering " + pc.iceGatheringState); }};
pc.createOffer().then(function (o) {{ return pc.setLocalDescription(o); }})
  .then(function () {{ log("offer set"); }}, function (e) {{ log("rtc error " + e); }});
</script></body></html>""".encode()


@pytest.mark.parametrize("isolation", ["namespace", "none"])
def test_a_hostile_page_reaches_nothing_but_the_fetcher(
    tmp_path: Path, pki: Pki, isolation: str
) -> None:
    """``none`` (the weaker mode, no namespace) still has the flags: WebRTC without
    UDP, the closed proxy, no resolver; ``namespace`` has no network at all."""
    local = _local_address()
    with trap() as t, serve() as site:
        _knock(t, "127.0.0.1")
        if local:
            _knock(t, local)
        site.extra["/jail.html"] = (
            200,
            {"Content-Type": "text/html; charset=utf-8"},
            _hostile_page(t.port, local),
        )
        led = capture_ledger(tmp_path / "home", pki, allow=("127.0.0.1/32",), isolation=isolation)
        try:
            with Watcher() as procs:
                r = capture_evidence(
                    led,
                    site.base + "/jail.html",
                    CaptureOptions(full_page=False, wait="delay", delay_ms=4000),
                    out_dir=tmp_path / "out",
                )
            time.sleep(1)  # late packets
            keys = [led.config.key_path, led.config.home / "keys" / "x509-ca.key"]
        finally:
            led.close()
        assert t.arrivals == []
    m = r.manifest.data
    assert m["status"] == "complete"
    assert sorted(site.hits) == ["/img/red.png", "/jail.html"]
    refused = {e["url"] for e in m["requests"]["refused"]}
    assert f"http://127.0.0.2:{t.port}/img.png" in refused
    assert f"http://127.0.0.2:{t.port}/fetch" in refused
    dom = (tmp_path / "out" / "dom.html").read_text()
    log = dom.split('<pre id="log">', 1)[1].split("</pre>", 1)[0]
    assert "offer set" in log and "gathering gathering" in log, log  # WebRTC gathered
    for leak in ("typ host", "typ srflx", "127.0.0.1", *([local] if local else [])):
        assert leak not in log, log  # the page learned no address
    _, _, rows = decode_png((tmp_path / "out" / "screenshot-viewport.png").read_bytes())
    assert pixel(rows, 100, 50) == RED  # the allowed page was captured
    isolation_facts = m["browser"]["isolation"]
    assert isolation_facts["mode"] == isolation
    assert "--webrtc-ip-handling-policy=disable_non_proxied_udp" in m["browser"]["flags"]

    # ``chromium --version`` (run once per process to name the version) loads no page.
    seen = [p for p in procs.seen.values() if "--version" not in p.cmdline.split()]
    assert any(p.kind == "browser" for p in seen) and any(p.kind == "renderer" for p in seen), seen
    if isolation == "none":
        return
    user = pwd.getpwnam("evidence-capture")
    my_net = os.readlink("/proc/self/ns/net")
    for p in seen:
        assert set(p.uids) == {user.pw_uid}, p  # real, effective, saved, filesystem
        assert p.net != my_net, p
        assert "--no-sandbox" not in p.cmdline, p
    assert all(p.seccomp == 2 for p in seen if p.kind == "renderer")  # the sandbox's filter
    assert isolation_facts["user"] == "evidence-capture" and isolation_facts["chromium_sandbox"]
    as_user = [SETPRIV, f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups"]
    for key in keys:
        assert key.exists()
        denied = subprocess.run(
            [*as_user, "cat", str(key)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert denied.returncode != 0 and "Permission denied" in denied.stderr


def _jailed(jail: Jail, code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        jail.command([sys.executable, "-I", "-S", "-c", code]),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_inside_the_jail_no_key_no_network_no_local_socket(tmp_path: Path) -> None:
    jail = open_jail(CaptureConfig())
    assert jail.mode == "namespace" and jail.uid != 0 and jail.sandbox
    from ledger.core import Ledger

    led = Ledger.init(tmp_path / "home", "jail.test/log")
    try:
        key = led.config.key_path
    finally:
        led.close()
    with trap() as t:
        probe = f"""
import os, socket
print("uid", os.getuid(), os.geteuid(), os.getgroups())
try:
    open({str(key)!r}, "rb").read(); print("key read")
except OSError as e:
    print("key", e.errno)
for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
    s = socket.socket(socket.AF_INET, kind)
    try:
        s.settimeout(2)
        s.connect(("127.0.0.1", {t.port})); s.send(b"x"); print("reached", kind)
    except OSError as e:
        print("net", e.errno)
print("pg socket", os.path.exists("/run/postgresql"))
"""
        got = _jailed(jail, probe)
        time.sleep(0.5)
        assert t.arrivals == []
    assert got.returncode == 0, got.stderr
    lines = got.stdout.splitlines()
    assert lines[0] == f"uid {jail.uid} {jail.uid} []"
    assert lines[1] == "key 13"  # EACCES
    assert lines[2:4] == ["net 101", "net 101"]  # ENETUNREACH: no interface is up
    assert lines[4] == "pg socket False"  # /run is an empty tmpfs
    links = subprocess.run(
        jail.command(["/usr/sbin/ip", "-o", "link"]), capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert len(links) == 1 and " lo: <LOOPBACK> " in links[0]  # only loopback, and it is down


def test_without_root_captures_are_refused_unless_the_weaker_mode_is_chosen(
    tmp_path: Path,
) -> None:
    """Run as ``nobody``: no namespace can be made; one line, exit 1, nothing captured."""
    root = Path(tempfile.mkdtemp(prefix="jail-test-"))
    try:
        os.chown(root, 65534, 65534)
        home = root / "home"
        as_nobody = [SETPRIV, "--reuid=65534", "--regid=65534", "--clear-groups"]
        env = {"PATH": "/usr/bin:/bin", "HOME": str(root), "LANG": "C.UTF-8"}
        init = subprocess.run(
            [
                *as_nobody,
                sys.executable,
                "-c",
                "import sys; from pathlib import Path; from ledger.core import Ledger; "
                "Ledger.init(Path(sys.argv[1]), 'nobody.test/log').close()",
                str(home),
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )
        assert init.returncode == 0, init.stderr
        el = str(Path(sys.executable).with_name("evidence-ledger"))
        p = subprocess.run(
            [*as_nobody, el, "--home", str(home), "capture", "https://example.com/"],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )
        assert p.returncode == 1
        assert p.stderr.count("\n") == 1, p.stderr
        assert p.stderr.startswith(
            "error: capture: browser_error: the browser cannot be isolated: "
            "the capture service does not run as root"
        )
        assert 'capture.isolation = "none"' in p.stderr
    finally:
        shutil.rmtree(root, ignore_errors=True)


# -- international names and paths -----------------------------------------------------

IDN_HOST = "例子.测试"
IDN_ASCII = "xn--fsqu00a.xn--0zwm56d"


def test_international_names_and_paths_are_requested_in_ascii() -> None:
    seen: list[str] = []

    def resolver(host: str, port: int) -> list[str]:
        seen.append(host)
        return ["10.9.8.7"]

    policy = AddressPolicy((), resolver)
    t = policy.check_url(f"http://{IDN_HOST}/文档/页 面.html?q=证据 1&x=%41#部分")
    assert t.host == IDN_ASCII
    assert t.url == (
        f"http://{IDN_ASCII}/%E6%96%87%E6%A1%A3/%E9%A1%B5%20%E9%9D%A2.html"
        "?q=%E8%AF%81%E6%8D%AE%201&x=%41#%E9%83%A8%E5%88%86"
    )
    assert policy.check_url(t.url).url == t.url  # already requested form: unchanged
    assert policy.check_url("HTTPS://Example.COM:443").url == "https://example.com/"
    assert (
        policy.check_url("http://[::FFFF:1.2.3.4]:8080/a").url == "http://[::ffff:102:304]:8080/a"
    )
    with pytest.raises(Refused, match=r"resolves to 10\.9\.8\.7"):
        policy.resolve(t.host, 80)  # the guard judges the address the A-label resolves to
    assert seen == [IDN_ASCII]
    with pytest.raises(Refused, match="not a valid international name"):
        policy.check_url("http://a\u200db\u0301.测试/")


def test_an_international_host_and_path_are_captured(tmp_path: Path, pki: Pki) -> None:
    path = "/文档/页面.html"
    encoded = "/%E6%96%87%E6%A1%A3/%E9%A1%B5%E9%9D%A2.html"
    img = "/%E5%9B%BE%E7%89%87/%E7%BA%A2.png"
    with serve() as site:
        port = int(site.base.rsplit(":", 1)[1])
        site.extra[encoded] = (
            200,
            {"Content-Type": "text/html; charset=utf-8"},
            '<!doctype html><meta charset="utf-8"><title>国际域名</title>'
            '<body style="margin:0"><img src="../图片/红.png" width=200 height=100>'.encode(),
        )
        site.extra[img] = (200, {"Content-Type": "image/png"}, png_bytes(200, 100, RED))
        led = capture_ledger(tmp_path / "home", pki)
        url = f"http://{IDN_HOST}:{port}{path}?q=证据"
        try:
            r = capture_evidence(
                led,
                url,
                CaptureOptions(full_page=False),
                resolver=lambda host, _: {IDN_ASCII: ["127.0.0.1"]}[host],
                out_dir=tmp_path / "out",
            )
        finally:
            led.close()
    sent = f"http://{IDN_ASCII}:{port}{encoded}?q=%E8%AF%81%E6%8D%AE"
    m = r.manifest.data
    assert m["status"] == "complete"
    assert m["requested_url"] == url  # as given
    assert m["requested_url_sent"] == sent  # as requested
    assert m["final_url"] == sent and m["main_document"]["url"] == sent
    assert m["page_title"] == "国际域名"
    assert m["environment"]["resolved_addresses"] == {IDN_ASCII: ["127.0.0.1"]}
    assert site.hits == [encoded, img]  # the page once (served to the browser from the fetch)
    assert set(site.hosts) == {f"{IDN_ASCII}:{port}"}
    _, _, rows = decode_png((tmp_path / "out" / "screenshot-viewport.png").read_bytes())
    assert pixel(rows, 100, 50) == RED


def test_an_international_name_resolving_to_a_refused_address_is_refused(
    tmp_path: Path, pki: Pki
) -> None:
    led = capture_ledger(tmp_path / "home", pki)
    try:
        with pytest.raises(CaptureFailed) as e:
            capture_evidence(
                led,
                f"http://{IDN_HOST}/路径",
                resolver=lambda host, _: {IDN_ASCII: ["10.0.0.1"]}[host],
            )
    finally:
        led.close()
    assert e.value.status == "refused"
    assert f"{IDN_ASCII} resolves to 10.0.0.1" in str(e.value)


def test_browser_directories_of_dead_captures_are_swept() -> None:
    jail = open_jail(CaptureConfig())
    with browser_dir(jail) as live:
        old = Path(tempfile.mkdtemp(prefix="evidence-browser-"))
        (old / "profile").mkdir()
        os.utime(old, (time.time() - 7200, time.time() - 7200))
        assert sweep_browser_dirs(3600) >= 1
        assert not old.exists() and live.exists()
        assert live.stat().st_uid == jail.uid and oct(live.stat().st_mode & 0o777) == "0o700"
    assert not live.exists()
