#!/usr/bin/env python3
"""Where the server's time went during one series of `cargo bench --bench scale`.

`SCALE_BENCH_PERF=DIR` makes the bench record each series with `perf record` (self time by
symbol) into DIR/<N>-<series>.data and the server's user and system CPU seconds into
DIR/<N>-<series>.cpu (then its major page faults, bytes read from disk, and the seconds
in which some task of the machine was stalled on I/O). This script reads such pairs and
prints, per series, the share of the server's samples in each category, kernel samples split
by what the kernel was doing. When
perf could not see the kernel (perf_event_paranoid), system time from /proc stands for it.

    python3 benches/scale/profile.py DIR [DIR/…data …]
"""

import glob
import os
import re
import subprocess
import sys

# First match wins; checked against "dso symbol".
KERNEL = [
    ("kernel: network", r"tcp_|sock|skb|__sys_send|__sys_recv|ip_|inet_|net_|loopback|"
                        r"__dev_queue|napi|netif|dst_|__x64_sys_(sendto|recvfrom|write|read)v?$"),
    ("kernel: disk and files", r"ext4|jbd2|blk_|bio_|iomap|filemap|fdatasync|fsync|"
                               r"sync_file_range|virtio_blk|writeback|folio_|__filemap|pwrite|"
                               r"copy_folio|generic_perform_write|vfs_"),
    ("kernel: wake-ups and futexes", r"futex|schedule|try_to_wake_up|__switch_to|finish_task|"
                                     r"enqueue_|dequeue_|select_task|ttwu|epoll|pick_next|"
                                     r"update_curr|update_load|psi_"),
    ("kernel: memory (page faults)", r"page_fault|do_anonymous|handle_mm|alloc_pages|"
                                      r"clear_page|zap_|unmap|mmap|madvise|memcg|lru_|"
                                      r"free_pages|rmqueue"),
]

CATEGORIES = [
    ("crypto", r"ring_core|ring::|p256|ecdsa|sha2::|sha256|nistz|ecp_|bigint|primeorder|"
               r"crypto_bigint|elliptic_curve|fiat_|ghash|aes_|gfp_|LIMBS|limbs_|sha512|"
               r"ed25519|x25519|GFp|\bring\b"),
    ("storage (sled)", r"sled::|crossbeam_epoch|crossbeam_utils|pagecache|crc32"),
    ("storage (PostgreSQL client)", r"postgres::|postgres_protocol|tokio_postgres|postgres_types|"
                                    r"civis::store::postgres|r2d2"),
    ("logging and audit", r"civis::logging|tracing|civis::domain::audit|civis::crypto::merkle|"
                          r"civis::domain::transparency|civis::domain::integrator|civis::store::audit"),
    ("WebAuthn and CBOR", r"webauthn|ciborium|serde_cbor|base64|x509|der::|cms::"),
    ("JSON and serde", r"serde|ryu|itoa|simd_json"),
    ("HTTP (hyper, axum)", r"hyper|axum|\bh2::|http::|tower|httparse|matchit|url::|form_urlencoded|"
                           r"percent_encoding|headers"),
    ("tokio runtime", r"tokio::|mio::|parking_lot|std::sync|futex"),
    ("allocator and copies", r"malloc|free|realloc|calloc|_int_|memcpy|memmove|memset|"
                             r"__memcmp|alloc::|cfree|tcache|unlink_chunk"),
]


def categorise(line, kernel):
    if kernel:
        for name, pattern in KERNEL:
            if re.search(pattern, line):
                return name
        return "kernel: other"
    for name, pattern in CATEGORIES:
        if re.search(pattern, line):
            return name
    return "other"


def user_shares(data):
    out = subprocess.run(
        ["perf", "report", "-i", data, "--stdio", "--no-children", "--sort", "dso,sym",
         "--percent-limit", "0", "-q"],
        capture_output=True, text=True, check=False).stdout
    shares, top = {}, []
    for line in out.splitlines():
        m = re.match(r"\s*([\d.]+)%\s+(\S+)\s+\[(.)\]\s+(.*)", line)
        if not m:
            continue
        pct, dso, sym = float(m.group(1)), m.group(2), m.group(4).strip()
        cat = categorise(f"{dso} {sym}", m.group(3) == "k")
        shares[cat] = shares.get(cat, 0.0) + pct
        if len(top) < 8:
            top.append((pct, sym[:90]))
    return shares, top


def main():
    args = sys.argv[1:] or ["."]
    files = []
    for a in args:
        files += sorted(glob.glob(os.path.join(a, "*.data"))) if os.path.isdir(a) else [a]
    files = [f for f in files if f.endswith(".data")]
    for data in files:
        cpu = data[:-5] + ".cpu"
        used = [float(x) for x in open(cpu).read().split()] if os.path.exists(cpu) else [1.0, 0.0]
        user, system = used[0], used[1]
        total = user + system
        shares, top = user_shares(data)
        sampled = sum(shares.values()) or 1.0
        print(f"\n{os.path.basename(data)[:-5]}: server CPU {total:.2f} s "
              f"(user {user:.2f} s, system {system:.2f} s)")
        if len(used) >= 5:
            print(f"  disk: {used[2]:.0f} major page faults, {used[3] / 2**20:.0f} MiB read, "
                  f"I/O stalls on the machine {used[4]:.2f} s")
        if any(c.startswith("kernel") for c in shares):
            rows = [(c, 100.0 * s / sampled) for c, s in shares.items()]
        else:
            rows = [("kernel (system time)", 100.0 * system / total if total else 0.0)]
            rows += [(c, 100.0 * user / total * s / sampled if total else 0.0)
                     for c, s in shares.items()]
        for name, pct in sorted(rows, key=lambda r: -r[1]):
            print(f"  {pct:5.1f} %  {name}")
        print("  hottest symbols (share of samples):")
        for pct, sym in top:
            print(f"    {pct:5.1f} %  {sym}")


if __name__ == "__main__":
    main()
