/**
 * idb-store.js: the IndexedDB side of a ClarkHashStore (used by worker.js).
 *
 * One database per store, named "clark-hash:" + store name, version 1, with
 * three object stores:
 *
 *   meta    key "meta" -> {schema: 1, configBytes: ArrayBuffer, fingerprint: "16 hex chars",
 *                          created: ms since epoch, nextAuto: next automatic int id
 *                          (deleted ids are not reused), vectors?: "int8"}
 *           The canonical config bytes of any registered codec (first byte =
 *           codec kind: 1 Clark Hash (32 bytes), 2 hyperplane LSH, 3 sign bits,
 *           4 ITQ (591 KB at d=384), 5 E8; clark_hash_web/codecs/registry.py)
 *           and their fingerprint. Opening with another config is a
 *           ConfigMismatchError. `vectors: "int8"` (two-stage stores) is set
 *           at creation; stores made before it have no such field.
 *   blocks  key block number (int, ascending = insertion order) ->
 *           {n, codes: ArrayBuffer(n * codeBytes), norms: ArrayBuffer(2n, u16 LE) | null,
 *            vectors?: ArrayBuffer(n * (4 + d))}
 *           Up to 1024 sketches per record (BLOCK_ROWS in clark_hash_web/browser/bridge.py).
 *           `vectors` (two-stage stores only): each row's int8 rescoring row,
 *           f32 LE scale then d int8 (clark_hash_web/browser/int8_rows.py), in
 *           the same record as its code, so one transaction writes both.
 *   ids     key block number -> the ids of that block's rows, in row order:
 *           {kind: "range", start, n}  consecutive ints start..start+n-1
 *           {kind: "int", data: ArrayBuffer(8n, f64 LE)}  other (safe) ints
 *           {kind: "str", data: [string, ...]}
 *           One record per block, not per id: a per-id record would cost more
 *           IndexedDB bytes than the 48-byte sketch itself.
 *
 * Reading (readRows): at open, all records in batches of READ_BATCH, packed
 * into one buffer per column (codes, norms, int8 rows) plus a small list of
 * blocks {key, start row, n, ids record}; range records stay ranges. The
 * worker keeps them as the store's rows (stored-rows.js: searches read them,
 * writes are planned from them and applied to them after they commit).
 * allIds / idsOfRows name rows from these blocks.
 *
 * Writes: every batch (add, import, delete) is ONE readwrite transaction over
 * blocks + ids + meta, durability "strict". New rows fill the last block and then
 * new blocks; a delete rewrites the affected blocks without the deleted rows
 * (compaction, no tombstones), or deletes emptied blocks. A crash, a closed
 * page or a quota error aborts the transaction: all of the batch or none.
 */

export const SCHEMA_VERSION = 1;
const DB_VERSION = 1;

/** Database name of a store. */
export function dbName(name) {
  return `clark-hash:${name}`;
}

function req(r) {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

/** An ArrayBuffer holding exactly the bytes of a typed array / buffer (a copy when needed). */
export function exactBuffer(x) {
  if (x === null || x === undefined) return null;
  if (x instanceof ArrayBuffer) return x;
  if (x.byteOffset === 0 && x.byteLength === x.buffer.byteLength && x.buffer instanceof ArrayBuffer) return x.buffer;
  return x.buffer.slice(x.byteOffset, x.byteOffset + x.byteLength);
}

/** Open (creating if needed) a store's database. */
export function openDB(name) {
  const r = indexedDB.open(dbName(name), DB_VERSION);
  r.onupgradeneeded = () => {
    const db = r.result;
    for (const s of ["meta", "blocks", "ids"]) {
      if (!db.objectStoreNames.contains(s)) db.createObjectStore(s);
    }
  };
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
    r.onblocked = () => reject(new Error(`database ${dbName(name)} is open elsewhere with an older version`));
  });
}

/** Delete a store's database. */
export function deleteDB(name) {
  return req(indexedDB.deleteDatabase(dbName(name)));
}

/** The meta record, or undefined for a new store. */
export async function readMeta(db) {
  const tx = db.transaction("meta", "readonly");
  return req(tx.objectStore("meta").get("meta"));
}

/** Write the meta record of a new store (one transaction). */
export function writeMeta(db, meta) {
  const tx = db.transaction("meta", "readwrite", { durability: "strict" });
  tx.objectStore("meta").put(meta, "meta");
  return txDone(tx);
}

/** Block records per getAll() when readRows() reads a store. */
const READ_BATCH = 64;

/**
 * Every block of a store packed into one buffer per column, read in batches
 * of READ_BATCH records (one read transaction): no per-record copy is kept.
 * @returns {Promise<{count: number, codeBytes: number, codes: Uint8Array,
 *   norms: Uint8Array|null, vectors: Uint8Array|null,
 *   blocks: Array<{key: number, start: number, n: number, ids: object}>}>}
 *   `codes` holds count * codeBytes bytes in key order (= insertion order);
 *   `norms` (u16 LE per row) and `vectors` (int8 rows) when the records have
 *   them; `blocks[i].ids` is the block's ids record ("int" data as a Float64Array).
 */
