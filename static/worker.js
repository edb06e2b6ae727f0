/**
 * worker.js: the Web Worker behind clark-hash-store.js.
 *
 * Boots Pyodide from the site's pyodide/ folder, loads the clark_hash_web
 * wheel (and the numpy wheel when build-info.json names one) by URL with
 * pyodide.loadPackage, then answers messages {id, op, args} with
 * {id, ok: true, result} or {id, ok: false, error: {type, message, details}}.
 *
 * Python (clark_hash_web.browser_bridge) validates and encodes; this file
 * only moves bytes between Python and IndexedDB (idb-store.js). A write is
 * planned in Python, written in one transaction, and applied to the
 * in-memory index only after the transaction committed.
 */

import * as idb from "./idb-store.js";
import { prefilterRows } from "./prefilter-scan.js";

let py = null;        // the Pyodide instance
let bridge = null;    // clark_hash_web.browser_bridge (PyProxy)
let bootInfo = null;
const stores = new Map();   // handle -> {name, db, py: BrowserStore PyProxy, scan: scanData() cache or null, decoded}
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

// -- interpreter snapshots (opt-in: new ClarkHashRuntime({snapshot: true})) ------------
// A memory snapshot of the freshly initialised interpreter (Pyodide's private
// _makeSnapshot/_loadSnapshot), kept in IndexedDB "clark-hash-runtime", skips
// Python's start-up on later visits. Packages are still loaded after it.
// About 30 MB per origin. Any failure falls back to a normal start.
const SNAP_DB = "clark-hash-runtime";

function snapDB() {
  const r = indexedDB.open(SNAP_DB, 1);
  r.onupgradeneeded = () => r.result.createObjectStore("snapshots");
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

async function snapGet(key) {
  const db = await snapDB();
  try {
    const tx = db.transaction("snapshots", "readonly");
    const r = tx.objectStore("snapshots").get(key);
    return await new Promise((resolve, reject) => {
      r.onsuccess = () => resolve(r.result);
      r.onerror = () => reject(r.error);
    });
  } finally {
    db.close();
  }
}

async function snapPut(key, bytes) {
  const db = await snapDB();
  try {
    const tx = db.transaction("snapshots", "readwrite");
    tx.objectStore("snapshots").clear();
    tx.objectStore("snapshots").put(bytes, key);
    await new Promise((resolve, reject) => {
      tx.oncomplete = resolve;
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error);
    });
  } finally {
    db.close();
  }
}

async function startPyodide(loadPyodide, indexURL, info, useSnapshot) {
  if (!useSnapshot) return { py: await loadPyodide({ indexURL }), snapshot: "off" };
  const key = `pyodide-${info.pyodide}-v1`;
  try {
    const snap = await snapGet(key);
    if (snap) return { py: await loadPyodide({ indexURL, _loadSnapshot: snap }), snapshot: "restored" };
  } catch (e) {
    // unreadable or stale: start normally and replace it
  }
  const fresh = await loadPyodide({ indexURL, _makeSnapshot: true });
  try {
    const bytes = fresh.makeMemorySnapshot();
    snapPut(key, bytes).catch(() => {});
    return { py: fresh, snapshot: "saved" };
  } catch (e) {
    return { py: fresh, snapshot: `failed: ${e.message}` };
  }
}

async function boot({ siteURL, numpy, snapshot }) {
  const t0 = performance.now();
  const [info, { loadPyodide }] = await Promise.all([
    fetch(new URL("build-info.json", siteURL)).then((r) => r.json()),
    import(new URL("pyodide/pyodide.mjs", siteURL).href),
  ]);
  const t1 = performance.now();
  const started = await startPyodide(loadPyodide, new URL("pyodide/", siteURL).href, info, snapshot === true);
  py = started.py;
  const t2 = performance.now();
  const wheels = [new URL(info.wheel, siteURL).href];
  const useNumpy = numpy && info.numpyWheel;
  if (useNumpy) wheels.unshift(new URL(info.numpyWheel, siteURL).href);
  await py.loadPackage(wheels, { messageCallback: () => {} });
  const t3 = performance.now();
  bridge = py.pyimport("clark_hash_web.browser_bridge");
  const hasNumpy = bridge.numpy_available();
  if (useNumpy && !hasNumpy) throw fail("WorkerError", `numpy wheel ${info.numpyWheel} was loaded but does not import`);
  bootInfo = {
    backend: hasNumpy ? "numpy" : "python",
    numpy: hasNumpy,
    pyodideVersion: py.version,
    pythonVersion: py.runPython("import sys; sys.version.split()[0]"),
    bootMs: performance.now() - t0,
    snapshot: started.snapshot,
    phasesMs: { buildInfo: t1 - t0, loadPyodide: t2 - t1, loadWheels: t3 - t2, importPackage: performance.now() - t3 },
    buildInfo: info,
  };
  return bootInfo;
}

