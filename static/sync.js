/**
 * sync.js: keeps a ClarkHashStore (static/clark-hash-store.js) in sync with
 * `clark-hash serve`, with an offline queue in IndexedDB. UI-agnostic: the
 * page listens to events and calls a few methods.
 *
 *   import { ClarkHashSync } from "./static/sync.js";
 *   const sync = await ClarkHashSync.open({ store, token });   // same origin as the page
 *   sync.addEventListener("state", (e) => show(e.detail));     // {status, pending, ...}
 *   sync.addEventListener("change", (e) => refresh(e.detail)); // {added: [ids], removed: [ids]}
 *   await sync.addMany(vectors, { ids: ["note-1", "note-2"] }); // store.addMany + queue
 *   await sync.delete(["note-1"]);                             // store.delete + queue
 *   await sync.syncNow();                                      // push the queue, pull deltas
 *
 * Status values (honest: "idle" = in sync is only ever shown after a round trip
 * that succeeded, and only until the next failure or local edit):
 * "unsynced" (no successful round trip yet), "idle" (in sync), "pending"
 * (local edits queued), "syncing", "offline" (network down or server
 * unreachable; edits stay queued; state.lastSync = time of the last success,
 * kept across reloads), "error" (refused: bad token, wrong passphrase, config
 * mismatch...; see state.lastError).
 * With `autoSync` (default true) it syncs when the browser comes online, a
 * moment after each local edit, and every `intervalMs`.
 *
 * Ids: synced ids are strings (the server's rule); use string ids in a synced store.
 *
 * Note bodies (optional, end-to-end encrypted): pass `passphrase` (or a
 * "chk1_..." random key, see sync-crypto.js) and `notes: {text(id) ->
 * Promise<string|null>, apply(Map id -> text) -> Promise}`. Each pushed put
 * then carries its note text encrypted (AES-GCM, key from PBKDF2 with the
 * collection's salt); pulled payloads are decrypted and handed to
 * notes.apply before the sketches change. A wrong passphrase is caught by the
 * collection's key check before anything is sent or applied (status "error",
 * lastError "Wrong passphrase ..."). Without a passphrase no text leaves the
 * device and pulled payloads are ignored.
 *
 * Convergence rule (same as the server, see clark_hash_web/sync/store.py):
 * every change carries (Lamport clock, device name); for each id the change
 * with the larger pair wins (clock first, then device name in code-point
 * order), deletes leave tombstones. Local edits take clock = largest clock
 * seen + 1.
 *
 * IndexedDB: database "clark-hash-sync:" + store name + ":" + collection, version 1:
 *   state  key "state" -> {device, cursor, clock, outbox, lastSync}
 *          outbox = {pushId, changes: [[id, "put"|"del", clock], ...]} while a
 *          push is in flight (a retry after a crash re-sends the same push id)
 *   items  key id (string) -> {clock, device, deleted, dirty}
 *          the version of every id this device knows; dirty = not yet pushed
 *
 * Wire format: the binary envelopes of clark_hash_web/formats/sync_wire.py (v2:
 * with a payload section) around sketch files (clark_hash_web/formats/sketch_file.py,
 * format v2 written, v1 and v2 read, ids kind 2, any codec kind); both are written
 * and checked here byte for byte like the Python side.
 */

import { openDB as openStoreDB } from "./idb-store.js";
import { WrongKeyError, decryptNote, encryptNote, keyFromText, makeKeyCheck, verifyKeyCheck } from "./sync-crypto.js";

const SYNC_MAGIC = "CHSYNCMS";
const SKETCH_MAGIC = "CHSKETCH";
const KIND_PUSH = 1;
const KIND_PULL = 2;
const DEFAULT_CHUNK_BYTES = 4 * 1024 * 1024;

/** Error of the sync client; `type` like the server's error kinds. */
export class SyncError extends Error {
  constructor(type, message, status = 0) {
    super(`${type}: ${message}`);
    this.name = "SyncError";
    this.type = type;
    this.status = status;
  }
}

