/**
 * clark-hash-store.js: the page-side API of the clark-hash-web browser runtime.
 *
 * Pyodide and the Python codec run in a Web Worker (static/worker.js), so the
 * page never blocks. This module is a thin, promise-based client of it.
 *
 *   import { ClarkHashStore } from "./static/clark-hash-store.js";
 *   const store = await ClarkHashStore.open({
 *     name: "notes",
 *     codec: "e8:384",                    // any registered codec by spec (the recommended 48 B profile)
 *     vectors: "int8",                    // optional: keep int8 rows for two-stage rescoring
 *     embedder: async (texts) => texts.map(embedOne),   // optional, for texts
 *   });
 *   // or config: { inputDim: 384 } (Clark Hash fields), or config: Uint8Array (config bytes, e.g. a trained ITQ)
 *   store.backend;                          // "numpy" or "python"
 *   const ids = await store.addMany([vecA, vecB], { ids: ["a", "b"] });
 *   const { ids: top, scores, timings } = await store.search(queryVec, 10);
 *   await store.search(queryVec, 10, { rescore: 100 });   // two-stage: 100 candidates re-ranked from int8 rows
 *   await store.delete("a");
 *   const bytes = await store.exportSketchFile();    // .chs bytes (Uint8Array)
 *   await store.importSketchFile(bytes);
 *   await store.stats();
 *
 * Site layout (written by build_scripts/build_site.py; URLs relative to the
 * site root, all from one origin):
 *   build-info.json          which backend the site uses, wheel names, file list
 *   static/                  this runtime (clark-hash-store.js, worker.js, idb-store.js)
 *   pyodide/                 Pyodide 314.0.1 core (+ micropip, + numpy wheel if built with it)
 *   wheels/                  the clark_hash_web wheel
 *   vendor/onnxruntime-web/  onnxruntime-web dist (wasm flavour)
 *   vendor/tokenizers/       @lenml/tokenizers dist (main.mjs)
 *   model/                   model.onnx, tokenizer.json, tokenizer_config.json (when exported)
 *   (root)                   the demo/ folder's files (index.html, sw.js, ...)
 *
 * IndexedDB layout: see the header of static/idb-store.js.
 *
 * Errors: every failure rejects with a {@link ClarkHashError} whose `type` is
 * the Python exception class name (DimensionError, InvalidVectorError,
 * ConfigMismatchError, DuplicateIdError, SketchFileError, ...) or
 * "QuotaExceededError" / "StorageError" / "WorkerError" for browser-side
 * failures. A rejected write leaves the store exactly as it was.
 */

/** Error raised by the runtime; `type` names the Python or storage error class. */
export class ClarkHashError extends Error {
  /**
   * @param {string} type  e.g. "InvalidVectorError", "QuotaExceededError"
   * @param {string} message
   * @param {object} [details]  e.g. {rows: {3: "NaN or inf"}}
   */
  constructor(type, message, details = {}) {
    super(`${type}: ${message}`);
    this.name = "ClarkHashError";
    this.type = type;
    this.details = details;
  }
}

/**
 * @typedef {object} ClarkHashConfigInit
 * @property {number} inputDim          embedding dimension d (required)
 * @property {number} [sketchDim=96]    m
 * @property {number} [bits=4]          1..8
 * @property {number} [hashesPerInput=4]
 * @property {number} [clip=3.0]
 * @property {bigint|string|number} [seed=0x5EEDCAFE12345678n]  u64: a BigInt, a
 *           decimal or "0x" hex string, or a safe integer
 * @property {"cosine"|"dot"} [metric="cosine"]
 * @property {number} [normLog2Min=-16]
 * @property {number} [normLog2Max=16]
 */

/**
 * @typedef {object} SearchResult
 * @property {Array<number|string>} ids   best first; exact ties in insertion order
 * @property {Float32Array} scores        bit-identical to the desktop codec
 * @property {{embedMs:number, sketchMs:number, searchMs:number, totalMs:number}} timings
 *           embedMs: text embedding (0 for vectors); sketchMs + searchMs: measured
 *           inside the worker; totalMs: wall time seen by the page
 */