async function open({ name, config, backend }) {
  for (const [handle, s] of stores) {
    // A store open twice in one worker shares one in-memory index (and handle).
    if (s.name !== name) continue;
    if (config) {
      const cfg = bridge.config_from_js(py.toPy(config));
      const fp = cfg.fingerprint;
      cfg.destroy();
      if (fp !== s.meta.fingerprint) {
        throw fail("ConfigMismatchError",
          `store "${name}" was created with config ${s.meta.fingerprint}; it cannot be opened with config ${fp}`);
      }
    }
    if (backend && backend !== "auto" && backend !== s.py.codec.backend) {
      throw fail("InvalidInputError", `store "${name}" is already open with the ${s.py.codec.backend} backend`);
    }
    s.refs += 1;
    return { handle, name, backend: s.py.codec.backend, config: toJs(bridge.config_info(s.py.config)),
             count: s.py.index.__len__(), loadMs: 0 };
  }
  const db = await idb.openDB(name);
  try {
    let meta = await idb.readMeta(db);
    if (meta && meta.schema !== idb.SCHEMA_VERSION) {
      throw fail("StorageError", `store "${name}" has IndexedDB schema ${meta.schema}; this runtime reads schema ${idb.SCHEMA_VERSION}`);
    }
    let cfgBytes;
    if (config) {
      const cfg = bridge.config_from_js(py.toPy(config));
      cfgBytes = cfg.to_bytes().toJs();
      const fp = cfg.fingerprint;
      cfg.destroy();
      if (meta && meta.fingerprint !== fp) {
        throw fail("ConfigMismatchError",
          `store "${name}" was created with config ${meta.fingerprint}; it cannot be opened with config ${fp}`);
      }
    } else if (!meta) {
      throw fail("InvalidInputError", `store "${name}" does not exist: open() needs a config to create it`);
    }
    if (meta) cfgBytes = new Uint8Array(meta.configBytes);
    const records = await idb.readAllRecords(db);
    const t0 = performance.now();
    const pyRecords = py.toPy(records.map((r) => ({
      key: r.key,
      block: { n: r.block.n, codes: new Uint8Array(r.block.codes), norms: r.block.norms ? new Uint8Array(r.block.norms) : undefined },
      ids: r.ids.kind === "int" ? { kind: "int", data: new Uint8Array(r.ids.data) } : r.ids,
    })));
    const pair = bridge.open_store(cfgBytes, backend || "auto", pyRecords, meta ? meta.nextAuto || 0 : 0);
    pyRecords.destroy();
    const store = pair.get(0);
    pair.destroy();
    if (!meta) {
      meta = { schema: idb.SCHEMA_VERSION, configBytes: idb.exactBuffer(cfgBytes.slice()), fingerprint: store.config.fingerprint, created: Date.now(), nextAuto: 0 };
      await idb.writeMeta(db, meta);
    }
    const handle = nextHandle++;
    stores.set(handle, { name, db, meta, py: store, refs: 1, scan: null });
    return {
      handle, name,
      backend: store.codec.backend,
      config: toJs(bridge.config_info(store.config)),
      count: store.index.__len__(),
      loadMs: performance.now() - t0,
    };
  } catch (e) {
    db.close();
    throw e;
  }
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
  s.scan = null;   // the stored rows changed: the JS scan refetches them at the next search
  return result;
}

// -- search: JS prefilter scan + exact ranking in Python -------------------------------
// Stores above prefilterMinRows rows are searched in two steps (see
// prefilter-scan.js): Python plans, JS scans every code, Python ranks the few
// candidates exactly. Smaller stores are searched by Python alone.
let prefilterMinRows = 2000;

/**
 * The store's codes as the JS scan reads them, fetched from Python after
 * open and after every committed write (lazily, at the next search).
 * @returns {{n: number, codeBytes: number, codes: Uint8Array, normCodes: Uint16Array|null, decoded: Float64Array|null}}
 */
