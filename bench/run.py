"""The AegisGitea MCP benchmark: ``make bench`` (full) and ``make bench-smoke`` (CI guard).

Starts a fake Gitea, the product and the baselines, each in its own process, pinned with
``taskset`` (servers on one core, the load generators and the fake Gitea on the other, on a
2-core machine), drives them with wrk (closed loop, fixed duration, a warm-up, interleaved
repetitions) and writes, under ``bench/results/``:

- ``<stamp>.jsonl``: one JSON line per measured run, then one per summarised point and target;
- ``<stamp>.md``: the Markdown tables (medians, every ratio against the baselines of the same run);
- ``latest.md`` / ``latest.jsonl``: copies of the newest.

See ``bench/README.md`` for what each scenario measures and how.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
LUA = BENCH / "lua" / "bench.lua"
MARKER = "AEGIS_BENCH_MARKER_7f3a"
TOOL = "get_file_contents"
ARGS = {"owner": "bench", "repo": "fixture", "path": "src/fixture.py", "ref": "main"}
CLK_TCK = os.sysconf("SC_CLK_TCK")
PROTOCOL_VERSION = "2025-06-18"


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- tools ---------------------------------------------------------------------------------


def ensure_wrk() -> str:
    """wrk from Debian, installed when missing (we run as root on the project's machines)."""
    path = shutil.which("wrk")
    if path:
        return path
    if os.geteuid() == 0 and shutil.which("apt-get"):
        log("wrk not found: apt-get install -y wrk")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(
            ["apt-get", "update", "-qq"], check=False, env=env, stdout=subprocess.DEVNULL
        )
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "wrk"],
            check=True,
            env=env,
            stdout=subprocess.DEVNULL,
        )
        path = shutil.which("wrk")
    if not path:
        sys.exit("bench: wrk is required (Debian: apt-get install -y wrk)")
    return path


def ensure_py_spy() -> str | None:
    """py-spy for the profile step, pip-installed into this venv when missing; None if that fails."""
    found = shutil.which("py-spy") or (Path(sys.executable).parent / "py-spy")
    if Path(found).exists():
        return str(found)
    log("py-spy not found: pip install py-spy (profile step)")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "py-spy"],
        check=False,
    )
    candidate = Path(sys.executable).parent / "py-spy"
    if result.returncode == 0 and candidate.exists():
        return str(candidate)
    return shutil.which("py-spy")


def steal_seconds() -> float:
    """CPU time the hypervisor took from this VM, all cores (the 8th field of /proc/stat)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
        return int(fields[8]) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return 0.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_layout() -> tuple[list[str] | None, list[str] | None, list[str] | None]:
    """taskset prefixes for (servers, load generators, fake Gitea)."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2 or not shutil.which("taskset"):
        return None, None, None
    server, load = cpus[-1], cpus[0]
    gitea = cpus[1] if len(cpus) >= 3 else load

    def pin(cpu: int) -> list[str]:
        return ["taskset", "-c", str(cpu)]

    return pin(server), pin(load), pin(gitea)


# --- processes -----------------------------------------------------------------------------


