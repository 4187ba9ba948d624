"""The capture browser's jail: no network, no privileges, no keys.

Every request a page makes is intercepted over Playwright's DevTools pipe
and fetched by the platform (:mod:`ledger.capture.fetch`): the browser
itself needs no network at all, so it gets none. In the default mode
(``capture.isolation = "namespace"``) Chromium is started through a
launcher (:meth:`Jail.command`) that

(1) enters a new network namespace (``unshare --net``) in which no
    interface is up, not even loopback: any socket a page could make
    Chromium open (WebRTC STUN/TURN over UDP, a preconnect, a WebSocket,
    DNS) fails with "network unreachable". Abstract unix sockets are per
    namespace too. The only channel out is the DevTools pipe (file
    descriptors 3 and 4) to Playwright, where every request is intercepted
    and handed to the guarded fetcher;
(2) enters a new mount namespace in which ``/run`` is an empty tmpfs: the
    databases' and D-Bus's unix sockets (``/run/postgresql``...), which a
    network namespace does not hide, are not there;
(3) becomes an unprivileged system user (``capture.browser_user``, created
    when missing) with no supplementary groups, no capabilities and no new
    privileges (``setpriv``): the ledger's keys are root's, mode 0600, and
    its home root's, so the browser cannot read them;
(4) runs Chromium with its own sandbox on (no ``--no-sandbox``): renderers
    in their own user, PID and network namespaces under seccomp-bpf. Debian
    ships no setuid sandbox helper; the sandbox uses unprivileged user
    namespaces, which the kernel allows.

The browser's profile and HOME are in a directory of its own, mode 0700,
owned by the browser user, outside the ledger's home, removed afterwards.

When the namespace cannot be made (not root, ``unshare`` or ``setpriv``
missing, a kernel or container that refuses new namespaces) captures are
refused with one line saying why, unless the operator chose the weaker mode
explicitly (``capture.isolation = "none"``): Chromium then runs as this
process's user in this network namespace, with its sandbox unless that user
is root (Chromium cannot sandbox itself as root).
"""

from __future__ import annotations

import functools
import os
import pwd
import shlex
import shutil
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledger.capture.errors import CaptureFailed
from ledger.config import CaptureConfig

__all__ = [
    "SETPRIV",
    "UNSHARE",
    "USERADD",
    "Jail",
    "browser_dir",
    "open_jail",
    "sweep_browser_dirs",
]

UNSHARE = "/usr/bin/unshare"
SETPRIV = "/usr/bin/setpriv"
USERADD = "/usr/sbin/useradd"
MOUNT = "/usr/bin/mount"
SH = "/bin/sh"
_PREFIX = "evidence-browser-"
_user_lock = threading.Lock()
# Kept from this process's environment for the browser (nothing else: the
# environment may hold a database URL or other secrets).
_ENV_KEPT = ("PATH", "LANG", "LANGUAGE", "TZ")


@dataclass(frozen=True, slots=True)
class Jail:
    """How a capture's browser is started: ``namespace`` or (explicitly) ``none``."""

    mode: str
    user: str
    uid: int
    gid: int

    @property
    def sandbox(self) -> bool:
        """Whether Chromium's own sandbox can be on (not as root)."""
        return self.uid != 0

    def command(self, argv: Sequence[str]) -> list[str]:
        """``argv`` wrapped so that it runs jailed: steps (1)-(3) of the module."""
        if self.mode == "none":
            return list(argv)
        inner = (
            # (2) private mounts (unshare's default propagation): /run only here
            f"{MOUNT} -t tmpfs -o mode=0755,nosuid,nodev,noexec,size=64k jail /run || exit 125; "
            # (3) the unprivileged user, nothing inherited
            f"exec {SETPRIV} --reuid={self.uid} --regid={self.gid} --clear-groups "
            '--inh-caps=-all --bounding-set=-all --no-new-privs -- "$@"'
        )
        return [UNSHARE, "--net", "--mount", "--", SH, "-c", inner, "jail", *argv]  # (1)

    def launcher(self, chromium: str, path: Path) -> str:
        """The executable Playwright starts: ``chromium`` itself, or a script
        at ``path`` running it through :meth:`command` (same process id, so
        Playwright's pipe and its signals reach Chromium)."""
        if self.mode == "none":
            return chromium
        line = shlex.join(self.command([chromium]))
        path.write_text(f'#!{SH}\nexec {line} "$@"\n', "utf-8")
        path.chmod(0o700)
        return str(path)

    def env(self, home: Path) -> dict[str, str | float | bool]:
        """The browser's environment: a few neutral variables and its own HOME."""
        env: dict[str, str | float | bool] = {
            k: v for k, v in os.environ.items() if k in _ENV_KEPT or k.startswith("LC_")
        }
        env.setdefault("PATH", "/usr/bin:/bin")
        h = str(home)
        env.update({"HOME": h, "XDG_CONFIG_HOME": h, "XDG_CACHE_HOME": h, "TMPDIR": h})
        return env

    def facts(self) -> dict[str, Any]:
        """What the manifest says about the jail (``browser.isolation``)."""
        if self.mode == "none":
            return {
                "mode": "none",
                "network_namespace": False,
                "user": self.user,
                "uid": self.uid,
                "chromium_sandbox": self.sandbox,
                "note": "weaker mode chosen by the operator (capture.isolation = none)",
            }
        return {
            "mode": "namespace",
            "network_namespace": True,
            "network": "new namespace, no interface up; only the DevTools pipe to the fetcher",
            "mount_namespace": "/run replaced by an empty tmpfs",
            "user": self.user,
            "uid": self.uid,
            "capabilities": "none (no new privileges)",
            "chromium_sandbox": True,
        }