// -- CRC-32 (zlib.crc32) ------------------------------------------------------------
const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** zlib.crc32 of a Uint8Array. */
export function crc32(bytes) {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function concat(parts) {
  const n = parts.reduce((a, p) => a + p.length, 0);
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}

function ascii(s) { return Uint8Array.from(s, (c) => c.charCodeAt(0)); }
function hexBytes(h) { return Uint8Array.from(h.match(/../g), (x) => parseInt(x, 16)); }
function bytesHex(u) { return Array.from(u, (b) => b.toString(16).padStart(2, "0")).join(""); }

function withCrc(body) {
  const out = new Uint8Array(body.length + 4);
  out.set(body);
  new DataView(out.buffer).setUint32(body.length, crc32(body), true);
  return out;
}

/**
 * Sketch file v2 bytes (ids kind 2), identical to Python's sketch_file.to_bytes.
 * @param {{configBytes: Uint8Array, fingerprint: string, codeBytes: number, dot: boolean}} cfg
 * @param {Uint8Array} codes  n * codeBytes
 * @param {Uint16Array|null} norms
 * @param {string[]} ids
 */
export function sketchFileBytes(cfg, codes, norms, ids) {
  const n = ids.length;
  const enc = new TextEncoder();
  const idBytes = ids.map((s) => enc.encode(s));
  const head = new Uint8Array(40);
  const dv = new DataView(head.buffer);
  head.set(ascii(SKETCH_MAGIC), 0);
  dv.setUint16(8, 2, true);  // format version 2
  head[10] = cfg.configBytes[0];  // codec kind
  head[11] = cfg.dot ? 1 : 0;
  head[12] = 2;
  head.set(hexBytes(cfg.fingerprint), 16);
  dv.setBigUint64(24, BigInt(n), true);
  dv.setUint32(32, cfg.codeBytes, true);
  dv.setUint32(36, cfg.configBytes.length, true);  // v2: u32 config length (v1: u16 at 14)
  const normBytes = cfg.dot ? new Uint8Array(2 * n) : new Uint8Array(0);
  if (cfg.dot) {
    const ndv = new DataView(normBytes.buffer);
    for (let i = 0; i < n; i++) ndv.setUint16(2 * i, norms[i], true);
  }
  const offs = new Uint8Array(4 * (n + 1));
  const odv = new DataView(offs.buffer);
  let o = 0;
  for (let i = 0; i < n; i++) { odv.setUint32(4 * i, o, true); o += idBytes[i].length; }
  odv.setUint32(4 * n, o, true);
  return withCrc(concat([head, cfg.configBytes, codes, normBytes, offs, ...idBytes]));
}

/**
 * Parse a sketch file (format v1 or v2) with string ids. Checks what Python's
 * sketch_file.from_bytes checks (header fields, lengths, CRC, ids, Clark Hash padding
 * bits), comparing the config bytes with `expect`.
 * @param {Uint8Array} u8
 * @param {{configBytes: Uint8Array, fingerprint: string, codeBytes: number, dot: boolean, padBits: number}} [expect]
 */
export function parseSketchFile(u8, expect) {
  const fail = (m) => { throw new SyncError("BadBody", `sketch file: ${m}`); };
  if (u8.length < 44) fail("truncated");
  const dv = new DataView(u8.buffer, u8.byteOffset, u8.byteLength);
  if (String.fromCharCode(...u8.subarray(0, 8)) !== SKETCH_MAGIC) fail("bad magic");
  const version = dv.getUint16(8, true);
  if (version !== 1 && version !== 2) fail(`unsupported version ${version}`);
  const flags = u8[11], idKind = u8[12];
  const reserved = version === 1 ? dv.getUint32(36, true) : dv.getUint16(14, true);
  if (flags & ~1 || u8[13] !== 0 || reserved !== 0) fail("reserved bits set");
  const C = version === 1 ? dv.getUint16(14, true) : dv.getUint32(36, true);
  if (40 + C + 4 > u8.length) fail("truncated (config)");
  const fingerprint = bytesHex(u8.subarray(16, 24));
  const n = Number(dv.getBigUint64(24, true));
  const codeBytes = dv.getUint32(32, true);
  if (expect && fingerprint !== expect.fingerprint) {
    throw new SyncError("ConfigMismatch", `codes of config ${fingerprint}, the store uses ${expect.fingerprint}`);
  }
  if (expect) {
    const cb = u8.subarray(40, 40 + C);
    if (C !== expect.configBytes.length || cb.some((x, i) => x !== expect.configBytes[i]) || u8[10] !== cb[0]) {
      fail("config bytes differ from the store's config");
    }
    if (codeBytes !== expect.codeBytes || Boolean(flags & 1) !== expect.dot) fail("code length or norm flag mismatch");
  }
  if (idKind !== 2) fail("expected string ids");
  let o = 40 + C;
  const codesEnd = o + n * codeBytes;
  const normsEnd = codesEnd + (flags & 1 ? 2 * n : 0);
  const offsEnd = normsEnd + 4 * (n + 1);
  if (offsEnd + 4 > u8.length) fail("truncated");
  if (crc32(u8.subarray(0, u8.length - 4)) !== dv.getUint32(u8.length - 4, true)) fail("CRC mismatch");
  if (offsEnd + 4 + 0 > u8.length || (expect && offsEnd + dv.getUint32(normsEnd + 4 * n, true) + 4 !== u8.length)) {
    fail("length does not match the header");
  }
  const codes = u8.slice(o, codesEnd);
  if (expect && expect.padBits) {
    const mask = (0xff << (8 - expect.padBits)) & 0xff;
    for (let i = 0; i < n; i++) if (codes[(i + 1) * codeBytes - 1] & mask) fail(`code row ${i} has padding bits set`);
  }
  let norms = null;
  if (flags & 1) {
    norms = new Uint16Array(n);
    for (let i = 0; i < n; i++) norms[i] = dv.getUint16(codesEnd + 2 * i, true);
  }
  const dec = new TextDecoder("utf-8", { fatal: true });
  const ids = [];
  const blob = offsEnd;
  if (dv.getUint32(normsEnd, true) !== 0 || blob + dv.getUint32(normsEnd + 4 * n, true) !== u8.length - 4) {
    fail("bad id offsets");
  }
  for (let i = 0; i < n; i++) {
    const a = dv.getUint32(normsEnd + 4 * i, true), b = dv.getUint32(normsEnd + 4 * i + 4, true);
    if (b < a || blob + b > u8.length - 4) fail("bad id offsets");
    try { ids.push(dec.decode(u8.subarray(blob + a, blob + b))); } catch (e) { fail("id is not UTF-8"); }
  }
  if (new Set(ids).size !== n) fail("duplicate ids");
  return { configBytes: u8.slice(40, 40 + C), fingerprint, codeBytes, n, codes, norms, ids };
}

/** The payload section of a message: (n+1) u32 offsets, then the blobs (empty = no payload). */
export function payloadSection(payloads) {
  if (!payloads.some((p) => p && p.length)) return new Uint8Array(0);
  const offs = new Uint8Array(4 * (payloads.length + 1));
  const odv = new DataView(offs.buffer);
  let o = 0;
  payloads.forEach((p, i) => {
    if (p && p.length > 65536) throw new SyncError("BadBody", `payload ${i} has ${p.length} bytes, at most 65536`);
    o += p ? p.length : 0;
    odv.setUint32(4 * (i + 1), o, true);
  });
  return concat([offs, ...payloads.filter((p) => p && p.length)]);
}

function parsePayloads(sec, n, fail) {
  if (!sec.length) return new Array(n).fill(null);
  const head = 4 * (n + 1);
  if (!n || sec.length < head) fail("payload section too short");
  const dv = new DataView(sec.buffer, sec.byteOffset, sec.byteLength);
  if (dv.getUint32(0, true) !== 0 || head + dv.getUint32(4 * n, true) !== sec.length) fail("bad payload offsets");
  const out = [];
  for (let i = 0; i < n; i++) {
    const a = dv.getUint32(4 * i, true), b = dv.getUint32(4 * i + 4, true);
    if (b < a || b - a > 65536) fail(`bad payload ${i}`);
    out.push(b > a ? sec.slice(head + a, head + b) : null);
  }
  return out;
}

/** A sync envelope, version 2 (see clark_hash_web/formats/sync_wire.py). */
export function envelopeBytes(kind, meta, sketch, payloads = new Uint8Array(0)) {
  const m = new TextEncoder().encode(JSON.stringify(meta));
  const head = new Uint8Array(24);
  const dv = new DataView(head.buffer);
  head.set(ascii(SYNC_MAGIC), 0);
  dv.setUint16(8, 2, true);
  head[10] = kind;
  dv.setUint32(12, m.length, true);
  dv.setUint32(16, sketch.length, true);
  dv.setUint32(20, payloads.length, true);
  return withCrc(concat([head, m, sketch, payloads]));
}

/** Parse an envelope (v1 or v2): {kind, meta, sketch (may be empty), payloads (section bytes)}. */
export function parseEnvelope(u8) {
  const fail = (m) => { throw new SyncError("BadBody", `sync message: ${m}`); };
  if (u8.length < 28) fail("truncated");
  const dv = new DataView(u8.buffer, u8.byteOffset, u8.byteLength);
  if (String.fromCharCode(...u8.subarray(0, 8)) !== SYNC_MAGIC) fail("bad magic");
  const version = dv.getUint16(8, true);
  if (version !== 1 && version !== 2) fail(`unsupported version ${version}`);
  const P = dv.getUint32(20, true);
  if (u8[11] !== 0 || (version === 1 && P !== 0)) fail("reserved bytes must be 0");
  const M = dv.getUint32(12, true), S = dv.getUint32(16, true);
  if (24 + M + S + P + 4 !== u8.length) fail("truncated");
  if (crc32(u8.subarray(0, u8.length - 4)) !== dv.getUint32(u8.length - 4, true)) fail("CRC mismatch");
  let meta;
  try {
    meta = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(u8.subarray(24, 24 + M)));
  } catch (e) {
    fail("meta is not UTF-8 JSON");
  }
  if (!meta || typeof meta !== "object" || Array.isArray(meta)) fail("meta must be an object");
  return { kind: u8[10], meta, sketch: u8.subarray(24 + M, 24 + M + S), payloads: u8.subarray(24 + M + S, 24 + M + S + P) };
}

