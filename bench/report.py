"""Turn the runs of one bench into medians, ratios, targets, a Markdown report and JSON lines."""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import sys
from collections import defaultdict

LABELS = {
    "P": "product",
    "A": "(a) bare Tornado + requests-futures",
    "B": "(b) MCP SDK (JSON replies)",
    "Bs": "(b) MCP SDK (SSE replies)",
    "Pnofile": "product, audit file off",
    "Pnoaudit": "product, audit events stubbed",
    "Pflood": "product behind trusted proxy",
    "At": "ref: bare Tornado + Tornado's HTTP client",
    "Po": "product with OAuth on, OAuth token",
    "Pk": "product with OAuth on, API key",
    "W1": "product, --workers 1 (STATE_URL)",
    "W2": "product, --workers 2 (STATE_URL)",
}
SCENARIO_TITLES = {
    "call_json": "get_file_contents, Streamable HTTP, JSON reply",
    "call_sse": "get_file_contents, Streamable HTTP, SSE reply (progressToken)",
    "call_rest": "get_file_contents, REST POST /mcp/tool/call",
    "call_legacy_sse": "get_file_contents, legacy HTTP+SSE (Python loader)",
    "tools_list": "tools/list, Streamable HTTP",
    "audit": "get_file_contents JSON, audit variants",
    "call_oauth": "get_file_contents JSON, one product with OAuth on: OAuth bearer vs API key",
    "workers": "get_file_contents JSON, --workers 1 vs 2 on a shared STATE_URL (unpinned)",
}
B_FOR = {"call_json": "B", "call_sse": "Bs", "tools_list": "B"}
A_FOR = {
    "call_json": ("call_json", "A"),
    "call_sse": ("call_sse", "A"),
    "call_rest": ("call_rest", "A"),
    "tools_list": ("tools_list", "A"),
    "call_legacy_sse": ("call_json", "A"),
}


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(value, digits=1):
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}"


def per_rep(runs, scenario, server, c):
    return {
        r["rep"]: r
        for r in runs
        if r.get("scenario") == scenario and r.get("server") == server and r.get("c") == c
    }


def ratio_median(num: dict, den: dict, key: str):
    """Median over repetitions of num[rep][key] / den[rep][key] (both measured in that rep)."""
    values = [num[r][key] / den[r][key] for r in num if r in den and den[r].get(key)]
    return med(values)


def add_per_cpu(runs: list[dict]) -> None:
    """req/s per server CPU-second, per run: what one core buys, which moves far less than wall
    req/s on a shared machine (another tenant slows the server and its CPU use alike)."""
    for r in runs:
        cpu = r.get("server_cpu_pct")
        if r.get("rps") is not None and cpu:
            r["rps_per_cpu"] = r["rps"] / (cpu / 100)


def summarise(runs: list[dict]) -> list[dict]:
    add_per_cpu(runs)
    points = defaultdict(list)
    for r in runs:
        if r.get("scenario") in SCENARIO_TITLES:
            points[(r["scenario"], r["server"], r["c"])].append(r)
    rows = []
    for (scenario, server, c), rs in sorted(
        points.items(), key=lambda kv: (list(SCENARIO_TITLES).index(kv[0][0]), kv[0][2], kv[0][1])
    ):
        row = {
            "type": "summary",
            "scenario": scenario,
            "server": server,
            "c": c,
            "reps": len(rs),
            "errors": sum(r["errors"] for r in rs),
        }
        row["max_steal_pct"] = max((r.get("steal_pct") or 0 for r in rs), default=0)
        for key in (
            "rps",
            "rps_per_cpu",
            "p50_ms",
            "p99_ms",
            "server_cpu_pct",
            "server_sys_pct",
            "server_peak_rss_mb",
            "upstream_per_req",
            "bytes_per_req",
            "gitea_cpu_pct",
            "loader_cpu_pct",
        ):
            row[key] = med(r.get(key) for r in rs)
        mine = per_rep(runs, scenario, server, c)
        other = {("call_oauth", "Po"): "Pk", ("workers", "W2"): "W1"}.get((scenario, server))
        if other is not None:
            ref = per_rep(runs, scenario, other, c)
            row[f"rps_vs_{other}"] = ratio_median(mine, ref, "rps")
            row[f"cpu_vs_{other}"] = ratio_median(mine, ref, "rps_per_cpu")
            row[f"p99_vs_{other}"] = ratio_median(mine, ref, "p99_ms")
        if server in ("P", "Pnofile", "Pnoaudit", "At") or scenario == "call_legacy_sse":
            a_scen, a_srv = A_FOR.get(scenario, ("call_json", "A"))
            a = per_rep(runs, a_scen, a_srv, c)
            row["rps_vs_a"] = ratio_median(mine, a, "rps")
            row["cpu_vs_a"] = ratio_median(mine, a, "rps_per_cpu")
            row["p99_vs_a"] = ratio_median(mine, a, "p99_ms")
            if scenario in B_FOR:
                b = per_rep(runs, scenario, B_FOR[scenario], c)
                row["rps_vs_b"] = ratio_median(mine, b, "rps")
                row["cpu_vs_b"] = ratio_median(mine, b, "rps_per_cpu")
                row["p99_vs_b"] = ratio_median(mine, b, "p99_ms")
        rows.append(row)
    return rows