@functools.cache
def _namespace_refusal() -> str | None:
    """Why this process cannot start a jailed command, or None (tried once)."""
    if os.geteuid() != 0:
        return "the capture service does not run as root, which creating a network namespace needs"
    for tool in (UNSHARE, SETPRIV, MOUNT, SH):
        if not os.access(tool, os.X_OK):
            return f"{tool} is missing (Debian's util-linux provides it)"
    probe = Jail("namespace", "root", 0, 0).command(["/bin/true"])
    try:
        proc = subprocess.run(  # noqa: S603 - fixed system tools
            probe, capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"unshare failed ({e})"
    if proc.returncode != 0:
        why = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
        return f"the kernel refused a new namespace ({why[:200]})"
    return None


def _browser_user(name: str) -> tuple[int, int]:
    """The user's uid and gid; the user is created (a system user) when missing."""
    with _user_lock:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            proc = subprocess.run(  # noqa: S603 - fixed system tool, checked name
                [
                    USERADD,
                    "--system",
                    "--user-group",
                    "--no-create-home",
                    "--home-dir",
                    "/nonexistent",
                    "--shell",
                    "/usr/sbin/nologin",
                    name,
                ],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            try:
                entry = pwd.getpwnam(name)
            except KeyError:
                why = (proc.stderr.strip().splitlines() or ["useradd failed"])[-1][:200]
                raise CaptureFailed(
                    "browser_error", f"cannot create the browser user {name!r} ({why})"
                ) from None
    if entry.pw_uid == 0 or entry.pw_gid == 0:
        raise CaptureFailed("browser_error", f"the browser user {name!r} is privileged (id 0)")
    return entry.pw_uid, entry.pw_gid


def open_jail(cfg: CaptureConfig) -> Jail:
    """The jail for this configuration, or :class:`CaptureFailed` (one line) when
    the required isolation cannot be set up."""
    if cfg.isolation == "none":
        me = pwd.getpwuid(os.geteuid())
        return Jail("none", me.pw_name, me.pw_uid, me.pw_gid)
    why = _namespace_refusal()
    if why is not None:
        raise CaptureFailed(
            "browser_error",
            f"the browser cannot be isolated: {why}; captures are refused "
            '(capture.isolation = "none" allows the weaker mode explicitly)',
        )
    uid, gid = _browser_user(cfg.browser_user)
    return Jail("namespace", cfg.browser_user, uid, gid)


@contextmanager
def browser_dir(jail: Jail) -> Iterator[Path]:
    """A new directory for the browser's profile and HOME, 0700, owned by the
    browser user, outside the ledger's home; removed on exit."""
    root = Path(tempfile.mkdtemp(prefix=_PREFIX))
    try:
        for sub in (root / "profile", root / "home"):
            sub.mkdir(mode=0o700)
        if jail.mode == "namespace":
            for p in (root, root / "profile", root / "home"):
                os.chown(p, jail.uid, jail.gid)
        yield root
    finally:
        # Symbolic links the browser may have left are removed, not followed.
        shutil.rmtree(root, ignore_errors=True)


def sweep_browser_dirs(older_than: float) -> int:
    """Remove browser directories left by captures that died (killed process)."""
    cutoff = time.time() - older_than
    removed = 0
    for entry in Path(tempfile.gettempdir()).glob(_PREFIX + "*"):
        try:
            st = entry.lstat()
        except FileNotFoundError:
            continue
        if stat.S_ISDIR(st.st_mode) and st.st_mtime < cutoff:
            shutil.rmtree(entry, ignore_errors=True)
            removed += 1
    return removed