/**
 * @typedef {object} StoreStats
 * @property {number} count               sketches stored
 * @property {string} backend             "numpy" or "python"
 * @property {object} codec               {kind, name, title, spec, fingerprint, ...}
 * @property {number} codeBytes           bytes of one code (48 by default)
 * @property {number} vectorBytesPerNote  int8 rescoring row bytes (4 + d), 0 without
 * @property {number} bytesPerNote        code + norm code + int8 row
 * @property {number} sketchRecordBytes   IndexedDB payload of codes, ids and meta
 * @property {number} vectorRecordBytes   IndexedDB payload of the int8 rows
 * @property {number} storageBytesPerVector  code + norm code (dot mode)
 * @property {number} denseBytesPerVector 4 * inputDim
 * @property {number} blocks              IndexedDB block records
 * @property {number} recordBytes         payload bytes in IndexedDB (codes, norms, ids, meta)
 * @property {number|null} recordBytesPerSketch
 * @property {number|null} estimateUsage  navigator.storage.estimate().usage (whole origin)
 * @property {number|null} estimateQuota
 */

/** Vectors accepted by add/addMany/search: Float32Array, Float64Array or number[]. */
function toFloat32(v, where) {
  if (v instanceof Float32Array) return v;
  if (ArrayBuffer.isView(v) || Array.isArray(v)) return Float32Array.from(v);
  throw new ClarkHashError("InvalidInputError",
    `${where}: expected a Float32Array or an array of numbers, got ${Object.prototype.toString.call(v)}`);
}

/** Plain object form of a config, as the worker expects (seed as a string). */
function normalizeConfig(c) {
  if (!c || typeof c !== "object") throw new ClarkHashError("ConfigError", "config must be an object");
  const seed = c.seed === undefined ? undefined : String(c.seed);
  const out = {
    input_dim: c.inputDim ?? c.input_dim,
    sketch_dim: c.sketchDim ?? c.sketch_dim,
    bits: c.bits,
    hashes_per_input: c.hashesPerInput ?? c.hashes_per_input,
    clip: c.clip,
    seed,
    metric: c.metric,
    norm_log2_min: c.normLog2Min ?? c.norm_log2_min,
    norm_log2_max: c.normLog2Max ?? c.norm_log2_max,
  };
  for (const k of Object.keys(out)) if (out[k] === undefined) delete out[k];
  return out;
}

/**
 * One Web Worker hosting Pyodide and the codec. Several stores can share it.
 * Most pages never touch this class: ClarkHashStore.open() creates a shared one.
 * Events (EventTarget): "write-start" with detail {store, kind, blocks, rows},
 * sent just before a batch's IndexedDB transaction starts.
 */
export class ClarkHashRuntime extends EventTarget {
  /**
   * @param {object} [opts]
   * @param {string|URL} [opts.siteURL]  site root (default: the parent of static/)
   * @param {boolean} [opts.numpy=true]  use numpy when the site ships it. It loads
   *        after start-up, once the worker is idle (or at once for a store
   *        opened with backend "numpy", or runtime.loadNumpy()); until then
   *        stores run on the numpy-free backend, which writes the same bytes.
   * @param {boolean} [opts.snapshot=false]  keep a memory snapshot of the started
   *        interpreter (about 31 MB) in IndexedDB ("clark-hash-runtime"), so
   *        later visits skip Python's start-up (Pyodide's private snapshot API;
   *        keyed by the Pyodide build, stdlib and our wheel; any failure falls
   *        back to a normal start; not saved when the origin is short of quota).
   *        Saves about 0.3-0.4 s per warm start; see worker.js "start-up".
   *        `ready` reports snapshot: "off" | "saving" | "restored" | "failed: ...".
   */
  constructor(opts = {}) {
    super();
    const here = new URL(".", import.meta.url);
    this.siteURL = new URL(opts.siteURL ?? new URL("..", here), location.href).href;
    this.worker = new Worker(new URL("worker.js", here), { type: "module" });
    this._next = 1;
    this._pending = new Map();
    this.worker.onmessage = (ev) => this._onMessage(ev.data);
    this.worker.onerror = (ev) => this._failAll(new ClarkHashError("WorkerError", ev.message || "worker failed"));
    /**
     * Resolves when Python is up. numpy: "off" (not shipped or not wanted) | "waiting" (loads when idle).
     * @type {Promise<{backend:string, numpy:string, pyodideVersion:string, bootMs:number, snapshot:string}>}
     */
    this.ready = this._call("boot", { siteURL: this.siteURL, numpy: opts.numpy !== false, snapshot: opts.snapshot === true });
  }

