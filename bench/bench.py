#!/usr/bin/env python3
"""Runs the four benchmark sections, errand and its peers alternating, and prints one Markdown
table. Started by run.sh (which installs everything and builds errand and the harness first).

Environment: BENCH_QUICK=1 for the short run; BENCH_SECTIONS=ingest,queue,rollout to pick.
"""
import hashlib
import hmac
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
WORK = BENCH / ".work"
VENV_PY = str(BENCH / ".venv/bin/python")
VENV_BIN = BENCH / ".venv/bin"
ERRAND = os.environ.get("BENCH_ERRAND", str(ROOT / "target/release/errand"))
HARNESS = os.environ.get("BENCH_HARNESS", str(ROOT / "target/release/errand-bench-harness"))
IMAGE = os.environ.get("BENCH_IMAGE", "errand-sandbox-test:latest")
QUICK = os.environ.get("BENCH_QUICK") == "1"
SECTIONS = os.environ.get("BENCH_SECTIONS", "ingest,queue,rollout").split(",")

CFG = {
    "ingest_rounds": 2 if QUICK else 3,
    "ingest_seconds": 5 if QUICK else 12,
    "connections": 64,
    "queue_rounds": 2 if QUICK else 3,
    "queue_jobs": 1000 if QUICK else 4000,
    "errand_claimers": 8,
    "redis_bench_n": 50_000 if QUICK else 200_000,
    "rollout_rounds": 2 if QUICK else 5,
    "repo_files": 10_000,
    "repo_mb": 100,
}
GITHUB_SECRET = "bench-github-secret"
SLACK_SECRET = "bench-slack-signing-secret"
sys.path.insert(0, str(BENCH))
import payloads  # noqa: E402


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port(start):
    for port in range(start, start + 200):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise SystemExit("no free loopback port")


def wait_port(port, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


class Group:
    """A process we start in its own session; stopped by its process-group id only."""

    def __init__(self, cmd, env=None, cwd=None, log_name="proc"):
        self.log = open(WORK / f"{log_name}.log", "ab")
        self.proc = subprocess.Popen(cmd, env={**os.environ, **(env or {})}, cwd=cwd, stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def pids(self):
        out = []
        for d in Path("/proc").iterdir():
            if d.name.isdigit():
                try:
                    fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
                    if int(fields[2]) == self.proc.pid:  # process group
                        out.append(int(d.name))
                except (OSError, IndexError, ValueError):
                    pass
        return out

    def rss_kib(self):
        total = 0
        for pid in self.pids():
            try:
                m = re.search(r"VmRSS:\s+(\d+)", Path(f"/proc/{pid}/status").read_text())
                total += int(m.group(1)) if m else 0
            except OSError:
                pass
        return total

    def stop(self):
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        time.sleep(0.2)
        try:  # children that outlived the leader
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.log.close()


class RssSampler(threading.Thread):
    def __init__(self, group):
        super().__init__(daemon=True)
        self.group, self.peak, self.stop_flag = group, 0, False

    def run(self):
        while not self.stop_flag:
            self.peak = max(self.peak, self.group.rss_kib())
            time.sleep(0.1)


class Redis:
    def __init__(self):
        self.port = free_port(6480)
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.group = Group(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                            "--appendonly", "no", "--dir", str(WORK), "--protected-mode", "yes"],
                           log_name="redis")
        wait_port(self.port)

    def cli(self, *args):
        out = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(self.port), *args],
                             capture_output=True, text=True, check=True)
        return out.stdout.strip()

    def flush(self):
        self.cli("FLUSHALL")


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


# ---------------------------------------------------------------------------------------------
# 1. Webhook ingest