const isClock = (x) => Number.isSafeInteger(x) && x >= 0;
const isName = (x) => typeof x === "string" && /^[A-Za-z0-9_.-]{1,64}$/.test(x);
const isId = (x) => typeof x === "string" && x.length > 0;

/**
 * Parse and check a pull page: {puts: [{id, clock, device, row}], deletes: [...], sketch, meta}.
 * Throws SyncError for anything malformed (the server is trusted with the token, not its bytes).
 */
export function parsePullPage(u8, expect) {
  const fail = (m) => { throw new SyncError("BadBody", `pull page: ${m}`); };
  const env = parseEnvelope(u8);
  if (env.kind !== KIND_PULL) fail("not a pull page");
  const m = env.meta;
  if (!isClock(m.cursor) || typeof m.more !== "boolean") fail("bad cursor/more");
  const sk = env.sketch.length ? parseSketchFile(env.sketch, expect) : null;
  const n = sk ? sk.n : 0;
  if (!isClock(m.last_seq)) fail("bad last_seq");
  const seqs = m.put_seqs ?? [];
  if (!Array.isArray(seqs) || seqs.length !== n || !seqs.every((x) => isClock(x) && x >= 1)) fail("bad put_seqs");
  for (const k of ["put_clocks", "put_devices", "deletes"]) if (!Array.isArray(m[k] ?? [])) fail(`${k} is not a list`);
  const clocks = m.put_clocks ?? [], devices = m.put_devices ?? [], dels = m.deletes ?? [];
  if (clocks.length !== n || devices.length !== n) fail("put_clocks/put_devices do not match the sketch rows");
  const payloads = parsePayloads(env.payloads, n, fail);
  const puts = [], deletes = [];
  for (let i = 0; i < n; i++) {
    if (!isClock(clocks[i]) || !isName(devices[i])) fail(`bad clock or device of put ${i}`);
    puts.push({ id: sk.ids[i], clock: clocks[i], device: devices[i], deleted: false, row: i, payload: payloads[i] });
  }
  const seen = new Set(sk ? sk.ids : []);
  for (const d of dels) {
    if (!Array.isArray(d) || d.length !== 4 || !isId(d[0]) || !isClock(d[1]) || !isName(d[2]) ||
        !isClock(d[3]) || d[3] < 1) fail("bad delete entry");
    if (seen.has(d[0])) fail("an id appears twice");
    seen.add(d[0]);
    deletes.push({ id: d[0], clock: d[1], device: d[2], deleted: true });
  }
  return { puts, deletes, sketch: sk, meta: m };
}

