#!/usr/bin/python3
"""The service benchmark: loss_server against a Python grpcio + PyTorch server.

Runs bench_service (the C++ closed-loop load generator) with the same
scenarios against build/server/loss_server and bench/peer/peer_server.py,
round by round, alternating the two servers so that both see the same
machine; prints each scenario's figures for both, our advantage, and the
memory figures of loss_server (and of the peer, for comparison), then checks
the targets of the service (docs/PERFORMANCE.md, "Service").

  ./dev bench_service              # builds, then runs this with its defaults
  bench/bench_service.py --rounds 5 --seconds 3 --json out.json
  bench/bench_service.py --smoke   # a few calls of everything (CI)

Timings are only meaningful on a quiet machine: other work on the same cores
disturbs them (the server CPU per request, read from /proc, much less).
"""
import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCENARIOS = ["health", "mse16", "ce64x10", "mse1m", "ce4096"]


def start(cmd, log):
    """Starts a server printing 'listening on HOST:PORT'; returns (process, port)."""
    out = open(log, "w")
    p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    deadline = time.time() + 120
    while time.time() < deadline:
        if p.poll() is not None:
            sys.exit(f"{cmd[0]} exited at start: {open(log).read()[-2000:]}")
        m = re.search(r"listening on [0-9.]+:(\d+)", open(log).read())
        if m:
            return p, int(m.group(1))
        time.sleep(0.05)
    p.kill()
    sys.exit(f"{cmd[0]} did not start: {open(log).read()[-2000:]}")


def status_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def mib(kib):
    return kib / 1024.0


def bench(args, port, pid, scenarios, extra):
    """One bench_service run; returns its JSON."""
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        cmd = [args.bench, "--target", f"127.0.0.1:{port}", "--server_pid", str(pid),
               "--scenarios", ",".join(scenarios), "--json", out.name] + extra
        r = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True)
        if r.returncode != 0:
            sys.exit(f"bench_service failed ({r.returncode}):\n{r.stdout}")
        return json.load(open(out.name))


def median(xs):
    return statistics.median(xs) if xs else 0.0


def memory(args, cmd, log, calls, growth_calls):
    """A fresh server's idle RSS, its peak serving mse1m at concurrency 4, and its growth over
    more calls."""
    p, port = start(cmd, log)
    try:
        return measure_memory(args, port, p.pid, calls, growth_calls)
    finally:
        stop([p])


def stop(processes):
    for p in processes:
        p.send_signal(signal.SIGTERM)
    for p in processes:
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()


