#!/usr/bin/env python3
"""pressd's metrics, alert rules and Grafana dashboard against a real Prometheus.

1. `promtool check rules` and `promtool test rules` on config/prometheus/.
2. Three pressd on the simulated rig, each serving /metrics on its own loopback port,
   scraped every second by Debian's `prometheus` (started here on the loopback, its own
   data directory), with the shipped alert rules loaded.
3. Through Prometheus's HTTP API: every rig is `up`; each series carries its
   `instance` and `channel` labels; the regulated pressures read what the setpoints
   asked for; a trip on one rig shows as `pressd_fault_active` on that rig and channel
   only, and the shipped `PressdFaultLatched` alert fires for it; every query of the
   shipped Grafana dashboard (config/grafana/pressd-fleet.json) is valid and returns
   data; a rig killed with SIGKILL reads `up == 0` and `PressdDown` goes pending.

Usage: Tests/prometheus/prometheus_test.py   (needs the debug build and `prometheus`;
scripts/deps installs it). Exit status 0 when every check passed.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(ROOT, ".build", "debug")
RULES = os.path.join(ROOT, "config", "prometheus", "pressd-alerts.yml")
RULE_TESTS = os.path.join(ROOT, "config", "prometheus", "pressd-alerts.test.yml")
DASHBOARD = os.path.join(ROOT, "config", "grafana", "pressd-fleet.json")
RIGS = 3

failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures.append(what)
    return ok


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(what, predicate, timeout):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except Exception as e:  # the server is not up yet
            last = e
        time.sleep(0.5)
    raise TimeoutError(f"{what} within {timeout} s (last: {last})")


class Rig:
    def __init__(self, work, index):
        self.name = f"rig{index}"
        self.dir = os.path.join(work, self.name)
        os.makedirs(self.dir)
        self.port = free_port()
        self.socket = os.path.join(self.dir, "pressd.sock")
        text = open(os.path.join(ROOT, "config", "pressd.toml")).read()
        text = text.replace("[daemon]\n", f'[daemon]\nmetrics = "127.0.0.1:{self.port}"\n', 1)
        config = os.path.join(self.dir, "pressd.toml")
        open(config, "w").write(text)
        self.log = open(os.path.join(self.dir, "pressd.log"), "w")
        self.proc = subprocess.Popen([os.path.join(BIN, "pressd"), "--config", config, "--socket", self.socket,
                                      "--state-dir", self.dir, "--time-scale", "5"],
                                     stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(f"{self.name}'s socket", lambda: os.path.exists(self.socket), 30)

    def pressctl(self, *args):
        r = subprocess.run([os.path.join(BIN, "pressctl"), "--socket", self.socket, *args],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=30)
        if r.returncode != 0:
            raise RuntimeError(f"pressctl {' '.join(args)} on {self.name}: {r.stdout}")
        return r.stdout

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)


class Prometheus:
    def __init__(self, work, rigs):
        self.port = free_port()
        self.dir = os.path.join(work, "prometheus")
        os.makedirs(self.dir)
        targets = "\n".join(f"      - targets: ['127.0.0.1:{r.port}']\n        labels: {{instance: '{r.name}'}}" for r in rigs)
        config = os.path.join(self.dir, "prometheus.yml")
        open(config, "w").write(f"""global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - {RULES}
