/**
 * prefilter-scan.js: the browser's fast candidate scan (used by worker.js).
 *
 * Exact top-k search in the browser is two steps:
 *   1. Python sketches the query and returns a scan plan
 *      (clark_hash_web.browser.bridge.BrowserStore.prefilter): the query's
 *      float32 sketch values, the level step, the constant term and the
 *      accumulator error bound (clark_hash_web/index/fast_scan.py proves it);
 *      byteTables() below builds the per-byte lookup tables from them, with
 *      the same float64 operations as fast_scan.byte_tables (bit-identical;
 *      tests/browser/test_browser_prefilter.py checks it);
 *   2. PrefilterScanner.rows() scans every stored code with plain typed-array
 *      loops and returns the rows whose upper score bound reaches the k-th
 *      largest lower bound; Python then scores only those rows exactly
 *      (FlatIndex.rank_rows), which gives the same ids and float32 score bits
 *      as a full exact search (ties included).
 *
 * Per row i (float64 JS numbers, the model is tests/test_index.py::_external_prefilter):
 *   acc    = const + sum_j tables[j * 256 + code[i * codeBytes + j]]   (any order)
 *   scale  = dot ? queryNorm * decoded[normCode[i]] : 1
 *   approx = acc / m * scale
 *   err    = 1.5 * (errAcc / m * scale + 4 * 2**-24 * |approx| + 1e-45)
 *   tau    = k-th largest (approx - err)            (a size-k min-heap)
 *   keep i when approx + err >= tau
 *
 * One pass does it all: rows are accumulated in blocks of BLOCK rows (the
 * block's accumulators stay in the CPU cache), then each row of the block is
 * checked against the current k-th largest lower bound. The heap's smallest
 * value only grows, so a row whose upper bound is below it now is below the
 * final tau as well: it can neither enter the heap nor be kept. The other rows
 * are remembered with their upper bound and filtered by the final tau at the
 * end, which keeps exactly the rows the two-pass rule above keeps.
 */

const U4 = 4 * 2 ** -24;
const BLOCK = 2048;
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/**
 * Per-byte lookup tables, bit-identical to clark_hash_web.index.fast_scan.byte_tables.
 *
 * tables[j * 256 + v] = float32(sum of the weights of the set bits of byte
 * value v in code byte j), weight of code bit pos = values[pos / bits] * step
 * * 2**(pos % bits) (bits are packed LSB first, pos < m * bits).
 *
 * @param {Float32Array} values  the query's sketch values (m)
 * @param {number} bits
 * @param {number} codeBytes
 * @param {number} step  2 * clip / levels, as Python computed it
 * @param {Float32Array} [out]  codeBytes * 256 entries to fill (a new array when absent)
 * @returns {Float32Array} codeBytes * 256 entries
 */
export function byteTables(values, bits, codeBytes, step, out) {
  const nbits = values.length * bits;
  const tables = out || new Float32Array(codeBytes * 256);
  const row = new Float64Array(256);
  const w = new Float64Array(8);
  for (let j = 0; j < codeBytes; j++) {
    for (let t = 0; t < 8; t++) {
      const pos = 8 * j + t;
      w[t] = pos < nbits ? values[Math.floor(pos / bits)] * step * (1 << (pos % bits)) : 0;
    }
    for (let v = 1; v < 256; v++) {
      const low = v & -v;
      row[v] = row[v ^ low] + w[31 - Math.clz32(low)];
    }
    tables.set(row, j * 256);   // rounds to float32 like Python's array("f")
  }
  return tables;
}

/**
 * Scans one store's codes; keeps its scratch buffers between searches.
 * Make a new one whenever the stored rows change.
 */
export class PrefilterScanner {
  /**
   * @param {Uint8Array} codes  stored codes, row-major (n * codeBytes), FlatIndex row order
   * @param {number} codeBytes
   * @param {number} n  rows to scan
   * @param {Uint16Array|null} normCodes  stored norm codes (dot mode), else null
   * @param {Float64Array|null} decoded  the 65,536 decoded norms (dot mode), else null
   */
  constructor(codes, codeBytes, n, normCodes = null, decoded = null) {
    if (codes.length < n * codeBytes) throw new Error(`scan data holds ${codes.length / codeBytes} rows, expected ${n}`);
    this.codes = codes;
    this.codeBytes = codeBytes;
    this.n = n;
    this.normCodes = normCodes;
    this.decoded = decoded;
    [this.kernel, this.data] = pickKernel(codes, codeBytes, n);
    this.tables = new Float32Array(codeBytes * 256);
    this.block = new Float64Array(BLOCK);
    this.candRows = new Uint32Array(1024);   // rows that passed the running bound ...
    this.candUpper = new Float64Array(1024); // ... and their upper bounds
  }