  /** Load numpy now instead of when idle; resolves to "ready", "off" or "failed: ...". */
  async loadNumpy() {
    return this.call("numpy");
  }

  /** Resolves to the interpreter snapshot's state once any background write ended ("saved", "restored", ...). */
  async snapshotStatus() {
    return this.call("snapshotStatus");
  }

  _onMessage({ id, ok, result, error, event, detail }) {
    if (event) {   // progress events, e.g. "write-start" {store, kind, blocks, rows}
      this.dispatchEvent(new CustomEvent(event, { detail }));
      return;
    }
    const p = this._pending.get(id);
    if (!p) return;
    this._pending.delete(id);
    if (ok) p.resolve(result);
    else p.reject(new ClarkHashError(error.type, error.message, error.details || {}));
  }

  _failAll(err) {
    for (const p of this._pending.values()) p.reject(err);
    this._pending.clear();
  }

  /** Low-level RPC: send `op` with `args` to the worker; transfers listed buffers. */
  _call(op, args = {}, transfer = []) {
    const id = this._next++;
    return new Promise((resolve, reject) => {
      this._pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, op, args }, transfer);
    });
  }

  /**
   * Call a worker operation (used by stores and tests); it runs once the worker has started.
   * Operations: see the `OPS` table in worker.js.
   */
  async call(op, args = {}, transfer = []) {
    // sent at once: the worker queues it behind its start-up (and reads a store's
    // IndexedDB records while Pyodide starts); a failed start rejects with its own error
    const result = this._call(op, args, transfer);
    result.catch(() => {});
    await this.ready;
    return result;
  }

  /** Stop the worker (pending calls reject). */
  terminate() {
    this.worker.terminate();
    this._failAll(new ClarkHashError("WorkerError", "runtime terminated"));
  }
}

let sharedRuntime = null;

/** The page's shared runtime (created on first use). */
export function defaultRuntime(opts) {
  if (!sharedRuntime) sharedRuntime = new ClarkHashRuntime(opts);
  return sharedRuntime;
}

/** A named, persistent sketch store in IndexedDB, searchable in memory. */
export class ClarkHashStore {
  /** Use ClarkHashStore.open(). */
  constructor(runtime, handle, info, embedder) {
    this.runtime = runtime;
    this.handle = handle;
    /** Store name (IndexedDB database "clark-hash:" + name). */
    this.name = info.name;
    /** "numpy" or "python": the codec backend this store runs on now (an "auto" store moves to numpy when it loads). */
    this.backend = info.backend;
    /**
     * The config as stored: `input_dim`, `fingerprint` (16 hex chars), `code_bytes`,
     * `codec` ({kind, name, title, spec, ...}) and, for Clark Hash, its fields.
     */
    this.config = info.config;
    /** "int8" when the store keeps int8 rows for two-stage search, else null. */
    this.vectors = info.vectors ?? null;
    /** Sketches present at open time (use count() for the live value). */
    this.initialCount = info.count;
    /** Milliseconds spent loading IndexedDB into the in-memory index at open. */
    this.loadMs = info.loadMs;
    this.embedder = embedder ?? null;
    // numpy arriving after open moves "auto" stores to it (same bytes)
    runtime.addEventListener("backend", (ev) => {
      if (ev.detail.store === this.name) this.backend = ev.detail.backend;
    });
  }

