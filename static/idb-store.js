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
 *           IndexedDB bytes than the 48-byte sketch itself. The worker keeps
 *           the id -> block map in memory (rebuilt at open).
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

/** Every block with its ids: [{key, block, ids}] in key order. */
export async function readAllRecords(db) {
  const tx = db.transaction(["blocks", "ids"], "readonly");
  const [keys, blocks, ids] = await Promise.all([
    req(tx.objectStore("blocks").getAllKeys()),
    req(tx.objectStore("blocks").getAll()),
    req(tx.objectStore("ids").getAll()),
  ]);
  if (blocks.length !== ids.length) {
    throw new Error(`IndexedDB holds ${blocks.length} blocks but ${ids.length} id records`);
  }
  return keys.map((key, i) => ({ key, block: blocks[i], ids: ids[i] }));
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