  /**
   * Candidate rows for the exact top k.
   *
   * @param {object} plan  the scan plan as JS: {values: Uint8Array (m float32 LE),
   *        bits, step, const, errAcc, m, queryNorm, dot}
   * @param {number} k  1 <= k <= n
   * @returns {Uint32Array} candidate row numbers, ascending (always contains the exact top k)
   */
  rows(plan, k) {
    const { n, block, kernel, data } = this;
    if (!(k >= 1 && k <= n)) throw new Error(`k must be in 1..${n}, got ${k}`);
    const dot = !!plan.dot;
    const normCodes = this.normCodes, decoded = this.decoded;
    if (dot && (!normCodes || normCodes.length < n || !decoded)) throw new Error("dot-mode scan needs norm codes and the decode table");
    const tables = byteTables(planValues(plan), plan.bits, this.codeBytes, plan.step, this.tables);
    const m = plan.m, errM = plan.errAcc / m, qn = plan.queryNorm, c0 = plan.const;
    const heap = new Float64Array(k);   // min-heap of the k largest lower bounds
    let size = 0, tau = -Infinity, count = 0;
    let candRows = this.candRows, candUpper = this.candUpper;
    for (let start = 0; start < n; start += BLOCK) {
      const end = Math.min(n, start + BLOCK);
      kernel(data, tables, start, end, c0, block);
      for (let i = start; i < end; i++) {
        const scale = dot ? qn * decoded[normCodes[i]] : 1;
        const a = (block[i - start] / m) * scale;
        const e = 1.5 * (errM * scale + U4 * Math.abs(a) + 1e-45);
        const up = a + e;
        if (!(up >= tau)) continue;   // below the final tau too: never kept, never in the heap
        const lo = a - e;
        if (size < k) {
          heapPush(heap, size++, lo);
          if (size === k) tau = heap[0];
        } else if (lo > heap[0]) {
          heapReplaceTop(heap, size, lo);
          tau = heap[0];
        }
        if (count === candRows.length) [candRows, candUpper] = this.grow(count);
        candRows[count] = i;
        candUpper[count++] = up;
      }
    }
    let kept = 0;
    for (let c = 0; c < count; c++) if (candUpper[c] >= tau) candRows[kept++] = candRows[c];
    return candRows.slice(0, kept);
  }

  /** Double the candidate buffers (keeping the first `count` entries). */
  grow(count) {
    const rows = new Uint32Array(2 * count), upper = new Float64Array(2 * count);
    rows.set(this.candRows.subarray(0, count));
    upper.set(this.candUpper.subarray(0, count));
    this.candRows = rows;
    this.candUpper = upper;
    return [rows, upper];
  }
}

/**
 * Candidate rows for the exact top k (a one-off PrefilterScanner; see PrefilterScanner.rows).
 *
 * @param {object} plan  the scan plan (see PrefilterScanner.rows)
 * @param {Uint8Array} codes
 * @param {number} codeBytes
 * @param {number} n
 * @param {Uint16Array|null} normCodes
 * @param {Float64Array|null} decoded
 * @param {number} k  1 <= k <= n
 * @returns {Uint32Array} candidate row numbers, ascending
 */
export function prefilterRows(plan, codes, codeBytes, n, normCodes, decoded, k) {
  return new PrefilterScanner(codes, codeBytes, n, normCodes, decoded).rows(plan, k);
}

/** The plan's sketch values as a Float32Array (little-endian bytes, copied to an aligned buffer). */
function planValues(plan) {
  const v = plan.values;
  const values = new Float32Array(v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength));
  if (values.length !== plan.m) throw new Error(`scan plan has ${values.length} sketch values, expected ${plan.m}`);
  return values;
}

// -- accumulator kernels ----------------------------------------------------------------
// kernel(data, tables, start, end, c0, out): out[i - start] = c0 + sum_j
// tables[j * 256 + code byte j of row i] for rows start..end-1, in float64.
// They add the bytes of a 4-byte word first, then the words; any order is
// within the error bound (fast_scan.accumulator_error_bound covers float32
// sums in any order; these float64 sums of float32 table values are far
// more accurate).

/** [kernel, the typed array it reads] for these codes. */
function pickKernel(codes, codeBytes, n) {
  if (!LITTLE_ENDIAN || codeBytes % 4 !== 0 || codes.byteOffset % 4 !== 0) return [accBytes(codeBytes), codes];
  const words = new Uint32Array(codes.buffer, codes.byteOffset, (n * codeBytes) >> 2);
  return [codeBytes === 48 ? accWords48 : accWords(codeBytes >> 2), words];
}

/**
 * 48-byte codes (the default 96 x 4 bits), fully unrolled (constant table
 * offsets, no inner loop): in V8 about 20 % faster than accWords and a third
 * faster than a one-word-per-step loop.
 */