  /**
   * Open (or create) a store.
   * Opening an existing store with a config of another fingerprint rejects
   * with ClarkHashError type "ConfigMismatchError" (nothing is changed).
   * Opening a store that is already open in the same runtime shares its
   * in-memory index (each handle must be closed).
   * @param {object} opts
   * @param {string} opts.name
   * @param {string} [opts.codec]  a codec spec such as "e8:384", "sign-bits:384",
   *        "clark-hash:384" (clark_hash_web/codecs/registry.py)
   * @param {ClarkHashConfigInit|Uint8Array|ArrayBuffer} [opts.config]  Clark Hash
   *        fields, or the canonical config bytes of any codec (e.g. a trained ITQ).
   *        One of codec/config is required when creating; when both are
   *        omitted, an existing store opens with its stored config
   * @param {"int8"|null} [opts.vectors=null]  keep an int8 row beside every
   *        sketch (same transaction) for two-stage search; fixed at creation
   * @param {"auto"|"numpy"|"python"} [opts.backend="auto"]
   * @param {(texts: string[]) => Promise<Float32Array[]>} [opts.embedder]
   *        turns texts into vectors (needed to add or search texts)
   * @param {ClarkHashRuntime} [opts.runtime]  default: the page's shared runtime
   * @returns {Promise<ClarkHashStore>}
   */
  static async open(opts) {
    if (!opts || typeof opts.name !== "string" || !opts.name) {
      throw new ClarkHashError("InvalidInputError", "open() needs {name: string, config}");
    }
    const runtime = opts.runtime ?? defaultRuntime();
    const raw = opts.config instanceof ArrayBuffer || ArrayBuffer.isView(opts.config);
    if (opts.codec !== undefined && opts.codec !== null && typeof opts.codec !== "string") {
      throw new ClarkHashError("InvalidInputError", `open(): codec must be a spec string like "e8:384"`);
    }
    const info = await runtime.call("open", {
      name: opts.name,
      codec: opts.codec ?? null,
      config: opts.config && !raw ? normalizeConfig(opts.config) : null,
      configBytes: raw ? new Uint8Array(ArrayBuffer.isView(opts.config) ? opts.config.buffer.slice(
        opts.config.byteOffset, opts.config.byteOffset + opts.config.byteLength) : opts.config.slice(0)) : null,
      backend: opts.backend ?? "auto",
      vectors: opts.vectors ?? null,
    });
    return new ClarkHashStore(runtime, info.handle, info, opts.embedder);
  }

  /** Delete a store's IndexedDB database (close it first). */
  static async destroy(name, runtime = defaultRuntime()) {
    return runtime.call("destroy", { name });
  }

  async _vectors(items, where) {
    let embedMs = 0;
    const texts = items.filter((x) => typeof x === "string");
    if (texts.length && texts.length !== items.length) {
      throw new ClarkHashError("InvalidInputError", `${where}: mix of texts and vectors in one batch`);
    }
    if (texts.length) {
      if (!this.embedder) throw new ClarkHashError("InvalidInputError", `${where}: texts need an embedder (open({embedder}))`);
      const t0 = performance.now();
      items = await this.embedder(texts);
      embedMs = performance.now() - t0;
    }
    const d = this.config.input_dim;
    const flat = new Float32Array(items.length * d);
    items.forEach((v, i) => {
      const f = toFloat32(v, `${where} row ${i}`);
      if (f.length !== d) {
        throw new ClarkHashError("DimensionError",
          `${where} row ${i}: vector has ${f.length} values, this store's config needs ${d}`);
      }
      flat.set(f, i * d);
    });
    return { flat, n: items.length, embedMs };
  }

  /**
   * Add one vector (or text). Returns its id.
   * @param {Float32Array|number[]|string} item
   * @param {{id?: number|string}} [opts]
   */
  async add(item, opts = {}) {
    const ids = await this.addMany([item], opts.id === undefined ? {} : { ids: [opts.id] });
    return ids[0];
  }