scrape_configs:
  - job_name: pressd
    static_configs:
{targets}
""")
        self.log = open(os.path.join(self.dir, "prometheus.log"), "w")
        self.proc = subprocess.Popen(["prometheus", f"--config.file={config}", f"--storage.tsdb.path={self.dir}/data",
                                      f"--web.listen-address=127.0.0.1:{self.port}"],
                                     stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for("prometheus ready", lambda: urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=2).status == 200, 60)

    def api(self, path, **params):
        url = f"http://127.0.0.1:{self.port}/api/v1/{path}" + ("?" + urllib.parse.urlencode(params) if params else "")
        with urllib.request.urlopen(url, timeout=10) as r:
            body = json.load(r)
        if body.get("status") != "success":
            raise RuntimeError(f"{path} {params}: {body}")
        return body["data"]

    def query(self, expr):
        return self.api("query", query=expr)["result"]

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)


def dashboard_queries():
    """Every PromQL expression of the shipped dashboard, its variables filled in."""
    dash = json.load(open(DASHBOARD))
    out = []
    for p in dash["panels"]:
        for t in p.get("targets", []):
            expr = t["expr"].replace("$instance", ".*").replace("$__rate_interval", "1m").replace("$__range", "5m")
            out.append((p["title"], expr))
    return dash, out


def main():
    if not shutil.which("prometheus") or not shutil.which("promtool"):
        if os.environ.get("CI") == "true":
            print("FAIL prometheus/promtool not installed (scripts/deps installs them)")
            return 1
        print("prometheus_test: prometheus not installed: skipped (scripts/deps installs it)")
        return 0
    if not os.path.exists(os.path.join(BIN, "pressd")):
        print("prometheus_test: no debug build: run swift build first")
        return 2

    r = subprocess.run(["promtool", "check", "rules", RULES], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    check(r.returncode == 0, f"promtool check rules {os.path.relpath(RULES, ROOT)}: {r.stdout.strip().splitlines()[-1]}")
    r = subprocess.run(["promtool", "test", "rules", RULE_TESTS], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    check(r.returncode == 0, f"promtool test rules {os.path.relpath(RULE_TESTS, ROOT)}" + ("" if r.returncode == 0 else ":\n" + r.stdout))
    alert_names = re.findall(r"^\s*- alert: (\w+)", open(RULES).read(), re.M)
    tested = set(re.findall(r"alertname: (\w+)", open(RULE_TESTS).read()))
    check(set(alert_names) <= tested, f"every shipped alert has a promtool test (untested: {sorted(set(alert_names) - tested)})")

    work = tempfile.mkdtemp(prefix="pressd-prom-")
    rigs, prom = [], None
    try:
        rigs = [Rig(work, i + 1) for i in range(RIGS)]
        for rig in rigs:
            rig.pressctl("set", "5MPa", "-c", "A")
            rig.pressctl("set", "4MPa", "-c", "B")
        prom = Prometheus(work, rigs)
        wait_for("every target up", lambda: all(t["health"] == "up" for t in prom.api("targets")["activeTargets"])
                 and len(prom.api("targets")["activeTargets"]) == RIGS, 60)
        up = prom.query('up{job="pressd"}')
        check(sorted(s["metric"]["instance"] for s in up if s["value"][1] == "1") == [r.name for r in rigs], f"up == 1 for {RIGS} rigs")

        # Regulated pressures, one series per rig and channel, near their setpoints.
        def settled():
            res = prom.query("pressd_stack_pressure_pascals")
            return res if len(res) == 2 * RIGS and all(
                abs(float(s["value"][1]) - (5e6 if s["metric"]["channel"] == "A" else 4e6)) < 0.25e6 for s in res) else None
        try:
            res = wait_for("pressures at their setpoints", settled, 90)
            check(True, "pressd_stack_pressure_pascals: 6 series (3 rigs × channels A, B) within 5 % of 5 and 4 MPa")
        except TimeoutError as e:
            check(False, f"pressures: {e}")
        labels = {(s["metric"].get("instance"), s["metric"].get("channel")) for s in prom.query("pressd_setpoint_pascals")}
        check(labels == {(r.name, c) for r in rigs for c in "AB"}, f"pressd_setpoint_pascals labelled by instance and channel: {sorted(labels)}")
        ver = prom.query("pressd_build_info")
        check(len(ver) == RIGS and all(s["metric"].get("version") for s in ver), "pressd_build_info carries the version")

        # A trip on rig2's channel A.
        rigs[1].pressctl("sim", "-c", "A", "--force-bias", "1600")
        try:
            wait_for("over_pressure on rig2/A", lambda: prom.query('pressd_fault_active{code="over_pressure"} == 1'), 30)
        except TimeoutError:
            pass
        faults = prom.query("pressd_fault_active == 1")
        where = sorted({(s["metric"]["instance"], s["metric"]["channel"]) for s in faults})
        check(where == [("rig2", "A")], f"pressd_fault_active == 1 on rig2/A only: {where}")
        try:
            firing = wait_for("PressdFaultLatched firing", lambda: [a for a in prom.api("alerts")["alerts"]
                              if a["labels"]["alertname"] == "PressdFaultLatched" and a["state"] == "firing"], 30)
            check({(a["labels"]["instance"], a["labels"]["channel"]) for a in firing} == {("rig2", "A")},
                  f"alert PressdFaultLatched firing for rig2/A: {[a['labels'] for a in firing]}")
        except TimeoutError as e:
            check(False, f"PressdFaultLatched: {e}")

        # The dashboard: valid JSON, every query valid and with data.
        time.sleep(3)
        dash, queries = dashboard_queries()
        check(dash.get("uid") == "pressd-fleet" and len(queries) >= 10, f"dashboard {os.path.relpath(DASHBOARD, ROOT)}: {len(queries)} queries")
        for title, expr in queries:
            try:
                res = prom.query(expr)
                check(len(res) > 0, f"dashboard '{title}': {expr} → {len(res)} series")
            except Exception as e:
                check(False, f"dashboard '{title}': {expr}: {e}")

        # rig3 dies: up 0, PressdDown pending (its for: is 1 minute).
        rigs[2].stop(signal.SIGKILL)
        try:
            wait_for("up 0 for rig3", lambda: prom.query('up{job="pressd",instance="rig3"} == 0'), 30)
            check(True, "rig3 killed: up{instance=\"rig3\"} == 0")
            pending = wait_for("PressdDown pending", lambda: [a for a in prom.api("alerts")["alerts"]
                               if a["labels"]["alertname"] == "PressdDown" and a["labels"].get("instance") == "rig3"], 30)
            check(pending[0]["state"] in ("pending", "firing"), f"alert PressdDown {pending[0]['state']} for rig3")
        except TimeoutError as e:
            check(False, f"rig3 down: {e}")
        others = prom.query('up{job="pressd"} == 1')
        check(sorted(s["metric"]["instance"] for s in others) == ["rig1", "rig2"], "rig1 and rig2 still up")
    except Exception as e:
        check(False, f"prometheus test aborted: {e}")
    finally:
        if prom:
            prom.stop()
        for rig in rigs:
            rig.stop()
        if failures:
            print(f"     (logs in {work})")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"\nprometheus_test: {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