function scanData(s) {
  if (s.scan) return s.scan;
  const r = toJs(s.py.scan_data());
  const codeBytes = s.py.config.code_bytes;
  const norms = r.normCodes ? r.normCodes.slice() : null;
  let decoded = s.decoded || null;
  if (norms && !decoded) {
    const d = toJs(s.py.decoded_norms()).slice();
    decoded = s.decoded = new Float64Array(d.buffer);
  }
  s.scan = {
    n: r.count, codeBytes, codes: r.codes,
    normCodes: norms ? new Uint16Array(norms.buffer, 0, r.count) : null, decoded,
  };
  return s.scan;
}

/** Top-k of one query: {ids, scores: ArrayBuffer, sketchMs, searchMs, scan: {...}}. */
function search(s, query, k) {
  const t0 = performance.now();
  const plan = toJs(s.py.prefilter(query, k, prefilterMinRows));
  if (plan.direct) {
    return { ids: plan.ids, scores: idb.exactBuffer(plan.scores.slice()), sketchMs: plan.sketchMs,
             searchMs: plan.searchMs, scan: { mode: "python" } };
  }
  const t1 = performance.now();
  const data = scanData(s);
  if (data.n !== plan.count) throw fail("WorkerError", `scan data has ${data.n} rows, the index ${plan.count}`);
  const t2 = performance.now();
  const rows = prefilterRows(plan, data.codes, data.codeBytes, data.n, data.normCodes, data.decoded, plan.k);
  const t3 = performance.now();
  const r = toJs(s.py.rank(new Uint8Array(rows.buffer), plan.k));
  const t4 = performance.now();
  return {
    ids: r.ids, scores: idb.exactBuffer(r.scores.slice()),
    sketchMs: plan.sketchMs, searchMs: t4 - t0 - plan.sketchMs,
    scan: { mode: "js-prefilter", candidates: rows.length, planMs: t1 - t0 - plan.sketchMs,
            fetchMs: t2 - t1, scanMs: t3 - t2, rankMs: t4 - t3 },
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
    return write(s, s.py.plan_add(bytesArg(vectors), n, ids ? py.toPy(ids) : undefined));
  },
  /** {handle, ids: [...]} -> number removed */
  async delete({ handle, ids }) {
    const s = storeOf(handle);
    return write(s, s.py.plan_delete(py.toPy(ids)));
  },
  /** {handle, bytes: ArrayBuffer (.chs)} -> ids added */
  async import({ handle, bytes }) {
    const s = storeOf(handle);
    return write(s, s.py.plan_import(bytesArg(bytes)));
  },
  /** {handle, query: ArrayBuffer (d float32), k} -> {ids, scores: ArrayBuffer, sketchMs, searchMs, scan} */
  async search({ handle, query, k }) {
    return search(storeOf(handle), bytesArg(query), k);
  },
  /** Test/benchmark hook: stores above `rows` rows use the JS prefilter (default 2000; 0 = always). */
  async setPrefilterMinRows({ rows }) {
    prefilterMinRows = rows;
    return true;
  },
  async count({ handle }) {
    return storeOf(handle).py.index.__len__();
  },
  async ids({ handle }) {
    return toJs(storeOf(handle).py.index.ids);
  },
  /** -> {ids, codes: ArrayBuffer, normCodes: ArrayBuffer|null} */
  async codes({ handle }) {
    const r = toJs(storeOf(handle).py.codes());
    return { ids: r.ids, codes: idb.exactBuffer(r.codes.slice()), normCodes: r.normCodes ? idb.exactBuffer(r.normCodes.slice()) : null };
  },
  /** -> ArrayBuffer of the sketch file */
  async export({ handle }) {
    return idb.exactBuffer(toJs(storeOf(handle).py.export()).slice());
  },
  async stats({ handle }) {
    return toJs(storeOf(handle).py.stats());
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
  async encode({ config, backend, vectors, n }) {
    const r = toJs(bridge.encode_raw(py.toPy(config), backend || "auto", bytesArg(vectors), n));
    return { backend: r.backend, codes: idb.exactBuffer(r.codes.slice()), normCodes: r.normCodes ? idb.exactBuffer(r.normCodes.slice()) : null };
  },
  /** Test hook: make the next write transaction abort with a DOMException named `name`. */
  async failNextWrite({ name }) {
    failNextWrite = { name };
    return true;
  },
  /** Run Python code (tests and benchmarks only); returns the JS-converted result. */
  async runPython({ code }) {
    return toJs(await py.runPythonAsync(code));
  },
};

// Messages are handled one at a time, in order, so writes never interleave.
let queue = Promise.resolve();
self.onmessage = (ev) => {
  const { id, op, args } = ev.data;
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
    }
  });
};