@dataclass
class Server:
    name: str  # short id used in results: P, A, B, ...
    label: str
    cmd: list[str]
    env: dict
    port: int
    stdout: Path
    proc: subprocess.Popen | None = None
    extra: dict = field(default_factory=dict)
    #: The bearer its load presents (None: the bench's API key).
    key: str | None = None

    def start(self, cwd: Path) -> None:
        self.proc = subprocess.Popen(
            self.cmd,
            env=self.env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=open(self.stdout, "wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        # the python process itself (taskset exec()s it, keeping the pid)
        assert self.proc is not None
        return self.proc.pid

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                tail = self.stdout.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{self.label} exited with {self.proc.returncode}:\n{tail}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"{self.label} did not listen on {self.port} within {timeout}s")

    def cpu_seconds(self) -> float:
        return sum(self.cpu_split())

    def cpu_split(self) -> tuple[float, float]:
        """(user, system) CPU seconds of all the process's threads, and of its live child
        processes (``--workers``: the workers do the serving)."""
        user = system = 0.0
        for pid in [self.pid, *_children(self.pid)]:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            user += int(fields[11]) / CLK_TCK
            system += int(fields[12]) / CLK_TCK
        return user, system

    def status_kb(self, key: str) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
        return 0

    def reset_peak(self) -> None:
        try:
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")  # resets VmHWM (root)
        except OSError:
            pass

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def start_redis(workdir: Path) -> tuple[subprocess.Popen, str] | None:
    """A redis-server of the bench's own (Debian's ``redis-server``, as the tests find it), for
    the ``--workers`` point's STATE_URL; None when it is not installed."""
    binary = shutil.which("redis-server")
    if binary is None:
        return None
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir)]
        + ["--save", "", "--appendonly", "no", "--daemonize", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    return None


# --- the bench -----------------------------------------------------------------------------


def jsonrpc_call(progress: bool = False) -> dict:
    params: dict = {"name": TOOL, "arguments": ARGS}
    if progress:
        params["_meta"] = {"progressToken": "bench"}
    return {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}


# scenario -> (path, body, marker, servers it runs on, all concurrencies?)
# Only the headline scenario runs at c=1 too; the others at c=10 and c=50, to keep the whole
# bench under 10 minutes on two cores.
def scenarios(smoke: bool) -> dict:
    all_ = {
        "call_json": ("/mcp", jsonrpc_call(), MARKER, ["P", "A", "B", "At"], True),
        "call_sse": ("/mcp", jsonrpc_call(progress=True), MARKER, ["P", "A", "Bs"], False),
        "call_rest": (
            "/mcp/tool/call",
            {"tool": TOOL, "arguments": ARGS},
            MARKER,
            ["P", "A"],
            False,
        ),
        "tools_list": (
            "/mcp",
            {"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
            TOOL,
            ["P", "A", "B"],
            False,
        ),
        "audit": ("/mcp", jsonrpc_call(), MARKER, ["Pnofile", "Pnoaudit"], False),
        # One product with OAuth on, driven with an OAuth access token (Po) and with the API
        # key (Pk, the same process): what an OAuth bearer costs against a key.
        "call_oauth": ("/mcp", jsonrpc_call(), MARKER, ["Po", "Pk"], False),
    }
    if smoke:
        return {"call_json": ("/mcp", jsonrpc_call(), MARKER, ["P", "A"], True)}
    return all_


def selected(opts) -> dict:
    chosen = scenarios(opts.smoke)
    if opts.scenarios is not None:
        chosen = {k: v for k, v in chosen.items() if k in opts.scenarios}
    return chosen


class Bench:
    def __init__(self, opts):
        self.opts = opts
        self.smoke = opts.smoke
        self.stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S") + ("-smoke" if self.smoke else "")
        self.workdir = Path(opts.workdir or f"/tmp/aegis-bench-{self.stamp}")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.key = secrets.token_hex(32)
        self.bad_key = secrets.token_hex(32)
        self.token = "bench" + secrets.token_hex(16)
        self.pin_server, self.pin_load, self.pin_gitea = cpu_layout()
        self.wrk = ensure_wrk()
        self.servers: dict[str, Server] = {}
        self.gitea: Server | None = None
        self.runs: list[dict] = []
        self.extra: dict = {}
        self.redis: subprocess.Popen | None = None
        self.started = time.monotonic()

    # -- set-up -------------------------------------------------------------------------

    def _py(self, *args: str, pin: list[str] | None) -> list[str]:
        return [*(pin or []), sys.executable, *args]

    def start_all(self) -> None:
        py_env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1"}
        gport = free_port()
        self.gitea = Server(
            "G",
            "fake Gitea",
            self._py(str(BENCH / "fake_gitea.py"), "--port", str(gport), pin=self.pin_gitea),
            py_env,
            gport,
            self.workdir / "gitea.log",
        )
        self.gitea.start(self.workdir)
        self.gitea.wait_ready()
        gitea_url = f"http://127.0.0.1:{gport}"

        def product(
            name: str,
            label: str,
            audit: str | None,
            stdout: str,
            args: tuple[str, ...] = (),
            pin: list[str] | None | bool = True,
            **env,
        ) -> Server:
            port = free_port()
            if env.pop("OAUTH", None):
                env.update(
                    OAUTH_ENABLED="true",
                    PUBLIC_URL=f"http://127.0.0.1:{port}",
                    GITEA_OAUTH_CLIENT_ID="bench-gitea-app",
                    GITEA_OAUTH_CLIENT_SECRET="bench-gitea-app-secret-" + secrets.token_hex(8),
                    OAUTH_STATE_PATH=str(self.workdir / f"{name}.oauth.sqlite"),
                    BENCH_OAUTH_TOKEN_FILE=str(self.workdir / f"{name}.oauth-token"),
                )
            penv = {
                **py_env,
                "GITEA_URL": gitea_url,
                "GITEA_TOKEN": self.token,
                "MCP_API_KEYS": self.key,
                "LOG_LEVEL": "info",
                "AUDIT_LOG_PATH": audit if audit is not None else "",
                "BENCH_STATS_FILE": str(self.workdir / f"{name}.stats.json"),
                # The per-key cap stays on (its accounting runs on every call), above the
                # highest concurrency one bench key offers: the default (8) would answer a
                # single-key c=10 load with 429s, which is the cap working, not throughput.
                "MAX_CALLS_PER_KEY": "64",
                # Likewise the per-address connection cap (64): every bench client is 127.0.0.1,
                # and the legacy c=50 point alone holds 50 streams plus 50 POST connections.
                "MAX_CONNECTIONS_PER_IP": "1024",
                **env,
            }
            out = Path(stdout) if stdout == os.devnull else self.workdir / stdout
            return Server(
                name,
                label,
                self._py(
                    str(BENCH / "run_product.py"),
                    "--port",
                    str(port),
                    *args,
                    pin=self.pin_server if pin is True else pin or None,
                ),
                penv,
                port,
                out,
            )

        wd = self.workdir
        self.servers["P"] = product("P", "product", str(wd / "audit-P.log"), "P.stdout.log")
        port = free_port()
        self.servers["A"] = Server(
            "A",
            "baseline (a) bare Tornado + requests-futures",
            self._py(
                str(BENCH / "baseline_tornado.py"),
                "--port",
                str(port),
                "--gitea",
                gitea_url,
                "--token",
                self.token,
                pin=self.pin_server,
            ),
            py_env,
            port,
            wd / "A.log",
        )
        if not self.smoke:
            port = free_port()
            self.servers["At"] = Server(
                "At",
                "reference: bare Tornado + Tornado's own HTTP client",
                self._py(
                    str(BENCH / "baseline_tornado.py"),
                    "--port",
                    str(port),
                    "--gitea",
                    gitea_url,
                    "--token",
                    self.token,
                    "--client",
                    "tornado",
                    pin=self.pin_server,
                ),
                py_env,
                port,
                wd / "At.log",
            )
            for name, reply in (("B", "json"), ("Bs", "sse")):
                port = free_port()
                self.servers[name] = Server(
                    name,
                    f"baseline (b) MCP SDK, {reply} replies",
                    self._py(
                        str(BENCH / "baseline_sdk.py"),
                        "--port",
                        str(port),
                        "--gitea",
                        gitea_url,
                        "--token",
                        self.token,
                        "--reply",
                        reply,
                        pin=self.pin_server,
                    ),
                    py_env,
                    port,
                    wd / f"{name}.log",
                )
            self.servers["Pnofile"] = product(
                "Pnofile", "product, no audit file (stdout only)", "", os.devnull
            )
            self.servers["Pnoaudit"] = product(
                "Pnoaudit",
                "product, audit events stubbed out",
                "",
                os.devnull,
                BENCH_NO_AUDIT_EVENTS="1",
            )
            self.servers["Pflood"] = product(
                "Pflood",
                "product behind a trusted proxy",
                str(wd / "audit-Pflood.log"),
                "Pflood.stdout.log",
                TRUSTED_PROXIES="127.0.0.1",
                AUTH_TRACKED_IPS=str(self.opts.limiter_cap),
            )
            self.servers["Po"] = product(
                "Po", "product with OAuth on", str(wd / "audit-Po.log"), "Po.stdout.log", OAUTH="1"
            )
            if "workers" in self.opts.extras:
                self._workers_servers(product)
        for server in self.servers.values():
            server.start(self.workdir)
        for server in self.servers.values():
            server.wait_ready()
        if "Po" in self.servers:
            self._oauth_token_for(self.servers["Po"])
        self.extra["tool_source"] = self.product_stats("P").get("tool_source")
        log(
            f"servers up: {', '.join(s.label for s in self.servers.values())}; "
            f"tool: {self.extra['tool_source']}; pinning: server={self.pin_server} "
            f"load={self.pin_load} gitea={self.pin_gitea}"
        )

    def _oauth_token_for(self, server: Server) -> None:
        """The access token the product's bench hook seeded (run_product.py), for Po's load;
        Pk is the same process driven with the API key."""
        path = Path(server.env["BENCH_OAUTH_TOKEN_FILE"])
        deadline = time.monotonic() + 30
        while not path.exists():
            if time.monotonic() > deadline:
                raise RuntimeError(f"{server.label}: no OAuth token seeded ({path})")
            time.sleep(0.05)
        server.key = path.read_text().strip()
        self.servers["Pk"] = dataclasses.replace(
            server, name="Pk", label="product with OAuth on, API key", key=None
        )

    def _workers_servers(self, product) -> None:
        """W1 / W2: ``--workers 1`` and ``--workers 2`` on a shared STATE_URL (a redis-server
        of the bench's own), not pinned: the workers of W2 need both cores."""
        started = start_redis(self.workdir)
        if started is None:
            log("workers: redis-server not installed; the 2-vs-1 worker point is skipped")
            return
        self.redis, url = started
        for n in (1, 2):
            self.servers[f"W{n}"] = product(
                f"W{n}",
                f"product, --workers {n}, STATE_URL",
                "",
                os.devnull,
                args=("--workers", str(n)),
                pin=False,
                STATE_URL=url,
                # W1 and W2 share the key and the Redis: the per-key cap counts the previous
                # run's calls still finishing on the other server (19 429s at c=50 in run
                # 20261204-181134); above c=50 plus that tail, the cap stays on and out of the way.
                MAX_CALLS_PER_KEY="256",
            )

    def stop_all(self) -> None:
        for server in list(self.servers.values()) + ([self.gitea] if self.gitea else []):
            try:
                server.stop()
            except Exception:  # noqa: BLE001
                pass
        if self.redis is not None:
            self.redis.terminate()
            try:
                self.redis.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.redis.kill()

    def product_stats(self, name: str) -> dict:
        server = self.servers[name]
        path = Path(server.env["BENCH_STATS_FILE"])
        path.unlink(missing_ok=True)
        os.kill(server.pid, signal.SIGUSR1)
        for _ in range(100):
            if path.exists():
                return json.loads(path.read_text())
            time.sleep(0.05)
        return {}

    def gitea_counts(self) -> dict:
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{self.gitea.port}/__bench__/stats") as r:
            return json.loads(r.read())

    # -- one load run -------------------------------------------------------------------

    def headers(self, sse_accept: bool = True, key: str | None = None) -> str:
        return "\n".join(
            [
                "Content-Type: application/json",
                "Accept: application/json, text/event-stream"
                if sse_accept
                else "Accept: application/json",
                f"MCP-Protocol-Version: {PROTOCOL_VERSION}",
                f"Authorization: Bearer {key or self.key}",
            ]
        )

    def wrk_cmd(
        self,
        server: Server,
        path: str,
        body: dict | None,
        marker: str,
        conns: int,
        duration: float,
        out: Path,
        expect: int = 200,
        xff: int | None = None,
        delay_ms: float | None = None,
        key: str | None = None,
        xff_offset: int = 0,
    ):
        env = {
            **os.environ,
            "BENCH_HEADERS": self.headers(key=key),
            "BENCH_MARKER": marker,
            "BENCH_EXPECT": str(expect),
            "BENCH_OUT": str(out),
        }
        if body is not None:
            body_file = out.with_suffix(".body.json")
            body_file.write_text(json.dumps(body))
            env["BENCH_BODY_FILE"] = str(body_file)
        if xff:
            env["BENCH_XFF_IPS"] = str(xff)
            env["BENCH_XFF_OFFSET"] = str(xff_offset)
        if delay_ms:
            env["BENCH_DELAY_MS"] = str(delay_ms)
        # wrk takes whole seconds only
        cmd = [
            *(self.pin_load or []),
            self.wrk,
            "-t1",
            f"-c{conns}",
            f"-d{max(1, round(duration))}s",
            "--timeout",
            "10s",
            "-s",
            str(LUA),
            f"http://127.0.0.1:{server.port}{path}",
        ]
        return cmd, env

    def measure(self, server: Server, run: dict, launch) -> dict:
        """Run ``launch()`` (which blocks for the load) while sampling server CPU and memory."""
        before_counts = self.gitea_counts()
        server.reset_peak()
        (u0, s0), gcpu0, t0 = server.cpu_split(), self.gitea.cpu_seconds(), time.monotonic()
        ru0 = os.times()
        steal0 = steal_seconds()
        result = launch()
        steal1 = steal_seconds()
        wall = time.monotonic() - t0
        (u1, s1), gcpu1 = server.cpu_split(), self.gitea.cpu_seconds()
        ru1 = os.times()
        after_counts = self.gitea_counts()
        reqs = max(1, result.get("requests", 0))
        sent = max(1, result.get("calls_sent") or reqs)  # the legacy loader counts its warm-up
        dur = result.get("duration_us", 1) / 1e6
        upstream = sum(after_counts.values()) - sum(before_counts.values())
        errors = (
            result.get("bad_status", 0)
            + result.get("no_marker", 0)
            + result.get("errors_connect", 0)
            + result.get("errors_read", 0)
            + result.get("errors_write", 0)
            + result.get("errors_timeout", 0)
        )
        run.update(
            {
                "rps": round(result.get("requests", 0) / dur, 1),
                "p50_ms": round(result.get("p50_us", 0) / 1000, 2),
                "p90_ms": round(result.get("p90_us", 0) / 1000, 2),
                "p99_ms": round(result.get("p99_us", 0) / 1000, 2),
                "max_ms": round(result.get("lat_max_us", 0) / 1000, 2),
                "requests": result.get("requests", 0),
                "errors": errors,
                "statuses": result.get("statuses"),
                "bytes_per_req": round(result.get("bytes", 0) / reqs),
                "server_cpu_pct": round(100 * (u1 + s1 - u0 - s0) / wall, 1),
                "server_sys_pct": round(100 * (s1 - s0) / wall, 1),
                "server_rss_mb": round(server.status_kb("VmRSS") / 1024, 1),
                "server_peak_rss_mb": round(server.status_kb("VmHWM") / 1024, 1),
                "upstream_per_req": round(upstream / sent, 2),
                "gitea_cpu_pct": round(100 * (gcpu1 - gcpu0) / wall, 1),
                # CPU the hypervisor took from this VM during the run (both cores): a run with a
                # large value was disturbed by the host, not by anything measured here
                "steal_pct": round(100 * (steal1 - steal0) / wall, 1),
                "loader_cpu_pct": result.get("loader_cpu_pct")
                or round(
                    100
                    * (
                        (ru1.children_user + ru1.children_system)
                        - (ru0.children_user + ru0.children_system)
                    )
                    / wall,
                    1,
                ),
            }
        )
        return run

    def wrk_run(
        self, server: Server, path: str, body, marker: str, conns: int, duration: float, **kw
    ) -> dict:
        out = self.workdir / f"wrk-{len(self.runs)}-{server.name}.json"
        out.unlink(missing_ok=True)
        kw.setdefault("key", server.key)
        cmd, env = self.wrk_cmd(server, path, body, marker, conns, duration, out, **kw)

        def launch():
            subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
            return json.loads(out.read_text())

        return self.measure(server, {}, launch)

    def legacy_run(self, server: Server, conns: int, duration: float) -> dict:
        out = self.workdir / f"legacy-{len(self.runs)}.json"
        cmd = [
            *(self.pin_load or []),
            sys.executable,
            str(BENCH / "sse_clients.py"),
            "legacy",
            "--port",
            str(server.port),
            "--key",
            self.key,
            "--concurrency",
            str(conns),
            "--duration",
            str(duration),
            "--warmup",
            "0.5",
            "--arguments",
            json.dumps(ARGS),
            "--out",
            str(out),
        ]

        def launch():
            subprocess.run(cmd, check=True)
            return json.loads(out.read_text())

        return self.measure(server, {}, launch)

    def record(self, run: dict, **labels) -> dict:
        run = {**labels, **run}
        self.runs.append(run)
        return run

    # -- scenarios ----------------------------------------------------------------------

    def warm_up(self) -> None:
        secs = self.opts.warmup
        if secs <= 0:
            return
        log(f"warm-up: {secs}s per server at c=10")
        done = set()
        for _name, (path, body, marker, names, _) in selected(self.opts).items():
            for sname in names:
                if sname not in done:
                    done.add(sname)
                    self.wrk_run(self.servers[sname], path, body, marker, 10, secs)
        if not self.smoke:
            self.legacy_run(self.servers["P"], 10, secs)
            self.wrk_run(self.servers["Pflood"], "/mcp", jsonrpc_call(), MARKER, 10, secs)
            for sname in ("W1", "W2"):
                if sname in self.servers:
                    self.wrk_run(self.servers[sname], "/mcp", jsonrpc_call(), MARKER, 10, secs)

    def matrix(self) -> None:
        conc = self.opts.concurrency
        dur = self.opts.duration
        for rep in range(1, self.opts.reps + 1):
            log(f"repetition {rep}/{self.opts.reps}")
            for name, (path, body, marker, names, every_c) in selected(self.opts).items():
                cs = conc if every_c else [c for c in conc if c != 1]
                for c in cs:
                    shift = (rep - 1) % len(names)
                    for sname in names[shift:] + names[:shift]:  # rotate who goes first
                        run = self.wrk_run(self.servers[sname], path, body, marker, c, dur)
                        self.record(run, rep=rep, scenario=name, server=sname, c=c)
            if not self.smoke:
                extras = self.opts.extras
                if "legacy" in extras:
                    for c in self.opts.legacy_concurrency:
                        run = self.legacy_run(self.servers["P"], c, dur)
                        self.record(run, rep=rep, scenario="call_legacy_sse", server="P", c=c)
                if "idle" in extras:
                    self.idle_streams(rep)
                if "flood" in extras:
                    self.flood(rep)
                if "workers" in extras and "W1" in self.servers:
                    self.workers(rep)

    def workers(self, rep: int) -> None:
        """``call_json`` on 1 worker and on 2 (same STATE_URL), alternating who goes first."""
        names = ["W1", "W2"] if rep % 2 else ["W2", "W1"]
        for c in [c for c in self.opts.concurrency if c != 1]:
            for sname in names:
                run = self.wrk_run(
                    self.servers[sname], "/mcp", jsonrpc_call(), MARKER, c, self.opts.duration
                )
                self.record(run, rep=rep, scenario="workers", server=sname, c=c)

    def idle_streams(self, rep: int) -> None:
        """1,000 idle event streams: RSS before/after, and c=10 tool calls meanwhile."""
        n = self.opts.idle_streams
        targets = [("P", "/mcp")] + ([("A", "/stream")] if rep == 1 else [])
        for sname, path in targets:
            server = self.servers[sname]
            if sname == "P":
                before = self.wrk_run(
                    server, "/mcp", jsonrpc_call(), MARKER, 10, self.opts.p99_duration
                )
                self.record(before, rep=rep, scenario="idle_before", server=sname, c=10)
            time.sleep(0.5)
            rss0 = server.status_kb("VmRSS")
            holder = subprocess.Popen(
                [
                    *(self.pin_load or []),
                    sys.executable,
                    str(BENCH / "sse_clients.py"),
                    "idle",
                    "--port",
                    str(server.port),
                    "--key",
                    self.key,
                    "--path",
                    path,
                    "--count",
                    str(n),
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            try:
                line = holder.stdout.readline()
                if '"ready"' not in line:
                    raise RuntimeError(f"idle stream holder failed: {line!r}")
                time.sleep(1.0)
                rss1 = server.status_kb("VmRSS")
                run = {
                    "streams": n,
                    "rss_before_mb": round(rss0 / 1024, 1),
                    "rss_with_streams_mb": round(rss1 / 1024, 1),
                    "rss_delta_mb": round((rss1 - rss0) / 1024, 2),
                    "kb_per_stream": round((rss1 - rss0) / n, 1),
                }
                if sname == "P":
                    during = self.wrk_run(
                        server, "/mcp", jsonrpc_call(), MARKER, 10, self.opts.p99_duration
                    )
                    run.update(
                        {
                            f"during_{k}": v
                            for k, v in during.items()
                            if k in ("rps", "p50_ms", "p99_ms", "errors")
                        }
                    )
                    run["rss_after_load_mb"] = round(server.status_kb("VmRSS") / 1024, 1)
            finally:
                holder.stdin.close()
                holder.wait(timeout=30)
            time.sleep(0.5)
            run["rss_after_close_mb"] = round(server.status_kb("VmRSS") / 1024, 1)
            self.record(run, rep=rep, scenario="idle_streams", server=sname, c=10)
            if sname == "P":
                after = self.wrk_run(
                    server, "/mcp", jsonrpc_call(), MARKER, 10, self.opts.p99_duration
                )
                self.record(after, rep=rep, scenario="idle_after", server=sname, c=10)

    def flood(self, rep: int) -> None:
        """Bad keys from 10,000 client IPs through a trusted proxy; a valid client's p99."""
        server = self.servers["Pflood"]
        dur = self.opts.p99_duration
        before = self.wrk_run(server, "/mcp", jsonrpc_call(), MARKER, 10, dur)
        self.record(before, rep=rep, scenario="flood_unloaded", server="Pflood", c=10)
        rss0 = server.status_kb("VmRSS")
        conns = self.opts.flood_conns
        delay = (1000.0 * conns / self.opts.flood_rate) if self.opts.flood_rate else None
        fout = self.workdir / f"flood-{len(self.runs)}.json"
        cmd, env = self.wrk_cmd(
            server,
            "/mcp",
            jsonrpc_call(),
            "",
            conns,
            dur + 2,
            fout,
            expect=401,
            xff=self.opts.flood_ips,
            delay_ms=delay,
            key=self.bad_key,
            xff_offset=(rep - 1) * self.opts.flood_ips // self.opts.reps,
        )
        flooder = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL)
        try:
            time.sleep(1.0)  # the flood is under way before the valid client starts
            during = self.wrk_run(server, "/mcp", jsonrpc_call(), MARKER, 10, dur)
        finally:
            flooder.wait(timeout=dur + 30)
        flood = json.loads(fout.read_text())
        stats = self.product_stats("Pflood")
        during.update(
            {
                "flood_rps": round(flood["requests"] / (flood["duration_us"] / 1e6), 1),
                "flood_statuses": flood.get("statuses"),
                "flood_ips": self.opts.flood_ips,
                "offered_flood_rps": self.opts.flood_rate or None,
                "limiter_entries": stats.get("limiter_entries"),
                "limiter_cap": stats.get("limiter_cap"),
                "limiter_kb": round(stats.get("limiter_bytes", 0) / 1024, 1),
                "limiter_blocked": stats.get("limiter_blocked"),
                "rss_before_flood_mb": round(rss0 / 1024, 1),
            }
        )
        self.record(during, rep=rep, scenario="flood_loaded", server="Pflood", c=10)

    # -- extra checks (full bench only) ---------------------------------------------------

    def profile(self) -> None:
        py_spy = ensure_py_spy()
        if not py_spy:
            self.extra["profile"] = "skipped: py-spy unavailable"
            return
        from profile_summary import summarise_collapsed

        secs = self.opts.profile_seconds
        for sname in ("P", "A", "Pflood"):
            server = self.servers[sname]
            out = self.workdir / f"profile-{sname}.txt"
            # --gil: only the thread holding the GIL is sampled, i.e. Python actually running on
            # the server's core; threads blocked in recv() (waiting for Gitea) are left out.
            spy = subprocess.Popen(
                [
                    *(self.pin_load or []),
                    py_spy,
                    "record",
                    "--pid",
                    str(server.pid),
                    "--rate",
                    "250",
                    "--duration",
                    str(secs + 1),
                    "--format",
                    "raw",
                    "--threads",
                    "--gil",
                    "--output",
                    str(out),
                    "--nonblocking",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            time.sleep(0.5)
            if sname == "Pflood":  # the bad-key path alone: what one refused request costs
                run = self.wrk_run(
                    server,
                    "/mcp",
                    jsonrpc_call(),
                    "",
                    50,
                    secs,
                    expect=401,
                    xff=self.opts.flood_ips,
                    key=self.bad_key,
                )
            else:
                run = self.wrk_run(server, "/mcp", jsonrpc_call(), MARKER, 50, secs)
            _, err = spy.communicate(timeout=60)
            if spy.returncode != 0 or not out.exists():
                self.extra.setdefault("profile_errors", {})[sname] = err.decode()[-500:]
                continue
            summary = summarise_collapsed(out.read_text())
            summary["rps_while_profiled"] = run["rps"]
            self.extra.setdefault("profile", {})[sname] = summary
            shutil.copy(out, self.results_dir / f"{self.stamp}-profile-{sname}.collapsed.txt")

    def loop_io_check(self) -> None:
        """Which syscalls the product's event-loop thread makes under load (strace, main tid)."""
        if not shutil.which("strace"):
            self.extra["loop_io"] = "skipped: strace unavailable"
            return
        from loop_io import classify_trace

        server = self.servers["P"]
        out = self.workdir / "strace-P.txt"
        tracer = subprocess.Popen(
            [
                *(self.pin_load or []),
                "strace",
                "-q",
                "-p",
                str(server.pid),
                "-o",
                str(out),
                "-e",
                "trace=write,writev,sendto,sendmsg,send,pwrite64,fsync,fdatasync,openat,connect,"
                "recvfrom,recvmsg,read",
            ],
            stderr=subprocess.DEVNULL,
        )
        time.sleep(0.5)
        fds = classify_fds(server.pid, self.gitea.port, server.port)
        out_wrk = self.workdir / "wrk-strace.json"
        cmd, env = self.wrk_cmd(server, "/mcp", jsonrpc_call(), MARKER, 10, 2, out_wrk)
        load = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL)
        time.sleep(0.7)  # wrk's connections are open: learn their fds
        fds.update(classify_fds(server.pid, self.gitea.port, server.port))
        load.wait(timeout=30)
        tracer.send_signal(signal.SIGINT)
        tracer.wait(timeout=10)
        self.extra["loop_io"] = classify_trace(out.read_text(errors="replace"), fds)

    # -- results ------------------------------------------------------------------------

    @property
    def results_dir(self) -> Path:
        path = Path(self.opts.results or BENCH / "results")
        path.mkdir(parents=True, exist_ok=True)
        return path


def classify_fds(pid: int, gitea_port: int, server_port: int) -> dict:
    """fd -> 'client socket' | 'gitea socket' | 'file:<path>' | 'pipe' | ... for a process."""
    inodes = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            local, remote, inode = parts[1], parts[2], parts[9]
            lport, rport = int(local.split(":")[1], 16), int(remote.split(":")[1], 16)
            if rport == gitea_port:
                inodes[inode] = "gitea socket"
            elif lport == server_port:
                inodes[inode] = "client socket"
            else:
                inodes[inode] = "other socket"
    try:
        for line in Path("/proc/net/unix").read_text().splitlines()[1:]:
            parts = line.split()
            if len(parts) >= 7:
                inodes.setdefault(parts[6], "unix socket (the loop's wake-up socketpair)")
    except OSError:
        pass
    kinds = {}
    fd_dir = Path(f"/proc/{pid}/fd")
    for fd in fd_dir.iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            kinds[int(fd.name)] = inodes.get(target[8:-1], "socket")
        elif target.startswith("pipe:"):
            kinds[int(fd.name)] = "pipe"
        elif target.startswith("anon_inode:"):
            kinds[int(fd.name)] = target
        else:
            kinds[int(fd.name)] = "file:" + target
    return kinds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="the fast CI guard")
    parser.add_argument("--duration", type=int, help="seconds per measured run (whole seconds)")
    parser.add_argument("--warmup", type=int, help="seconds of warm-up per server/scenario")
    parser.add_argument(
        "--p99-duration",
        type=int,
        default=5,
        help="seconds per run where a p99 is compared (idle streams, flood)",
    )
    parser.add_argument("--reps", type=int, help="interleaved repetitions (>= 3)")
    parser.add_argument("--concurrency", type=lambda s: [int(x) for x in s.split(",")])
    parser.add_argument(
        "--legacy-concurrency", type=lambda s: [int(x) for x in s.split(",")], default=[10, 50]
    )
    parser.add_argument("--idle-streams", type=int, default=1000)
    parser.add_argument("--flood-ips", type=int, default=10_000)
    parser.add_argument(
        "--flood-rate",
        type=float,
        default=1000.0,
        help="offered bad-key requests/s (0: as fast as possible)",
    )
    parser.add_argument("--flood-conns", type=int, default=20)
    parser.add_argument(
        "--limiter-cap",
        type=int,
        default=2000,
        help="AUTH_TRACKED_IPS for the flood instance (below --flood-ips)",
    )
    parser.add_argument("--profile-seconds", type=int, default=6)
    parser.add_argument(
        "--scenarios",
        type=lambda s: [x for x in s.split(",") if x],
        help="only these matrix scenarios (call_json,call_sse,call_rest,tools_list,audit,"
        "call_oauth)",
    )
    parser.add_argument(
        "--extras",
        type=lambda s: [x for x in s.split(",") if x],
        default=["legacy", "idle", "flood", "workers", "profile", "strace"],
        help="which of legacy,idle,flood,workers,profile,strace to run (default all; '' for none)",
    )
    parser.add_argument("--results", help="results folder (default bench/results)")
    parser.add_argument("--workdir", help="scratch folder for logs (default /tmp/aegis-bench-*)")
    opts = parser.parse_args(argv)
    if opts.smoke:
        opts.duration = opts.duration or 1
        opts.warmup = 1 if opts.warmup is None else opts.warmup
        opts.reps = opts.reps or 3
        opts.concurrency = opts.concurrency or [1, 10]
    else:
        opts.duration = opts.duration or 3
        opts.warmup = 1 if opts.warmup is None else opts.warmup
        opts.reps = opts.reps or 3
        opts.concurrency = opts.concurrency or [1, 10, 50]

    sys.path.insert(0, str(BENCH))
    from report import write_report

    bench = Bench(opts)
    try:
        bench.start_all()
        bench.warm_up()
        bench.matrix()
        if not opts.smoke:
            if "profile" in opts.extras:
                bench.profile()
            if "strace" in opts.extras:
                bench.loop_io_check()
    finally:
        bench.stop_all()
    bench.extra["elapsed_s"] = round(time.monotonic() - bench.started, 1)
    bench.extra["pinning"] = {
        "server": bench.pin_server,
        "load": bench.pin_load,
        "gitea": bench.pin_gitea,
    }
    return write_report(bench)


if __name__ == "__main__":
    sys.exit(main())
