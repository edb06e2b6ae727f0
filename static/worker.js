/**
 * worker.js: the Web Worker behind clark-hash-store.js.
 *
 * Boots Pyodide from the site's pyodide/ folder with the clark_hash_web wheel
 * and its bytecode unpacked into site-packages (or from an opt-in interpreter
 * snapshot; numpy, when build-info.json names a wheel, loads later: see
 * "start-up" below), then answers messages {id, op, args} with
 * {id, ok: true, result} or {id, ok: false, error: {type, message, details}}.
 *
 * Python (clark_hash_web.browser.bridge) validates and encodes; this file
 * only moves bytes between Python and IndexedDB (idb-store.js). A write is
 * planned in Python, written in one transaction, and applied to the
 * in-memory index only after the transaction committed.
 *
 * Search: Clark Hash stores through the JS prefilter (prefilter-scan.js) and
 * exact ranking in Python; binary and E8 stores through the exact JS table
 * scan (table-scan.js; normalized learned-E8 stores also keep a row scale
 * per row beside the codes, normalized-scores.js); with {rescore: N}, the
 * best N of either are re-ranked in JS from the store's int8 rows (two-stage
 * stores, vectors: "int8").
 *
 * Rows (stored-rows.js): at open the records are packed into one buffer of
 * codes (and int8 rows), which the JS scan reads in place, and a short list
 * of blocks whose id records name the rows found; every committed write plan
 * is applied to them (StoredRows.applyPlan), so they always equal the
 * IndexedDB records. Searches need nothing else (binary and E8: the exact JS
 * scan; Clark Hash: the JS prefilter, then Python ranks the candidates from
 * their codes, BrowserStore.rank_codes), and neither do writes: Python plans
 * them from the new rows and the worker's view of the stored ones
 * (storedView). Python's index is a read cache of the rows, loaded only for
 * codes(), export() and searches of Clark Hash stores of at most
 * prefilterMinRows rows (Python searches those alone), and dropped at every
 * write. Opening, searching and writing at 1M sketches keeps one copy of the
 * codes (benchmarks/browser_million.py).
 */

import * as idb from "./idb-store.js";
import { PrefilterScanner } from "./prefilter-scan.js";
import { TableScanner, byteTables, topRows, rescoreInt8, rankRescored } from "./table-scan.js";
import { StoredRows } from "./stored-rows.js";
import { rowScaler, finishScores } from "./normalized-scores.js";

let py = null;        // the Pyodide instance
let bridge = null;    // clark_hash_web.browser.bridge (PyProxy)
let bootInfo = null;
const stores = new Map();   // handle -> {name, db, py: BrowserStore PyProxy, rows: StoredRows, scan: scanData() cache or null, decoded}
let nextHandle = 1;

// JS null becomes pyodide.ffi.jsnull in Python, not None: pass undefined for "absent".

/** Python result -> plain JS (dicts to objects, bytes to Uint8Array). */
function toJs(x) {
  if (x && typeof x.toJs === "function") {
    const out = x.toJs({ dict_converter: Object.fromEntries, create_pyproxies: false });
    x.destroy();
    return out;
  }
  return x;
}

/** Python error -> {type, message, details}. */
function describeError(e) {
  if (e && e.type && e.constructor && e.constructor.name === "PythonError") {
    const lines = String(e.message).trim().split("\n");
    const last = lines[lines.length - 1];
    const m = /^([\w.]+): ([\s\S]*)$/.exec(last);
    const type = (e.type || (m && m[1]) || "PythonError").split(".").pop();
    return { type, message: m ? m[2] : last, details: {} };
  }
  if (e && e.name === "QuotaExceededError") {
    return { type: "QuotaExceededError", message: `storage quota exceeded: nothing of this batch was written (${e.message})`, details: {} };
  }
  if (e && e.type) return { type: e.type, message: e.message, details: e.details || {} };
  const name = (e && e.name) || "Error";
  if (e instanceof DOMException) {
    return { type: "StorageError", message: `${name}: ${e.message} (nothing of this batch was written)`, details: {} };
  }
  return { type: "WorkerError", message: `${name}: ${e && e.message ? e.message : e}`, details: {} };
}

function fail(type, message) {
  const e = new Error(message);
  e.type = type;
  e.message = message;
  return Object.assign(e, { details: {} });
}

function storeOf(handle) {
  const s = stores.get(handle);
  if (!s) throw fail("InvalidInputError", `no open store with handle ${handle} (closed?)`);
  return s;
}

