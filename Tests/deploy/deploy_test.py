#!/usr/bin/env python3
"""Deployment test: pressd installed into a minimal Debian 12 system, booted with systemd.

Follows docs/operations.md ("Install", "On a target machine") step by step:

  1. A minimal Debian 12 root with systemd and pressd's runtime packages (no Swift
     toolchain) is made once with debootstrap and cached in /var/cache/pressd-deploy
     (made again when missing or when the package list below changes).
  2. A fresh copy of it (a temporary directory, removed at the end) gets
     `make install DESTDIR=<copy>`.
  3. The copy is booted with `systemd-nspawn -b` (private network); commands run
     inside it with `nsenter`.
  4. Inside: systemd-sysusers, systemd-tmpfiles --create, a technician `tech` in the
     group pressctl, then the checks a-k below, each printed as PASS/FAIL.

The last line is `deploy: N passed, M failed`; the exit status is non-zero when a
check failed. Without root or without systemd-nspawn the test is skipped (exit 0),
except under CI=true, where that is a failure. Each phase has a time bound (below), so
the test cannot hang; the container is always powered off and removed, also after a
failure, a timeout or SIGTERM/SIGINT.

Run it as root from the repository: `Tests/deploy/deploy_test.py` (scripts/test does).
Options: --keep (leave the container running and its directory in place, for
debugging; prints how to enter it), --no-install (make install without building:
installs what .build/dist and the last manual/completions build hold - for iterating
on the checks), --apt-mirror [--apt-root DIR] (print the Debian mirror debootstrap would
use, from DIR/etc/apt (default /), and exit: nothing else runs).

The Debian mirror is this machine's: the first `deb` entry for bookworm with the main
component in /etc/apt/sources.list, /etc/apt/sources.list.d/*.list (one-line format)
or /etc/apt/sources.list.d/*.sources (deb822), in the order apt reads them. None found
is an error that says so.
"""

import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

# `systemd-analyze security pressd.service` on the live unit must not exceed this
# (the score reached, rounded up to 0.1; docs/operations.md explains what it costs).
EXPOSURE_THRESHOLD = 1.3

# Time bounds, so that the test can never hang CI.
CACHE_TIMEOUT_S = 10 * 60      # debootstrap: 1-2 min with the mirror near, once
BUILD_TIMEOUT_S = 40 * 60      # make install: a cold release build is ~10 min on 2 cores
RUN_TIMEOUT_S = 15 * 60        # copy, boot, every check (~1 min), power-off

CACHE_DIR = "/var/cache/pressd-deploy"
SUITE = "bookworm"
# What boots: systemd as PID 1, and D-Bus for systemctl/logind.
BOOT_PACKAGES = ["systemd", "systemd-sysv", "dbus"]
# What pressd needs on a machine without Swift: the list in docs/operations.md.
RUNTIME_PACKAGES = ["libmodbus5", "libgpiod2", "libsqlite3-0", "libsystemd0", "libmosquitto1", "libstdc++6", "libgcc-s1"]

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PREFIX = "/usr/local"
PRESSD = PREFIX + "/bin/pressd"
PRESSCTL = PREFIX + "/bin/pressctl"
SOCKET = "/run/pressd/pressd.sock"
CONFIG = "/etc/pressd/pressd.toml"
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SETPOINT = 3.0                 # MPa, channel A
BAND = 0.05                    # ±5 %


class Timeout(Exception):
    pass


class Stop(Exception):
    """SIGTERM or SIGINT: clean up and leave."""


class CheckFailed(Exception):
    pass


class NspawnImpossible(Exception):
    """systemd-nspawn gave up before the container's systemd ran: not a pressd problem."""


def log(msg=""):
    print(msg, flush=True)


def tail(path, n=40):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError as e:
        return f"({path}: {e})"


# ---------------------------------------------------------------- time bounds

_deadline = None


def set_deadline(seconds, what):
    """Raises Timeout (via SIGALRM) once `seconds` have passed."""
    global _deadline
    _deadline = (time.monotonic() + seconds, what)
    signal.alarm(int(seconds) + 1)


def remaining():
    return max(1.0, _deadline[0] - time.monotonic()) if _deadline else 3600.0


def _on_alarm(signum, frame):
    raise Timeout(f"time limit reached: {_deadline[1] if _deadline else '?'}")


def _on_stop(signum, frame):
    raise Stop(f"signal {signum}")


# ---------------------------------------------------------------- host side