def ingest(redis):
    gh_body = payloads.github_payload()
    sl_body = payloads.slack_payload()
    (WORK / "github.json").write_bytes(gh_body)
    (WORK / "slack.json").write_bytes(sl_body)
    gh_sig = "sha256=" + hmac.new(GITHUB_SECRET.encode(), gh_body, hashlib.sha256).hexdigest()
    nproc = str(os.cpu_count() or 1)
    peer_env = {"BENCH_REDIS_URL": redis.url, "BENCH_PROCESSES": nproc}

    def slack_headers():
        ts = str(int(time.time()))
        sig = "v0=" + hmac.new(SLACK_SECRET.encode(), b"v0:" + ts.encode() + b":" + sl_body, hashlib.sha256).hexdigest()
        return ["Content-Type: application/json", f"X-Slack-Request-Timestamp: {ts}", f"X-Slack-Signature: {sig}"]

    gh_headers = lambda: ["Content-Type: application/json", "X-GitHub-Event: issue_comment",  # noqa: E731
                          f"X-Hub-Signature-256: {gh_sig}", "User-Agent: GitHub-Hookshot/bench"]
    servers = {
        "errand": dict(cmd=lambda port: [ERRAND, "serve", "--listen", f"127.0.0.1:{port}"],
                       env={"ERRAND_REDIS_URL": redis.url, "ERRAND_GITHUB_WEBHOOK_SECRET": GITHUB_SECRET,
                            "ERRAND_RATE_LIMIT_REQUESTER": "0", "ERRAND_RATE_LIMIT_REPOSITORY": "0",
                            "ERRAND_LOG": "warn"},
                       path="/github/webhook", body="github.json", delivery="X-GitHub-Delivery",
                       headers=gh_headers, jobs=lambda: int(redis.cli("XLEN", "errand:{q}:jobs"))),
        "aiohttp+gidgethub": dict(cmd=lambda port: [VENV_PY, "github_aiohttp.py"],
                                  env={**peer_env, "BENCH_SECRET": GITHUB_SECRET},
                                  path="/github/webhook", body="github.json", delivery="X-GitHub-Delivery",
                                  headers=gh_headers, jobs=lambda: int(redis.cli("LLEN", "peer:jobs"))),
        "Slack Bolt (AsyncApp)": dict(cmd=lambda port: [VENV_PY, "slack_bolt_app.py"],
                                      env={**peer_env, "BENCH_SECRET": SLACK_SECRET},
                                      path="/slack/events", body="slack.json", delivery="X-Bench-Delivery-Id",
                                      headers=slack_headers, jobs=lambda: int(redis.cli("LLEN", "peer:jobs"))),
    }
    results = {name: [] for name in servers}
    nonce = 0

    def wrk(spec, port, seconds):
        nonlocal nonce
        nonce += 1
        cmd = ["wrk", "-t2", f"-c{CFG['connections']}", f"-d{seconds}s", "--timeout", "5s", "--latency",
               "-s", str(BENCH / "wrk/webhook.lua"), f"http://127.0.0.1:{port}{spec['path']}", "--",
               str(WORK / spec["body"]), spec["delivery"], str(nonce), *spec["headers"]()]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        return json.loads(out.split("BENCH_JSON", 1)[1].strip().splitlines()[0])

    for rnd in range(CFG["ingest_rounds"]):
        for name, spec in servers.items():
            redis.flush()
            port = free_port(18080)
            env = {**spec["env"], "BENCH_PORT": str(port)}
            server = Group(spec["cmd"](port), env=env, cwd=BENCH / "peers", log_name=f"ingest-{rnd}")
            try:
                wait_port(port)
                time.sleep(1.0)
                idle = server.rss_kib()
                wrk(spec, port, 2)  # warm-up, not counted
                time.sleep(0.5)
                redis.flush()
                sampler = RssSampler(server)
                sampler.start()
                w = wrk(spec, port, CFG["ingest_seconds"])
                sampler.stop_flag = True
                sampler.join()
                time.sleep(1.0)  # requests wrk abandoned at the end may still complete
                jobs = spec["jobs"]()
            finally:
                server.stop()
            ok = w["requests"] - w["non2xx"]
            r = dict(rps=ok / (w["duration_us"] / 1e6), p50_ms=w["p50_us"] / 1e3, p99_ms=w["p99_us"] / 1e3,
                     ok=ok, jobs=jobs, lost=max(0, ok - jobs), errors=w["non2xx"] + w["timeouts"],
                     idle_kib=idle, peak_kib=sampler.peak)
            results[name].append(r)
            log(f"ingest round {rnd + 1} {name}: {r}")
    return results


# ---------------------------------------------------------------------------------------------
# 2. Queue


