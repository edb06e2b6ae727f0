"""Load benchmark of ``clark-hash serve``: many devices pushing and pulling at once, both stores.

For each store (SQLite file, PostgreSQL cluster started from the Debian
binaries in a temp dir, fsync on), a server process (``python -m
clark_hash_web.sync.server``, uvicorn) is started on loopback, then:

1. **push**: ``--devices`` threads, each with one keep-alive HTTP connection,
   push their share of ``--changes`` sketches (48-byte Clark Hash codes of the
   default profile, ids ``dev<k>-<i>``) in pushes of ``--batch`` sketches into
   one shared collection (all writers contend for the same collection lock).
   Bodies are encoded before the clock starts, so the time is the server's.
2. **pull**: the same devices read the whole log back, each its own slice of
   sequence numbers, in pages of ``--page`` sketches.
3. **check**: the log's sequence numbers are exactly 1..N (gapless, no
   duplicates) and every pushed id is live.

Prints one JSON object: sketches/s and p50/p99 request latency for push and
pull per store, and the targets of issue 12 (push >= 20,000 sketches/s on
SQLite, >= 10,000/s on PostgreSQL; 50 devices, 1M changes). The client threads
share the machine with the server: on 2 cores the numbers are a floor.

Usage::

    python benchmarks/sync_load.py                          # 50 devices, 1,000,000 changes
    python benchmarks/sync_load.py --changes 100000 --stores sqlite
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from clark_hash_web import ClarkHashConfig  # noqa: E402
from clark_hash_web.formats.sync_wire import KIND_PULL, Put, decode, encode_push  # noqa: E402

TARGETS = {"sqlite": 20_000, "postgresql": 10_000}
CONFIG = ClarkHashConfig(input_dim=384)  # 96 x 4 bits: 48-byte codes, no padding bits


def percentile(values, q):
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q / 100 * (len(s) - 1))))]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(data_dir, db, port):
    cmd = [sys.executable, "-m", "clark_hash_web.sync.server", "--data", data_dir, "--site", "",
           "--port", str(port), "--db", db, "--max-connections", "512",
           "--max-body", str(64 * 1024 * 1024)]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/api/v1/health")
            if conn.getresponse().status == 200:
                conn.close()
                return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not start within 60 s")


class Device:
    """One device: a keep-alive connection and its request latencies."""

    def __init__(self, port, token):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/octet-stream"}
        self.latencies = []

    def call(self, method, path, body=None):
        t0 = time.perf_counter()
        try:
            self.conn.request(method, path, body=body, headers=self.headers)
            resp = self.conn.getresponse()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            # an idle keep-alive connection closed by the server: reconnect once (pushes are
            # idempotent by push id, so a resend is safe)
            self.conn.close()
            self.conn.connect()
            self.conn.request(method, path, body=body, headers=self.headers)
            resp = self.conn.getresponse()
        data = resp.read()
        self.latencies.append(time.perf_counter() - t0)
        if resp.status != 200:
            raise RuntimeError(f"{method} {path}: HTTP {resp.status}: {data[:300]!r}")
        return data


def run_parallel(fn, n):
    errors = []

    def wrap(k):
        try:
            fn(k)
        except Exception as exc:  # reported after the join
            errors.append(f"device {k}: {exc!r}")

    threads = [threading.Thread(target=wrap, args=(k,)) for k in range(n)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    if errors:
        raise RuntimeError("; ".join(errors[:3]))
    return wall


def bench_store(kind, db, args, bodies, shares, token_dir):
    port = free_port()
    proc = start_server(token_dir, db, port)
    try:
        token = open(os.path.join(token_dir, "token")).read().strip()
        setup = Device(port, token)
        setup.call("PUT", "/api/v1/collections/load", CONFIG.to_bytes())
        devices = [Device(port, token) for _ in range(args.devices)]

        def push(k):
            for body in bodies[k]:
                devices[k].call("POST", "/api/v1/collections/load/push", body)

        push_wall = run_parallel(push, args.devices)
        push_lat = [x for d in devices for x in d.latencies]
        for d in devices:
            d.latencies = []
        total = sum(shares)
        per = -(-total // args.devices)
        pulled = [0] * args.devices

        def pull(k):
            since, end = k * per, min(total, (k + 1) * per)
            while since < end:
                data = devices[k].call("GET", f"/api/v1/collections/load/changes?since={since}"
                                              f"&limit={min(args.page, end - since)}")
                msg = decode(data, expect_kind=KIND_PULL, expect_config=CONFIG)
                pulled[k] += len(msg.puts)
                if msg.meta["cursor"] <= since:
                    break
                since = msg.meta["cursor"]

        pull_wall = run_parallel(pull, args.devices)
        pull_lat = [x for d in devices for x in d.latencies]
        info = json.loads(setup.call("GET", "/api/v1/collections/load"))
    finally:
        proc.terminate()
        proc.wait(30)
    from clark_hash_web.sync.store import open_store

    store = open_store(db)
    try:
        items, seqs, pushes = store.counts("load")
    finally:
        store.close()
    ms = lambda v: None if v is None else round(v * 1000, 2)  # noqa: E731
    return {
        "push": {"sketches": total, "requests": len(push_lat), "wall_s": round(push_wall, 3),
                 "sketches_per_s": round(total / push_wall), "p50_ms": ms(percentile(push_lat, 50)),
                 "p99_ms": ms(percentile(push_lat, 99)),
                 "target_sketches_per_s": TARGETS[kind],
                 "meets_target": total / push_wall >= TARGETS[kind]},
        "pull": {"sketches": sum(pulled), "requests": len(pull_lat), "wall_s": round(pull_wall, 3),
                 "sketches_per_s": round(sum(pulled) / pull_wall), "p50_ms": ms(percentile(pull_lat, 50)),
                 "p99_ms": ms(percentile(pull_lat, 99))},
        "check": {"last_seq": info["last_seq"], "live": info["count"], "items": items,
                  "pushes": pushes, "gapless": seqs == list(range(1, total + 1)),
                  "lost": total - info["count"], "duplicated": len(seqs) - len(set(seqs))},
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--devices", type=int, default=50)
    p.add_argument("--changes", type=int, default=1_000_000)
    p.add_argument("--batch", type=int, default=2000, help="sketches per push")
    p.add_argument("--page", type=int, default=5000, help="sketches per pull page")
    p.add_argument("--stores", default="sqlite,postgresql")
    p.add_argument("--pg-url", default=None,
                   help="an existing empty PostgreSQL database (default: a temporary local cluster)")
    args = p.parse_args(argv)

    t0 = time.perf_counter()
    rnd = os.urandom
    shares = [args.changes // args.devices + (k < args.changes % args.devices) for k in range(args.devices)]
    bodies = []
    for k, n in enumerate(shares):
        dev, mine = f"dev{k}", []
        for start in range(0, n, args.batch):
            m = min(args.batch, n - start)
            codes = rnd(m * CONFIG.code_bytes)
            puts = [Put(f"dev{k}-{start + i}", 1, codes[i * 48:(i + 1) * 48], None, dev) for i in range(m)]
            mine.append(encode_push(CONFIG, f"{dev}-p{start}", dev, puts, ()))
        bodies.append(mine)
    decode(bodies[0][0], expect_config=CONFIG)  # the codes are valid for the config
    prep_s = time.perf_counter() - t0

    result = {"benchmark": "sync_load", "devices": args.devices, "changes": args.changes,
              "batch": args.batch, "page": args.page, "code_bytes": CONFIG.code_bytes,
              "prepare_s": round(prep_s, 1), "machine": {"cpus": os.cpu_count(),
                                                         "python": platform.python_version()},
              "stores": {}}
    for kind in [s.strip() for s in args.stores.split(",") if s.strip()]:
        with tempfile.TemporaryDirectory(prefix="sync-load-") as tmp:
            pg = None
            if kind == "sqlite":
                db = f"sqlite:///{tmp}/sync.sqlite3"
            elif kind == "postgresql":
                if args.pg_url:
                    db = args.pg_url
                else:
                    from clark_hash_web.sync.pg_local import LocalPostgres

                    pg = LocalPostgres(fsync=True).start()
                    db = pg.new_database("sync_load")
            else:
                raise SystemExit(f"unknown store {kind!r} (sqlite, postgresql)")
            try:
                result["stores"][kind] = bench_store(kind, db, args, bodies, shares,
                                                     os.path.join(tmp, "data"))
            finally:
                if pg is not None:
                    pg.stop()
        print(f"[sync_load] {kind}: {json.dumps(result['stores'][kind]['push'])}", file=sys.stderr)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
