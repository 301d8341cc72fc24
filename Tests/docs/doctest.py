#!/usr/bin/env python3
"""Runs the command examples of README.md and docs/*.md and checks what they print.

Docs as tests: a command example that stops working, or whose output drifts from
what the page shows, fails this test (scripts/test runs it; so does CI).

What is run, per page, against a fresh pressd on the simulated rig (config/pressd.toml,
at --time-scale 5, its own state directory and socket, PRESSD_SOCKET set):

- Lines of ```sh blocks whose first word is `pressctl`, `.build/debug/pressd`, `sed`,
  `printf` or `sleep`. Other lines (`scripts/start`, `systemctl`, `make install`, `apt-get`,
  benchmarks, …) need a machine this test does not set up: listed as not run.
- A block preceded by `<!-- doctest: skip REASON -->` is not run (REASON is printed).
- A comment at the end of a command line is a note for the reader, never checked.
- Whole-line comments right after a command (`# pressctl: invalid_program: …`) are
  the output the page promises. Each must match a line of what the command printed
  (standard output and error together), in order; lines in between may be skipped.
  `…` matches any text. Without such lines the command must exit 0; with them it may
  fail (a refusal the page shows).
- `pressctl watch` without `--count` gets `--count 5` (it would run for ever);
  `/run/pressd/pressd.sock` is the test daemon's socket.

Usage: Tests/docs/doctest.py [PAGE.md ...]   (default: README.md and docs/*.md)
Needs the debug build (`swift build`). Exit status 0 when every page passed.
"""

import glob
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(ROOT, ".build", "debug")
RUNNABLE = ("pressctl", ".build/debug/pressd", "sed", "printf", "sleep")
TIMEOUT = 240


class Example:
    def __init__(self, page, line, command, expected):
        self.page, self.line, self.command, self.expected = page, line, command, expected

    def where(self):
        return f"{os.path.relpath(self.page, ROOT)}:{self.line}"


def strip_note(line):
    """The command without a trailing `# note` (a `#` inside quotes is kept)."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i].rstrip()
    return line.rstrip()


def examples(page):
    """The page's runnable examples and the lines it does not run."""
    out, skipped = [], []
    lines = open(page, encoding="utf-8").read().split("\n")
    in_block, lang, skip_reason, prev_text = False, "", None, ""
    i = 0
    while i < len(lines):
        raw = lines[i]
        fence = re.match(r"^```(\w*)\s*$", raw)
        if fence:
            if not in_block:
                in_block, lang = True, fence.group(1)
                m = re.match(r"<!--\s*doctest:\s*skip\s*(.*?)\s*-->", prev_text)
                skip_reason = m.group(1) or "marked skip" if m else None
            else:
                in_block = False
            i += 1
            continue
        if raw.strip():
            prev_text = raw.strip() if not in_block else prev_text
        if not in_block or lang != "sh" or not raw.strip() or raw.lstrip().startswith("#"):
            i += 1
            continue
        command = strip_note(raw)
        first = command.split()[0]
        if skip_reason is not None:
            skipped.append((i + 1, command, skip_reason))
            i += 1
            continue
        if not command.startswith(RUNNABLE) or first not in RUNNABLE:
            skipped.append((i + 1, command, f"'{first}' is not run by this test"))
            i += 1
            continue
        expected = []
        j = i + 1
        while j < len(lines) and lines[j].startswith("# "):
            expected.append(lines[j][2:].rstrip())
            j += 1
        out.append(Example(page, i + 1, command, expected))
        i = j
    return out, skipped


def pattern(text):
    """An expected line as a regular expression: `…` matches anything."""
    return re.compile(".*".join(re.escape(part) for part in text.split("…")))


def check(example, printed):
    """None when every expected line matches a printed line in order, else why not."""
    lines = printed.split("\n")
    at = 0
    for want in example.expected:
        rx = pattern(want)
        while at < len(lines) and not rx.fullmatch(lines[at].rstrip()):
            at += 1
        if at == len(lines):
            return f"the page shows\n      {want}\n    but the command printed:\n" + "\n".join("      " + l for l in printed.rstrip().split("\n")[-25:])
        at += 1
    return None


class Daemon:
    def __init__(self, work):
        self.work = work
        self.socket = os.path.join(work, "pressd.sock")
        self.state = os.path.join(work, "state")
        os.makedirs(self.state, exist_ok=True)
        self.log = open(os.path.join(work, "pressd.log"), "w")
        self.proc = subprocess.Popen(
            [os.path.join(BIN, "pressd"), "--config", os.path.join(ROOT, "config", "pressd.toml"),
             "--socket", self.socket, "--state-dir", self.state, "--time-scale", "5"],
            cwd=work, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + 30
        while time.time() < deadline:
            if os.path.exists(self.socket):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"pressd did not start: see {self.log.name}")

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.log.close()


def run_page(page):
    found, skipped = examples(page)
    name = os.path.relpath(page, ROOT)
    if not found:
        return 0, 0, skipped
    work = tempfile.mkdtemp(prefix="pressd-doctest-")
    for link in ("config", ".build"):
        os.symlink(os.path.join(ROOT, link), os.path.join(work, link))
    bindir = os.path.join(work, "bin")
    os.makedirs(bindir)
    for exe in ("pressctl", "pressd"):
        os.symlink(os.path.join(BIN, exe), os.path.join(bindir, exe))
    daemon = Daemon(work)
    env = dict(os.environ, PRESSD_SOCKET=daemon.socket, PATH=bindir + os.pathsep + os.environ.get("PATH", ""),
               TZ="UTC", COLUMNS="120")
    failed = 0
    try:
        for ex in found:
            cmd = ex.command.replace("/run/pressd/pressd.sock", daemon.socket)
            if re.match(r"^pressctl\s+watch\b", cmd) and "--count" not in cmd:
                cmd += " --count 5"
            started = time.time()
            try:
                r = subprocess.run(["bash", "-c", cmd], cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   timeout=TIMEOUT, text=True, errors="replace")
                printed, status = r.stdout, r.returncode
            except subprocess.TimeoutExpired as e:
                printed, status = (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or ""), None
            why = None
            if status is None:
                why = f"did not finish within {TIMEOUT} s"
            elif not ex.expected and status != 0:
                why = f"exited {status} and the page shows no error:\n" + "\n".join("      " + l for l in printed.rstrip().split("\n")[-15:])
            else:
                why = check(ex, printed)
            took = time.time() - started
            if why:
                failed += 1
                print(f"FAIL {ex.where()}: {ex.command}\n    {why}")
            else:
                print(f"ok   {ex.where()}: {ex.command}" + (f"  ({len(ex.expected)} lines checked)" if ex.expected else "") + (f"  [{took:.0f} s]" if took > 5 else ""))
    finally:
        daemon.stop()
        if failed:
            print(f"     (pressd's log: {daemon.log.name})")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return len(found), failed, skipped


def main():
    pages = sys.argv[1:] or [os.path.join(ROOT, "README.md")] + sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))
    if not os.path.exists(os.path.join(BIN, "pressctl")):
        print("doctest: no debug build (.build/debug/pressctl): run swift build first")
        return 2
    total = failed = 0
    not_run = []
    for page in pages:
        n, f, skipped = run_page(os.path.abspath(page))
        total += n
        failed += f
        not_run += [(os.path.relpath(page, ROOT), line, cmd, why) for line, cmd, why in skipped]
    print(f"\nnot run ({len(not_run)}):")
    for page, line, cmd, why in not_run:
        print(f"     {page}:{line}: {cmd}  ({why})")
    print(f"\ndoctest: {total - failed} of {total} examples as documented, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