  /**
   * Add a batch in ONE IndexedDB transaction: all of it or none of it.
   * Everything is validated (dimension, NaN/inf, zero vectors, duplicate ids)
   * before the write starts.
   * @param {Array<Float32Array|number[]>|string[]} items
   * @param {{ids?: Array<number|string>}} [opts]  default: consecutive ints
   * @returns {Promise<Array<number|string>>} the ids
   */
  async addMany(items, opts = {}) {
    const { flat, n } = await this._vectors(Array.from(items), "addMany");
    return this.runtime.call("add", { handle: this.handle, vectors: flat.buffer, n, ids: opts.ids ?? null },
      [flat.buffer]);
  }

  /**
   * Top-k search.
   * @param {Float32Array|number[]|string} query
   * @param {number} [k=10]
   * @param {{rescore?: number}} [opts]  rescore: two-stage search (stores opened
   *        with vectors "int8"): the best `rescore` candidates by code are re-ranked
   *        exactly from their int8 rows (scores are then the rescoring scores)
   * @returns {Promise<SearchResult>}
   */
  async search(query, k = 10, opts = {}) {
    const t0 = performance.now();
    const rescore = opts.rescore ?? 0;
    if (!Number.isInteger(rescore) || rescore < 0) {
      throw new ClarkHashError("InvalidInputError", `search(): rescore must be a non-negative integer, got ${rescore}`);
    }
    const { flat, embedMs } = await this._vectors([query], "search");
    const r = await this.runtime.call("search", { handle: this.handle, query: flat.buffer, k, rescore }, [flat.buffer]);
    const timings = { embedMs, sketchMs: r.sketchMs, searchMs: r.searchMs, totalMs: performance.now() - t0 };
    return { ids: r.ids, scores: new Float32Array(r.scores), timings };
  }

  /**
   * Delete one id (or an array of ids) in one transaction.
   * @returns {Promise<number>} how many were removed (unknown ids reject with KeyError)
   */
  async delete(id) {
    return this.runtime.call("delete", { handle: this.handle, ids: Array.isArray(id) ? id : [id] });
  }

  /** @returns {Promise<number>} */
  async count() {
    return this.runtime.call("count", { handle: this.handle });
  }

  /** @returns {Promise<Array<number|string>>} ids in insertion order */
  async ids() {
    return this.runtime.call("ids", { handle: this.handle });
  }

  /**
   * The whole store as a sketch file (.chs, the codec's format), written by
   * Python's clark_hash_web.formats.sketch_file: the same bytes the desktop writes.
   * @returns {Promise<Uint8Array>}
   */
  async exportSketchFile() {
    return new Uint8Array(await this.runtime.call("export", { handle: this.handle }));
  }

  /**
   * Add every sketch of a sketch file (same config fingerprint) in one
   * transaction. Files without ids get consecutive int ids.
   * @param {Uint8Array|ArrayBuffer} bytes
   * @returns {Promise<Array<number|string>>} the ids added
   */
  async importSketchFile(bytes) {
    const buf = bytes instanceof ArrayBuffer ? bytes.slice(0)
      : bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
    return this.runtime.call("import", { handle: this.handle, bytes: buf }, [buf]);
  }

  /**
   * Raw stored codes (and norm codes in dot mode), in insertion order.
   * @returns {Promise<{ids: Array<number|string>, codes: Uint8Array, normCodes: Uint16Array|null}>}
   */
  async codes() {
    const r = await this.runtime.call("codes", { handle: this.handle });
    return { ids: r.ids, codes: new Uint8Array(r.codes), normCodes: r.normCodes ? new Uint16Array(r.normCodes) : null };
  }

  /** @returns {Promise<StoreStats>} */
  async stats() {
    const s = await this.runtime.call("stats", { handle: this.handle });
    if (navigator.storage && navigator.storage.estimate) {
      const e = await navigator.storage.estimate();
      s.estimateUsage = e.usage ?? null;
      s.estimateQuota = e.quota ?? null;
    }
    return s;
  }

  /** Release the store in the worker (its data stays in IndexedDB). */
  async close() {
    return this.runtime.call("close", { handle: this.handle });
  }
}