def idle_p99_ratio(runs: list[dict]):
    before = {r["rep"]: r for r in runs if r.get("scenario") == "idle_before"}
    after = {r["rep"]: r for r in runs if r.get("scenario") == "idle_after"}
    ratios = []
    for r in runs:
        if r.get("scenario") == "idle_streams" and r["server"] == "P" and r["rep"] in before:
            refs = [x["p99_ms"] for x in (before.get(r["rep"]), after.get(r["rep"])) if x]
            if refs and r.get("during_p99_ms"):
                ratios.append(r["during_p99_ms"] / statistics.fmean(refs))
    return med(ratios)


def targets(runs: list[dict], smoke: bool) -> list[dict]:
    out = []

    def add(name, value, limit, ok, note=""):
        out.append(
            {
                "type": "target",
                "target": name,
                "value": value,
                "limit": limit,
                "met": None if value is None else bool(ok),
                "note": note,
            }
        )

    if smoke:
        for c in (1, 10):
            p, a = per_rep(runs, "call_json", "P", c), per_rep(runs, "call_json", "A", c)
            r = ratio_median(p, a, "rps")
            add(
                f"smoke: product req/s >= 1/3 of (a) at c={c}",
                r,
                1 / 3,
                r is not None and r >= 1 / 3,
            )
            errors = sum(x["errors"] for x in p.values())
            add(f"smoke: product errors at c={c}", errors, 0, errors == 0)
        return out

    for c in (10, 50):
        p = per_rep(runs, "call_json", "P", c)
        a, b = per_rep(runs, "call_json", "A", c), per_rep(runs, "call_json", "B", c)
        r = ratio_median(p, a, "rps")
        add(
            f"tools/call req/s at c={c} >= {TARGETS['vs_a']}x (a)",
            r,
            TARGETS["vs_a"],
            r is not None and r >= TARGETS["vs_a"],
        )
        r = ratio_median(p, b, "rps")
        add(
            f"tools/call req/s at c={c} >= {TARGETS['vs_b']}x (b)",
            r,
            TARGETS["vs_b"],
            r is not None and r >= TARGETS["vs_b"],
        )
    p, a = per_rep(runs, "call_json", "P", 10), per_rep(runs, "call_json", "A", 10)
    r = ratio_median(p, a, "p99_ms")
    add(
        f"p99 at c=10 <= {TARGETS['p99_vs_a']}x (a)",
        r,
        TARGETS["p99_vs_a"],
        r is not None and r <= TARGETS["p99_vs_a"],
    )

    idle = [r for r in runs if r.get("scenario") == "idle_streams" and r["server"] == "P"]
    # The first opening is the cost: later ones reuse memory the allocator kept, so the
    # largest delta (normally repetition 1) is the one judged.
    delta = max((r["rss_delta_mb"] for r in idle), default=None)
    add(
        f"{idle[0]['streams'] if idle else 1000} idle SSE streams add <= {TARGETS['idle_mb']} MB RSS",
        delta,
        TARGETS["idle_mb"],
        delta is not None and delta <= TARGETS["idle_mb"],
        "largest delta over the repetitions (the first opening)",
    )
    v = idle_p99_ratio(runs)
    add(
        f"p99 (c=10) with idle streams open <= {TARGETS['idle_p99']}x without",
        v,
        TARGETS["idle_p99"],
        v is not None and v <= TARGETS["idle_p99"],
        "during / mean of the runs just before opening and just after closing",
    )

    loaded = {r["rep"]: r for r in runs if r.get("scenario") == "flood_loaded"}
    unloaded = {r["rep"]: r for r in runs if r.get("scenario") == "flood_unloaded"}
    v = med(loaded[k]["p99_ms"] / unloaded[k]["p99_ms"] for k in loaded if k in unloaded)
    add(
        f"valid client's p99 under the bad-key flood <= {TARGETS['flood_p99']}x unloaded",
        v,
        TARGETS["flood_p99"],
        v is not None and v <= TARGETS["flood_p99"],
        f"flood ~{fmt(med(r['flood_rps'] for r in loaded.values()), 0)} req/s from "
        f"{next(iter(loaded.values()))['flood_ips'] if loaded else '?'} IPs",
    )
    ent = max((r["limiter_entries"] or 0 for r in loaded.values()), default=None)
    cap = next(iter(loaded.values()))["limiter_cap"] if loaded else None
    add(
        "limiter entries stay within its cap (AUTH_TRACKED_IPS)",
        ent,
        cap,
        ent is not None and cap is not None and ent <= cap,
        f"{fmt(max((r['limiter_kb'] for r in loaded.values()), default=None))} KB at most",
    )

    for c in (10, 50):
        o, k = per_rep(runs, "call_oauth", "Po", c), per_rep(runs, "call_oauth", "Pk", c)
        r = ratio_median(o, k, "rps_per_cpu")
        add(
            f"an OAuth bearer costs no more than an API key: req/s per CPU-s >= "
            f"{TARGETS['oauth_vs_key']}x the key's at c={c}",
            r,
            TARGETS["oauth_vs_key"],
            r is not None and r >= TARGETS["oauth_vs_key"],
            f"same process; wall req/s {fmt(ratio_median(o, k, 'rps'), 2)}x, "
            f"p99 {fmt(ratio_median(o, k, 'p99_ms'), 2)}x",
        )
    for c in (10, 50):
        w2, w1 = per_rep(runs, "workers", "W2", c), per_rep(runs, "workers", "W1", c)
        r = ratio_median(w2, w1, "rps")
        add(
            f"--workers 2 req/s >= {TARGETS['workers']}x --workers 1 at c={c}",
            r,
            TARGETS["workers"],
            r is not None and r >= TARGETS["workers"],
            f"{os.cpu_count()} cores shared with the fake Gitea and wrk; "
            f"CPU {fmt(med(x['server_cpu_pct'] for x in w2.values()), 0)}% vs "
            f"{fmt(med(x['server_cpu_pct'] for x in w1.values()), 0)}%",
        )
    for c in (10, 50):
        p, nf = per_rep(runs, "call_json", "P", c), per_rep(runs, "audit", "Pnofile", c)
        r = ratio_median(p, nf, "rps")
        cost = None if r is None else 1 - r
        add(
            f"audit file costs <= {int(TARGETS['audit'] * 100)}% req/s at c={c}",
            cost,
            TARGETS["audit"],
            cost is not None and cost <= TARGETS["audit"],
            "product (audit file + stdout to a file) vs product (no audit file, stdout to /dev/null)",
        )
        na = per_rep(runs, "audit", "Pnoaudit", c)
        r = ratio_median(p, na, "rps")
        cost = None if r is None else 1 - r
        add(
            f"all audit events (emitting + file) cost <= {int(TARGETS['audit'] * 100)}% req/s at c={c}",
            cost,
            TARGETS["audit"],
            cost is not None and cost <= TARGETS["audit"],
            "product vs product with audit events stubbed out (bench-only hook)",
        )
    return out


