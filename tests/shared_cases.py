"""Reading the reference crate's recorded cases (``tests/data/conformance``) for the tests."""

from __future__ import annotations

import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONFORMANCE = REPO / "tests" / "data" / "conformance"


def conformance_files() -> list:
    """Every recorded case file (the norm-channel table excluded)."""
    files = sorted(p for p in CONFORMANCE.glob("*.json") if p.name != "norm_channel_default.json")
    if not files:
        raise RuntimeError(f"no conformance files found in {CONFORMANCE}")
    return files


def load_case(path: Path) -> dict:
    return json.loads(path.read_text())


def f32_hex_rows(hex_rows) -> list:
    """Decode the canonical 8-hex-digit big-endian f32 rows into lists of floats."""
    import struct

    out = []
    for h in hex_rows:
        raw = bytes.fromhex(h)
        out.append(list(struct.unpack(f">{len(raw) // 4}f", raw)))
    return out


def config_of(case: dict):
    from clark_hash_web import ClarkHashConfig

    c = case["config"]
    return ClarkHashConfig(**{k: v for k, v in c.items() if k not in ("seed_hex", "clip_f32_hex")})