// -- IndexedDB of the sync state ----------------------------------------------------------
function req(r) {
  return new Promise((resolve, reject) => { r.onsuccess = () => resolve(r.result); r.onerror = () => reject(r.error); });
}
function done(tx) {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error || new SyncError("StorageError", "transaction aborted"));
  });
}
function openSyncDB(name) {
  const r = indexedDB.open(name, 1);
  r.onupgradeneeded = () => {
    for (const s of ["state", "items"]) if (!r.result.objectStoreNames.contains(s)) r.result.createObjectStore(s);
  };
  return req(r);
}
async function readStoreConfig(storeName) {
  const db = await openStoreDB(storeName);
  try {
    const meta = await req(db.transaction("meta").objectStore("meta").get("meta"));
    if (!meta) throw new SyncError("StorageError", `store ${storeName} has no config yet`);
    return { configBytes: new Uint8Array(meta.configBytes), fingerprint: meta.fingerprint };
  } finally {
    db.close();
  }
}

const later = (a, b) => a.clock > b.clock || (a.clock === b.clock && a.device > b.device);
const same = (a, b) => a.clock === b.clock && a.device === b.device;

function randomName(prefix) {
  const u = new Uint8Array(12);
  crypto.getRandomValues(u);
  return prefix + bytesHex(u);
}

