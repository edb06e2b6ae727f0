"""Sync between devices and a server (deployment: ``README.md`` next to this file).

:mod:`.server` (``clark-hash serve``: Starlette on uvicorn), :mod:`.store` (the storage
interface) with :mod:`.sqlite_store` and :mod:`.postgres_store`, :mod:`.client` (desktop
client, users and tokens), :mod:`.crypto` (end-to-end encrypted note bodies),
:mod:`.pg_local` (a throwaway PostgreSQL for tests and benchmarks).
"""