def queue(redis):
    n = CFG["queue_jobs"]
    env = {"BENCH_REDIS_URL": redis.url}
    peers_dir = BENCH / "peers"
    workers = {
        "RQ": [[str(VENV_BIN / "rq"), "worker", "--url", redis.url, "--worker-class", "rq.worker.SimpleWorker",
                "--quiet", "bench"]] * 2,
        "arq": [[str(VENV_BIN / "arq"), "qtasks.ArqSettings"]] * 2,
        "Celery": [[str(VENV_BIN / "celery"), "-A", "qtasks:celery_app", "worker", "-c", "2", "-Q", "bench",
                    "-l", "warning", "--without-gossip", "--without-mingle", "--without-heartbeat"]],
        "Dramatiq": [[str(VENV_BIN / "dramatiq"), "qtasks", "-p", "2", "-t", "8", "-Q", "bench"]],
    }
    results = {"errand": [], **{k: [] for k in workers}}
    ceiling = {"LPUSH": [], "RPOP": [], "XADD": []}
    for rnd in range(CFG["queue_rounds"]):
        redis.flush()
        out = subprocess.run([HARNESS, "queue", redis.url, f"bench{rnd}", str(n), str(CFG["errand_claimers"])],
                             capture_output=True, text=True, timeout=600)
        if out.returncode != 0:
            raise RuntimeError(f"harness queue failed: {out.stderr}")
        r = json.loads(out.stdout.strip().splitlines()[-1])
        if r["outstanding"] != 0 or r["finished"] != n:
            raise RuntimeError(f"errand's queue did not drain: {r}")
        results["errand"].append(r)
        log(f"queue round {rnd + 1} errand: {r}")
        for name, cmds in workers.items():
            redis.flush()
            groups = [Group(c, env=env, cwd=peers_dir, log_name=f"queue-{name}") for c in cmds]
            try:
                out = subprocess.run([VENV_PY, "queue_peer.py", {"RQ": "rq", "arq": "arq", "Celery": "celery",
                                                                  "Dramatiq": "dramatiq"}[name], str(n)],
                                     env={**os.environ, **env}, cwd=peers_dir, capture_output=True, text=True,
                                     timeout=600)
            finally:
                for g in groups:
                    g.stop()
            if out.returncode != 0:
                raise RuntimeError(f"{name} producer failed: {out.stderr[-2000:]}")
            r = json.loads(out.stdout.strip().splitlines()[-1])
            results[name].append(r)
            log(f"queue round {rnd + 1} {name}: {r}")
        redis.flush()
        base = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(redis.port), "-q", "-n", str(CFG["redis_bench_n"])]
        text = subprocess.run(base + ["-t", "lpush,rpop"], capture_output=True, text=True, check=True).stdout
        text += subprocess.run(base + ["XADD", "bench:stream", "*", "job", "x"], capture_output=True, text=True,
                               check=True).stdout
        for line in text.replace("\r", "\n").splitlines():
            m = re.match(r"^(\S+).*?:\s+([\d.]+) requests per second", line)
            if m and m.group(1) in ceiling:
                ceiling[m.group(1)].append(float(m.group(2)))
        log(f"queue round {rnd + 1} redis-benchmark: { {k: v[-1:] for k, v in ceiling.items()} }")
        redis.flush()
    return results, ceiling


# ---------------------------------------------------------------------------------------------
# 3. Rollout start (and the worker-side memory of rollouts)

AGENT = "echo agent-up; adjtimex | grep tv_"


def adjtimex_stamp(text):
    sec = re.search(r"time\.tv_sec:\s*(\d+)", text)
    usec = re.search(r"time\.tv_usec:\s*(\d+)", text)
    return int(sec.group(1)) + int(usec.group(1)) / 1e6 if sec and usec else None