// -- start-up ---------------------------------------------------------------------------
// Pyodide boots from the site's pyodide/ folder; its python_stdlib.zip carries
// a .pyc beside every .py (build_scripts/compile_bytecode.mjs), so Python does
// not compile its ~190 start-up modules on every visit (the biggest part of a
// start). Our wheel is fetched while Pyodide loads and unpacked straight into
// site-packages (pyodide.unpackArchive: no lock file, no package resolution),
// with its bytecode zip (__pycache__/*.pyc made by the same build step).
//
// Opt-in (new ClarkHashRuntime({snapshot: true})): after a cold start a memory
// snapshot of the interpreter (Pyodide's _makeSnapshot/_loadSnapshot: the wasm
// heap, about 31 MB) is written to the IndexedDB database "clark-hash-runtime"
// in the background, and later starts restore it and unpack the wheel again
// (the snapshot holds the heap, not the in-memory file system). Measured on 2
// cores with 100k stored sketches: warm start 0.9-1.2 s instead of 1.3-1.6 s,
// 31 MB of the origin's quota, and the visit that writes it does more work. The snapshot is keyed by the
// Pyodide version and the sha256 of the stdlib zip and of our wheel, so a new
// build never restores an old interpreter; one that fails to restore is
// deleted and the start falls back to a cold one; it is not saved when the
// origin has less than SNAP_FREE_FACTOR times its size of quota left.
//
// numpy (when the site ships it and the page asked for it) is not part of the
// start: it loads once the worker has been idle for NUMPY_IDLE_MS, or at once
// when an operation needs it (a store opened with backend "numpy", the
// "numpy" op). Stores opened with backend "auto" move to it when it is ready
// (same codes and scores, faster batch encoding); the page gets a "backend"
// event {store, backend}.
const SNAP_DB = "clark-hash-runtime";
const SNAP_KEY = "interpreter";
const SNAP_LAYOUT = 2;          // bump when what the snapshot holds changes
const SNAP_FREE_FACTOR = 4;
const NUMPY_IDLE_MS = 100;

let snapshotSave = null;        // Promise<string> of a background snapshot write
let numpy = { state: "off", url: null, promise: null };   // state: off | waiting | loading | ready | failed: ...

function snapDB() {
  const r = indexedDB.open(SNAP_DB, 1);
  r.onupgradeneeded = () => r.result.createObjectStore("snapshots");
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

/** Run one request against the snapshot store; resolves when its transaction completes. */
async function snapRequest(mode, use) {
  const db = await snapDB();
  try {
    const tx = db.transaction("snapshots", mode);
    const req = use(tx.objectStore("snapshots"));
    await new Promise((resolve, reject) => {
      tx.oncomplete = resolve;
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error || new Error("snapshot transaction aborted"));
    });
    return req.result;
  } finally {
    db.close();
  }
}

/**
 * 32-bit checksum of the snapshot bytes (length included). Pyodide hangs on a
 * damaged heap image instead of failing, so a record is checked before use.
 */
function snapshotChecksum(bytes) {
  const words = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >>> 2);
  let h = bytes.byteLength >>> 0;
  for (let i = 0; i < words.length; i++) h = Math.imul(h ^ words[i], 0x9e3779b1) ^ (h >>> 15);
  for (let i = words.length * 4; i < bytes.byteLength; i++) h = Math.imul(h ^ bytes[i], 0x9e3779b1);
  return h >>> 0;
}

/** The stored snapshot record {key, sitePackages, bytes, checksum} when its key and checksum match, else null. */
async function readSnapshot(key) {
  try {
    const rec = await snapRequest("readonly", (os) => os.get(SNAP_KEY));
    if (!rec || rec.key !== key || !(rec.bytes instanceof Uint8Array)) return null;
    if (rec.bytes.byteLength % 4 || snapshotChecksum(rec.bytes) !== rec.checksum) {
      await snapRequest("readwrite", (os) => os.delete(SNAP_KEY));
      return null;
    }
    return rec;
  } catch (e) {
    return null;   // no database or unreadable: start cold
  }
}

/** Write the snapshot unless the origin is short of quota; resolves to "saved" / "skipped: ..." / "failed: ...". */
async function saveSnapshot(rec) {
  try {
    const est = navigator.storage && navigator.storage.estimate ? await navigator.storage.estimate() : null;
    if (est && est.quota - est.usage < SNAP_FREE_FACTOR * rec.bytes.byteLength) {
      return `skipped: ${Math.round((est.quota - est.usage) / 2 ** 20)} MiB of quota left`;
    }
    await snapRequest("readwrite", (os) => os.put(rec, SNAP_KEY));
    return "saved";
  } catch (e) {
    return `failed: ${e && e.message ? e.message : e}`;
  }
}

/**
 * Start Python with our wheel (and its bytecode zip, when built) installed and
 * the bridge imported. `rec` is the stored snapshot record matching `key` (or null).
 * @returns {Promise<{py, snapshot: string}>} snapshot: "off" | "restored" | "saving" | "failed: ..."
 */
