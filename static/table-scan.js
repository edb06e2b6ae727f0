/**
 * table-scan.js: the exact JavaScript scan of binary and E8 stores, and int8 rescoring.
 *
 * Binary codes (sign bits, hyperplane LSH, ITQ) and E8 codes are scored
 * through byte lookup tables built here (byteTables) from the query's float32
 * projection that Python computes (BrowserStore.table_query):
 * tables[b * 256 + v] is the float32 contribution of byte value v at code
 * byte b, in the same float32 operations as the Python tables. The score of a code is evaluated in the
 * exact float32 order of clark_hash_web/codecs/bitpack.py:
 *
 *   u_p   = fl(t[2p][byte 2p] + t[2p+1][byte 2p+1])   (the last pair of an odd
 *                                                      byte count: t[2p][byte 2p])
 *   score = fl(...fl(fl(0 + u_0) + u_1)... + u_{P-1})
 *
 * Math.fround after each double addition of two float32 values gives the
 * correctly rounded float32 sum (a double holds the exact sum's rounding), so
 * the scores are the desktop's bits, and ranking follows the desktop's rule:
 * descending by the float32 total order, exact ties by row (insertion order).
 * Normalized learned-E8 stores finish these sums with the query's bias and
 * per-row scales before ranking (normalized-scores.js).
 *
 * int8 rescoring (two-stage search) follows clark_hash_web/index/two_stage.py:
 * a row is a float32 LE scale and d int8 values c_i; its score is
 * fl(acc * scale) with acc the sequential float32 sum of fl(q_i * c_i).
 */

const fround = Math.fround;

/** The 240 E8 roots by byte value (clark_hash_web/codecs/e8.py), 8 entries each; 240..255 are 0. */
export const E8_ROOTS = (() => {
  const r = new Float32Array(256 * 8);
  for (let v = 0; v < 128; v++) {
    let odd = 0;
    for (let k = 0; k < 7; k++) {
      const neg = (v >> k) & 1;
      odd ^= neg;
      r[v * 8 + k] = neg ? -0.5 : 0.5;
    }
    r[v * 8 + 7] = odd ? -0.5 : 0.5;
  }
  let v = 128;
  for (let i = 0; i < 8; i++) {
    for (let j = i + 1; j < 8; j++) {
      for (const ni of [0, 1]) {
        for (const nj of [0, 1]) {
          r[v * 8 + i] = ni ? -1 : 1;
          r[v * 8 + j] = nj ? -1 : 1;
          v++;
        }
      }
    }
  }
  return r;
})();

/**
 * The byte lookup tables of a query, exactly as Python builds them.
 * "bits" (sign bits, hyperplane LSH, ITQ; bitpack.byte_tables_python):
 * t[b][v] = sequential float32 sum over k of (bit k of v ? +q_j : -q_j),
 * j = 8b + k < nbits. "e8" (e8.E8Codes._tables_python): t[b][v] =
 * sequential float32 sum over k of fl(q_{8b+k} * root_v[k]), 0 for v >= 240.
 * @param {"bits"|"e8"} kind
 * @param {Float32Array} values  the query's projection (padded to 8 * codeBytes for E8)
 * @param {number} nbits
 * @param {number} codeBytes
 * @returns {Float32Array} codeBytes * 256
 */
export function byteTables(kind, values, nbits, codeBytes) {
  const t = new Float32Array(codeBytes * 256);
  for (let b = 0; b < codeBytes; b++) {
    const o = b << 8;
    for (let v = 0; v < 256; v++) {
      let acc = 0;
      if (kind === "e8") {
        if (v < 240) for (let k = 0; k < 8; k++) acc = fround(acc + fround(values[8 * b + k] * E8_ROOTS[v * 8 + k]));
      } else {
        for (let k = 0; k < 8 && 8 * b + k < nbits; k++) {
          const q = values[8 * b + k];
          acc = fround(acc + ((v >> k) & 1 ? q : -q));
        }
      }
      t[o + v] = acc;
    }
  }
  return t;
}