export async function readRows(db) {
  const tx = db.transaction(["blocks", "ids"], "readonly");
  const bs = tx.objectStore("blocks"), is = tx.objectStore("ids");
  const records = await req(bs.count());
  const cols = { codes: null, norms: null, vectors: null };
  const blocks = [];
  let count = 0, codeBytes = 0, lower = null;
  for (;;) {
    const range = lower === null ? null : IDBKeyRange.lowerBound(lower, true);
    const [keys, recs, ids] = await Promise.all([
      req(bs.getAllKeys(range, READ_BATCH)), req(bs.getAll(range, READ_BATCH)), req(is.getAll(range, READ_BATCH)),
    ]);
    if (recs.length !== ids.length) throw new Error(`IndexedDB holds blocks without id records (near block ${keys[0]})`);
    if (!keys.length) break;
    for (let i = 0; i < keys.length; i++) {
      const { n, codes, norms, vectors } = recs[i];
      const rec = ids[i];
      const nIds = rec.kind === "range" ? rec.n : rec.kind === "int" ? rec.data.byteLength / 8 : rec.data.length;
      if (!blocks.length) codeBytes = n ? codes.byteLength / n : 0;
      if (nIds !== n || codes.byteLength !== n * codeBytes) {
        throw new Error(`IndexedDB block ${keys[i]}: ${n} rows, ${nIds} ids and ${codes.byteLength} code bytes ` +
                        `(${codeBytes} bytes per code in the first block)`);
      }
      // room for the rows still to come (writers put at most 1024 rows in a record)
      const rowsLeft = Math.max(n, 1024) * (records - blocks.length);
      appendColumn(cols, "codes", codes, count, n, rowsLeft);
      if (norms) appendColumn(cols, "norms", norms, count, n, rowsLeft);
      if (vectors) appendColumn(cols, "vectors", vectors, count, n, rowsLeft);
      blocks.push({ key: keys[i], start: count, n,
                    ids: rec.kind === "int" ? { kind: "int", data: new Float64Array(rec.data) } : rec });
      count += n;
    }
    lower = keys[keys.length - 1];
  }
  const trim = (a, width) => {   // drop unused capacity (a copy only when it is worth it)
    if (!a) return null;
    const used = count * width;
    return a.length - used > (a.length >> 3) ? a.slice(0, used) : a.subarray(0, used);
  };
  return {
    count, codeBytes,
    codes: trim(cols.codes, codeBytes) ?? new Uint8Array(0),
    norms: trim(cols.norms, 2),
    vectors: cols.vectors ? trim(cols.vectors, cols.vectorBytes) : null,
    blocks,
  };
}

/** Copy one record's column bytes to row `row` of cols[name], growing it when needed. */
function appendColumn(cols, name, buf, row, n, rowsLeft) {
  const width = buf.byteLength / n;
  if (name === "vectors") cols.vectorBytes = width;
  let a = cols[name];
  const need = (row + n) * width;
  if (!a || a.length < need) {
    const grown = new Uint8Array(Math.max(need, (row + rowsLeft) * width));
    if (a) grown.set(a.subarray(0, row * width));
    a = cols[name] = grown;
  }
  a.set(new Uint8Array(buf), row * width);
}

/** Every id of readRows() blocks, in row order. */
export function allIds(blocks) {
  const out = [];
  for (const b of blocks) {
    if (b.ids.kind === "range") for (let i = 0; i < b.n; i++) out.push(b.ids.start + i);
    else for (let i = 0; i < b.n; i++) out.push(b.ids.data[i]);
  }
  return out;
}

/**
 * The ids of row numbers, from readRows() blocks (without expanding any
 * record into one value per row).
 * @param {Array<{start, n, ids}>} blocks
 * @param {ArrayLike<number>} rows
 * @returns {Array<number|string>}
 */
export function idsOfRows(blocks, rows) {
  return Array.from(rows, (row) => {
    let lo = 0, hi = blocks.length - 1;
    while (lo < hi) {   // the last block starting at or before row
      const mid = (lo + hi + 1) >> 1;
      if (blocks[mid].start <= row) lo = mid; else hi = mid - 1;
    }
    const b = blocks[lo];
    const i = b ? row - b.start : -1;
    if (i < 0 || i >= b.n) throw new Error(`row ${row} is not stored`);
    return b.ids.kind === "range" ? b.ids.start + i : b.ids.data[i];
  });
}

function txDone(tx) {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error ?? new DOMException("transaction aborted", "AbortError"));
  });
}

/**
 * Write a plan from browser_bridge.py in ONE transaction.
 * plan = {puts: [{key, block: {n, codes, norms}, ids}], deletes: [key]};
 * `meta`, when given, replaces the meta record in the same transaction.
 * Resolves when committed; rejects (nothing written) on quota errors or aborts.
 * `failWith` ({name}) is a test hook: abort the transaction after issuing
 * every put and reject with a DOMException of that name.
 */
export function applyPlan(db, plan, meta, failWith = null) {
  const tx = db.transaction(["blocks", "ids", "meta"], "readwrite", { durability: "strict" });
  if (meta) tx.objectStore("meta").put(meta, "meta");
  const blocks = tx.objectStore("blocks");
  const ids = tx.objectStore("ids");
  for (const key of plan.deletes) {
    blocks.delete(key);
    ids.delete(key);
  }
  for (const p of plan.puts) {
    const rec = { n: p.block.n, codes: exactBuffer(p.block.codes), norms: exactBuffer(p.block.norms) };
    if (p.block.vectors) rec.vectors = exactBuffer(p.block.vectors);   // two-stage stores: int8 rows, same record
    blocks.put(rec, p.key);
    ids.put(p.ids.kind === "int" ? { kind: "int", data: exactBuffer(p.ids.data) } : p.ids, p.key);
  }
  if (failWith) {   // test hook (worker.js failNextWrite): abort after all puts were issued
    tx.abort();
    return txDone(tx).catch(() => { throw new DOMException(`simulated ${failWith.name}`, failWith.name); });
  }
  return txDone(tx);
}
