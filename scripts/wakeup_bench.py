#!/usr/bin/env python3
"""The wakeup-tax matrix (issue 8): ringio's idle policies against Node's socket.io, driven by
the official client, same harness, interleaved rounds, medians of same-run ratios.

    scripts/wakeup_bench.py [--rounds 3] [--duration 10] [--max-other 0.15] \
        [--candidates 'park=RINGIO_IDLE=park' 'coalesce:100=RINGIO_IDLE=coalesce:100' ...]

Each round runs, for every candidate, `loadtest compare echo --servers ringio,node
--generators node` (2000 WebSocket connections, 200 echo+ack in flight), so every ringio figure
has a Node figure measured right next to it. A run where other processes used more than
--max-other cores (builds, other tests) is dropped and said so. Prints, per candidate, the
medians of: client CPU per ack (ringio / Node), whole-machine CPU per ack (ringio / Node),
acks/s (ringio / Node), p50 (ringio / Node), server CPU per ack, and the raw medians.
Needs target/release/{ringio,loadtest} (cargo build --release --workspace).
"""
import argparse, json, os, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOADTEST = os.path.join(ROOT, "target", "release", "loadtest")

DEFAULT = [
    "park=RINGIO_IDLE=park",
    "park+coop=RINGIO_IDLE=park RINGIO_URING_SETUP=coop",
    "park+defer=RINGIO_IDLE=park RINGIO_URING_SETUP=defer",
    "spin:50=RINGIO_IDLE=spin:50",
    "coalesce:100=RINGIO_IDLE=coalesce:100",
    "coalesce:200=RINGIO_IDLE=coalesce:200",
]


def run_one(env_extra, duration, extra_args):
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = f.name
    env = dict(os.environ)
    env.update(env_extra)
    cmd = [LOADTEST, "compare", "echo", "--servers", "ringio,node", "--generators", "node",
           "-d", str(duration), "--no-build", "--json", out] + extra_args
    p = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True)
    if p.returncode != 0:
        print(p.stdout[-2000:], p.stderr[-2000:], file=sys.stderr)
        return None
    with open(out) as f:
        data = json.load(f)
    os.unlink(out)
    runs = {r["server_kind"]: r["metrics"] for r in data["runs"] if r["generator"] == "node"}
    return runs.get("ringio"), runs.get("node-socket.io")


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--max-other", type=float, default=0.15)
    ap.add_argument("--candidates", nargs="*", default=DEFAULT)
    ap.add_argument("--extra", default="", help="more loadtest arguments, e.g. '--pin split'")
    a = ap.parse_args()
    cands = []
    for c in a.candidates:
        label, _, envs = c.partition("=")
        env = dict(kv.split("=", 1) for kv in envs.split())
        cands.append((label, env))
    results = {label: [] for label, _ in cands}
    for rnd in range(a.rounds):
        for label, env in cands:
            r = run_one(env, a.duration, a.extra.split())
            if not r or not r[0] or not r[1]:
                print(f"round {rnd} {label}: failed", file=sys.stderr)
                continue
            ring, node = r
            other = max(ring["other_load_cores"], node["other_load_cores"])
            keep = other <= a.max_other
            print(f"round {rnd} {label:14} other {other:.2f} {'kept' if keep else 'DROPPED'}: "
                  f"client {ring['client_cpu_us_per_op']:.1f}/{node['client_cpu_us_per_op']:.1f} us, "
                  f"machine {ring['machine_cpu_us_per_op']:.1f}/{node['machine_cpu_us_per_op']:.1f} us, "
                  f"acks/s {ring['ops_per_s']:.0f}/{node['ops_per_s']:.0f}, "
                  f"p50 {ring['rtt_p50_ms']:.2f}/{node['rtt_p50_ms']:.2f} ms, "
                  f"server {ring['server_cpu_us_per_op']:.1f}/{node['server_cpu_us_per_op']:.1f} us",
                  flush=True)
            if keep:
                results[label].append((ring, node))
    print()
    print("| candidate | runs | client CPU/ack ringio/Node | machine CPU/ack ringio/Node | "
          "acks/s ringio/Node | p50 ringio/Node | server CPU/ack ringio, Node |")
    print("|---|---|---|---|---|---|---|")
    for label, _ in cands:
        rs = results[label]
        if not rs:
            print(f"| {label} | 0 | | | | | |")
            continue
        ratio = lambda k: med([r[k] / n[k] for r, n in rs])
        m = lambda side, k: med([p[side][k] for p in rs])
        print(f"| {label} | {len(rs)} | {ratio('client_cpu_us_per_op'):.2f}x "
              f"({m(0,'client_cpu_us_per_op'):.1f} / {m(1,'client_cpu_us_per_op'):.1f} us) | "
              f"{ratio('machine_cpu_us_per_op'):.2f}x ({m(0,'machine_cpu_us_per_op'):.1f} / "
              f"{m(1,'machine_cpu_us_per_op'):.1f} us) | {ratio('ops_per_s'):.2f}x "
              f"({m(0,'ops_per_s'):.0f} / {m(1,'ops_per_s'):.0f}) | "
              f"{ratio('rtt_p50_ms'):.2f}x ({m(0,'rtt_p50_ms'):.2f} / {m(1,'rtt_p50_ms'):.2f} ms) | "
              f"{m(0,'server_cpu_us_per_op'):.1f}, {m(1,'server_cpu_us_per_op'):.1f} us |")


if __name__ == "__main__":
    main()