/** Float32 total-order key of a float32's bits (as int32): larger key = larger score. */
function orderKey(bits) {
  return bits >= 0 ? bits : -(bits & 0x7fffffff) - 1;
}

/** Row numbers and scores of the `n` best rows (descending, ties by row), best first. */
export function topRows(scores, n) {
  const count = scores.length;
  n = Math.min(n, count);
  const keys = new Int32Array(scores.buffer, scores.byteOffset, count);
  // min-heap of the n best so far, worst at the root; rows arrive ascending, so a
  // later row replaces the root only with a strictly larger key
  const heap = new Int32Array(n);
  let size = 0;
  const worse = (a, b) => {   // is row a worse than row b?
    const ka = orderKey(keys[a]), kb = orderKey(keys[b]);
    return ka < kb || (ka === kb && a > b);
  };
  const down = (i) => {
    for (;;) {
      const l = 2 * i + 1, r = l + 1;
      let w = i;
      if (l < size && worse(heap[l], heap[w])) w = l;
      if (r < size && worse(heap[r], heap[w])) w = r;
      if (w === i) return;
      const t = heap[i]; heap[i] = heap[w]; heap[w] = t;
      i = w;
    }
  };
  let worst = 0;   // key of the root once the heap is full
  for (let row = 0; row < count; row++) {
    if (size < n) {
      let i = size++;
      heap[i] = row;
      while (i > 0) {
        const p = (i - 1) >> 1;
        if (!worse(heap[i], heap[p])) break;
        const t = heap[i]; heap[i] = heap[p]; heap[p] = t;
        i = p;
      }
      if (size === n) worst = orderKey(keys[heap[0]]);
    } else if (n > 0 && orderKey(keys[row]) > worst) {
      heap[0] = row;
      down(0);
      worst = orderKey(keys[heap[0]]);
    }
  }
  const rows = Array.from(heap.subarray(0, size)).sort((a, b) => (worse(a, b) ? 1 : worse(b, a) ? -1 : 0));
  return { rows: Uint32Array.from(rows), scores: Float32Array.from(rows, (r) => scores[r]) };
}

/**
 * Scores every stored code of a binary or E8 store against a query's byte tables.
 *
 * Speed (1M rows of 48 bytes in ~50 ms instead of ~110 ms): when the code
 * bytes are a multiple of 4 (E8 48 B, sign bits 384), codes are read as
 * Uint32 words (4 bytes, 2 pairs) and four rows are scored side by side, so
 * four independent chains of float32 additions overlap in the CPU. Each row
 * still adds its pairs in the bitpack order above: the bits do not change.
 */
export class TableScanner {
  /**
   * @param {Uint8Array} codes  count * codeBytes bytes, row-major (index row order)
   * @param {number} codeBytes
   * @param {number} count
   */
  constructor(codes, codeBytes, count) {
    if (codes.length < count * codeBytes) throw new Error(`${codes.length} code bytes for ${count} rows of ${codeBytes}`);
    this.codes = codes;
    this.codeBytes = codeBytes;
    this.count = count;
    this.out = new Float32Array(count);
    // the word path needs 4-byte rows and a 4-byte aligned view
    this.words = codeBytes % 4 === 0 && codes.byteOffset % 4 === 0
      ? new Uint32Array(codes.buffer, codes.byteOffset, (count * codeBytes) >> 2) : null;
  }

  /** Float32 scores of every row (bitpack order); reuses one buffer between calls. */
  scores(tables) {
    const { codeBytes: cb, count, out } = this;
    if (tables.length !== cb * 256) throw new Error(`${tables.length} table entries for ${cb} code bytes`);
    const done = this.words && LITTLE_ENDIAN ? scoreWords(tables, this.words, cb >> 2, count, out) : 0;
    scoreBytes(tables, this.codes, cb, done, count, out);
    return out;
  }

