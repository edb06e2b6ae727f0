"""Issue 5 test 5 (issue 12: on both stores): 8 concurrent writers x 250 pushes against one
server process (loopback).

Nothing is lost, retried pushes change nothing, the change log's sequence
numbers are exactly 1..N (no duplicates, no gaps), and the contended id ends
with the (clock, device) winner of the documented rule.
"""

import random
import threading
import time

import pytest

from clark_hash_web.sync.client import SyncClient
from clark_hash_web.formats.sync_wire import Put
from clark_hash_web.sync.store import open_store
from sync_fixtures import COSINE, STORES, free_port, puts_for, server_process, store_url

WRITERS = 8
PUSHES = 250


@pytest.mark.slow
@pytest.mark.parametrize("kind", STORES)
def test_concurrent_writers_lose_nothing(tmp_path, kind):
    data = tmp_path / "data"
    db = store_url(kind, tmp_path)
    port = free_port()
    codes = [p.code for p in puts_for(COSINE, 64)]
    errors, results = [], [[] for _ in range(WRITERS)]
    with server_process(data, port, db=db):
        token = (data / "token").read_text().strip()
        url = f"http://127.0.0.1:{port}"
        SyncClient(url, token, "load", "setup").ensure_collection(COSINE)

        def writer(w):
            try:
                c = SyncClient(url, token, "load", f"writer-{w}")
                c._config = COSINE
                rnd = random.Random(w)
                for k in range(PUSHES):
                    puts = [Put(f"w{w}-{k}", k + 1, codes[(w + k) % 64], None, c.device),
                            Put("hot", k + 1, codes[w], None, c.device)]
                    pid = f"w{w}-p{k}"
                    results[w].append(c.push(puts, push_id=pid))
                    if rnd.random() < 0.05:  # a client retry of the same push
                        assert c.push(puts, push_id=pid)["duplicate"]
            except Exception as exc:  # surfaced below
                errors.append(f"writer {w}: {exc!r}")

        t0 = time.monotonic()
        threads = [threading.Thread(target=writer, args=(w,)) for w in range(WRITERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
        elapsed = time.monotonic() - t0
        assert not errors, errors[:3]
        reader = SyncClient(url, token, "load", "reader")
        puts, deletes, cursor = reader.pull_all(0, limit=20_000)

    applied = sum(r["applied"] for rs in results for r in rs)
    store = open_store(db)
    _, seqs, pushes = store.counts("load")
    store.close()
    assert seqs == list(range(1, applied + 1))  # gapless, no duplicates
    assert pushes == WRITERS * PUSHES and cursor == applied
    got = {p.id: p for p in puts}
    assert len(got) == WRITERS * PUSHES + 1 and not deletes
    for w in range(WRITERS):
        for k in range(PUSHES):
            assert got[f"w{w}-{k}"].code == codes[(w + k) % 64]
    hot = got["hot"]  # every writer's last clock is PUSHES: the largest device name wins
    assert (hot.clock, hot.device, hot.code) == (PUSHES, f"writer-{WRITERS - 1}", codes[WRITERS - 1])
    print(f"\n{WRITERS}x{PUSHES} pushes in {elapsed:.1f}s ({WRITERS * PUSHES / elapsed:.0f} pushes/s), "
          f"{applied} changes logged")


@pytest.mark.slow
def test_two_server_processes_share_one_postgresql(tmp_path):
    """Two `clark-hash serve` processes (two "machines") on one PostgreSQL database: writers
    alternate between them, retries go to the other one; the log stays gapless, every push
    counts once, and the contended id has the rule's winner."""
    import shutil

    db = store_url("postgresql", tmp_path)
    ports = [free_port(), free_port()]
    data = [tmp_path / "a", tmp_path / "b"]
    writers, pushes = 6, 60
    codes = [p.code for p in puts_for(COSINE, writers)]
    errors = []
    with server_process(data[0], ports[0], db=db):
        token = (data[0] / "token").read_text().strip()
        data[1].mkdir()
        shutil.copy(data[0] / "token", data[1] / "token")  # every server shares the admin token
        with server_process(data[1], ports[1], db=db):
            urls = [f"http://127.0.0.1:{p}" for p in ports]
            SyncClient(urls[0], token, "shared", "setup").ensure_collection(COSINE)

            def writer(w):
                try:
                    cs = [SyncClient(u, token, "shared", f"writer-{w}") for u in urls]
                    for c in cs:
                        c._config = COSINE
                    for k in range(pushes):
                        puts = [Put(f"w{w}-{k}", k + 1, codes[w], None, f"writer-{w}"),
                                Put("hot", k + 1, codes[w], None, f"writer-{w}")]
                        first = cs[k % 2].push(puts, push_id=f"w{w}-p{k}")
                        again = cs[(k + 1) % 2].push(puts, push_id=f"w{w}-p{k}")  # retry elsewhere
                        assert again == dict(first, duplicate=True)
                except Exception as exc:  # surfaced below
                    errors.append(f"writer {w}: {exc!r}")

            threads = [threading.Thread(target=writer, args=(w,)) for w in range(writers)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(300)
    assert not errors, errors[:3]
    store = open_store(db)
    items, seqs, n_pushes = store.counts("shared")
    state = store.state("shared")
    hot = [r for r in store.log("shared") if r[1] == "hot"][-1]
    store.close()
    assert seqs == list(range(1, len(seqs) + 1)) and n_pushes == writers * pushes
    assert items == writers * pushes + 1
    assert (hot[3], hot[4]) == (pushes, f"writer-{writers - 1}") and state["hot"][0] == codes[-1]
