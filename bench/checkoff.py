"""Check-offs under load: the diary against a bare Flask baseline, side by side (issue 15).

    .venv/bin/python bench/checkoff.py [--participants 100] [--phones 50] [--seconds 15] [--reps 3] [--warmup 3]
                                       [--together]

Starts its own PostgreSQL database (at TEST_POSTGRES_URL's server) and two gunicorns with 2 sync
workers each: the diary (wsgi:app) and bench/baseline_app.py, which does only the framework work
of a check-off (signed session, CSRF token, one INSERT, a 3 KB fragment). Every participant has a
running course and signs in once with phone and PIN. Then `--phones` concurrent phones (threads
in two load processes), each rotating between its own participants' sessions, repeat the
morning: open the today page, tap "I took it", tap "undo" (htmx requests, as the page sends
them). After `--warmup` unmeasured seconds on each, the diary and the baseline take turns,
`--reps` times each. Prints throughput and p50, p95, p99 per request kind, the ratios to the
baseline (also per repetition, to show how far the machine's speed moved during the run), and
each worker's memory after the load. `--together` loads both at the same time instead, half the
phones each: on a machine whose speed drifts, the drift then moves both alike, which narrows the
spread of the ratio without removing it; it is not the same figure (the two share the cores, and
the diary's database work runs beside both), and their latencies are those of a shared machine.
Goals (issue 15): throughput ≥ 0.5× the baseline, POST p95 ≤ 3× the baseline's, worker memory
≤ 100 MiB. Login rate limits are off for the run (RATELIMIT_ENABLED=false): 100 sign-ins from one
address would otherwise be refused, as they should be.
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import scratch  # noqa: E402  (bench/, this script's folder)

PIN = "4826"
CSRF = re.compile(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"')
TAKEN_FORM = re.compile(r'action="(/courses/\d+/days/\d+)/taken"')
KINDS = ("today", "taken", "undo")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def seed(url: str, participants: int) -> list[str]:
    """Participants with a running course (day 3 today), each activated with PIN; their phones."""
    from sqlmodel import Session

    from diary import create_app, migrate, study
    from diary.auth.services import activate, issue_activation
    from diary.models import Site, StaffUser
    from diary.services import enrolment
    from diary.sqltypes import utc_now

    app = create_app()  # configured from the environment, as the gunicorn below is
    engine = app.extensions["diary.engine"]
    migrate.upgrade(engine)
    cfg, cipher = app.extensions["diary.study"], app.extensions["diary.cipher"]
    from diary.auth import policy

    phones = []
    now = utc_now()
    with app.app_context(), Session(engine) as s:
        site = Site(code="B", name="Bench", timezone="Asia/Shanghai", phone="+86-591-0000")
        nurse = StaffUser(email="n@bench", name="n", role="nurse", password_hash="x")
        s.add_all([site, nurse])
        s.flush()
        pol = policy()
        for i in range(participants):
            phone = f"+86138{i:08d}"
            p = enrolment.enroll(s, cipher, site_id=site.id, study_number=f"B{i:04d}", cohort="primary",
                                 phone=phone, staff_id=nurse.id, now=now, language="en")
            start = study.local_date(now, p.timezone) - timedelta(days=2)
            enrolment.open_course(s, cfg, participant=p, adc_drug="other", infusion_date=start - timedelta(days=1),
                                  start_date=start, staff_id=nurse.id, now=now)
            activate(s, issue_activation(s, p, nurse.id, now, pol), PIN, now)
            phones.append(phone)
        s.commit()
    engine.dispose()
    return phones


class Target:
    """A gunicorn serving `module` with 2 sync workers, under gunicorn's settings in `config` (the
    diary's own gunicorn.conf.py, or the plain defaults of bench/baseline_gunicorn.py: the baseline
    must not import the diary's logging or preload it)."""

    def __init__(self, name: str, module: str, env: dict, config: Path):
        self.name, self.module, self.env, self.config, self.port = name, module, env, config, free_port()

    def __enter__(self):
        self.proc = subprocess.Popen(
            [str(ROOT / ".venv/bin/gunicorn"), "-c", str(self.config), "-w", "2", "-b", f"127.0.0.1:{self.port}",
             "--log-level", "warning", self.module], cwd=ROOT, env={**os.environ, **self.env},
            start_new_session=True)
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"{self.name}: gunicorn did not start")

    def worker_rss_mib(self) -> list[float]:
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        sizes = []
        for pid in children:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    sizes.append(int(line.split()[1]) / 1024)
        return sizes

    def __exit__(self, *exc):
        os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(timeout=30)


