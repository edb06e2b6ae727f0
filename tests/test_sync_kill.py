"""Issue 5 test 4 (issue 12: on both stores): the server process is SIGKILLed in the middle
of a push.

No partial rows are ever visible, and retrying the same push (same push id)
completes it exactly once with gapless sequence numbers: 0 lost, 0 duplicated.
"""

import threading
import time

import pytest

from clark_hash_web.sync.client import SyncClient
from clark_hash_web.formats.sync_wire import encode_push, split_for_push
from clark_hash_web.sync.store import open_store
from sync_fixtures import DOT, STORES, free_port, puts_for, server_process, store_url

N = 20_000
CHUNK = 64 * 1024


def _counts(db):
    store = open_store(db)
    try:
        items, seqs, _ = store.counts("notes")
        return items, seqs
    finally:
        store.close()


@pytest.mark.slow
@pytest.mark.parametrize("kind", STORES)
def test_sigkill_mid_push_then_retry(tmp_path, kind):
    data = tmp_path / "data"
    db = store_url(kind, tmp_path)
    port = free_port()
    puts = puts_for(DOT, N)
    with server_process(data, port, db=db) as proc:
        token = (data / "token").read_text().strip()
        c = SyncClient(f"http://127.0.0.1:{port}", token, "notes", "laptop", chunk_bytes=CHUNK, retries=0)
        c.ensure_collection(DOT)
        chunks = split_for_push(puts, [], DOT.code_bytes, CHUNK)
        assert len(chunks) > 10
        bodies = [encode_push(DOT, "push-1", "laptop", cp, cd, k, len(chunks))
                  for k, (cp, cd) in enumerate(chunks)]
        for body in bodies[:len(bodies) // 2]:  # half of the chunks are staged...
            assert c.request("POST", c._path("/push"), body)
        proc.kill()  # ...and the server dies
        proc.wait()
    assert _counts(db) == (0, [])

    # Kill while the final chunk is being committed, at several moments: all or nothing.
    outcomes = set()
    for delay in (0.0, 0.1, 0.3, 0.6, 1.0, 5.0):
        with server_process(data, port, db=db) as proc:
            for body in bodies[:-1]:
                c.request("POST", c._path("/push"), body)
            t = threading.Thread(target=lambda: _swallow(c, bodies[-1]), daemon=True)
            t.start()
            time.sleep(delay)
            proc.kill()
            proc.wait()
            t.join(10)
        items, seqs = _counts(db)
        assert (items, seqs) in ((0, []), (N, list(range(1, N + 1))))
        outcomes.add(items)
        if items:
            break

    # Restart and retry the whole push with the same id: completes exactly once.
    with server_process(data, port, db=db):
        c.retries = 3
        result = c.push(puts, push_id="push-1")
        assert result["status"] == "committed" and result["last_seq"] == N
        assert c.push(puts, push_id="push-1")["duplicate"]
        got, _, cursor = SyncClient(f"http://127.0.0.1:{port}", token, "notes",
                                    "phone").pull_all(0, limit=20_000)
        assert cursor == N
        assert [(p.id, p.code, p.norm_code) for p in got] == [(p.id, p.code, p.norm_code) for p in puts]
    items, seqs = _counts(db)
    assert items == N and seqs == list(range(1, N + 1))
    print(f"kill-during-commit outcomes seen (0 = rolled back, {N} = committed): {sorted(outcomes)}")


def _swallow(c, body):
    try:
        c.request("POST", c._path("/push"), body)
    except Exception:
        pass