STALL_MS = 2000.0
TARGETS = {
    "vs_a": 0.8,
    "vs_b": 2.0,
    "p99_vs_a": 1.5,
    "idle_mb": 30.0,
    "idle_p99": 1.2,
    "flood_p99": 2.0,
    "audit": 0.15,
    "oauth_vs_key": 0.9,
    "workers": 1.6,
}


def markdown(bench, rows, tgs) -> str:
    opts = bench.opts
    lines = [f"# AegisGitea MCP benchmark, {bench.stamp}", ""]
    lines.append(
        f"Machine: {os.cpu_count()} cores ({platform.machine()}), Python "
        f"{platform.python_version()}, wrk {bench.wrk}. Pinning: servers `{bench.pin_server}`, "
        f"load generators `{bench.pin_load}`, fake Gitea `{bench.pin_gitea}`. Tool: "
        f"**{bench.extra.get('tool_source')}**. {opts.reps} interleaved repetitions of "
        f"{opts.duration}s per point after a {opts.warmup}s warm-up; medians; ratios are medians "
        f"of per-repetition ratios. Elapsed {bench.extra.get('elapsed_s')}s."
    )
    lines += [
        "",
        "## Throughput and latency",
        "",
        "| scenario | c | server | req/s | p50 ms | p99 ms | errors | server CPU % | "
        "sys % | peak RSS MB | Gitea calls/req | bytes/reply | req/s vs (a) | req/s vs (b) | "
        "p99 vs (a) | req/s per CPU-s | per CPU vs (a) | per CPU vs (b) |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['scenario']} | {r['c']} | {LABELS.get(r['server'], r['server'])} | "
            f"{fmt(r['rps'])} | {fmt(r['p50_ms'], 2)} | {fmt(r['p99_ms'], 2)} | {r['errors']} | "
            f"{fmt(r['server_cpu_pct'], 0)} | {fmt(r.get('server_sys_pct'), 0)} | "
            f"{fmt(r['server_peak_rss_mb'])} | "
            f"{fmt(r['upstream_per_req'], 2)} | {fmt(r['bytes_per_req'], 0)} | "
            f"{fmt(r.get('rps_vs_a'), 2)} | {fmt(r.get('rps_vs_b'), 2)} | "
            f"{fmt(r.get('p99_vs_a'), 2)} | {fmt(r.get('rps_per_cpu'))} | "
            f"{fmt(r.get('cpu_vs_a'), 2)} | {fmt(r.get('cpu_vs_b'), 2)} |"
        )
    lines += [
        "",
        "Scenarios: "
        + "; ".join(f"`{k}` = {v}" for k, v in SCENARIO_TITLES.items())
        + ". `call_legacy_sse` ratios are against (a)'s `call_json` at the same c.",
        "",
    ]
    stalled = [
        r
        for r in bench.runs
        if "rps" in r and (r.get("requests", 1) == 0 or (r.get("max_ms") or 0) > STALL_MS)
    ]
    if stalled:
        lines += [
            f"**Stalls: {len(stalled)} run(s) had a request wait over {STALL_MS / 1000:.0f} s "
            "or got no reply at all** (steal = CPU the hypervisor took meanwhile):",
            "",
        ]
        for r in stalled:
            lines.append(
                f"- rep {r.get('rep')} {r.get('scenario')} {LABELS.get(r.get('server'), r.get('server'))} "
                f"c={r.get('c')}: {r.get('requests')} requests, max {fmt(r.get('max_ms'), 0)} ms, "
                f"steal {r.get('steal_pct')}%"
            )
        lines.append("")
    lines += ["## Targets", "", "| target | measured | limit | met |", "|---|---:|---:|---|"]
    for t in tgs:
        met = {True: "yes", False: "**no**", None: "–"}[t["met"]]
        value = fmt(t["value"], 2) if isinstance(t["value"], float) else fmt(t["value"])
        limit = fmt(t["limit"], 2) if isinstance(t["limit"], float) else fmt(t["limit"])
        note = f" ({t['note']})" if t.get("note") else ""
        lines.append(f"| {t['target']}{note} | {value} | {limit} | {met} |")
    runs = bench.runs
    idle = [r for r in runs if r.get("scenario") == "idle_streams"]
    if idle:
        lines += [
            "",
            "## Idle event streams",
            "",
            "| rep | server | streams | RSS before MB | with streams MB | delta MB | KB/stream "
            "| after close MB | p99 before ms | p99 during ms | p99 after ms | req/s during |",
            "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        before = {r["rep"]: r for r in runs if r.get("scenario") == "idle_before"}
        after = {r["rep"]: r for r in runs if r.get("scenario") == "idle_after"}
        for r in idle:
            b = before.get(r["rep"], {}) if r["server"] == "P" else {}
            a = after.get(r["rep"], {}) if r["server"] == "P" else {}
            lines.append(
                f"| {r['rep']} | {LABELS.get(r['server'])} | {r['streams']} | "
                f"{fmt(r['rss_before_mb'])} | {fmt(r['rss_with_streams_mb'])} | "
                f"{fmt(r['rss_delta_mb'], 2)} | {fmt(r['kb_per_stream'])} | "
                f"{fmt(r['rss_after_close_mb'])} | {fmt(b.get('p99_ms'), 2)} | "
                f"{fmt(r.get('during_p99_ms'), 2)} | {fmt(a.get('p99_ms'), 2)} | "
                f"{fmt(r.get('during_rps'))} |"
            )
    flood = [r for r in runs if r.get("scenario") in ("flood_unloaded", "flood_loaded")]
    if flood:
        lines += [
            "",
            "## Bad-key flood through a trusted proxy",
            "",
            "| rep | valid client | req/s | p50 ms | p99 ms | errors | flood req/s | "
            "flood statuses | limiter entries / cap | limiter KB | blocked IPs | RSS MB |",
            "|---:|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|",
        ]
        for r in flood:
            loaded = r["scenario"] == "flood_loaded"
            lines.append(
                f"| {r['rep']} | {'during flood' if loaded else 'unloaded'} | {fmt(r['rps'])} | "
                f"{fmt(r['p50_ms'], 2)} | {fmt(r['p99_ms'], 2)} | {r['errors']} | "
                f"{fmt(r.get('flood_rps')) if loaded else ''} | "
                f"{json.dumps(r.get('flood_statuses')) if loaded else ''} | "
                f"{(str(r.get('limiter_entries')) + ' / ' + str(r.get('limiter_cap'))) if loaded else ''} | "
                f"{fmt(r.get('limiter_kb')) if loaded else ''} | "
                f"{r.get('limiter_blocked', '') if loaded else ''} | {fmt(r['server_rss_mb'])} |"
            )
    prof = bench.extra.get("profile")
    if isinstance(prof, dict):
        lines += [
            "",
            "## Profile (py-spy --gil, c=50: get_file_contents JSON; for the "
            "flood instance, bad-key requests only)",
            "",
        ]
        for name, summary in prof.items():
            lines += [
                f"**{LABELS.get(name, name)}** ({summary['samples']} samples, "
                f"{fmt(summary.get('rps_while_profiled'))} req/s while profiled). "
                "Each sample once, by thread and first area on its stack:",
                "",
                "| thread: area | % of samples |",
                "|---|---:|",
            ]
            for k, v in summary["partition_pct"].items():
                if v >= 0.5:
                    lines.append(f"| {k} | {v} |")
            lines += ["", "Largest self times:", "", "| function | % |", "|---|---:|"]
            for k, v in list(summary["top_self_pct"].items())[:10]:
                lines.append(f"| `{k}` | {v} |")
            lines.append("")
    elif prof:
        lines += ["", f"Profile: {prof}"]
    loop_io = bench.extra.get("loop_io")
    if isinstance(loop_io, dict):
        lines += [
            "",
            "## Event-loop thread I/O (strace of the main thread, c=10, 2 s)",
            "",
            f"Verdict: **{loop_io['verdict']}**.",
            "",
            "| syscall on | count |",
            "|---|---:|",
        ]
        for k, v in loop_io["syscalls"].items():
            lines.append(f"| {k} | {v} |")
    elif loop_io:
        lines += ["", f"Event-loop I/O check: {loop_io}"]
    lines.append("")
    return "\n".join(lines)


def write_report(bench) -> int:
    rows = summarise(bench.runs)
    tgs = targets(bench.runs, bench.smoke)
    results = bench.results_dir
    jsonl = results / f"{bench.stamp}.jsonl"
    md = results / f"{bench.stamp}.md"
    with open(jsonl, "w") as fh:
        for r in bench.runs:
            fh.write(json.dumps({"type": "run", **r}) + "\n")
        for r in rows + tgs:
            fh.write(json.dumps(r) + "\n")
        fh.write(json.dumps({"type": "extra", **{k: v for k, v in bench.extra.items()}}) + "\n")
    text = markdown(bench, rows, tgs)
    md.write_text(text)
    prefix = "latest-smoke" if bench.smoke else "latest"
    shutil.copy(jsonl, results / f"{prefix}.jsonl")
    shutil.copy(md, results / f"{prefix}.md")
    print(text)
    print(f"results: {md} and {jsonl}")
    if not bench.smoke:
        return 0
    failed = [t for t in tgs if t["met"] is False or t["met"] is None]
    if failed:
        for t in failed:
            if "errors" in t["target"]:
                print(
                    f"bench-smoke FAILED: the product answered {t['value']} tool calls with an "
                    "error or without the file (see the run's logs under "
                    f"{bench.workdir}).",
                    file=sys.stderr,
                )
            else:
                slower = (1 / t["value"]) if t["value"] else float("inf")
                print(
                    f"bench-smoke FAILED: {t['target']}: the product is {slower:.1f}x slower "
                    f"than the bare Tornado baseline (a), over the {3:.0f}x limit. A gross "
                    "regression in the request path; profile it (bench/README.md).",
                    file=sys.stderr,
                )
        return 1
    print(
        "bench-smoke passed: "
        + "; ".join(
            f"{t['target']}: {fmt(t['value'], 2) if isinstance(t['value'], float) else t['value']}"
            for t in tgs
        )
    )
    return 0
