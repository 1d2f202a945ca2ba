#!/usr/bin/env python3
"""CPU per operation by server thread, from a `perf record` of the server under load.

Which thread pays for an audited token: tokio's async workers (the busiest `tokio-rt-worker`
threads, one per core; the others are its blocking pool), the audit appender (`civis-audit`),
the integrator (`civis-integrator`, shown as `civis-integrato`: numbering and the tree) and
sled's own threads. Record the server while a load runs, count the operations answered in
the recorded window, then:

    perf record -F 2000 -g -p PID -o FILE -- sleep 5
    python3 benches/token/threads.py FILE OPERATIONS [TOP]

Prints µs of CPU per operation for each thread (samples ÷ 2000 Hz ÷ operations) and the
TOP (default 12) hottest functions of each thread that costs at least 1 µs per operation.
"""

import collections
import subprocess
import sys

HZ = 2000


def samples(data):
    """(tid, comm) -> Counter of leaf symbols."""
    out = subprocess.run(["perf", "script", "-i", data, "-F", "comm,tid,ip,sym"],
                         capture_output=True, text=True, check=False).stdout
    threads = collections.defaultdict(collections.Counter)
    thread, leaf_next = None, False
    for line in out.splitlines():
        if line and not line[0].isspace():
            comm, _, tid = line.strip().rpartition(" ")
            thread, leaf_next = (tid, comm.strip()), True
        elif leaf_next and line.strip():
            parts = line.split(None, 1)
            threads[thread][parts[1][:90] if len(parts) > 1 else "?"] += 1
            leaf_next = False
    return threads


def main():
    data, ops = sys.argv[1], float(sys.argv[2])
    top = int(sys.argv[3]) if len(sys.argv) > 3 else 12
    per_op = lambda n: n * 1e6 / HZ / ops
    threads = samples(data)
    ranked = sorted(threads.items(), key=lambda t: -sum(t[1].values()))
    total = sum(sum(c.values()) for _, c in ranked)
    print(f"all threads: {per_op(total):.1f} µs per operation")
    for (tid, comm), symbols in ranked:
        cost = per_op(sum(symbols.values()))
        if cost < 0.1:
            continue
        print(f"  {cost:6.1f} µs  {comm} ({tid})")
        if cost >= 1.0:
            for sym, n in symbols.most_common(top):
                print(f"           {per_op(n):5.2f}  {sym}")


if __name__ == "__main__":
    main()