async function startPython(loadPyodide, indexURL, wheel, bytecode, key, useSnapshot, rec) {
  const install = (p, sitePackages) => {
    p.unpackArchive(wheel, "wheel", { extractDir: sitePackages });
    if (bytecode) p.unpackArchive(bytecode, "zip", { extractDir: sitePackages });
  };
  if (useSnapshot) {
    if (rec) {
      try {
        const p = await loadPyodide({ indexURL, _loadSnapshot: rec.bytes });
        install(p, rec.sitePackages);
        return { py: p, snapshot: "restored" };
      } catch (e) {
        await snapRequest("readwrite", (os) => os.delete(SNAP_KEY)).catch(() => {});
      }
    }
  }
  let sitePackages = null;
  const p = await loadPyodide({
    indexURL, _makeSnapshot: useSnapshot,
    fsInit: async (FS, info) => { sitePackages = info.sitePackages; },
  });
  install(p, sitePackages);
  if (!useSnapshot) return { py: p, snapshot: "off" };
  p.pyimport("clark_hash_web.browser.bridge").preload();   // in the snapshot, so restores never import them
  try {
    const bytes = p.makeMemorySnapshot();
    snapshotSave = saveSnapshot({ key, sitePackages, bytes, checksum: snapshotChecksum(bytes), created: Date.now() });
    return { py: p, snapshot: "saving" };
  } catch (e) {
    return { py: p, snapshot: `failed: ${e.message}` };
  }
}

async function boot({ siteURL, numpy: wantNumpy, snapshot }) {
  const t0 = performance.now();
  const get = (path) => fetch(new URL(path, siteURL)).then((r) => {
    if (!r.ok) throw fail("WorkerError", `${path}: HTTP ${r.status}`);
    return r;
  });
  const info = await get("build-info.json").then((r) => r.json());
  const key = `pyodide ${info.pyodide}; stdlib ${info.stdlibSha256}; wheel ${info.wheelSha256}; layout ${SNAP_LAYOUT}`;
  const useSnapshot = snapshot === true && !!info.wheelSha256;
  const [{ loadPyodide }, wheel, bytecode, rec] = await Promise.all([
    import(new URL("pyodide/pyodide.mjs", siteURL).href),
    get(info.wheel).then((r) => r.arrayBuffer()),
    info.wheelBytecode ? get(info.wheelBytecode).then((r) => r.arrayBuffer()) : null,
    useSnapshot ? readSnapshot(key) : null,
  ]);
  const t1 = performance.now();
  const started = await startPython(loadPyodide, new URL("pyodide/", siteURL).href, wheel, bytecode, key,
                                    useSnapshot, rec);
  py = started.py;
  const t2 = performance.now();
  bridge = py.pyimport("clark_hash_web.browser.bridge");
  if (wantNumpy && info.numpyWheel) numpy = { state: "waiting", url: new URL(info.numpyWheel, siteURL).href, promise: null };
  bootInfo = {
    backend: "python",
    numpy: numpy.state,
    pyodideVersion: py.version,
    pythonVersion: py.runPython("import sys; sys.version.split()[0]"),
    bootMs: performance.now() - t0,
    snapshot: started.snapshot,
    phasesMs: { fetch: t1 - t0, startPython: t2 - t1, bridge: performance.now() - t2 },
    buildInfo: info,
  };
  return bootInfo;
}

/** Load numpy (once); stores opened with backend "auto" move to it. Resolves to the numpy state. */
function ensureNumpy() {
  if (numpy.state === "off") return Promise.resolve("off");
  if (!numpy.promise) {
    numpy.state = "loading";
    numpy.promise = (async () => {
      try {
        await py.loadPackage(numpy.url, { messageCallback: () => {} });
        if (!bridge.numpy_available()) throw new Error(`${numpy.url} was loaded but numpy does not import`);
        numpy.state = "ready";
      } catch (e) {
        numpy.state = `failed: ${e && e.message ? e.message : e}`;
        console.warn(`clark-hash-web: numpy did not load, staying on the numpy-free backend (${numpy.state})`);
        return numpy.state;
      }
      for (const s of stores.values()) {
        if (s.backendOption !== "auto" || s.py.codec.backend === "numpy") continue;
        s.py.use_backend("numpy");
        self.postMessage({ event: "backend", detail: { store: s.name, backend: "numpy" } });
      }
      return numpy.state;
    })();
  }
  return numpy.promise;
}

/** The numpy backend or a clear error (for operations that ask for it by name). */
async function requireNumpy(where) {
  const state = await ensureNumpy();
  if (state !== "ready") {
    throw fail("InvalidInputError", `${where}: backend "numpy" is not available in this runtime (numpy: ${state})`);
  }
}

// A store opened while Pyodide is still starting has its IndexedDB records read
// meanwhile (the open itself waits its turn in the queue).
const prefetched = new Map();   // name -> Promise<{db, meta, rows}>

