"""The codec registry: from config bytes or a spec string to a config and a codec.

Every codec config serializes to canonical bytes whose first byte is the
codec **kind**; that byte is how sketch files, the sync envelope, IndexedDB
records and the CLI know which codec wrote a code. A short **spec string**
names a stateless codec for the CLI and JavaScript.

=====  ==================  =======================  ==================  =========
kind   spec name           config                   codec               trained
=====  ==================  =======================  ==================  =========
1      ``clark-hash``      ``ClarkHashConfig``      ``ClarkHash``       no
2      ``hyperplane-lsh``  ``HyperplaneLSHConfig``  ``HyperplaneLSH``   no
3      ``sign-bits``       ``SignBitsConfig``       ``SignBits``        no
4      ``itq``             ``ITQConfig``            ``ITQ``             yes
5      ``e8``              ``E8Config``             ``E8Codes``         no
6      ``learned-e8``      ``LearnedE8Config``      ``LearnedE8``       yes
=====  ==================  =======================  ==================  =========

Spec strings
------------
``NAME:INPUT_DIM`` or ``NAME:INPUT_DIM:KEY=VALUE,KEY=VALUE``, where the keys
are the config's fields; values are integers (decimal or ``0x`` hex), numbers
or words::

    "e8:384"                                   # the recommended 48-byte profile
    "clark-hash:384"                           # the crate's default profile
    "clark-hash:384:sketch_dim=384,bits=1"
    "sign-bits:384:rotation=hadamard"
    "hyperplane-lsh:384:n_bits=256,seed=7"

:func:`spec_of` writes the shortest spec of a config (only fields that differ
from the defaults). Trained codecs have no spec: their config comes from
training (``train_itq``, ``clark-hash train-itq``), and is passed as bytes.

Each codec module registers itself with :func:`register` when imported; the
registry imports the module of a known kind or name on first use, so reading
a file never depends on what the caller happened to import.
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass
from typing import Callable, Optional

from ..errors import ConfigError

#: kind byte -> (spec name, module inside this package that registers it)
KNOWN = {
    1: ("clark-hash", "clark_hash"),
    2: ("hyperplane-lsh", "hyperplane_lsh"),
    3: ("sign-bits", "sign_bits"),
    4: ("itq", "itq"),
    5: ("e8", "e8"),
    6: ("learned-e8", "learned_e8"),
}


@dataclass(frozen=True)
class CodecKind:
    """One registered codec.

    Attributes
    ----------
    kind : int
        The first byte of the config's ``to_bytes()`` (1..255).
    name : str
        Spec name, e.g. ``"e8"``.
    title : str
        Human-readable name, e.g. ``"E8 lattice"``.
    config_type : type
        The config class; it has ``from_bytes``, ``to_bytes``, ``fingerprint``,
        ``input_dim``, ``code_bytes`` and ``metric``.
    codec_type : type
        ``codec_type(config, backend=None)`` builds the codec.
    check_codes : callable or None
        ``check_codes(config, codes: bytes, count) -> str | None``: a message
        when stored codes cannot have been written by ``config``.
    trained : bool
        True when configs come from training (no spec string).
    trainer : callable or None
        ``trainer(sample, seed=0, **options) -> config`` for trained codecs.
    """

    kind: int
    name: str
    title: str
    config_type: type
    codec_type: type
    check_codes: Optional[Callable] = None
    trained: bool = False
    trainer: Optional[Callable] = None


_KINDS: dict = {}


def register(entry: CodecKind) -> CodecKind:
    """Register a codec (called by each codec module at import)."""
    if isinstance(entry.kind, bool) or not isinstance(entry.kind, int) or not 1 <= entry.kind <= 255:
        raise ConfigError(f"codec kind must be an int in 1..255, got {entry.kind!r}")
    other = next((e for e in _KINDS.values() if e.name == entry.name and e.kind != entry.kind), None)
    if other is not None:
        raise ConfigError(f"codec name {entry.name!r} is already kind {other.kind}")
    _KINDS[entry.kind] = entry
    return entry


def _import_known(kind: int) -> None:
    if kind not in _KINDS and kind in KNOWN:
        importlib.import_module(f"{__package__}.{KNOWN[kind][1]}")


def registered() -> dict:
    """Kind byte -> :class:`CodecKind` for every codec (known modules imported)."""
    for kind in KNOWN:
        _import_known(kind)
    return dict(sorted(_KINDS.items()))


def codec_kind(kind: int) -> CodecKind:
    """The :class:`CodecKind` of a kind byte; ConfigError when unknown."""
    _import_known(kind)
    entry = _KINDS.get(kind)
    if entry is None:
        known = ", ".join(f"{k} ({e.name})" for k, e in registered().items())
        raise ConfigError(f"unknown codec kind {kind} (known: {known})")
    return entry


def codec_kind_named(name: str) -> CodecKind:
    """The :class:`CodecKind` of a spec name such as ``"e8"``; ConfigError when unknown."""
    for entry in registered().values():
        if entry.name == name:
            return entry
    names = ", ".join(e.name for e in registered().values())
    raise ConfigError(f"unknown codec {name!r} (known: {names})")


def kind_of(config) -> CodecKind:
    """The :class:`CodecKind` of a config object (by its first config byte)."""
    try:
        data = bytes(config.to_bytes())
    except AttributeError:
        raise ConfigError(f"not a codec config: {type(config).__name__} has no to_bytes()") from None
    entry = codec_kind(data[0])
    if not isinstance(config, entry.config_type):
        raise ConfigError(f"config kind byte {data[0]} belongs to {entry.config_type.__name__}, "
                          f"not {type(config).__name__}")
    return entry


# ---------------------------------------------------------------------------
# configs
# ---------------------------------------------------------------------------
def config_from_bytes(data):
    """Parse canonical config bytes of any registered codec.

    Raises
    ------
    ConfigError
        Empty, unknown kind, or bytes the codec rejects (the message says which).
    """
    try:
        data = bytes(data)
    except TypeError:
        raise ConfigError(f"config bytes must be bytes-like, got {type(data).__name__}") from None
    if not data:
        raise ConfigError("config bytes are empty (the first byte is the codec kind)")
    entry = codec_kind(data[0])
    try:
        config = entry.config_type.from_bytes(data)
    except ConfigError:
        raise
    except (ValueError, TypeError, OverflowError) as exc:
        raise ConfigError(f"invalid {entry.title} config bytes ({len(data)} bytes): {exc}") from None
    if bytes(config.to_bytes()) != data:
        raise ConfigError(f"{entry.title} config bytes are not in canonical form")
    return config


def parse_value(text: str):
    """A spec or option value: an int (decimal or 0x hex), a number, or the word itself."""
    for parse in (lambda s: int(s, 0), float):
        try:
            return parse(text)
        except ValueError:
            pass
    return text


def config_from_spec(spec: str):
    """The config named by a spec string such as ``"e8:384"`` (see the module docstring)."""
    if not isinstance(spec, str):
        raise ConfigError(f"a codec spec is a string like 'e8:384', got {type(spec).__name__}")
    parts = spec.strip().split(":")
    if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
        raise ConfigError(f"codec spec {spec!r} is not NAME:INPUT_DIM[:KEY=VALUE,...] "
                          "(e.g. 'e8:384')")
    entry = codec_kind_named(parts[0].strip().lower())
    if entry.trained:
        raise ConfigError(f"{entry.title} is trained: its config comes from training, not from a "
                          f"spec (pass its config bytes or file)")
    try:
        dim = int(parts[1], 0)
    except ValueError:
        raise ConfigError(f"codec spec {spec!r}: input dimension {parts[1]!r} is not an integer") \
            from None
    fields = {f.name for f in dataclasses.fields(entry.config_type) if f.init}
    kwargs = {"input_dim": dim}
    for item in (parts[2].split(",") if len(parts) == 3 and parts[2].strip() else []):
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq or not key or not value.strip():
            raise ConfigError(f"codec spec {spec!r}: {item!r} is not KEY=VALUE")
        if key not in fields or key == "input_dim":
            raise ConfigError(f"codec spec {spec!r}: {entry.name} has no option {key!r} "
                              f"(options: {', '.join(sorted(fields - {'input_dim'}))})")
        kwargs[key] = parse_value(value.strip())
    try:
        return entry.config_type(**kwargs)
    except ConfigError as exc:
        raise ConfigError(f"codec spec {spec!r}: {exc}") from None


def spec_of(config) -> str:
    """The shortest spec string of a stateless codec's config (e.g. ``"e8:384"``)."""
    entry = kind_of(config)
    if entry.trained:
        raise ConfigError(f"{entry.title} configs are trained: they have no spec string")
    # Words (rotation, metric) first: they change other fields' defaults (a seed, n_bits).
    fields = sorted((f.name for f in dataclasses.fields(config) if f.init and f.name != "input_dim"),
                    key=lambda name: not isinstance(getattr(config, name), str))
    kwargs = {"input_dim": config.input_dim}
    opts = []
    for name in fields:
        value = getattr(config, name)
        if value != getattr(entry.config_type(**kwargs), name):
            kwargs[name] = value
            opts.append(f"{name}={value:#x}" if name == "seed" else f"{name}={value}")
    return f"{entry.name}:{config.input_dim}" + (":" + ",".join(opts) if opts else "")


