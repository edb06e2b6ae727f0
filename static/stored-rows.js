/**
 * stored-rows.js: the rows of one open store as the worker holds them, the
 * same as its IndexedDB records (used by worker.js).
 *
 * At open, idb.readRows() packs every block record into one buffer per
 * column (codes, u16 norm codes, int8 rescoring rows) plus a short list of
 * blocks {key, start row, n, ids record}. The JS scans read these buffers in
 * place, and every committed write plan (clark_hash_web/browser/bridge.py) is
 * applied to them here (applyPlan: the records it put and deleted), so the
 * rows always equal what a reopen would read, and Python never needs a copy
 * of all rows to write: it plans from the new rows and what this class tells
 * it (the last block record, which new ids are stored, the records of the
 * blocks holding ids to delete). Normalized learned-E8 stores also keep a
 * derived column, the float32 row scales of the codes (normalized-scores.js):
 * computed at open and for every block a plan puts, moved and dropped with
 * the rows like the other columns, never written to IndexedDB.
 *
 * Memory: a column keeps spare capacity (at least 1,024 rows, or an eighth
 * of its rows) so single adds do not copy it; a write that fits moves rows
 * in place (a delete compacts: copyWithin); one that does not allocates the
 * grown column once. Id records stay ranges / f64 arrays / string lists.
 */

import { exactBuffer } from "./idb-store.js";

/** A typed array's bytes as a Uint8Array view. */
function bytesOf(x) {
  return x ? new Uint8Array(x.buffer, x.byteOffset, x.byteLength) : null;
}

/** An ids record as a block keeps it ("int" data as a Float64Array). */
function blockIds(rec) {
  if (rec.kind !== "int") return rec;
  const data = rec.data instanceof Float64Array ? rec.data : new Float64Array(exactBuffer(bytesOf(rec.data).slice()));
  return { kind: "int", data };
}

/** Numbers of `ids` sorted ascending (for range lookups) and a Set of all of them. */
function lookup(ids) {
  const set = new Set(ids);
  const nums = Float64Array.from(ids.filter((i) => typeof i === "number" && Number.isInteger(i))).sort();
  return { set, nums };
}

/** First index of sorted `a` with a[i] >= x. */
function lowerBound(a, x) {
  let lo = 0, hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (a[mid] < x) lo = mid + 1; else hi = mid;
  }
  return lo;
}

export class StoredRows {
  /**
   * @param {object} rows  what idb.readRows() returned
   * @param {number} codeBytes  the config's code bytes
   * @param {number} vectorBytes  bytes of an int8 rescoring row (two-stage stores), else 0
   * @param {null|function(Uint8Array, number): Float32Array} [rowScale]  normalized
   *   learned-E8 stores: the row scales of codes (normalized-scores.js rowScaler),
   *   kept as a derived column "scales" (float32, never written to IndexedDB)
   */
  constructor(rows, codeBytes, vectorBytes, rowScale = null) {
    this.count = rows.count;
    this.blocks = rows.blocks;
    this.widths = { codes: codeBytes, norms: 2, vectors: vectorBytes, scales: rowScale ? 4 : 0 };
    this.rowScale = rowScale;
    // full-capacity columns (the packed buffers readRows made); the used part is count rows
    this.cols = {};
    for (const name of ["codes", "norms", "vectors"]) {
      const a = rows[name];
      this.cols[name] = a && a.length ? new Uint8Array(a.buffer, a.byteOffset, a.buffer.byteLength - a.byteOffset) : null;
    }
    this.cols.scales = null;
    if (rowScale && this.count) {   // as many rows of capacity as the codes column
      const scales = new Float32Array(Math.floor(this.cols.codes.length / codeBytes));
      scales.set(rowScale(this.codes, this.count));
      this.cols.scales = bytesOf(scales);
    }
  }

  get codeBytes() { return this.widths.codes; }
  /** Codes of every row, row-major, in row (insertion) order. */
  get codes() { return this.used("codes") ?? new Uint8Array(0); }
  /** u16 LE norm codes (Clark Hash dot mode), else null. */
  get norms() { return this.used("norms"); }
  /** int8 rescoring rows (two-stage stores), else null. */
  get vectors() { return this.used("vectors"); }
  /** Row scales of a normalized learned-E8 store (Float32Array, one per row), else null. */
  get scales() {
    const a = this.used("scales");
    return a ? new Float32Array(a.buffer, a.byteOffset, this.count) : null;
  }

  used(name) {
    const a = this.cols[name];
    return a ? a.subarray(0, this.count * this.widths[name]) : null;
  }

  /** The block record of blocks[i], as Python reads records ({key, block, ids}; views, not copies). */
  record(i) {
    const b = this.blocks[i];
    const part = (name) => {
      const a = this.cols[name], w = this.widths[name];
      return a ? a.subarray(b.start * w, (b.start + b.n) * w) : undefined;
    };
    return {
      key: b.key,
      block: { n: b.n, codes: part("codes"), norms: part("norms"), vectors: part("vectors") },
      ids: b.ids.kind === "int" ? { kind: "int", data: bytesOf(b.ids.data) } : b.ids,
    };
  }