function prefetch(name) {
  if (prefetched.has(name)) return;
  const p = (async () => {
    const db = await idb.openDB(name);
    try {
      const meta = await idb.readMeta(db);
      const rows = meta && meta.schema === idb.SCHEMA_VERSION ? await idb.readRows(db) : null;
      return { db, meta, rows };
    } catch (e) {
      db.close();
      throw e;
    }
  })();
  p.catch(() => {});   // open() reads again when this failed
  prefetched.set(name, p);
}

/** {bytes: Uint8Array, fingerprint} of the codec an open() names (spec, Clark Hash fields or config bytes), or null. */
function wantedConfig({ config, codec, configBytes }) {
  if (!config && !codec && !configBytes) return null;
  const r = toJs(bridge.config_bytes_of(codec ?? undefined, config ? py.toPy(config) : undefined,
                                        configBytes ? new Uint8Array(configBytes) : undefined));
  return { bytes: r.bytes.slice(), fingerprint: r.fingerprint };
}

async function open({ name, config, codec, configBytes, backend, vectors }) {
  backend = backend || "auto";
  vectors = vectors || null;
  const pre = prefetched.get(name);
  prefetched.delete(name);
  const early = pre ? await pre.catch(() => null) : null;
  try {
    if (backend === "numpy") await requireNumpy(`open("${name}")`);
  } catch (e) {
    if (early) early.db.close();
    throw e;
  }
  for (const [handle, s] of stores) {
    // A store open twice in one worker shares one in-memory index (and handle).
    if (s.name !== name) continue;
    const want = wantedConfig({ config, codec, configBytes });
    if (want) {
      const fp = want.fingerprint;
      if (fp !== s.meta.fingerprint) {
        throw fail("ConfigMismatchError",
          `store "${name}" was created with config ${s.meta.fingerprint}; it cannot be opened with config ${fp}`);
      }
    }
    if (backend !== "auto" && backend !== s.py.codec.backend) {
      throw fail("InvalidInputError", `store "${name}" is already open with the ${s.py.codec.backend} backend`);
    }
    if (vectors && vectors !== (s.meta.vectors || null)) {
      throw fail("ConfigMismatchError", `store "${name}" keeps vectors: ${s.meta.vectors || "none"}, not ${vectors}`);
    }
    s.refs += 1;
    if (early) early.db.close();
    return { handle, name, backend: s.py.codec.backend, config: toJs(bridge.config_info(s.py.config)),
             vectors: s.meta.vectors || null, count: countOf(s), loadMs: 0 };
  }
  const db = early ? early.db : await idb.openDB(name);
  try {
    let meta = early ? early.meta : await idb.readMeta(db);
    if (meta && meta.schema !== idb.SCHEMA_VERSION) {
      throw fail("StorageError", `store "${name}" has IndexedDB schema ${meta.schema}; this runtime reads schema ${idb.SCHEMA_VERSION}`);
    }
    let cfgBytes;
    const want = wantedConfig({ config, codec, configBytes });
    if (want) {
      cfgBytes = want.bytes;
      if (meta && meta.fingerprint !== want.fingerprint) {
        throw fail("ConfigMismatchError",
          `store "${name}" was created with config ${meta.fingerprint}; it cannot be opened with config ${want.fingerprint}`);
      }
    } else if (!meta) {
      throw fail("InvalidInputError", `store "${name}" does not exist: open() needs a codec or config to create it`);
    }
    if (meta) {
      cfgBytes = new Uint8Array(meta.configBytes);
      // a store keeps what it was created with (stores made before two-stage search have no vectors)
      if (vectors && vectors !== (meta.vectors || null)) {
        throw fail("ConfigMismatchError",
          `store "${name}" was created with vectors: ${meta.vectors || "none"}; it cannot be opened with vectors: ${vectors} (re-encode into a new store)`);
      }
      vectors = meta.vectors || null;
    }
    const rows = early && early.rows ? early.rows : await idb.readRows(db);
    const t0 = performance.now();
    const pair = bridge.open_store(cfgBytes, backend, undefined, meta ? meta.nextAuto || 0 : 0, vectors ?? undefined);
    const store = pair.get(0);
    pair.destroy();
    if (!meta) {
      meta = { schema: idb.SCHEMA_VERSION, configBytes: idb.exactBuffer(cfgBytes.slice()), fingerprint: store.config.fingerprint, created: Date.now(), nextAuto: 0 };
      if (vectors) meta.vectors = vectors;
      await idb.writeMeta(db, meta);
    }
    const entry = { name, db, meta, py: store, refs: 1, scan: null, backendOption: backend,
                    flat: store.flat, dim: store.config.input_dim, vectors, rows: null, rowScale: null };
    try {
      checkRows(entry, rows);
      entry.rowScale = rowScaler(toJs(store.score_scales()));   // normalized learned E8, else null
      entry.rows = storedRows(entry, rows);
      store.next_auto = Math.max(store.next_auto, entry.rows.nextAuto());   // stores older than meta.nextAuto
      if (rows.count > prefilterMinRows || !entry.flat) scanData(entry);   // the JS scan will need it
    } catch (e) {
      store.destroy();
      throw e;
    }
    const handle = nextHandle++;
    stores.set(handle, entry);
    return {
      handle, name,
      backend: store.codec.backend,
      config: toJs(bridge.config_info(store.config)),
      vectors,
      count: countOf(entry),
      loadMs: performance.now() - t0,
    };
  } catch (e) {
    db.close();
    throw e;
  }
}