class Phone:
    """One browser: a cookie jar and the requests the today page sends."""

    def __init__(self, port: int):
        self.port, self.cookies = port, {}

    def request(self, method: str, path: str, body: dict | None = None, headers: dict | None = None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        all_headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items()), **(headers or {})}
        data = None
        if body is not None:
            data = urllib.parse.urlencode(body)
            all_headers["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request(method, path, data, all_headers)
        response = conn.getresponse()
        text_ = response.read().decode("utf-8", "replace")
        for header, value in response.getheaders():
            if header.lower() == "set-cookie":
                name, _, rest = value.partition("=")
                self.cookies[name] = rest.split(";", 1)[0]
        conn.close()
        return response.status, text_


def sign_in(target: str, port: int, phone: str) -> dict:
    browser = Phone(port)
    if target == "diary":
        _status, html = browser.request("GET", "/login")
        status, _ = browser.request("POST", "/login", {"csrf_token": CSRF.search(html).group(1), "phone": phone,
                                                       "pin": PIN})
        assert status == 302, f"sign-in failed: {status}"
    else:
        browser.request("GET", f"/signin/{phone[-6:]}")
    return browser.cookies


def _load(target: str, port: int, jars: list[dict], phones: int, seconds: float, out) -> None:
    """One load process: `phones` threads, each rotating over its own share of the sessions."""
    results: list[tuple[str, float, int]] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def phone(index: int) -> None:
        mine = jars[index::phones] or [jars[index % len(jars)]]
        browsers = [Phone(port) for _ in mine]
        for browser, jar in zip(browsers, mine, strict=True):
            browser.cookies = dict(jar)
        n, local = 0, []
        while time.monotonic() < deadline:
            browser = browsers[n % len(browsers)]
            n += 1
            started = time.perf_counter()
            status, html = browser.request("GET", "/")
            local.append(("today", time.perf_counter() - started, status))
            token = CSRF.search(html)
            form = TAKEN_FORM.search(html) if target == "diary" else None
            base = form.group(1) if form else ""
            hx = {"HX-Request": "true", "X-CSRFToken": token.group(1) if token else ""}
            for kind in ("taken", "undo"):
                started = time.perf_counter()
                # Each rendered form carries a fresh client key (a replayed one returns the first record).
                status, _ = browser.request("POST", f"{base}/{kind}", {"client_key": uuid.uuid4().hex}, hx)
                local.append((kind, time.perf_counter() - started, status))
        with lock:
            results.extend(local)

    threads = [threading.Thread(target=phone, args=(i,)) for i in range(phones)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put(results)


def drive(target: str, port: int, jars: list[dict], phones: int, seconds: float) -> dict:
    processes = 2
    queue = multiprocessing.Queue()
    share = [jars[i::processes] for i in range(processes)]
    procs = [multiprocessing.Process(target=_load, args=(target, port, share[i], phones // processes, seconds, queue))
             for i in range(processes)]
    started = time.monotonic()
    for p in procs:
        p.start()
    results = [r for _ in procs for r in queue.get()]
    for p in procs:
        p.join()
    elapsed = time.monotonic() - started
    by_kind = {kind: sorted(t for k, t, _s in results if k == kind) for kind in KINDS}
    errors = sum(1 for _k, _t, status in results if status >= 400)
    return {"throughput": len(results) / elapsed, "errors": errors, "count": len(results),
            **{kind: by_kind[kind] for kind in KINDS}}


def _together(targets: dict, jars: dict, phones: int, seconds: float) -> dict:
    """Both targets loaded at the same time, half the phones each: they share the cores, so a
    change in the machine's speed during the run moves both alike. Their latencies are those of a
    shared machine."""
    results: dict = {}
    threads = [threading.Thread(target=lambda t=t: results.__setitem__(
        t, drive(t, targets[t].port, jars[t], phones // 2, seconds))) for t in ("diary", "baseline")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {t: results[t] for t in ("diary", "baseline")}


def pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))] * 1000 if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=100)
    parser.add_argument("--phones", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--warmup", type=float, default=3, help="unmeasured seconds of load on each first")
    parser.add_argument("--together", action="store_true",
                        help="load both at once, half the phones each, instead of taking turns")
    args = parser.parse_args()

    with scratch.database("postgresql", "diary_checkoff") as url:
        if url is None:
            return
        measured = _measure(url, args)
    _report(args, *measured)


def _measure(url: str, args) -> tuple:
    """Seed, start both gunicorns, sign everyone in and run the interleaved repetitions."""
    with tempfile.TemporaryDirectory() as instance:
        env = {"DATABASE_URL": url, "SECRET_KEY": "bench-" + uuid.uuid4().hex, "RATELIMIT_ENABLED": "false",
               "AUDIT_ANCHOR_PATH": f"{instance}/anchors.jsonl", "DIARY_ENV": "development",
               "BASELINE_DATABASE_URL": url}
        os.environ.update(env)
        print(f"seeding {args.participants} participants …", flush=True)
        phones = seed(url, args.participants)
        from bench import baseline_app

        baseline_app.create_table()
        runs: dict[str, list[dict]] = {"diary": [], "baseline": []}
        with Target("diary", "wsgi:app", env, ROOT / "gunicorn.conf.py") as diary, \
                Target("baseline", "bench.baseline_app:app", {"BASELINE_DATABASE_URL": url},
                       ROOT / "bench" / "baseline_gunicorn.py") as baseline:
            targets = {"diary": diary, "baseline": baseline}
            jars = {t: [sign_in(t, targets[t].port, phone) for phone in phones] for t in targets}
            # Not measured: each worker's first requests compile its templates, psycopg prepares
            # statements after their fifth run and PostgreSQL settles on their plans.
            for t in targets:
                drive(t, targets[t].port, jars[t], args.phones, args.warmup)
            for rep in range(args.reps):
                if args.together:
                    results = _together(targets, jars, args.phones, args.seconds)
                else:
                    results = {t: drive(t, targets[t].port, jars[t], args.phones, args.seconds)
                               for t in ("diary", "baseline")}
                for t, result in results.items():
                    runs[t].append(result)
                    print(f"  rep {rep + 1} {t:<8} {result['throughput']:7.0f} req/s  "
                          f"{result['count']} requests, {result['errors']} errors", flush=True)
            memory = {t: targets[t].worker_rss_mib() for t in targets}
    return runs, memory


def _report(args, runs: dict, memory: dict) -> None:
    how = (f"together, {args.phones // 2} phones each" if args.together else "interleaved")
    print(f"\n{args.phones} phones, 2 gunicorn sync workers each, {args.reps} × {args.seconds:.0f} s {how}")
    print(f"{'':<10}{'req/s':>8}  " + "  ".join(f"{k + ' p50/p95/p99 ms':>26}" for k in KINDS) + "  worker MiB")
    summary = {}
    for t, results in runs.items():
        throughput = statistics.median(r["throughput"] for r in results)
        merged = {k: sorted(v for r in results for v in r[k]) for k in KINDS}
        summary[t] = (throughput, merged)
        cells = "  ".join(f"{pct(merged[k], .5):8.1f}/{pct(merged[k], .95):7.1f}/{pct(merged[k], .99):7.1f}"
                          for k in KINDS)
        print(f"{t:<10}{throughput:8.0f}  {cells}  " + ", ".join(f"{m:.0f}" for m in memory[t]))
    ratio = summary["diary"][0] / summary["baseline"][0]
    post_p95 = lambda t: pct(sorted(summary[t][1]["taken"] + summary[t][1]["undo"]), .95)  # noqa: E731
    p95_ratio = post_p95("diary") / post_p95("baseline")
    # Each diary repetition beside the baseline's that ran right after it: how far the machine's
    # own speed moved the figures during the run.
    pairs = [d["throughput"] / b["throughput"] for d, b in zip(runs["diary"], runs["baseline"], strict=True)]
    print("\nthroughput ratio per repetition: " + ", ".join(f"{r:.2f}" for r in pairs))
    print(f"throughput {ratio:.2f}× the baseline [goal ≥ 0.5×]; POST p95 {p95_ratio:.1f}× the baseline's "
          f"[goal ≤ 3×]; diary workers {max(memory['diary']):.0f} MiB [goal ≤ 100 MiB]")


if __name__ == "__main__":
    main()