def measure_memory(args, port, pid, calls, growth_calls):
    # Idle: started and answering (one health check), nothing else.
    bench(args, port, pid, ["health"], ["--calls", "1", "--repeat", "1", "--concurrency", "1"])
    idle = status_kib(pid, "VmRSS")
    load = ["--concurrency", "4", "--connections", str(args.connections), "--repeat", "1"]
    bench(args, port, pid, ["mse1m"], load + ["--calls", str(calls)])
    peak = status_kib(pid, "VmHWM")
    after_warm = status_kib(pid, "VmRSS")
    result = {"idle_rss_mib": mib(idle), "peak_rss_mib": mib(peak),
              "rss_after_warmup_mib": mib(after_warm), "warmup_calls": calls}
    if growth_calls > 0:
        bench(args, port, pid, ["mse1m"], load + ["--calls", str(growth_calls)])
        result["peak_rss_after_growth_mib"] = mib(status_kib(pid, "VmHWM"))
        result["rss_after_growth_mib"] = mib(status_kib(pid, "VmRSS"))
        result["growth_calls"] = growth_calls
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build_dir", default=os.path.join(ROOT, "build"))
    ap.add_argument("--rounds", type=int, default=3, help="rounds per server, alternating")
    ap.add_argument("--seconds", type=float, default=3.0, help="per scenario and round")
    ap.add_argument("--warmup_seconds", type=float, default=0.5)
    ap.add_argument("--connections", type=int, default=2)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    ap.add_argument("--memory_calls", type=int, default=10000,
                    help="mse1m calls at concurrency 4 to warm loss_server up (its allocator "
                         "settles over a few thousand); the peer gets at most 1000")
    ap.add_argument("--growth_calls", type=int, default=10000,
                    help="further mse1m calls over which loss_server's RSS must not grow")
    ap.add_argument("--no_peer", action="store_true", help="loss_server only")
    ap.add_argument("--smoke", action="store_true",
                    help="a few calls of everything: checks that it all works, not speed")
    ap.add_argument("--json", help="write every figure here")
    args = ap.parse_args()
    if args.smoke:
        args.rounds, args.seconds, args.warmup_seconds = 1, 0.2, 0.05
        args.memory_calls, args.growth_calls = 20, 20
    args.bench = os.path.join(args.build_dir, "bench_service")
    server_bin = os.path.join(args.build_dir, "server", "loss_server")
    for f in (args.bench, server_bin):
        if not os.path.exists(f):
            sys.exit(f"{f} is missing: run ./dev build first (or ./dev bench_service)")
    scenarios = args.scenarios.split(",")
    if scenarios[0] != "health":
        scenarios = ["health"] + [s for s in scenarios if s != "health"]

    tmp = tempfile.mkdtemp(prefix="bench_service_")
    # (At its default log level loss_server says its port and is quiet under load.)
    commands = {"loss_server": [server_bin, "--address", "127.0.0.1:0"]}
    if not args.no_peer:
        commands["peer"] = [os.path.join(ROOT, "bench", "peer", "peer_server.py"), "--address",
                            "127.0.0.1:0"]
    logs = {name: os.path.join(tmp, f"{name}.log") for name in commands}
    servers = {name: start(cmd, logs[name]) for name, cmd in commands.items()}
    try:
        load = ["--connections", str(args.connections), "--concurrency", str(args.concurrency),
                "--seconds", str(args.seconds), "--warmup_seconds", str(args.warmup_seconds),
                "--repeat", "1"]
        runs = {name: [] for name in servers}
        for r in range(args.rounds):
            for name, (p, port) in servers.items():
                print(f"round {r + 1}/{args.rounds}: {name}", file=sys.stderr, flush=True)
                runs[name].append(bench(args, port, p.pid, scenarios, load)["scenarios"])
    finally:
        stop([p for p, _ in servers.values()])
    mem = {}
    for name, cmd in commands.items():
        print(f"memory: {name}", file=sys.stderr, flush=True)
        ours_server = name == "loss_server"
        mem[name] = memory(args, cmd, logs[name],
                           args.memory_calls if ours_server else min(args.memory_calls, 1000),
                           args.growth_calls if ours_server else 0)

    # Each scenario's median over the rounds, per server.
    summary = {}
    for name, rounds in runs.items():
        summary[name] = {}
        for s in scenarios:
            rs = [rd[s] for rd in rounds]
            summary[name][s] = {
                "rps": median([x["median_rps"] for x in rs]),
                "best_rps": max(x["best_rps"] for x in rs),
                "p50_us": median([x["p50_us"] for x in rs]),
                "p99_us": median([x["p99_us"] for x in rs]),
                "p999_us": median([x["p999_us"] for x in rs]),
                "gbps": median([x["gbps"] for x in rs]),
                "ratio_to_floor": median([x["ratio_to_floor"] for x in rs]),
                "server_cpu_us": median([x["server_cpu_us_per_call"] for x in rs]),
                "description": rs[0]["description"],
            }
    ours = summary["loss_server"]
    peer = summary.get("peer")
    print(f"\n# bench/bench_service.py: {args.rounds} rounds x {args.seconds} s per scenario, "
          f"{args.connections} connections, {args.concurrency} calls outstanding; medians over "
          f"the rounds (servers alternating)")
    head = (f"{'scenario':9} {'req/s':>9} {'p50 us':>8} {'p99 us':>8} {'p999 us':>8} {'GB/s':>6} "
            f"{'/floor':>6} {'cpu us':>8}")
    if peer:
        head += f" | {'peer req/s':>10} {'p50 us':>8} {'p99 us':>8} {'cpu us':>8} | {'advantage':>9}"
    print(head)
    for s in scenarios:
        o = ours[s]
        line = (f"{s:9} {o['rps']:9.0f} {o['p50_us']:8.0f} {o['p99_us']:8.0f} {o['p999_us']:8.0f} "
                f"{o['gbps']:6.2f} {o['ratio_to_floor']:6.3f} {o['server_cpu_us']:8.1f}")
        if peer:
            p = peer[s]
            adv = o["rps"] / p["rps"] if p["rps"] else 0.0
            line += (f" | {p['rps']:10.0f} {p['p50_us']:8.0f} {p['p99_us']:8.0f} "
                     f"{p['server_cpu_us']:8.1f} | {adv:8.2f}x")
        print(line)
    print("  (cpu us: the server's CPU time per request; GB/s: request + response bytes)")

    in_flight_mib = 4 * ours_request_mib()
    print("\n# memory (VmRSS / VmHWM of the server process)")
    def final_peak(m):
        return m.get("peak_rss_after_growth_mib", m["peak_rss_mib"])
    for name, m in mem.items():
        above = final_peak(m) - m["idle_rss_mib"]
        calls = m["warmup_calls"] + m.get("growth_calls", 0)
        line = (f"{name:12} idle {m['idle_rss_mib']:6.1f} MiB; serving mse1m at concurrency 4 "
                f"({calls} calls): peak {final_peak(m):6.1f} MiB, {above:6.1f} above idle = "
                f"{above / in_flight_mib:4.2f}x the {in_flight_mib:.1f} MiB in flight")
        if "rss_after_growth_mib" in m:
            line += (f"; after the first {m['warmup_calls']}, over {m['growth_calls']} more: RSS "
                     f"{m['rss_after_warmup_mib']:.1f} -> {m['rss_after_growth_mib']:.1f} MiB, peak "
                     f"{m['peak_rss_mib']:.1f} -> {m['peak_rss_after_growth_mib']:.1f} MiB")
        print(line)

    print("\n# targets (side by side in this run)" +
          (" -- a smoke run: these are not measurements" if args.smoke else ""))
    checks = []
    def target(what, value, ok):
        checks.append(ok)
        print(f"  [{'met' if ok else 'MISSED'}] {what}: {value}")
    if "mse16" in ours:
        target("MSE of 16 floats >= 90% of the health floor's requests/s",
               f"{ours['mse16']['ratio_to_floor'] * 100:.0f}%", ours["mse16"]["ratio_to_floor"] >= 0.9)
    def adv(s):
        return ours[s]["rps"] / peer[s]["rps"] if peer[s]["rps"] else 0.0
    if peer and "mse16" in ours:
        a = adv("mse16")
        target("MSE of 16 floats >= 15x the Python server", f"{a:.1f}x", a >= 15)
    if "mse1m" in ours:
        if peer:
            a = adv("mse1m")
            target("MSE of 1M floats >= 6x the Python server's requests/s", f"{a:.1f}x", a >= 6)
        target("MSE of 1M floats >= 3 GB/s of payload", f"{ours['mse1m']['gbps']:.2f} GB/s",
               ours["mse1m"]["gbps"] >= 3)
    if peer and "ce4096" in ours:
        a = adv("ce4096")
        target("cross_entropy [4096, 1000] with its gradient >= 4x the Python server", f"{a:.1f}x",
               a >= 4)
    m = mem["loss_server"]
    target("idle RSS <= 30 MiB", f"{m['idle_rss_mib']:.1f} MiB", m["idle_rss_mib"] <= 30)
    above = final_peak(m) - m["idle_rss_mib"]
    target("serving 1M-float MSE at concurrency 4, RSS above idle <= 3x the payloads in flight",
           f"{above / in_flight_mib:.2f}x", above <= 3 * in_flight_mib)
    if "rss_after_growth_mib" in m:
        growth = m["rss_after_growth_mib"] - m["rss_after_warmup_mib"]
        peak_growth = m["peak_rss_after_growth_mib"] - m["peak_rss_mib"]
        target(f"no growth over {m['growth_calls']} requests",
               f"RSS {growth:+.1f} MiB, peak {peak_growth:+.1f} MiB",
               growth <= 2.0 and peak_growth <= 2.0)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "summary": summary, "memory": mem, "rounds": runs}, f,
                      indent=2)
    print("\nFigures must be re-taken on a quiet machine: other work on the same cores "
          "disturbs them.")
    return 0


def ours_request_mib():
    # The mse1m request: two float32 tensors of 2^20 elements and their envelope.
    return 2 * 4 * (1 << 20) / (1 << 20)


if __name__ == "__main__":
    sys.exit(main())