/** Sync of one ClarkHashStore with one server collection. Emits "state" and "change" events. */
export class ClarkHashSync extends EventTarget {
  /**
   * @param {object} opts
   * @param {import("./clark-hash-store.js").ClarkHashStore} opts.store
   * @param {string} opts.token            the server's token (shown at its first start)
   * @param {string} [opts.collection]     default: the store name
   * @param {string} [opts.url]            server origin, default: the page's origin
   * @param {string} [opts.device]         default: a random name kept in IndexedDB
   * @param {boolean} [opts.autoSync=true]
   * @param {number} [opts.intervalMs=30000]
   * @param {number} [opts.chunkBytes]     largest push body (server limit: 8 MiB by default)
   * @param {string} [opts.passphrase]     encrypts note bodies (or a "chk1_..." random key)
   * @param {{text: Function, apply: Function}} [opts.notes]  note bodies to sync (see above)
   * @returns {Promise<ClarkHashSync>}
   */
  static async open(opts) {
    const s = new ClarkHashSync(opts);
    await s._init(opts);
    return s;
  }

  constructor(opts) {
    super();
    this.store = opts.store;
    this.token = opts.token;
    this.collection = opts.collection ?? opts.store.name;
    this.url = (opts.url ?? location.origin).replace(/\/$/, "");
    this.chunkBytes = opts.chunkBytes ?? DEFAULT_CHUNK_BYTES;
    this.pullLimit = opts.pullLimit ?? 5000;
    this.passphrase = opts.passphrase ?? "";
    this.notes = opts.notes ?? null;
    this.iterations = opts.iterations;  // PBKDF2 iterations: the default (600,000) unless a test lowers it
    this.state = { status: "unsynced", pending: 0, cursor: 0, lastSync: null, lastError: null,
                   online: typeof navigator === "undefined" ? true : navigator.onLine };
    this._outcome = "never";  // of the last round trip: "never" | "ok" | "offline" | "error"
    this._syncing = false;
    this._running = null;
    this._timer = null;
  }

  async _init(opts) {
    const cfg = await readStoreConfig(this.store.name);
    const c = this.store.config;
    const clark = cfg.configBytes[0] === 1;  // codec kind 1: Clark Hash (padding bits checked here)
    const codeBytes = c.code_bytes ?? Math.ceil(c.sketch_dim * c.bits / 8);
    this.cfg = { ...cfg, codeBytes, dot: c.metric === "dot", padBits: clark ? codeBytes * 8 - c.sketch_dim * c.bits : 0 };
    if (cfg.fingerprint !== c.fingerprint) throw new SyncError("ConfigMismatch", "store meta and config disagree");
    this.db = await openSyncDB(`clark-hash-sync:${this.store.name}:${this.collection}`);
    let st = await req(this.db.transaction("state").objectStore("state").get("state"));
    if (!st) {
      st = { device: opts.device ?? randomName("web-"), cursor: 0, clock: 0, outbox: null };
      await this._putState(st);
    }
    this.device = st.device;
    this.state.cursor = st.cursor;
    this.state.lastSync = st.lastSync ?? null;
    await this._countPending();
    if (opts.autoSync !== false) {
      this._onOnline = () => { this._set({ online: true }); this.syncNow().catch(() => {}); };
      this._onOffline = () => { this._set({ online: false }); this._countPending().catch(() => {}); };
      addEventListener("online", this._onOnline);
      addEventListener("offline", this._onOffline);
      this._timer = setInterval(() => { if (navigator.onLine) this.syncNow().catch(() => {}); },
        opts.intervalMs ?? 30000);
    }
    this._auto = opts.autoSync !== false;
  }

  /** Stop listening and timers (the queue stays in IndexedDB). */
  close() {
    if (this._onOnline) { removeEventListener("online", this._onOnline); removeEventListener("offline", this._onOffline); }
    if (this._timer) clearInterval(this._timer);
    this.db.close();
  }