def rollout():
    repo = WORK / "repo" / f"big-{CFG['repo_files']}-{CFG['repo_mb']}.git"
    if not (repo / "HEAD").exists():
        log(f"generating {repo} ({CFG['repo_files']} files, {CFG['repo_mb']} MB)")
        shutil.rmtree(repo, ignore_errors=True)
        repo.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, str(BENCH / "gen_repo.py"), str(repo), str(CFG["repo_files"]),
                        str(CFG["repo_mb"])], check=True)
    origin = f"file://{repo}"
    data = WORK / "rollout"
    naive_dir = WORK / "naive"
    shutil.rmtree(data, ignore_errors=True)
    shutil.rmtree(naive_dir, ignore_errors=True)
    naive_dir.mkdir(parents=True)

    def harness(mode):
        out = subprocess.run([HARNESS, "rollout", origin, str(data), IMAGE, mode], capture_output=True, text=True,
                             timeout=600)
        if out.returncode != 0:
            raise RuntimeError(f"harness rollout {mode} failed: {out.stderr[-2000:]}")
        return json.loads(out.stdout.strip().splitlines()[-1])

    def harness_env(mode):
        out = subprocess.run([HARNESS, "rollout-env", origin, str(data), IMAGE, mode], capture_output=True,
                             text=True, timeout=900)
        if out.returncode != 0:
            raise RuntimeError(f"harness rollout-env {mode} failed: {out.stderr[-2000:]}")
        return json.loads(out.stdout.strip().splitlines()[-1])

    def docker_run(extra):
        t0 = time.time()
        out = subprocess.run(["docker", "run", "--rm", "--network", "none", *extra, IMAGE, "sh", "-c", AGENT],
                             capture_output=True, text=True, check=True).stdout
        return t0, adjtimex_stamp(out), time.time()

    def naive(i):
        dest = naive_dir / str(i)
        t0 = time.time()
        subprocess.run(["git", "clone", "--quiet", origin, str(dest)], check=True)
        _, stamp, end = docker_run(["-v", f"{dest}:/workspace", "-w", "/workspace"])
        shutil.rmtree(dest)
        return {"first_output_s": stamp - t0, "step_returned_s": end - t0}

    def floor():
        t0, stamp, end = docker_run([])
        return {"first_output_s": stamp - t0, "step_returned_s": end - t0}

    harness("cold")  # prime: page cache, image, mirror
    results = {"errand warm": [], "errand cold": [], "naive": [], "floor": [], "setup cold": [], "setup warm": []}
    for rnd in range(CFG["rollout_rounds"]):
        for name, fn in [("errand cold", lambda: harness("cold")), ("errand warm", lambda: harness("warm")),
                         ("naive", lambda: naive(rnd)), ("floor", floor),
                         ("setup cold", lambda: harness_env("cold")), ("setup warm", lambda: harness_env("warm"))]:
            r = fn()
            results[name].append(r)
            log(f"rollout round {rnd + 1} {name}: {r}")
    mem = {}
    for k in (1, 2):
        out = subprocess.run([HARNESS, "rollout-mem", origin, str(data), IMAGE, str(k)], capture_output=True,
                             text=True, timeout=600)
        if out.returncode != 0:
            raise RuntimeError(f"harness rollout-mem failed: {out.stderr[-2000:]}")
        mem[k] = json.loads(out.stdout.strip().splitlines()[-1])
        log(f"rollout memory k={k}: {mem[k]}")
    shutil.rmtree(data, ignore_errors=True)
    shutil.rmtree(naive_dir, ignore_errors=True)
    # The environment images the setup rounds left (see the README's "Environments").
    envs = subprocess.run(["docker", "images", "--quiet", "--filter", "label=errand.env.repo=bench/big-env"],
                          capture_output=True, text=True).stdout.split()
    if envs:
        subprocess.run(["docker", "image", "rm", "--force", *envs], capture_output=True)
    return results, mem


# ---------------------------------------------------------------------------------------------
# The table


def fmt(x, unit="", digits=None):
    if x is None:
        return "—"
    if digits is None:
        digits = 0 if abs(x) >= 100 else 1 if abs(x) >= 10 else 2
    return f"{x:,.{digits}f}{unit}"


def ratio(a, b):
    return f"{a / b:.2f}×" if a and b else "—"


def check(ok):
    return "✅" if ok else "❌"