def host(argv, timeout=None, log_path=None, **kw):
    """Runs a command on the host; output to `log_path` when given."""
    t = min(timeout or remaining(), remaining())
    if log_path:
        with open(log_path, "ab") as out:
            p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 start_new_session=True, **kw)
            try:
                return p.wait(timeout=t)
            except BaseException:
                kill_group(p)
                raise
    return subprocess.run(argv, capture_output=True, text=True, timeout=t, stdin=subprocess.DEVNULL, **kw)


def kill_group(p):
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


class NoMirror(Exception):
    pass


def apt_source_files(root="/"):
    """The files apt reads its sources from, in its order: sources.list, then
    sources.list.d/*.list and *.sources by name (apt ignores other names)."""
    etc = os.path.join(root, "etc/apt")
    files = [os.path.join(etc, "sources.list")]
    d = os.path.join(etc, "sources.list.d")
    try:
        names = sorted(os.listdir(d))
    except OSError:
        names = []
    files += [os.path.join(d, n) for n in names if n.endswith(".list") or n.endswith(".sources")]
    return [f for f in files if os.path.isfile(f)]


def apt_entries(path):
    """(types, uris, suites, components) of each entry of one sources file: one-line
    (`deb [options] URI SUITE COMPONENT...`) or deb822 stanzas (`Types:`, `URIs:`,
    `Suites:`, `Components:`; `Enabled: no` skipped)."""
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    entries = []
    if path.endswith(".sources"):
        for stanza in re.split(r"\n\s*\n", text):
            fields, key = {}, None
            for line in stanza.split("\n"):
                if line.startswith("#") or not line.strip():
                    continue
                if line[0] in " \t" and key:
                    fields[key] += " " + line.strip()
                    continue
                key, _, value = line.partition(":")
                key = key.strip().lower()
                fields[key] = value.strip()
            if fields.get("enabled", "yes").lower() == "no":
                continue
            entries.append((fields.get("types", "").split(), fields.get("uris", "").split(),
                            fields.get("suites", "").split(), fields.get("components", "").split()))
    else:
        for line in text.split("\n"):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            line = re.sub(r"\[[^\]]*\]", " ", line, count=1)  # [arch=… signed-by=…]
            words = line.split()
            if len(words) >= 3:
                entries.append(([words[0]], [words[1]], [words[2]], words[3:]))
    return entries


def apt_mirror(suite=SUITE, root="/"):
    """The mirror of this machine's apt sources for `suite`'s main component (without a
    trailing slash); NoMirror naming the files read when there is none."""
    files = apt_source_files(root)
    for path in files:
        for types, uris, suites, components in apt_entries(path):
            if "deb" in types and suite in suites and "main" in components:
                for uri in uris:
                    if re.match(r"^(https?|ftp|file):", uri):
                        return uri.rstrip("/")
    raise NoMirror(f"no Debian mirror for {suite} main in this machine's apt sources "
                   f"(read: {', '.join(files) or 'none'}; looked in /etc/apt/sources.list, "
                   f"/etc/apt/sources.list.d/*.list and *.sources): add an entry "
                   f"'deb URI {suite} main', the mirror debootstrap is to use")


def cached_root(work):
    """The cached minimal root, made with debootstrap when missing or outdated."""
    try:
        mirror = apt_mirror()
    except NoMirror as e:
        raise CheckFailed(str(e))
    os.makedirs(CACHE_DIR, exist_ok=True)
    root = os.path.join(CACHE_DIR, "root")
    stamp = os.path.join(CACHE_DIR, "root.packages")
    wanted = f"{SUITE} minbase {mirror} " + ",".join(sorted(BOOT_PACKAGES + RUNTIME_PACKAGES)) + "\n"
    lock = open(os.path.join(CACHE_DIR, ".lock"), "w")
    fcntl.flock(lock, fcntl.LOCK_EX)  # released when the lock file is closed (exit)
    try:
        with open(stamp) as f:
            if f.read() == wanted and os.path.isfile(os.path.join(root, "usr/lib/systemd/systemd")):
                return root, lock
    except OSError:
        pass
    log(f"deploy: making the cached Debian root in {root} (debootstrap {SUITE}, {mirror}, from the machine's apt sources)")
    new = root + ".new"
    shutil.rmtree(new, ignore_errors=True)
    dlog = os.path.join(work, "debootstrap.log")
    include = ",".join(BOOT_PACKAGES + RUNTIME_PACKAGES)
    t0 = time.monotonic()
    rc = host(["debootstrap", "--variant=minbase", f"--include={include}", SUITE, new, mirror],
              timeout=CACHE_TIMEOUT_S, log_path=dlog)
    if rc != 0:
        shutil.rmtree(new, ignore_errors=True)
        raise CheckFailed(f"debootstrap exited {rc}:\n{tail(dlog)}")
    shutil.rmtree(root, ignore_errors=True)
    os.rename(new, root)
    with open(stamp, "w") as f:
        f.write(wanted)
    log(f"deploy: cached root made in {time.monotonic() - t0:.0f} s")
    return root, lock