/** The store's StoredRows over what idb.readRows() returned (row scales derived when normalized). */
function storedRows(s, rows) {
  return new StoredRows(rows, s.py.config.code_bytes, s.vectors ? 4 + s.dim : 0, s.rowScale);
}

/** Refuse rows whose code or int8 row sizes do not fit the store's config (nothing opens). */
function checkRows(s, rows) {
  const cb = s.py.config.code_bytes;
  if (rows.count && rows.codeBytes !== cb) {
    throw fail("ConfigMismatchError", `IndexedDB blocks hold ${rows.codeBytes}-byte codes; the config's codes have ${cb} bytes`);
  }
  if (s.vectors && rows.count && (!rows.vectors || rows.vectors.length !== rows.count * (4 + s.dim))) {
    throw fail("ConfigMismatchError",
      `IndexedDB blocks of ${rows.count} rows need ${rows.count * (4 + s.dim)} bytes of int8 rescoring rows, found ${rows.vectors ? rows.vectors.length : 0}`);
  }
}

/**
 * Fill Python's read cache (BrowserStore.load_record) from the rows, one
 * block record at a time (views into the packed columns, which toPy copies;
 * load_record checks them), so Python never holds more than its index and
 * one block. Done only for codes(), export() and searches of small Clark
 * Hash stores; the cache is dropped at every write (BrowserStore.commit).
 */
function loadPython(s) {
  if (s.py.loaded) return;
  try {
    for (let i = 0; i < s.rows.blocks.length; i++) {   // one record at a time: toPy copies its bytes into Python
      const rec = py.toPy(s.rows.record(i));
      try {
        s.py.load_record(rec);
      } finally {
        rec.destroy();
      }
    }
    s.py.load(undefined, s.meta.nextAuto || 0);
  } catch (e) {
    s.py.reset();
    throw e;
  }
}

/**
 * What Python's write plans ask of the stored rows (BrowserStore.plan_add):
 * the last block record, which of some ids are stored, the records of the
 * blocks holding some ids. Returned as plain JS (Python converts them).
 */
function storedView(s) {
  const list = (ids) => (ids && typeof ids.toJs === "function" ? ids.toJs() : Array.from(ids));
  return {
    last: () => s.rows.lastRecord() ?? undefined,
    present: (ids) => s.rows.present(list(ids)),
    holding: (ids) => s.rows.holding(list(ids)),
  };
}

/**
 * stats() from the rows, without loading Python's copy
 * (BrowserStore.stats_of_blocks): each block's rows, norm code bytes and ids
 * record bytes, and the int8 rows whose scale is 0 (imported notes).
 */
function rowStats(s) {
  const { rows } = s;
  const utf8 = new TextEncoder();
  const sizes = rows.blocks.map((b) => {
    const ids = b.ids.kind === "range" ? 16 : b.ids.kind === "int" ? b.ids.data.byteLength
      : b.ids.data.reduce((a, x) => a + utf8.encode(String(x)).length + 2, 0);
    return [b.n, rows.norms ? 2 * b.n : 0, ids];
  });
  let without = 0;
  const v = rows.vectors, vb = 4 + s.dim;
  if (s.vectors && v) {
    for (let r = 0; r < rows.count; r++) {
      const o = r * vb;
      if (!(v[o] | v[o + 1] | v[o + 2] | v[o + 3])) without++;
    }
  }
  const pySizes = py.toPy(sizes);
  try {
    return s.py.stats_of_blocks(pySizes, without, s.vectors && v ? v.length : 0);
  } finally {
    pySizes.destroy();
  }
}

/** The stored row count. */
function countOf(s) {
  return s.rows.count;
}

/** The store with Python's copy loaded (see loadPython). */
function loaded(handle) {
  const s = storeOf(handle);
  loadPython(s);
  return s;
}

let failNextWrite = null;   // test hook: {name} of a DOMException the next write fails with

