"""Shared helpers of the sync tests (tests/test_sync_*.py): loopback servers and test data."""

from __future__ import annotations

import atexit
import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager

import numpy as np
import pytest

from clark_hash_web import ClarkHashConfig
from clark_hash_web.sync.client import SyncClient
from clark_hash_web.sync.server import make_server
from clark_hash_web.formats.sync_wire import Put

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COSINE = ClarkHashConfig(input_dim=32)
DOT = ClarkHashConfig(input_dim=32, sketch_dim=40, bits=5, metric="dot")


STORES = ["sqlite", "postgresql"]
_PG = []


def local_postgres():
    """The tests' PostgreSQL cluster (started once per test process, stopped at exit).

    Without PostgreSQL binaries the test fails when CI is set (CI=true: the
    PostgreSQL half of the suite must not vanish silently) and is skipped
    with the reason otherwise.
    """
    from clark_hash_web.sync.pg_local import LocalPostgres, PostgresUnavailable

    if not _PG:
        try:
            _PG.append(LocalPostgres().start())
        except PostgresUnavailable as exc:
            _PG.append(exc)
        else:
            atexit.register(_PG[0].stop)
    if isinstance(_PG[0], Exception):
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"PostgreSQL tests cannot run: {_PG[0]}")
        pytest.skip(f"PostgreSQL tests skipped: {_PG[0]}")
    return _PG[0]


def store_url(kind: str, tmp_path):
    """A fresh, empty store of ``kind`` ("sqlite" or "postgresql"): its URL."""
    if kind == "sqlite":
        return f"sqlite:///{tmp_path}/sync-{time.monotonic_ns()}.sqlite3"
    return local_postgres().new_database()


@pytest.fixture(params=STORES)
def db_url(request, tmp_path):
    """Every test using this runs once per store (SQLite and PostgreSQL)."""
    return store_url(request.param, tmp_path)


@contextmanager
def running_server(data_dir, site_dir=None, **kw):
    """An in-process server on 127.0.0.1 (free port) in a thread; yields (server, token)."""
    server, token, _ = make_server(data_dir, site_dir, "127.0.0.1", 0, **kw)
    server.start()
    try:
        yield server, token
    finally:
        server.shutdown()
        server.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def server_process(data_dir, port, site_dir="", extra=(), db=None):
    """``python -m clark_hash_web.sync.server`` as a subprocess; yields the Popen."""
    cmd = [sys.executable, "-m", "clark_hash_web.sync.server", "--data", str(data_dir),
           "--site", str(site_dir), "--port", str(port), *extra]
    if db:
        cmd += ["--db", db]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_listening(port, proc)
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        for stream in (proc.stdout, proc.stderr):
            stream.close()


def wait_listening(port: int, proc=None, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited early: {proc.stderr.read()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"server did not listen on port {port} within {timeout}s")


def client(server, token, device="dev-a", collection="notes", config=COSINE, **kw) -> SyncClient:
    """A client of ``server`` that has created (or checked) its collection."""
    c = SyncClient(server.url, token, collection, device, **kw)
    c.ensure_collection(config)
    return c


def vectors(n: int, dim: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)


def puts_for(config, n: int, seed: int = 0, clock: int = 1, device: str = "dev-a", prefix="v"):
    """``n`` Put changes with real codes of random vectors."""
    from clark_hash_web.codecs import registry

    enc = registry.codec_from_config(config).encode(vectors(n, config.input_dim, seed))
    norms = enc.norm_codes
    return [Put(f"{prefix}{i}", clock, enc.code(i), None if norms is None else int(norms[i]), device)
            for i in range(n)]