  _set(patch) {
    Object.assign(this.state, patch);
    this.dispatchEvent(new CustomEvent("state", { detail: { ...this.state } }));
  }

  async _putState(st) {
    const tx = this.db.transaction("state", "readwrite");
    tx.objectStore("state").put(st, "state");
    await done(tx);
  }

  async _getState() {
    return req(this.db.transaction("state").objectStore("state").get("state"));
  }

  async _allItems() {
    const tx = this.db.transaction("items");
    const os = tx.objectStore("items");
    const [keys, vals] = await Promise.all([req(os.getAllKeys()), req(os.getAll())]);
    return new Map(keys.map((k, i) => [k, vals[i]]));
  }

  /** The status from facts only: "idle" (in sync) needs a successful last round trip and no queue. */
  _status(n) {
    if (this._syncing) return "syncing";
    if (!this.state.online || this._outcome === "offline") return "offline";
    if (this._outcome === "error") return "error";
    if (n) return "pending";
    return this._outcome === "ok" ? "idle" : "unsynced";
  }

  async _countPending() {
    const items = await this._allItems();
    let n = 0;
    for (const v of items.values()) if (v.dirty) n++;
    this._set({ pending: n, status: this._status(n) });
    return n;
  }

  /** Record local edits: a new Lamport clock for each id, marked for pushing. */
  async _record(ids, deleted) {
    const st = await this._getState();
    const tx = this.db.transaction(["items", "state"], "readwrite");
    for (const id of ids) {
      st.clock += 1;
      tx.objectStore("items").put({ clock: st.clock, device: this.device, deleted, dirty: true }, String(id));
    }
    tx.objectStore("state").put(st, "state");
    await done(tx);
    await this._countPending();
    if (this._auto && navigator.onLine) {
      clearTimeout(this._soon);
      this._soon = setTimeout(() => this.syncNow().catch(() => {}), 300);
    }
  }

  /** store.addMany, then queue the new ids for the server. Returns the ids. */
  async addMany(items, opts = {}) {
    const ids = await this.store.addMany(items, opts);
    await this._record(ids, false);
    return ids;
  }

  /** Queue deletes (tombstones first), then delete from the store. */
  async delete(ids) {
    ids = Array.isArray(ids) ? ids : [ids];
    await this._record(ids, true);
    return this.store.delete(ids);
  }

  /** For pages that wrote to the store directly: queue these ids as edited / deleted. */
  recordPut(ids) { return this._record(ids, false); }
  recordDelete(ids) { return this._record(ids, true); }

  async _fetch(method, path, body) {
    let resp;
    try {
      resp = await fetch(this.url + path, {
        method, body, cache: "no-store",
        headers: { Authorization: `Bearer ${this.token}`, "Content-Type": "application/octet-stream" },
      });
    } catch (e) {
      throw new SyncError("Offline", `server unreachable: ${e.message}`);
    }
    if (!resp.ok) {
      let kind = "HTTPError", message = `HTTP ${resp.status}`;
      try { const j = await resp.json(); kind = j.error; message = j.message; } catch (e) { /* not JSON */ }
      throw new SyncError(kind, message, resp.status);
    }
    return resp;
  }

  _path(suffix = "") { return `/api/v1/collections/${encodeURIComponent(this.collection)}${suffix}`; }

  /**
   * Push the queue, then pull every change after the cursor. Concurrent calls share one run.
   * @returns {Promise<{pushed: number, pulled: number, cursor: number}>}
   */
  syncNow() {
    if (!this._running) {
      this._running = this._sync().finally(() => { this._running = null; });
    }
    return this._running;
  }

  async _sync() {
    this._syncing = true;
    this._set({ status: "syncing" });
    try {
      if (!this._collectionReady) {
        const info = await (await this._fetch("PUT", this._path(), this.cfg.configBytes)).json();
        await this._checkKey(info);  // a wrong passphrase stops here: nothing sent, nothing applied
        this._collectionReady = true;
      }
      await this._reconcile();
      const pushed = await this._push();
      const pulled = await this._pull();
      const now = Date.now();
      const st = await this._getState();
      st.lastSync = now;
      await this._putState(st);
      this._syncing = false;
      this._outcome = "ok";
      this._set({ lastSync: now, lastError: null });
      await this._countPending();
      return { pushed, pulled, cursor: this.state.cursor };
    } catch (e) {
      this._syncing = false;
      this._outcome = e.type === "Offline" ? "offline" : "error";
      const message = e instanceof WrongKeyError
        ? `Wrong passphrase for "${this.collection}": the notes on the server cannot be decrypted ` +
          "with it. Nothing was sent and nothing here was changed."
        : e.message;
      this._set({ lastError: message });
      await this._countPending().catch(() => {});
      throw e;
    }
  }