function accWords48(w, t, start, end, c0, out) {
  for (let i = start, o = start * 12; i < end; i++, o += 12) {
    let a = c0, x;
    x = w[o]; a += t[x & 255] + t[256 + ((x >>> 8) & 255)] + t[512 + ((x >>> 16) & 255)] + t[768 + (x >>> 24)];
    x = w[o + 1]; a += t[1024 + (x & 255)] + t[1280 + ((x >>> 8) & 255)] + t[1536 + ((x >>> 16) & 255)] + t[1792 + (x >>> 24)];
    x = w[o + 2]; a += t[2048 + (x & 255)] + t[2304 + ((x >>> 8) & 255)] + t[2560 + ((x >>> 16) & 255)] + t[2816 + (x >>> 24)];
    x = w[o + 3]; a += t[3072 + (x & 255)] + t[3328 + ((x >>> 8) & 255)] + t[3584 + ((x >>> 16) & 255)] + t[3840 + (x >>> 24)];
    x = w[o + 4]; a += t[4096 + (x & 255)] + t[4352 + ((x >>> 8) & 255)] + t[4608 + ((x >>> 16) & 255)] + t[4864 + (x >>> 24)];
    x = w[o + 5]; a += t[5120 + (x & 255)] + t[5376 + ((x >>> 8) & 255)] + t[5632 + ((x >>> 16) & 255)] + t[5888 + (x >>> 24)];
    x = w[o + 6]; a += t[6144 + (x & 255)] + t[6400 + ((x >>> 8) & 255)] + t[6656 + ((x >>> 16) & 255)] + t[6912 + (x >>> 24)];
    x = w[o + 7]; a += t[7168 + (x & 255)] + t[7424 + ((x >>> 8) & 255)] + t[7680 + ((x >>> 16) & 255)] + t[7936 + (x >>> 24)];
    x = w[o + 8]; a += t[8192 + (x & 255)] + t[8448 + ((x >>> 8) & 255)] + t[8704 + ((x >>> 16) & 255)] + t[8960 + (x >>> 24)];
    x = w[o + 9]; a += t[9216 + (x & 255)] + t[9472 + ((x >>> 8) & 255)] + t[9728 + ((x >>> 16) & 255)] + t[9984 + (x >>> 24)];
    x = w[o + 10]; a += t[10240 + (x & 255)] + t[10496 + ((x >>> 8) & 255)] + t[10752 + ((x >>> 16) & 255)] + t[11008 + (x >>> 24)];
    x = w[o + 11]; a += t[11264 + (x & 255)] + t[11520 + ((x >>> 8) & 255)] + t[11776 + ((x >>> 16) & 255)] + t[12032 + (x >>> 24)];
    out[i - start] = a;
  }
}

/** Codes of a multiple of 4 bytes: two words per step into two partial sums. */
function accWords(perRow) {
  const pairs = perRow >> 1, odd = perRow & 1;
  return function accWordsN(w, t, start, end, c0, out) {
    for (let i = start, o = start * perRow; i < end; i++) {
      let s0 = c0, s1 = 0, b = 0;
      for (let j = 0; j < pairs; j++, b += 2048, o += 2) {
        const x = w[o], y = w[o + 1];
        s0 += t[b + (x & 255)] + t[b + 256 + ((x >>> 8) & 255)] + t[b + 512 + ((x >>> 16) & 255)] + t[b + 768 + (x >>> 24)];
        s1 += t[b + 1024 + (y & 255)] + t[b + 1280 + ((y >>> 8) & 255)] + t[b + 1536 + ((y >>> 16) & 255)] + t[b + 1792 + (y >>> 24)];
      }
      if (odd) {
        const x = w[o++];
        s0 += t[b + (x & 255)] + t[b + 256 + ((x >>> 8) & 255)] + t[b + 512 + ((x >>> 16) & 255)] + t[b + 768 + (x >>> 24)];
      }
      out[i - start] = s0 + s1;
    }
  };
}

/** Any code length: one byte at a time. */
function accBytes(codeBytes) {
  return function accBytesN(codes, t, start, end, c0, out) {
    for (let i = start, o = start * codeBytes; i < end; i++) {
      let acc = c0;
      for (let j = 0, b = 0; j < codeBytes; j++, b += 256) acc += t[b + codes[o++]];
      out[i - start] = acc;
    }
  };
}

// -- the size-k min-heap of lower bounds --------------------------------------------------

/** Insert x into the min-heap h holding `size` values. */
function heapPush(h, size, x) {
  let i = size;
  while (i > 0) {
    const p = (i - 1) >> 1;
    if (h[p] <= x) break;
    h[i] = h[p];
    i = p;
  }
  h[i] = x;
}

/** Replace the smallest value of the min-heap h (size values) by x. */
function heapReplaceTop(h, size, x) {
  let i = 0;
  for (;;) {
    const l = 2 * i + 1;
    if (l >= size) break;
    const r = l + 1;
    const c = r < size && h[r] < h[l] ? r : l;
    if (h[c] >= x) break;
    h[i] = h[c];
    i = c;
  }
  h[i] = x;
}