  /** The last block's record, or null (no rows). */
  lastRecord() {
    return this.blocks.length ? this.record(this.blocks.length - 1) : null;
  }

  /** The next automatic id: after every stored int id. */
  nextAuto() {
    let next = 0;
    for (const b of this.blocks) {
      if (b.ids.kind === "range") next = Math.max(next, b.ids.start + b.n);
      else if (b.ids.kind === "int") for (const v of b.ids.data) if (v + 1 > next) next = v + 1;
    }
    return next;
  }

  /**
   * Where `ids` are stored: calls visit(block index, position in block, id) for each stored
   * one (in row order for id records, by id for ranges). One pass over the id records.
   */
  each(ids, visit) {
    if (!ids.length) return;
    const { set, nums } = lookup(ids);
    this.blocks.forEach((b, bi) => {
      if (b.ids.kind === "range") {
        const lo = b.ids.start, hi = lo + b.n;
        for (let j = lowerBound(nums, lo); j < nums.length && nums[j] < hi; j++) {
          if (j && nums[j] === nums[j - 1]) continue;
          visit(bi, nums[j] - lo, nums[j]);
        }
      } else {
        const data = b.ids.data;
        for (let r = 0; r < b.n; r++) if (set.has(data[r])) visit(bi, r, data[r]);
      }
    });
  }

  /** Those of `ids` that are stored. */
  present(ids) {
    const out = [];
    this.each(ids, (bi, r, id) => out.push(id));
    return out;
  }

  /** The records of the blocks holding any of `ids`. */
  holding(ids) {
    const hit = new Set();
    this.each(ids, (bi) => hit.add(bi));
    return [...hit].sort((a, b) => a - b).map((bi) => this.record(bi));
  }

  /** Row numbers of stored `ids`, in that order (an Error naming an unknown id). */
  rowsOf(ids) {
    const row = new Map();
    this.each(ids, (bi, r, id) => row.set(id, this.blocks[bi].start + r));
    return Uint32Array.from(ids, (id) => {
      if (!row.has(id)) throw new Error(`id ${JSON.stringify(id)} is not in the store`);
      return row.get(id);
    });
  }

  /**
   * Apply a committed plan {puts: [{key, block: {n, codes, norms, vectors}, ids}], deletes: [key]}
   * (the records the transaction wrote): the rows become what a reopen reads.
   */
  applyPlan(plan) {
    // a put block's derived row scales come from its codes (the rows it rewrites, at most a block)
    const puts = !this.rowScale ? plan.puts : plan.puts.map((p) => (
      { ...p, block: { ...p.block, scales: bytesOf(this.rowScale(bytesOf(p.block.codes), p.block.n)) } }));
    for (const p of puts) {   // check everything before changing anything
      for (const name of Object.keys(this.widths)) {
        const w = this.widths[name], src = p.block[name];
        if (w && (this.cols[name] || src) && (!src || src.byteLength !== p.block.n * w)) {
          throw new Error(`block ${p.key}: ${src ? src.byteLength : 0} bytes of ${name} for ${p.block.n} rows`);
        }
        if (w && src && !this.cols[name] && this.count) throw new Error(`the stored rows have no ${name}`);
      }
    }
    const changed = new Map();
    for (const k of plan.deletes) changed.set(k, null);
    for (const p of puts) changed.set(p.key, p);
    // the new blocks in key order: kept ones (rows still at their old start) and put ones
    const next = [];
    for (const b of this.blocks) if (!changed.has(b.key)) next.push({ key: b.key, n: b.n, ids: b.ids, from: b.start });
    for (const p of puts) next.push({ key: p.key, n: p.block.n, ids: blockIds(p.ids), put: p.block });
    next.sort((a, b) => a.key - b.key);
    let count = 0;
    for (const e of next) {
      e.start = count;
      count += e.n;
    }
    // in place when every column has room and no kept block moves right (writing a block
    // never overwrites rows still to be moved); else into new columns
    const inPlace = next.every((e) => e.put || e.start <= e.from) &&
      Object.keys(this.widths).every((name) => !this.cols[name] || this.cols[name].length >= count * this.widths[name]);
    const cols = {};
    for (const name of Object.keys(this.widths)) {
      const w = this.widths[name];
      const has = this.cols[name] || puts.some((p) => p.block[name]);
      if (!has || !w) {
        cols[name] = null;
        continue;
      }
      const old = this.cols[name];
      const dst = inPlace && old ? old : new Uint8Array(Math.max(count + 1024, count + (count >> 3)) * w);
      for (const e of next) {
        if (e.put) {
          dst.set(bytesOf(e.put[name]), e.start * w);
        } else if (dst !== old || e.start !== e.from) {
          if (dst === old) dst.copyWithin(e.start * w, e.from * w, (e.from + e.n) * w);
          else dst.set(old.subarray(e.from * w, (e.from + e.n) * w), e.start * w);
        }
      }
      cols[name] = dst;
    }
    this.cols = cols;
    this.count = count;
    this.blocks = next.map(({ key, start, n, ids }) => ({ key, start, n, ids }));
  }
}