# ---------------------------------------------------------------- the container

class Container:
    def __init__(self, directory, log_path):
        self.dir = directory
        self.log_path = log_path
        self.nspawn = None
        self.pid1 = None
        self.lock_file = None

    def lock(self):
        """One booted container at a time: systemd-nspawn --keep-unit puts every
        container started from the same cgroup into the same payload cgroup, where two
        containers' systemd disturb each other (`systemctl kill` fails with EIO)."""
        self.lock_file = open(os.path.join(CACHE_DIR, ".boot-lock"), "w")
        try:
            fcntl.flock(self.lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log("deploy: waiting for another deployment test's container to power off")
            fcntl.flock(self.lock_file, fcntl.LOCK_EX)

    def unlock(self):
        if self.lock_file:
            self.lock_file.close()
            self.lock_file = None

    def boot(self, timeout=180):
        self.logf = open(self.log_path, "ab")
        self.nspawn = subprocess.Popen(
            ["systemd-nspawn", "-q", "-b", "-D", self.dir, "--register=no", "--keep-unit", "--private-network",
             "--machine", f"pressd-deploy-{os.getpid()}"],
            stdin=subprocess.DEVNULL, stdout=self.logf, stderr=subprocess.STDOUT, start_new_session=True)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.nspawn.poll() is not None:
                msg = f"systemd-nspawn exited {self.nspawn.returncode}:\n{tail(self.log_path)}"
                raise NspawnImpossible(msg) if self.pid1 is None else CheckFailed(msg)
            if self.pid1 is None:
                self.pid1 = self.find_pid1()
            if self.pid1 is not None:
                r = self.run(["systemctl", "is-system-running"], timeout=20)
                state = r.stdout.strip()
                if state in ("running", "degraded"):
                    if state == "degraded":
                        failed = self.run(["systemctl", "--failed", "--no-legend", "--plain"]).stdout.strip()
                        log(f"deploy: container is degraded (not our units): {failed}")
                    return state
            time.sleep(0.5)
        raise CheckFailed(f"the container did not reach running within {timeout} s:\n{tail(self.log_path)}")

    def find_pid1(self):
        """The container's systemd: a descendant of systemd-nspawn that is PID 1 in its namespace."""
        parent = {}
        nspid = {}
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open(f"/proc/{d}/status") as f:
                    for line in f:
                        if line.startswith("PPid:"):
                            parent[int(d)] = int(line.split()[1])
                        elif line.startswith("NSpid:"):
                            nspid[int(d)] = line.split()[1:]
            except OSError:
                continue
        for pid, ns in nspid.items():
            if len(ns) >= 2 and ns[-1] == "1":
                p = pid
                while p in parent and p > 1:
                    p = parent[p]
                    if p == self.nspawn.pid:
                        return pid
        return None

    def run(self, argv, timeout=60, user=None, env=None, input=None):
        """Runs argv inside the container (as `user` via runuser), with a clean environment."""
        base = {"PATH": PATH, "LANG": "C.UTF-8", "HOME": "/root", "TERM": "dumb"}
        base.update(env or {})
        cmd = ["nsenter", "-t", str(self.pid1), "-a", "--", "env", "-i"] + [f"{k}={v}" for k, v in base.items()]
        if user:
            cmd += ["runuser", "-u", user, "--"]
        cmd += argv
        t = min(timeout, remaining())
        return subprocess.run(cmd, capture_output=True, text=True, timeout=t, input=input,
                              stdin=None if input is not None else subprocess.DEVNULL, env={"PATH": PATH})

    def sh(self, script, timeout=60, user=None):
        return self.run(["/bin/sh", "-c", script], timeout=timeout, user=user)

    def must(self, argv, timeout=60, user=None, env=None):
        r = self.run(argv, timeout=timeout, user=user, env=env)
        if r.returncode != 0:
            raise CheckFailed(f"`{' '.join(argv)}`{' as ' + user if user else ''} exited {r.returncode}: {(r.stderr or r.stdout).strip()}")
        return r

    def poweroff(self):
        if self.nspawn is None or self.nspawn.poll() is not None:
            return
        # SIGTERM to systemd-nspawn: an orderly shutdown of the container.
        try:
            self.nspawn.send_signal(signal.SIGTERM)
            self.nspawn.wait(timeout=60)
            return
        except (subprocess.TimeoutExpired, ProcessLookupError):
            pass
        log("deploy: the container did not power off in 60 s; killing it")
        for pid in (self.pid1, self.nspawn.pid):
            if pid:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        try:
            self.nspawn.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass


# ---------------------------------------------------------------- helpers on pressd

def show(c, prop):
    return c.must(["systemctl", "show", "-p", prop, "--value", "pressd.service"]).stdout.strip()


def status_json(c, user="tech"):
    r = c.run([PRESSCTL, "status", "--json"], user=user, timeout=20)
    if r.returncode != 0:
        raise CheckFailed(f"pressctl status --json as {user} exited {r.returncode}: {r.stderr.strip()}")
    # pressctl --json answers in one envelope: {"ok": ANSWER} or {"error": {...}}.
    return json.loads(r.stdout)["ok"]


def channel(st, name):
    for ch in st["channels"]:
        if ch["name"] == name:
            return ch
    raise CheckFailed(f"no channel {name} in status")


def in_band(ch, target=SETPOINT):
    p = ch.get("pressure_mpa")
    return p is not None and abs(p - target) <= BAND * target


def hold_check(c, name="A", target=SETPOINT, settle_s=30, window_s=10, user="tech"):
    """Waits until channel `name` is regulating in band, then requires every sample of
    a `window_s` window (2 per second) in band. Returns (min, max) of the window."""
    end = time.monotonic() + settle_s
    last = None
    while True:
        ch = channel(status_json(c, user), name)
        last = ch
        if ch["mode"] == "regulating" and ch.get("setpoint_mpa") == target and in_band(ch, target):
            break
        if time.monotonic() > end:
            raise CheckFailed(f"{name} not regulating in band at {target} MPa within {settle_s} s: mode {last['mode']}, "
                              f"setpoint {last.get('setpoint_mpa')}, pressure {last.get('pressure_mpa')}")
        time.sleep(0.5)
    samples = []
    end = time.monotonic() + window_s
    while time.monotonic() < end:
        ch = channel(status_json(c, user), name)
        p = ch.get("pressure_mpa")
        samples.append(p)
        if ch["mode"] != "regulating" or not in_band(ch, target):
            raise CheckFailed(f"{name} left the ±{BAND * 100:.0f} % band: mode {ch['mode']}, pressure {p} MPa "
                              f"(after {len(samples)} samples)")
        time.sleep(0.5)
    return min(samples), max(samples), len(samples)


def wait_restarted(c, old_pid, timeout):
    """Waits for pressd.service to be active again with a MainPID other than old_pid."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        pid = show(c, "MainPID")
        if pid not in ("0", old_pid) and show(c, "ActiveState") == "active":
            return pid
        time.sleep(0.5)
    raise CheckFailed(f"pressd.service not active again with a new MainPID within {timeout} s "
                      f"(MainPID {show(c, 'MainPID')}, {show(c, 'ActiveState')}/{show(c, 'SubState')})")


def ensure_active(c):
    """Later checks need the daemon; an earlier failure must not cascade."""
    if show(c, "ActiveState") != "active":
        c.run(["systemctl", "start", "pressd.service"], timeout=60)


def journal_since(c, since, fmt="cat"):
    return c.must(["journalctl", "--no-pager", "-u", "pressd.service", "--since", since, "-o", fmt], timeout=30).stdout


def container_now(c):
    return c.must(["date", "+%Y-%m-%d %H:%M:%S"]).stdout.strip()


# ---------------------------------------------------------------- the checks

def check_version(c):
    r = c.run([PRESSD, "--version"])
    if r.returncode != 0:
        missing = c.run(["ldd", PRESSD]).stdout
        raise CheckFailed(f"exit {r.returncode}: {r.stderr.strip()}\nldd:\n{missing}")
    if c.run(["sh", "-c", "command -v swift || ls -d /opt/swift /usr/lib/swift"]).returncode == 0:
        raise CheckFailed("the container has a Swift toolchain: the check proves nothing")
    return f"pressd {r.stdout.strip()}"


def check_socket_activation(c):
    c.must(["systemctl", "enable", "--now", "pressd.socket"])
    # Enabled for the next boot (cells held before a power cut are resumed at boot),
    # not started: the first connection starts it.
    c.must(["systemctl", "enable", "pressd.service"])
    state = c.run(["systemctl", "is-active", "pressd.service"]).stdout.strip()
    if state != "inactive":
        raise CheckFailed(f"pressd.service is {state} before the first connection")
    r = c.run([PRESSCTL, "status"], user="tech", timeout=60)
    if r.returncode != 0:
        raise CheckFailed(f"`pressctl status` as tech exited {r.returncode}: {r.stderr.strip()}")
    end = time.monotonic() + 15
    while show(c, "ActiveState") != "active":
        if time.monotonic() > end:
            raise CheckFailed(f"pressd.service is {show(c, 'ActiveState')} after the first connection")
        time.sleep(0.5)
    return f"service started by the first connection, MainPID {show(c, 'MainPID')}"


def check_permissions(c):
    ensure_active(c)
    got = c.must(["stat", "-c", "%a %U %G", "/run/pressd", SOCKET]).stdout.split("\n")
    want = ["750 pressd pressctl", "660 pressd pressctl"]
    if got[:2] != want:
        raise CheckFailed(f"/run/pressd, socket: {got[:2]}, want {want}")
    c.must(["useradd", "-m", "outsider"])
    # Refused whether pressctl finds the socket itself or is told where it is.
    for extra in ([], ["--socket", SOCKET]):
        r = c.run([PRESSCTL, "status"] + extra, user="outsider")
        text = r.stderr + r.stdout
        if r.returncode == 0:
            raise CheckFailed(f"a user outside pressctl could connect ({' '.join(extra) or 'default socket'})")
        if "ermission denied" not in text or "usermod -aG pressctl" not in text:
            raise CheckFailed(f"outsider ({' '.join(extra) or 'default socket'}): exit {r.returncode}, message does not "
                              f"say permission denied and `usermod -aG pressctl`: {text.strip()}")
    # tech from a login session, which has XDG_RUNTIME_DIR.
    uid = c.must(["id", "-u", "tech"]).stdout.strip()
    r = c.run([PRESSCTL, "status"], user="tech", env={"XDG_RUNTIME_DIR": f"/run/user/{uid}"})
    if r.returncode != 0:
        raise CheckFailed(f"tech (XDG_RUNTIME_DIR set) cannot connect: exit {r.returncode}: {r.stderr.strip()}")
    return "outsider refused with the usermod hint; tech connects"


def check_setpoint(c):
    ensure_active(c)
    c.must([PRESSCTL, "set", f"{SETPOINT:g}MPa", "-c", "A"], user="tech")
    lo, hi, n = hold_check(c, window_s=10)
    return f"A at {lo:.3f}-{hi:.3f} MPa over {n} samples (10 s)"


def check_sigkill(c):
    ensure_active(c)
    old = show(c, "MainPID")
    c.must(["systemctl", "kill", "-s", "SIGKILL", "pressd.service"])
    new = wait_restarted(c, old, 30)
    lo, hi, n = hold_check(c, settle_s=20, window_s=5)
    return f"MainPID {old} -> {new}; A at {lo:.3f}-{hi:.3f} MPa over {n} samples"


def check_watchdog(c):
    ensure_active(c)
    since = container_now(c)
    old = show(c, "MainPID")
    restarts = int(show(c, "NRestarts"))
    c.must(["sh", "-c", f"kill -STOP {old}"])
    # WatchdogSec=5s, then SIGABRT (and SIGKILL after TimeoutAbortSec), RestartSec=2s.
    new = wait_restarted(c, old, 45)
    after = int(show(c, "NRestarts"))
    if after <= restarts:
        raise CheckFailed(f"NRestarts {restarts} -> {after}")
    text = journal_since(c, since)
    if "Watchdog timeout" not in text:
        raise CheckFailed(f"no watchdog message in the journal since {since}:\n{text[-2000:]}")
    lo, hi, n = hold_check(c, settle_s=20, window_s=5)
    return f"watchdog killed {old}, NRestarts {restarts} -> {after}, MainPID {new}; A at {lo:.3f}-{hi:.3f} MPa"


def check_reload(c):
    ensure_active(c)
    since = container_now(c)
    old = show(c, "MainPID")
    c.must(["systemctl", "reload", "pressd.service"], timeout=60)
    time.sleep(1)
    state, pid = show(c, "ActiveState"), show(c, "MainPID")
    if state != "active" or pid != old:
        raise CheckFailed(f"after reload: {state}, MainPID {old} -> {pid}")
    text = ""
    end = time.monotonic() + 10
    while "configuration reloaded" not in text and time.monotonic() < end:
        time.sleep(0.5)
        text = journal_since(c, since)
    if "configuration reloaded" not in text:
        raise CheckFailed(f"no 'configuration reloaded' in the journal:\n{text[-2000:]}")
    return "reloaded, still active, same MainPID"


def check_journal(c):
    out = c.must(["journalctl", "--no-pager", "-u", "pressd.service", "-o", "json"], timeout=30).stdout
    entries = [json.loads(l) for l in out.splitlines() if l.strip()]
    ours = [e for e in entries if e.get("SYSLOG_IDENTIFIER") == "pressd" and any(k.startswith("PRESSD_") for k in e)]
    if not ours:
        raise CheckFailed(f"no entry with PRESSD_ fields among {len(entries)} journal entries")
    tech_uid = c.must(["id", "-u", "tech"]).stdout.strip()

    def has(**fields):
        return any(all(str(e.get(k)) == v for k, v in fields.items()) for e in ours)

    wanted = {
        "ready with PRESSD_SOCKET": dict(PRESSD_SOCKET=SOCKET),
        "setpoint event PRESSD_CHANNEL=A PRESSD_SETPOINT_MPA=3.0": dict(PRESSD_CHANNEL="A", PRESSD_SETPOINT_MPA="3.0"),
        "mode event PRESSD_CHANNEL=A PRESSD_TO=regulating": dict(PRESSD_CHANNEL="A", PRESSD_TO="regulating"),
        "audited request PRESSD_METHOD=set PRESSD_UID=tech": dict(PRESSD_METHOD="set", PRESSD_UID=tech_uid),
    }
    missing = [k for k, v in wanted.items() if not has(**v)]
    if missing:
        fields = sorted({k for e in ours for k in e if k.startswith("PRESSD_")})
        raise CheckFailed(f"missing {missing}; PRESSD_ fields seen: {fields}")
    if not any("PRESSD_PID" in e and e.get("PRIORITY") for e in ours):
        raise CheckFailed("no PRESSD_PID / PRIORITY on the audited requests")
    fields = sorted({k for e in ours for k in e if k.startswith("PRESSD_")})
    return f"{len(ours)} entries with fields {', '.join(fields)}"


def check_roles(c):
    c.must(["groupadd", "pressop"])
    c.must(["usermod", "-aG", "pressop", "tech"])
    c.must(["useradd", "-m", "viewer"])
    c.must(["usermod", "-aG", "pressctl", "viewer"])
    conf = c.must(["cat", CONFIG]).stdout
    # Replace any [access] table of the shipped file (up to the next table) with ours.
    conf = re.sub(r"^\[access\]\n(?:(?!\[).*\n?)*", "", conf, flags=re.M)
    conf += '\n[access]\nobservers = ["*"]\noperators = ["@pressop"]\n'
    c.run(["sh", "-c", f"cat > {CONFIG}"], input=conf)
    c.must(["systemctl", "restart", "pressd.service"], timeout=90)
    r = c.run([PRESSCTL, "set", f"{SETPOINT:g}MPa", "-c", "A"], user="viewer")
    text = (r.stderr + r.stdout).strip()
    if r.returncode == 0 or "operator" not in text:
        raise CheckFailed(f"viewer's set: exit {r.returncode}, want a refusal naming the operator role: {text}")
    r2 = c.run([PRESSCTL, "status"], user="viewer")
    if r2.returncode != 0:
        raise CheckFailed(f"viewer's status exited {r2.returncode}: {r2.stderr.strip()}")
    r3 = c.run([PRESSCTL, "set", f"{SETPOINT:g}MPa", "-c", "A"], user="tech")
    if r3.returncode != 0:
        raise CheckFailed(f"tech (operator through the supplementary group pressop) cannot set: {r3.stderr.strip()}")
    return f"viewer refused ({text.splitlines()[-1]}); viewer status ok; tech set ok"


def check_second_instance(c):
    ensure_active(c)
    main = show(c, "MainPID")
    t0 = time.monotonic()
    r = c.run(["timeout", "-s", "KILL", "20", PRESSD, "--config", CONFIG, "--state-dir", "/var/lib/pressd",
               "--socket", "/tmp/other.sock"], timeout=40)
    took = time.monotonic() - t0
    text = (r.stderr + r.stdout).strip()
    if r.returncode == 0 or r.returncode in (124, 137, -9):
        raise CheckFailed(f"second pressd exit {r.returncode} after {took:.1f} s (want a refusal at once): {text[-800:]}")
    if took > 10:
        raise CheckFailed(f"second pressd took {took:.1f} s to refuse")
    if not re.search(rf"\b{main}\b", text):
        raise CheckFailed(f"refusal does not name the running daemon's PID {main}: {text[-800:]}")
    if show(c, "MainPID") != main:
        raise CheckFailed("the running daemon changed")
    lo, hi, n = hold_check(c, settle_s=5, window_s=5)
    return f"refused in {took:.1f} s (exit {r.returncode}); A still at {lo:.3f}-{hi:.3f} MPa"


def check_exposure(c):
    r = c.run(["systemd-analyze", "security", "--no-pager", "pressd.service"], timeout=60)
    m = re.search(r"Overall exposure level for pressd\.service: ([0-9.]+)", r.stdout)
    if not m:
        raise CheckFailed(f"no exposure in the output (exit {r.returncode}): {r.stderr.strip()}")
    score = float(m.group(1))
    bad = [l.split()[1] for l in r.stdout.splitlines() if l.startswith("✗")]
    detail = f"exposure {score} (threshold {EXPOSURE_THRESHOLD}); open: {' '.join(bad)}"
    if score > EXPOSURE_THRESHOLD + 1e-9:
        raise CheckFailed(detail)
    return detail


CHECKS = [
    ("a", "installed pressd --version runs without a Swift toolchain", check_version),
    ("b", "socket activation: tech's first pressctl status starts pressd", check_socket_activation),
    ("c", "/run/pressd and the socket: only group pressctl connects", check_permissions),
    ("d", "tech sets 3 MPa on A; it holds ±5 % for 10 s", check_setpoint),
    ("e", "SIGKILL: systemd restarts pressd, A resumes at 3 MPa", check_sigkill),
    ("f", "stalled loop (SIGSTOP): the watchdog restarts pressd, A resumes", check_watchdog),
    ("g", "systemctl reload pressd", check_reload),
    ("h", "journal carries pressd's structured fields", check_journal),
    ("i", "an observer is refused set; an operator (supplementary group) may", check_roles),
    ("j", "a second pressd on the same configuration refuses at once", check_second_instance),
    ("k", "systemd-analyze security exposure on the live unit", check_exposure),
]


# ---------------------------------------------------------------- main

class Result:
    def __init__(self):
        self.passed = self.failed = 0
        self.skip = None    # reason, when the test cannot run here


def under_ci():
    return os.environ.get("CI", "").lower() in ("true", "1", "yes")


def preflight():
    """Why the test cannot run on this machine, or None."""
    if os.geteuid() != 0:
        return "needs root (debootstrap, systemd-nspawn, nsenter)"
    for tool in ("systemd-nspawn", "debootstrap", "nsenter"):
        if not shutil.which(tool):
            return f"{tool} is not installed (scripts/deps installs systemd-container and debootstrap)"
    if not os.path.isdir("/sys/fs/cgroup"):
        return "no cgroup file system: systemd-nspawn cannot boot a container here"
    return None


def setup(container, work, no_install):
    """Cached root -> fresh copy -> make install -> boot -> the documented first steps."""
    step = "docs/operations.md"
    try:
        with open(os.path.join(REPO, "docs/operations.md")) as f:
            apt = "apt-get install --no-install-recommends " + " ".join(RUNTIME_PACKAGES)
            if apt not in f.read():
                raise CheckFailed(f"it does not say `{apt}`: the documented packages and the test's differ")
        step = "cached Debian root"
        set_deadline(CACHE_TIMEOUT_S, step)
        cache, _lock = cached_root(work)
        step = "make install"
        set_deadline(BUILD_TIMEOUT_S, step)
        t0 = time.monotonic()
        r = host(["cp", "-a", "--reflink=auto", cache, container.dir])
        if r.returncode != 0:
            raise CheckFailed(f"cp: {r.stderr.strip()}")
        mlog = os.path.join(work, "make-install.log")
        make = ["make", "-o", "build", "-o", "man", "-o", "completions", "install"] if no_install else ["make", "install"]
        rc = host(make + [f"DESTDIR={container.dir}", f"PREFIX={PREFIX}"], cwd=REPO, log_path=mlog)
        if rc != 0:
            raise CheckFailed(f"`make install DESTDIR=...` exited {rc}; last lines of its output:\n{tail(mlog)}")
        log(f"deploy: make install DESTDIR=<fresh copy> in {time.monotonic() - t0:.0f} s")
        step = "boot"
        set_deadline(RUN_TIMEOUT_S, "boot and checks")
        container.lock()
        t0 = time.monotonic()
        container.boot()
        log(f"deploy: container booted in {time.monotonic() - t0:.0f} s (its systemd is PID {container.pid1} on the host)")
        step = "systemd-sysusers, systemd-tmpfiles --create, the technician"
        container.must(["systemd-sysusers"])
        container.must(["systemd-tmpfiles", "--create"])
        container.must(["sh", "-c", "useradd -m tech && usermod -aG pressctl tech"])
        container.must(["systemctl", "daemon-reload"])
        return None
    except (CheckFailed, Timeout, subprocess.TimeoutExpired, OSError) as e:
        return f"{step}: {e}"


def run_checks(container, result):
    stopped = None
    for key, name, fn in CHECKS:
        if stopped:
            result.failed += 1
            log(f"FAIL {key}. {name}: not run ({stopped})")
            continue
        t0 = time.monotonic()
        try:
            detail = fn(container)
            result.passed += 1
            log(f"PASS {key}. {name} ({time.monotonic() - t0:.1f} s): {detail}")
        except (CheckFailed, subprocess.TimeoutExpired, json.JSONDecodeError, KeyError, ValueError) as e:
            result.failed += 1
            log(f"FAIL {key}. {name} ({time.monotonic() - t0:.1f} s): {e}")
        except Timeout as e:
            result.failed += 1
            stopped = str(e)
            log(f"FAIL {key}. {name}: {e}")
    if stopped:
        return
    if result.failed:
        try:
            log("--- systemctl status pressd.socket pressd.service")
            log(container.run(["systemctl", "status", "--no-pager", "-l", "pressd.socket", "pressd.service"], timeout=20).stdout)
            log("--- journalctl -u pressd.service (last 40 lines)")
            log(container.run(["journalctl", "--no-pager", "-u", "pressd.service", "-n", "40"], timeout=20).stdout)
        except (Timeout, subprocess.TimeoutExpired, OSError) as e:
            log(f"(diagnostics failed: {e})")


def deploy(result, keep, no_install):
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.signal(signal.SIGTERM, _on_stop)
    signal.signal(signal.SIGINT, _on_stop)
    work = tempfile.mkdtemp(prefix="pressd-deploy-", dir="/var/tmp")
    container = Container(os.path.join(work, "root"), os.path.join(work, "container.log"))
    try:
        try:
            error = setup(container, work, no_install)
        except NspawnImpossible as e:
            log(str(e))
            result.skip = "systemd-nspawn cannot boot a container on this machine"
            return
        if error:
            result.failed += 1
            log(f"FAIL setup: {error}")
            return
        run_checks(container, result)
    except Stop as e:
        result.failed += 1
        log(f"FAIL interrupted: {e}")
    finally:
        signal.alarm(0)
        try:
            set_deadline(120, "power-off and clean-up")
            if keep and container.pid1:
                log(f"deploy: --keep: the container is still running; enter it with: nsenter -t {container.pid1} -a")
                log(f"deploy: stop it with: kill {container.nspawn.pid}; rm -rf {work}")
            else:
                container.poweroff()
                container.unlock()
                shutil.rmtree(work, ignore_errors=True)
        except (Timeout, Stop) as e:
            log(f"deploy: clean-up interrupted ({e}); {work} may remain")
        finally:
            signal.alarm(0)


def main():
    if "--apt-mirror" in sys.argv:
        # The mirror look-up alone (tested by DeployMirrorTests); nothing else runs.
        i = sys.argv.index("--apt-root") if "--apt-root" in sys.argv else -1
        try:
            print(apt_mirror(root=sys.argv[i + 1] if i >= 0 else "/"))
            return 0
        except NoMirror as e:
            print(f"deploy: {e}", file=sys.stderr)
            return 2
    result = Result()
    started = time.monotonic()
    result.skip = preflight()
    if result.skip is None:
        deploy(result, keep="--keep" in sys.argv, no_install="--no-install" in sys.argv)
    log(f"deploy: {time.monotonic() - started:.0f} s")
    if result.skip is not None:
        if under_ci():
            log(f"FAIL the deployment test must run under CI: {result.skip}")
            log(f"deploy: {result.passed} passed, {result.failed + 1} failed")
            return 1
        log(f"deploy: SKIPPED: {result.skip}")
        log("deploy: 0 passed, 0 failed, 1 skipped")
        return 0
    log(f"deploy: {result.passed} passed, {result.failed} failed")
    return 1 if result.failed else 0


if __name__ == "__main__":
    sys.exit(main())