def table(ingest_r, queue_r, rollout_r):
    rows = []
    head = "| section | measure | errand | peer | peer figure | errand advantage | target | met |"
    sep = "|---|---|---|---|---|---|---|---|"

    def section(title):
        rows.append(f"| **{title}** | | | | | | | |")

    def row(*cells):
        rows.append("| " + " | ".join(str(c) for c in cells) + " |")

    if ingest_r:
        section(f"1. Webhook ingest: signed ~6 KB comment, wrk 64 connections × {CFG['ingest_seconds']} s, "
                f"{CFG['ingest_rounds']} alternating rounds, medians")

        def summary(name):
            runs = ingest_r[name]
            lost = sum(r["lost"] for r in runs)
            return runs, lost, {k: median([r[k] for r in runs]) for k in ("rps", "p50_ms", "p99_ms", "idle_kib",
                                                                          "peak_kib")}

        e_runs, e_lost, e = summary("errand")
        peers = [n for n in ingest_r if n != "errand"]
        peer_rps = {}
        for name in peers:
            p_runs, p_lost, p = summary(name)
            peer_rps[name] = None if p_lost else p["rps"]
        best = max((v for v in peer_rps.values() if v), default=None)
        for name in peers:
            p_runs, p_lost, p = summary(name)
            e_fig = f"dropped {e_lost}" if e_lost else fmt(e["rps"], " req/s")
            p_fig = f"dropped {p_lost}" if p_lost else fmt(p["rps"], " req/s")
            met = check(not e_lost and best and e["rps"] >= 10 * best) if peer_rps[name] == best else ""
            row("ingest", "requests/s (2xx)", e_fig, name, p_fig,
                ratio(None if e_lost else e["rps"], None if p_lost else p["rps"]),
                "≥10× the faster peer" if peer_rps[name] == best else "", met)
        for name in peers:
            _, _, p = summary(name)
            row("ingest", "p50 latency", fmt(e["p50_ms"], " ms"), name, fmt(p["p50_ms"], " ms"),
                ratio(p["p50_ms"], e["p50_ms"]), "", "")
        for i, name in enumerate(peers):
            _, _, p = summary(name)
            row("ingest", "p99 latency", fmt(e["p99_ms"], " ms"), name, fmt(p["p99_ms"], " ms"),
                ratio(p["p99_ms"], e["p99_ms"]), "< 5 ms" if i == 0 else "",
                check(e["p99_ms"] < 5) if i == 0 else "")
        for i, name in enumerate(peers):
            p_runs, p_lost, _ = summary(name)
            e_ok, p_ok = sum(r["ok"] for r in e_runs), sum(r["ok"] for r in p_runs)
            row("ingest", "jobs lost (2xx answers without a job in Redis)",
                f"{e_lost} of {e_ok:,}", name, f"{p_lost} of {p_ok:,}", "", "0" if i == 0 else "",
                check(e_lost == 0) if i == 0 else "")
    if queue_r:
        q, ceiling = queue_r
        n = CFG["queue_jobs"]
        section(f"2. Queue: enqueue {n:,} no-op jobs one by one while the workers drain and acknowledge them, "
                f"{CFG['queue_rounds']} alternating rounds, medians")
        e = median([r["jobs_per_s"] for r in q["errand"]])
        e_enq = median([n / r["enqueue_s"] for r in q["errand"]])
        peer_med = {name: median([r["jobs_per_s"] for r in q[name]]) for name in q if name != "errand"}
        best = max(peer_med.values())
        what = {"RQ": "RQ, 2 SimpleWorkers", "arq": "arq, 2 workers", "Celery": "Celery, prefork -c 2, acks_late",
                "Dramatiq": "Dramatiq, 2 procs × 8 threads"}
        for name, p in peer_med.items():
            fastest = p == best
            row("queue", "jobs/s end to end", fmt(e, " jobs/s"), what[name], fmt(p, " jobs/s"), ratio(e, p),
                "≥5× the fastest Python queue" if fastest else "", check(e >= 5 * best) if fastest else "")
        for name in peer_med:
            p_enq = median([n / r["enqueue_s"] for r in q[name]])
            row("queue", "enqueue only, jobs/s (one producer)", fmt(e_enq, " jobs/s"), what[name],
                fmt(p_enq, " jobs/s"), ratio(e_enq, p_enq), "", "")
        for op, vals in ceiling.items():
            c = median(vals)
            row("queue", "Redis ceiling: errand jobs/s as a share of raw ops/s", fmt(e, " jobs/s"),
                f"redis-benchmark {op}, 50 clients", fmt(c, " ops/s"),
                f"{100 * e / c:.1f}% of {op}" if c else "—", "", "")
    if rollout_r:
        res, mem = rollout_r
        med = {k: median([r["first_output_s"] for r in v]) for k, v in res.items()}
        ret = {k: median([r["step_returned_s"] for r in v]) for k, v in res.items()}
        section(f"3. Rollout start: job claimed → agent's first output, {CFG['repo_files']:,} files / "
                f"{CFG['repo_mb']} MB repo over file://, image {IMAGE}, {CFG['rollout_rounds']} alternating rounds, medians")
        w, c = med["errand warm"], med["errand cold"]
        row("rollout", "warm (mirror and checkout cached: fetch, refresh checkout, chown, run_step)", fmt(w, " s"),
            "naive: git clone + docker run -v", fmt(med["naive"], " s"), ratio(med["naive"], w),
            "< 1.5 s and ≥10× naive", check(w < 1.5 and med["naive"] >= 10 * w))
        row("rollout", "warm vs the floor", fmt(w, " s"), "floor: docker run --rm IMAGE (no repo)",
            fmt(med["floor"], " s"), ratio(med["floor"], w), "within 2× the floor", check(w <= 2 * med["floor"]))
        row("rollout", "cold (fresh mirror and checkout: clone --bare, local clone, chown, run_step)", fmt(c, " s"),
            "naive: git clone + docker run -v", fmt(med["naive"], " s"), ratio(med["naive"], c), "", "")
        phases = {k: median([r[k] for r in res["errand warm"]]) for k in ("sync_s", "workspace_s", "chown_s", "step_s")}
        row("rollout", "warm, where the time goes (medians)",
            f"fetch {fmt(phases['sync_s'], ' s')}, checkout {fmt(phases['workspace_s'], ' s')}, "
            f"chown {fmt(phases['chown_s'], ' s')}, run_step {fmt(phases['step_s'], ' s')}", "", "", "", "", "")
        row("rollout", "until the step returned (container removed)", fmt(ret["errand warm"], " s"),
            "naive / floor", f"{fmt(ret['naive'], ' s')} / {fmt(ret['floor'], ' s')}",
            ratio(ret["naive"], ret["errand warm"]), "", "")
        sw, sc = med["setup warm"], med["setup cold"]
        setup_s = median([r["setup_s"] for r in res["setup cold"]])
        row("rollout", "with `[setup]` (2,000 files / 20 MB into $HOME), warm: mirror, checkout and environment "
            "image cached (whole `Rollout::run`, setup skipped)", fmt(sw, " s"),
            f"cold: no mirror, no environment (clone, setup {fmt(setup_s, ' s')}, commit, run)", fmt(sc, " s"),
            ratio(sc, sw), "warm < 1.5 s", check(sw < 1.5))
        row("rollout", f"with `[setup]`, warm, against a warm start without setup (difference "
            f"{f'{sw - w:+.2f} s' if sw and w else '—'})", fmt(sw, " s"), "warm without setup (above)", fmt(w, " s"),
            ratio(w, sw), "", "")
    section("4. Memory: resident set (VmRSS from /proc)")
    if ingest_r:
        e_idle = median([r["idle_kib"] for r in ingest_r["errand"]]) / 1024
        e_peak = median([r["peak_kib"] for r in ingest_r["errand"]]) / 1024
        for i, name in enumerate(n for n in ingest_r if n != "errand"):
            p_idle = median([r["idle_kib"] for r in ingest_r[name]]) / 1024
            p_peak = median([r["peak_kib"] for r in ingest_r[name]]) / 1024
            procs = os.cpu_count()
            row("memory", "serve, idle (after start)", fmt(e_idle, " MB"), f"{name} ({procs} processes)",
                fmt(p_idle, " MB"), ratio(p_idle, e_idle), "< 30 MB" if i == 0 else "",
                check(e_idle < 30) if i == 0 else "")
            row("memory", "serve, peak under the ingest load", fmt(e_peak, " MB"), f"{name} ({procs} processes)",
                fmt(p_peak, " MB"), ratio(p_peak, e_peak), "", "")
    if rollout_r:
        _, mem = rollout_r
        row("memory", "rollout code (harness process, errand's library): idle → peak with 1 / 2 concurrent rollouts",
            f"{fmt(mem[1]['idle_kib'] / 1024, ' MB')} → {fmt(mem[1]['peak_kib'] / 1024, ' MB')} / "
            f"{fmt(mem[2]['peak_kib'] / 1024, ' MB')}", "", "",
            "", f"≈{fmt(mem[2]['per_rollout_kib'] / 1024, ' MB')} per concurrent rollout", "")
    return "\n".join([head, sep, *rows])


def main():
    WORK.mkdir(exist_ok=True)
    started = time.time()
    redis = Redis()
    log(f"Redis on 127.0.0.1:{redis.port}; quick={QUICK}; sections={SECTIONS}")
    try:
        ingest_r = ingest(redis) if "ingest" in SECTIONS else None
        queue_r = queue(redis) if "queue" in SECTIONS else None
        rollout_r = rollout() if "rollout" in SECTIONS else None
    finally:
        redis.group.stop()
    out = table(ingest_r, queue_r, rollout_r)
    raw = {"config": CFG, "ingest": ingest_r, "queue": queue_r and {"runs": queue_r[0], "ceiling": queue_r[1]},
           "rollout": rollout_r and {"runs": rollout_r[0], "memory": rollout_r[1]}}
    (WORK / "last-run.json").write_text(json.dumps(raw, indent=1))
    print(out)
    print(f"\nerrand built from the {os.environ.get('BENCH_SOURCE', 'working tree')}; "
          f"{time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, {'quick' if QUICK else 'full'} run, "
          f"{(time.time() - started) / 60:.1f} min; raw figures in bench/.work/last-run.json")


if __name__ == "__main__":
    main()