/** Plan in Python, write in one transaction, then commit in Python. */
async function write(s, plan) {
  const p = toJs(plan);
  const rows = p.puts.reduce((a, r) => a + r.block.n, 0);
  self.postMessage({ event: "write-start", detail: { store: s.name, kind: p.kind, blocks: p.puts.length, rows } });
  try {
    const fail = failNextWrite;
    failNextWrite = null;
    const meta = p.nextAuto !== s.meta.nextAuto ? { ...s.meta, nextAuto: p.nextAuto } : null;
    await idb.applyPlan(s.db, p, meta, fail);
    if (meta) s.meta = meta;
  } catch (e) {
    s.py.abort(p.token);
    throw e;
  }
  const result = toJs(s.py.commit(p.token));
  s.scan = null;   // the rows change: the JS scan is rebuilt over them at the next search
  try {
    s.rows.applyPlan(p);
  } catch (e) {   // the transaction committed: read the rows back from IndexedDB (the truth)
    s.rows = storedRows(s, await idb.readRows(s.db));
  }
  return result;
}

// -- search: JS prefilter scan + exact ranking in Python -------------------------------
// Stores above prefilterMinRows rows are searched in two steps (see
// prefilter-scan.js): Python plans, JS scans every code, Python ranks the few
// candidates exactly. Smaller stores are searched by Python alone.
let prefilterMinRows = 2000;

/**
 * The store's rows as the JS scan reads them (the StoredRows columns, no
 * copy: blocks in key order, rows in insertion order, which is the FlatIndex
 * row order), with the scanner over them (it keeps its buffers between
 * searches); rebuilt after every write.
 * @returns {{n: number, codeBytes: number, codes: Uint8Array, normCodes: Uint16Array|null, decoded: Float64Array|null, scanner: PrefilterScanner}}
 */
function scanData(s) {
  if (s.scan) return s.scan;
  const { rows } = s;
  return setScanData(s, rows.codes, s.flat ? rows.norms : null, rows.count, s.vectors ? rows.vectors : null,
                     rows.scales);
}

/**
 * Keep `codes` (Uint8Array), `norms` (Uint8Array of u16 LE, offset 0, or null),
 * `vectors` (int8 rescoring rows, Uint8Array, or null) and `scales` (row scales
 * of a normalized learned-E8 store, Float32Array, or null) as the store's scan data.
 */
function setScanData(s, codes, norms, count, vectors, scales) {
  const codeBytes = s.py.config.code_bytes;
  if (!s.flat) {
    s.scan = { n: count, codeBytes, codes, vectors, scales, scanner: new TableScanner(codes, codeBytes, count) };
    return s.scan;
  }
  let decoded = s.decoded || null;
  if (norms && !decoded) {
    const d = toJs(s.py.decoded_norms()).slice();
    decoded = s.decoded = new Float64Array(d.buffer);
  }
  const normCodes = norms ? new Uint16Array(norms.buffer, norms.byteOffset, count) : null;
  s.scan = {
    n: count, codeBytes, codes, normCodes, decoded, vectors,
    scanner: new PrefilterScanner(codes, codeBytes, count, normCodes, decoded),
  };
  return s.scan;
}

/**
 * Top-k of one query: {ids, scores: ArrayBuffer, sketchMs, searchMs, scan: {...}}.
 * `rescore` (two-stage stores): the number of stage-1 candidates re-ranked
 * exactly from their int8 rows; the scores are then the rescoring scores.
 */
function search(s, query, k, rescore) {
  if (rescore) return searchTwoStage(s, query, k, rescore);
  return s.flat ? searchFlat(s, query, k) : searchTables(s, query, k);
}

/**
 * Binary and E8 stores: exact JS scan of every code with the query's byte tables
 * (normalized learned-E8 stores: the table sums finished with the query's bias and
 * the row scales, normalized-scores.js).
 */
function searchTables(s, query, k) {
  const t0 = performance.now();
  const t = toJs(s.py.table_query(query));
  const values = new Float32Array(t.values.slice().buffer);
  const tables = byteTables(t.tableKind, values, t.nbits, t.codeBytes);
  const t1 = performance.now();
  const data = scanData(s);
  const t2 = performance.now();
  const sums = data.scanner.scores(tables);
  const top = topRows(data.scales ? finishScores(sums, t.bias, data.scales) : sums, Math.max(0, Math.floor(k)));
  const t3 = performance.now();
  const ids = idb.idsOfRows(s.rows.blocks, top.rows);
  const t4 = performance.now();
  return {
    ids, rows: top.rows, scores: idb.exactBuffer(top.scores),
    sketchMs: t.sketchMs, searchMs: t4 - t0 - t.sketchMs,
    scan: { mode: "js-table-scan", tablesMs: t1 - t0, fetchMs: t2 - t1, scanMs: t3 - t2, idsMs: t4 - t3,
            ids: "js" },   // the rows are named from the blocks' id records
  };
}

