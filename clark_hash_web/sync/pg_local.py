"""A throwaway local PostgreSQL cluster from the Debian packages (tests and benchmarks).

:class:`LocalPostgres` runs ``initdb`` and ``pg_ctl`` from
``/usr/lib/postgresql/<version>/bin`` (Debian's ``postgresql`` package; they
are not on PATH) in a temporary folder, listening on a loopback port, and
removes everything on :meth:`stop`. PostgreSQL refuses to run as root, so as
root the cluster runs as the ``postgres`` system user (``runuser``).
This is not how to deploy: see ``clark_hash_web/sync/README.md``.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid


class PostgresUnavailable(RuntimeError):
    """No usable PostgreSQL binaries (or the cluster would not start); the message says why."""


def find_bindir() -> str:
    """The newest ``/usr/lib/postgresql/*/bin`` holding initdb and pg_ctl (or $PG_BINDIR)."""
    cands = [os.environ["PG_BINDIR"]] if os.environ.get("PG_BINDIR") else sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]), reverse=True)
    for d in cands:
        if os.access(os.path.join(d, "initdb"), os.X_OK) and os.access(os.path.join(d, "pg_ctl"), os.X_OK):
            return d
    raise PostgresUnavailable("no PostgreSQL server binaries: install the Debian package "
                              "'postgresql' (initdb and pg_ctl in /usr/lib/postgresql/*/bin)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalPostgres:
    """Start with :meth:`start`; :meth:`new_database` gives a fresh database URL each call.

    Parameters
    ----------
    fsync : bool
        False for fast throwaway test clusters; True to measure like a deployment.
    """

    def __init__(self, fsync: bool = False, max_connections: int = 300):
        self.fsync, self.max_connections = fsync, max_connections
        self.dir = None
        self.port = None
        self._prefix = []

    def _run(self, *cmd, check=True):
        proc = subprocess.run([*self._prefix, *cmd], capture_output=True, text=True, timeout=120)
        if check and proc.returncode:
            raise PostgresUnavailable(f"{' '.join(cmd[:2])} failed ({proc.returncode}): "
                                      f"{(proc.stderr or proc.stdout).strip()[-800:]}")
        return proc

    def start(self) -> "LocalPostgres":
        bindir = find_bindir()
        self.dir = tempfile.mkdtemp(prefix="clark-hash-pg-")
        if os.geteuid() == 0:
            try:
                import pwd

                pw = pwd.getpwnam("postgres")
            except KeyError:
                raise PostgresUnavailable("running as root and there is no 'postgres' user to run "
                                          "PostgreSQL as (the Debian package creates it)") from None
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            os.chmod(self.dir, 0o700)
            self._prefix = ["runuser", "-u", "postgres", "--"]
        data = os.path.join(self.dir, "data")
        self._run(os.path.join(bindir, "initdb"), "-D", data, "-U", "postgres", "-A", "trust",
                  "--no-sync", "-E", "UTF8")
        self.port = _free_port()
        opts = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 "
                f"-c max_connections={self.max_connections} -c fsync={'on' if self.fsync else 'off'} "
                f"-c synchronous_commit={'on' if self.fsync else 'off'} -c full_page_writes="
                f"{'on' if self.fsync else 'off'}")
        self._pg_ctl = os.path.join(bindir, "pg_ctl")
        self._data = data
        self._run(self._pg_ctl, "-D", data, "-o", opts, "-l", os.path.join(self.dir, "log"),
                  "-w", "-t", "60", "start")
        return self

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def new_database(self, name: str = "") -> str:
        """Create an empty database; returns its URL."""
        import psycopg

        name = name or "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self):
        if self.dir is None:
            return
        try:
            self._run(self._pg_ctl, "-D", self._data, "-m", "immediate", "-w", "stop", check=False)
        except (AttributeError, subprocess.TimeoutExpired):
            pass
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None
