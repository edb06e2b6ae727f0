"""Exception types raised by clark_hash_web.

Every error a user can trigger with bad input has its own type, so callers can
catch exactly what they expect, and every message says what was wrong and
where (row numbers, byte offsets, field names).

All types derive from :class:`ClarkHashError`; the ones about bad values also
derive from :class:`ValueError` so that generic code keeps working.
"""

from __future__ import annotations


class ClarkHashError(Exception):
    """Base class of every error raised by clark_hash_web."""


class ConfigError(ClarkHashError, ValueError):
    """A configuration field is out of range (see ``ClarkHashConfig``)."""


class InvalidInputError(ClarkHashError, ValueError):
    """Input vectors are unusable as a whole: wrong shape, rank or dtype."""


class DimensionError(InvalidInputError):
    """Vectors have a length other than the configuration's ``input_dim``."""


class InvalidVectorError(ClarkHashError, ValueError):
    """Some rows of a batch cannot be encoded (NaN, inf, or a zero vector).

    Attributes
    ----------
    rows : dict[int, str]
        Row number (0-based, in the caller's batch) to the rule it broke.
    """

    def __init__(self, rows: dict, what: str = "vector"):
        self.what = what
        self.rows = dict(sorted(rows.items()))
        shown = list(self.rows.items())[:5]
        detail = "; ".join(f"row {i}: {why}" for i, why in shown)
        more = f" (and {len(self.rows) - 5} more)" if len(self.rows) > 5 else ""
        noun = "row" if len(self.rows) == 1 else "rows"
        super().__init__(
            f"{len(self.rows)} {what} {noun} rejected, nothing was added: {detail}{more}"
        )

    def __reduce__(self):  # keep .rows when pickled across processes
        return (type(self), (self.rows, self.what))


class ConfigMismatchError(ClarkHashError, ValueError):
    """Codes, a file or a store belong to another configuration."""


class DuplicateIdError(ClarkHashError, ValueError):
    """An id is already in the index (or repeated within one batch)."""


class SketchFileError(ClarkHashError, ValueError):
    """A sketch file is truncated, corrupt, or not a sketch file at all."""


class SyncError(ClarkHashError):
    """Base class of sync failures seen by a client or the server."""


class SyncProtocolError(SyncError, ValueError):
    """A sync message (envelope, meta or embedded sketch file) is malformed."""


class SyncRefusedError(SyncError):
    """The server refused a request; ``status`` is the HTTP status, ``kind`` the error type."""

    def __init__(self, status: int, kind: str, message: str):
        self.status = status
        self.kind = kind
        super().__init__(f"server refused the request ({status} {kind}): {message}")


class SyncAuthError(SyncRefusedError):
    """The token is missing or wrong (HTTP 401)."""