/** Two-stage: the stage-1 top `rescore` (either path), re-ranked exactly from the int8 rows in JS. */
function searchTwoStage(s, query, k, rescore) {
  if (!s.vectors) {
    throw fail("InvalidInputError", `store "${s.name}" keeps no vectors for rescoring (create it with vectors: "int8")`);
  }
  const n = Math.max(Math.floor(rescore), Math.floor(k));
  const t0 = performance.now();
  const first = s.flat ? searchFlat(s, query, n) : searchTables(s, query, n);
  const t1 = performance.now();
  const rows = first.rows ?? s.rows.rowsOf(first.ids);
  const q = toJs(s.py.rescore_query(query)).slice();
  const qf = new Float32Array(q.buffer, 0, s.dim);
  const data = scanData(s);
  const scores = rescoreInt8(qf, data.vectors, s.dim, rows);
  const order = rankRescored(rows, scores, Math.floor(k));
  const t2 = performance.now();
  return {
    ids: order.map((j) => first.ids[j]), scores: idb.exactBuffer(Float32Array.from(order, (j) => scores[j])),
    sketchMs: first.sketchMs, searchMs: t2 - t0 - first.sketchMs,
    scan: { ...first.scan, stage1Ms: t1 - t0, rescored: rows.length, rescoreMs: t2 - t1 },
  };
}

/**
 * Clark Hash stores: JS prefilter with proven bounds, exact ranking in Python
 * of the candidates' codes (BrowserStore.rank_codes); stores of at most
 * prefilterMinRows rows and k outside 1..count-1 are searched by Python
 * alone (its read cache, loadPython).
 */
function searchFlat(s, query, k) {
  k = Math.floor(k);
  const n = s.rows.count;
  if (n > prefilterMinRows && k > 0 && k < n) return searchFlatLean(s, query, k);
  loadPython(s);
  const plan = toJs(s.py.prefilter(query, k, prefilterMinRows));
  return { ids: plan.ids, scores: idb.exactBuffer(plan.scores.slice()), sketchMs: plan.sketchMs,
           searchMs: plan.searchMs, scan: { mode: "python" } };
}

/** searchFlat with the JS prefilter: Python ranks the candidates from their codes. */
function searchFlatLean(s, query, k) {
  const t0 = performance.now();
  const data = scanData(s);
  const plan = toJs(s.py.prefilter(query, k, prefilterMinRows, data.n));
  const t1 = performance.now();
  const rows = data.scanner.rows(plan, plan.k);
  const t2 = performance.now();
  const cb = data.codeBytes;
  const codes = new Uint8Array(rows.length * cb);
  const norms = data.normCodes ? new Uint16Array(rows.length) : null;
  rows.forEach((r, j) => {
    codes.set(data.codes.subarray(r * cb, (r + 1) * cb), j * cb);
    if (norms) norms[j] = data.normCodes[r];
  });
  const r = toJs(s.py.rank_codes(codes, norms ? new Uint8Array(norms.buffer) : undefined, plan.k));
  const best = Uint32Array.from(r.positions, (p) => rows[p]);
  const ids = idb.idsOfRows(s.rows.blocks, best);
  const t3 = performance.now();
  return {
    ids, rows: best, scores: idb.exactBuffer(r.scores.slice()),
    sketchMs: plan.sketchMs, searchMs: t3 - t0 - plan.sketchMs,
    scan: { mode: "js-prefilter", ids: "js", candidates: rows.length, planMs: t1 - t0 - plan.sketchMs,
            fetchMs: 0, scanMs: t2 - t1, rankMs: t3 - t2, planPyMs: plan.planMs, rankPyMs: r.rankPyMs },
  };
}

function bytesArg(x) {
  return new Uint8Array(x);
}