  /** With a passphrase: derive the key from the collection's salt and check it (or set the check). */
  async _checkKey(info) {
    this.key = null;
    if (!this.passphrase) return;
    const key = await keyFromText(this.passphrase, hexBytes(info.salt), this.iterations);
    if (info.key_check) {
      await verifyKeyCheck(key, this.collection, hexBytes(info.key_check));
    } else {
      try {
        await this._fetch("PUT", this._path("/key-check"), await makeKeyCheck(key, this.collection));
      } catch (e) {
        if (e.status !== 409) throw e;  // another device set it first: check against theirs
        const again = await (await this._fetch("GET", this._path())).json();
        await verifyKeyCheck(key, this.collection, hexBytes(again.key_check));
      }
    }
    this.key = key;
  }

  /** Ids in the store that the sync state has never seen (e.g. a crash between writes) get queued. */
  async _reconcile() {
    const items = await this._allItems();
    const missing = (await this.store.ids()).map(String).filter((id) => !items.has(id));
    if (missing.length) await this._record(missing, false);
  }

  async _push() {
    const st = await this._getState();
    if (!st.outbox) {
      const items = await this._allItems();
      const changes = [];
      for (const [id, v] of items) if (v.dirty) changes.push([id, v.deleted ? "del" : "put", v.clock]);
      if (!changes.length) return 0;
      st.outbox = { pushId: randomName("p"), changes };
      await this._putState(st);  // a retry after a crash re-sends this same push id
    }
    const { pushId, changes } = st.outbox;
    const all = await this.store.codes();
    const row = new Map(all.ids.map((id, i) => [String(id), i]));
    const cb = this.cfg.codeBytes;
    const puts = [], dels = [];
    for (const [id, op, clock] of changes) {
      if (op === "put" && row.has(id)) puts.push([id, clock, row.get(id), null]);
      else dels.push([id, clock]);  // a put whose row is gone was deleted since: send a delete
    }
    if (this.key && this.notes) {  // note bodies, encrypted here: the server sees ciphertext only
      for (const p of puts) {
        const text = await this.notes.text(p[0]);
        if (text != null) p[3] = await encryptNote(this.key, this.collection, p[0], text);
      }
    }
    // chunks under the body limit (same estimate as sync_wire.split_for_push)
    const budget = Math.max(1, this.chunkBytes - 2048);
    const chunks = [];
    let cur = { puts: [], dels: [] }, size = 0;
    const add = (kind, x, n) => {
      if ((cur.puts.length || cur.dels.length) && size + n > budget) { chunks.push(cur); cur = { puts: [], dels: [] }; size = 0; }
      cur[kind].push(x); size += n;
    };
    for (const p of puts) add("puts", p, new TextEncoder().encode(p[0]).length + 25 + cb + 2 + (p[3] ? p[3].length : 0));
    for (const d of dels) add("dels", d, JSON.stringify(d[0]).length + 21);
    chunks.push(cur);
    let result = null;
    for (let k = 0; k < chunks.length; k++) {
      const c = chunks[k];
      let sketch = new Uint8Array(0), payloads = new Uint8Array(0);
      if (c.puts.length) {
        payloads = payloadSection(c.puts.map((p) => p[3]));
        const codes = new Uint8Array(c.puts.length * cb);
        const norms = this.cfg.dot ? new Uint16Array(c.puts.length) : null;
        c.puts.forEach(([, , r], i) => {
          codes.set(all.codes.subarray(r * cb, (r + 1) * cb), i * cb);
          if (norms) norms[i] = all.normCodes[r];
        });
        sketch = sketchFileBytes(this.cfg, codes, norms, c.puts.map((p) => p[0]));
      }
      const meta = { push_id: pushId, chunk: k, chunks: chunks.length, device: this.device,
                     put_clocks: c.puts.map((p) => p[1]), deletes: c.dels };
      const resp = await this._fetch("POST", this._path("/push"), envelopeBytes(KIND_PUSH, meta, sketch, payloads));
      result = await resp.json();
      if (result.status === "committed") break;
    }
    // the push is on the server: clear dirty flags of entries not edited again since
    const tx = this.db.transaction(["items", "state"], "readwrite");
    const os = tx.objectStore("items");
    for (const [id, , clock] of changes) {
      const v = await req(os.get(id));
      if (v && v.clock === clock && v.device === this.device) { v.dirty = false; os.put(v, id); }
    }
    const st2 = await req(tx.objectStore("state").get("state"));
    st2.outbox = null;
    tx.objectStore("state").put(st2, "state");
    await done(tx);
    this.dispatchEvent(new CustomEvent("pushed", { detail: result }));
    return changes.length;
  }