def describe(config) -> dict:
    """A JSON-ready description: kind, name, title, spec (or None), fingerprint, sizes."""
    entry = kind_of(config)
    return {"kind": entry.kind, "name": entry.name, "title": entry.title,
            "spec": None if entry.trained else spec_of(config),
            "fingerprint": config.fingerprint, "input_dim": config.input_dim,
            "code_bytes": config.code_bytes, "metric": config.metric,
            "bytes_per_vector": config.storage_bytes_per_vector}


# ---------------------------------------------------------------------------
# codecs
# ---------------------------------------------------------------------------
def codec_from_config(config, backend=None):
    """The codec of a config object or of canonical config bytes."""
    if isinstance(config, (bytes, bytearray, memoryview)):
        config = config_from_bytes(config)
    return kind_of(config).codec_type(config, backend=backend)


def codec_from_spec(spec: str, backend=None):
    """The codec named by a spec string such as ``"e8:384"``."""
    return codec_from_config(config_from_spec(spec), backend=backend)


def as_codec(codec, backend=None):
    """A codec from a codec, a config, config bytes or a spec string.

    A codec passed in is returned as it is (``backend`` must then be None or match).
    """
    if isinstance(codec, str):
        return codec_from_spec(codec, backend)
    if hasattr(codec, "encode") and hasattr(codec, "config"):
        if backend is not None and backend != codec.backend:
            raise ConfigError(f"the codec runs on the {codec.backend} backend, not {backend}")
        return codec
    return codec_from_config(codec, backend)