  /** The `n` best rows: {rows: Uint32Array, scores: Float32Array}, best first. */
  top(tables, n) {
    return topRows(this.scores(tables), n);
  }
}

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** Rows start..end-1, one byte at a time (any code size). */
function scoreBytes(tables, codes, cb, start, end, out) {
  const even = cb & ~1;
  for (let r = start, base = start * cb; r < end; r++, base += cb) {
    let acc = 0;
    for (let p = 0; p < even; p += 2) {
      acc = fround(acc + fround(tables[(p << 8) + codes[base + p]] + tables[((p + 1) << 8) + codes[base + p + 1]]));
    }
    if (even !== cb) acc = fround(acc + tables[(even << 8) + codes[base + even]]);
    out[r] = acc;
  }
}

/**
 * Rows 0..4*floor(count/4)-1, four at a time, W = codeBytes / 4 words per row
 * (little-endian: byte 4j+i of a row is bits 8i..8i+7 of word j). Returns the
 * rows done.
 */
function scoreWords(T, words, W, count, out) {
  const end = count & ~3;
  for (let r = 0; r < end; r += 4) {
    let a = 0, b = 0, c = 0, d = 0;
    const ba = r * W, bb = ba + W, bc = bb + W, bd = bc + W;
    for (let j = 0, o = 0; j < W; j++, o += 1024) {
      const wa = words[ba + j], wb = words[bb + j], wc = words[bc + j], wd = words[bd + j];
      a = fround(a + fround(T[o + (wa & 255)] + T[o + 256 + ((wa >>> 8) & 255)]));
      b = fround(b + fround(T[o + (wb & 255)] + T[o + 256 + ((wb >>> 8) & 255)]));
      c = fround(c + fround(T[o + (wc & 255)] + T[o + 256 + ((wc >>> 8) & 255)]));
      d = fround(d + fround(T[o + (wd & 255)] + T[o + 256 + ((wd >>> 8) & 255)]));
      a = fround(a + fround(T[o + 512 + ((wa >>> 16) & 255)] + T[o + 768 + (wa >>> 24)]));
      b = fround(b + fround(T[o + 512 + ((wb >>> 16) & 255)] + T[o + 768 + (wb >>> 24)]));
      c = fround(c + fround(T[o + 512 + ((wc >>> 16) & 255)] + T[o + 768 + (wc >>> 24)]));
      d = fround(d + fround(T[o + 512 + ((wd >>> 16) & 255)] + T[o + 768 + (wd >>> 24)]));
    }
    out[r] = a; out[r + 1] = b; out[r + 2] = c; out[r + 3] = d;
  }
  return end;
}

/**
 * Exact int8 rescoring scores of `rows` (two_stage.py's VectorFile rule).
 * @param {Float32Array} q      the prepared query (BrowserStore.rescore_query), d values
 * @param {Uint8Array} vectors  count * (4 + d) bytes: f32 LE scale, then d int8
 * @param {number} d
 * @param {Uint32Array|number[]} rows
 * @returns {Float32Array}
 */
export function rescoreInt8(q, vectors, d, rows) {
  const rowBytes = 4 + d;
  const view = new DataView(vectors.buffer, vectors.byteOffset, vectors.byteLength);
  const vals = new Int8Array(vectors.buffer, vectors.byteOffset, vectors.byteLength);
  const out = new Float32Array(rows.length);
  for (let j = 0; j < rows.length; j++) {
    const base = rows[j] * rowBytes;
    if (base + rowBytes > vectors.byteLength) throw new Error(`row ${rows[j]} has no int8 vector`);
    const scale = view.getFloat32(base, true);
    let acc = 0;
    for (let i = 0, o = base + 4; i < d; i++, o++) acc = fround(acc + fround(q[i] * vals[o]));
    out[j] = fround(acc * scale);
  }
  return out;
}

/**
 * Order of rescored candidates: descending by score (float32 total order), ties by row.
 * @returns {number[]} positions into `rows`/`scores`, best first, at most k
 */
export function rankRescored(rows, scores, k) {
  const keys = new Int32Array(scores.buffer, scores.byteOffset, scores.length);
  const pos = Array.from(rows, (_, j) => j);
  pos.sort((a, b) => (orderKey(keys[b]) - orderKey(keys[a])) || (rows[a] - rows[b]));
  return pos.slice(0, k);
}