  async _pull() {
    let pulled = 0;
    for (;;) {
      const st = await this._getState();
      const resp = await this._fetch("GET", this._path(`/changes?since=${st.cursor}&limit=${this.pullLimit}`));
      const page = parsePullPage(new Uint8Array(await resp.arrayBuffer()), this.cfg);
      const m = page.meta;
      const incoming = page.puts.concat(page.deletes);
      pulled += incoming.length;
      await this._applyPulled(incoming, page.sketch, m.cursor);
      this._set({ cursor: m.cursor });
      if (!m.more) return pulled;
    }
  }

  async _applyPulled(incoming, sk, cursor) {
    const items = await this._allItems();
    const present = new Map((await this.store.ids()).map((id) => [String(id), id]));
    const winners = incoming.filter((ch) => {
      const local = items.get(ch.id);
      if (!local || later(ch, local)) return true;
      // same version: make sure the store agrees (repairs a crash between the two databases)
      return same(ch, local) && !local.dirty && ch.deleted === present.has(ch.id);
    });
    // note bodies first, all of them or none: a payload that does not decrypt stops the page
    const texts = new Map();
    if (this.key) {
      for (const ch of winners) {
        if (!ch.deleted && ch.payload) texts.set(ch.id, await decryptNote(this.key, this.collection, ch.id, ch.payload));
      }
    }
    if (texts.size && this.notes) await this.notes.apply(texts);
    const remove = winners.filter((ch) => present.has(ch.id)).map((ch) => present.get(ch.id));
    if (remove.length) await this.store.delete(remove);
    const puts = winners.filter((ch) => !ch.deleted);
    if (puts.length) {
      const cb = this.cfg.codeBytes;
      const codes = new Uint8Array(puts.length * cb);
      const norms = this.cfg.dot ? new Uint16Array(puts.length) : null;
      puts.forEach((ch, i) => {
        codes.set(sk.codes.subarray(ch.row * cb, (ch.row + 1) * cb), i * cb);
        if (norms) norms[i] = sk.norms[ch.row];
      });
      await this.store.importSketchFile(sketchFileBytes(this.cfg, codes, norms, puts.map((c) => c.id)));
    }
    const st = await this._getState();
    const tx = this.db.transaction(["items", "state"], "readwrite");
    for (const ch of winners) {
      tx.objectStore("items").put({ clock: ch.clock, device: ch.device, deleted: ch.deleted, dirty: false }, ch.id);
    }
    for (const ch of incoming) st.clock = Math.max(st.clock, ch.clock);
    st.cursor = cursor;
    tx.objectStore("state").put(st, "state");
    await done(tx);
    if (winners.length) {
      this.dispatchEvent(new CustomEvent("change", {
        detail: { added: puts.map((c) => c.id), removed: winners.filter((c) => c.deleted).map((c) => c.id),
                  texts: [...texts.keys()] },
      }));
    }
  }
}

/**
 * A short human label of a sync state, for a status line next to a "Sync" button.
 * @param {{status: string, pending: number, lastSync: number|null, lastError: string|null}} s
 */
export function syncStatusText(s) {
  const n = s.pending ?? 0;
  const count = `${n} change${n === 1 ? "" : "s"} queued`;
  const queued = n ? `, ${count}` : "";
  const last = s.lastSync ? `last sync ${new Date(s.lastSync).toLocaleTimeString()}` : "never synced";
  switch (s.status) {
    case "syncing": return `Syncing…${queued}`;
    case "offline": return s.online === false
      ? `Offline, ${count} (${last})`
      : `Server unreachable, ${count} (${last})`;
    case "error": return `Sync error: ${s.lastError}${n ? ` (${count})` : ""}`;
    case "pending": return `Not synced yet${queued} (${last})`;
    case "idle": return `In sync (${new Date(s.lastSync).toLocaleTimeString()})`;
    default: return `Not synced yet${queued} (${last})`;
  }
}