const OPS = {
  boot,
  open,
  /** {handle, vectors: ArrayBuffer (n*d float32), n, ids|null} -> ids */
  async add({ handle, vectors, n, ids }) {
    const s = storeOf(handle);
    return write(s, s.py.plan_add(bytesArg(vectors), n, ids ? py.toPy(ids) : undefined, storedView(s)));
  },
  /** {handle, ids: [...]} -> number removed */
  async delete({ handle, ids }) {
    const s = storeOf(handle);
    return write(s, s.py.plan_delete(py.toPy(ids), storedView(s)));
  },
  /** {handle, bytes: ArrayBuffer (.chs)} -> ids added */
  async import({ handle, bytes }) {
    const s = storeOf(handle);
    return write(s, s.py.plan_import(bytesArg(bytes), storedView(s)));
  },
  /** {handle, query: ArrayBuffer (d float32), k, rescore?} -> {ids, scores: ArrayBuffer, sketchMs, searchMs, scan} */
  async search({ handle, query, k, rescore }) {
    const r = search(storeOf(handle), bytesArg(query), k, rescore || 0);
    delete r.rows;
    return r;
  },
  /** Test/benchmark hook: stores above `rows` rows use the JS prefilter (default 2000; 0 = always). */
  async setPrefilterMinRows({ rows }) {
    prefilterMinRows = rows;
    return true;
  },
  async count({ handle }) {
    return countOf(storeOf(handle));
  },
  async ids({ handle }) {
    const s = storeOf(handle);
    return idb.allIds(s.rows.blocks);
  },
  /** -> {ids, codes: ArrayBuffer, normCodes: ArrayBuffer|null} */
  async codes({ handle }) {
    const r = toJs(loaded(handle).py.codes());
    return { ids: r.ids, codes: idb.exactBuffer(r.codes.slice()), normCodes: r.normCodes ? idb.exactBuffer(r.normCodes.slice()) : null };
  },
  /** -> ArrayBuffer of the sketch file */
  async export({ handle }) {
    return idb.exactBuffer(toJs(loaded(handle).py.export()).slice());
  },
  async stats({ handle }) {
    const s = storeOf(handle);
    return toJs(rowStats(s));
  },
  async close({ handle }) {
    const s = stores.get(handle);
    if (!s) return false;
    s.refs -= 1;
    if (s.refs > 0) return true;
    s.db.close();
    s.py.destroy();
    stores.delete(handle);
    return true;
  },
  async destroy({ name }) {
    for (const [h, s] of stores) {
      if (s.name === name) {
        s.refs = 1;
        await OPS.close({ handle: h });
      }
    }
    await idb.deleteDB(name);
    return true;
  },
  /** Stateless encode for parity checks: {config, backend, vectors: ArrayBuffer, n} -> {codes, normCodes, backend} */
  async encode({ config, codec, configBytes, backend, vectors, n }) {
    if (backend === "numpy") await requireNumpy("encode");
    const r = toJs(bridge.encode_raw(config ? py.toPy(config) : undefined, backend || "auto", bytesArg(vectors), n,
                                     codec ?? undefined, configBytes ? new Uint8Array(configBytes) : undefined));
    return { backend: r.backend, codes: idb.exactBuffer(r.codes.slice()), normCodes: r.normCodes ? idb.exactBuffer(r.normCodes.slice()) : null };
  },
  /** Test hook: make the next write transaction abort with a DOMException named `name`. */
  async failNextWrite({ name }) {
    failNextWrite = { name };
    return true;
  },
  /** Load numpy now (instead of when idle); -> the numpy state: "ready", "off" or "failed: ...". */
  async numpy() {
    return ensureNumpy();
  },
  /** -> the interpreter snapshot's state, after any background write finished ("saved", "restored", ...). */
  async snapshotStatus() {
    return snapshotSave ? snapshotSave : bootInfo.snapshot;
  },
  /** Run Python code (tests and benchmarks only); returns the JS-converted result. */
  async runPython({ code }) {
    return toJs(await py.runPythonAsync(code));
  },
};

// Messages are handled one at a time, in order, so writes never interleave.
// When none is waiting for NUMPY_IDLE_MS, a pending numpy load takes its turn.
let queue = Promise.resolve();
let inFlight = 0;
let idleSince = 0;

function whenIdle() {
  if (inFlight > 0 || numpy.state !== "waiting") return;
  idleSince = performance.now();
  const check = () => {
    if (inFlight > 0 || numpy.state !== "waiting") return;
    // a timer can fire late (the thread was busy): count from when the queue emptied
    const left = NUMPY_IDLE_MS - (performance.now() - idleSince);
    if (left > 0) setTimeout(check, left);
    else queue = queue.then(() => ensureNumpy());
  };
  setTimeout(check, NUMPY_IDLE_MS);
}

self.onmessage = (ev) => {
  const { id, op, args } = ev.data;
  inFlight += 1;
  if (op === "open" && !py && args && typeof args.name === "string" && args.backend !== "numpy") prefetch(args.name);
  queue = queue.then(async () => {
    try {
      if (!OPS[op]) throw fail("InvalidInputError", `unknown operation ${op}`);
      if (op !== "boot" && !py) throw fail("WorkerError", "runtime not booted");
      const result = await OPS[op](args || {});
      const transfer = [];
      if (result instanceof ArrayBuffer) transfer.push(result);
      else if (result && typeof result === "object") {
        for (const v of Object.values(result)) if (v instanceof ArrayBuffer) transfer.push(v);
      }
      self.postMessage({ id, ok: true, result }, transfer);
    } catch (e) {
      self.postMessage({ id, ok: false, error: describeError(e) });
    } finally {
      inFlight -= 1;
      whenIdle();
    }
  });
};
