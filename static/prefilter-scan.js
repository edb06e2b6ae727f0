/**
 * prefilter-scan.js: the browser's fast candidate scan (used by worker.js).
 *
 * Exact top-k search in the browser is two steps:
 *   1. Python sketches the query and returns a scan plan
 *      (clark_hash_web.browser_bridge.BrowserStore.prefilter): the query's
 *      float32 sketch values, the level step, the constant term and the
 *      accumulator error bound (clark_hash_web/fast_scan.py proves it);
 *      byteTables() below builds the per-byte lookup tables from them, with
 *      the same float64 operations as fast_scan.byte_tables (bit-identical;
 *      tests/browser/test_browser_prefilter.py checks it);
 *   2. prefilterRows() scans every stored code with plain typed-array loops and
 *      returns the rows whose upper score bound reaches the k-th largest
 *      lower bound; Python then scores only those rows exactly
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
 */

const U4 = 4 * 2 ** -24;

/**
 * Per-byte lookup tables, bit-identical to clark_hash_web.fast_scan.byte_tables.
 *
 * tables[j * 256 + v] = float32(sum of the weights of the set bits of byte
 * value v in code byte j), weight of code bit pos = values[pos / bits] * step
 * * 2**(pos % bits) (bits are packed LSB first, pos < m * bits).
 *
 * @param {Float32Array} values  the query's sketch values (m)
 * @param {number} bits
 * @param {number} codeBytes
 * @param {number} step  2 * clip / levels, as Python computed it
 * @returns {Float32Array} codeBytes * 256 entries
 */
export function byteTables(values, bits, codeBytes, step) {
  const nbits = values.length * bits;
  const tables = new Float32Array(codeBytes * 256);
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
 * Candidate rows for the exact top k.
 *
 * @param {object} plan  the scan plan as JS: {values: Uint8Array (m float32 LE),
 *        bits, step, const, errAcc, m, queryNorm, dot}
 * @param {Uint8Array} codes  stored codes, row-major (n * codeBytes), FlatIndex row order
 * @param {number} codeBytes
 * @param {number} n  rows to scan
 * @param {Uint16Array|null} normCodes  stored norm codes (dot mode), else null
 * @param {Float64Array|null} decoded  the 65,536 decoded norms (dot mode), else null
 * @param {number} k  1 <= k <= n
 * @returns {Uint32Array} candidate row numbers, ascending (always contains the exact top k)
 */
export function prefilterRows(plan, codes, codeBytes, n, normCodes, decoded, k) {
  const v = plan.values;
  const values = new Float32Array(v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength));
  if (values.length !== plan.m) throw new Error(`scan plan has ${values.length} sketch values, expected ${plan.m}`);
  const tables = byteTables(values, plan.bits, codeBytes, plan.step);
  if (codes.length < n * codeBytes) throw new Error(`scan data holds ${codes.length / codeBytes} rows, expected ${n}`);
  const dot = !!plan.dot;
  if (dot && (!normCodes || normCodes.length < n || !decoded)) throw new Error("dot-mode scan needs norm codes and the decode table");
  const acc = accumulators(tables, codes, codeBytes, n, plan.const);
  const m = plan.m, errM = plan.errAcc / m, qn = plan.queryNorm;
  const heap = new Float64Array(k);   // min-heap of the k largest lower bounds
  let size = 0;
  for (let i = 0; i < n; i++) {
    const scale = dot ? qn * decoded[normCodes[i]] : 1;
    const a = (acc[i] / m) * scale;
    const lo = a - 1.5 * (errM * scale + U4 * Math.abs(a) + 1e-45);
    acc[i] = a;   // acc now holds approx
    if (size < k) {
      heapPush(heap, size++, lo);
    } else if (lo > heap[0]) {
      heapReplaceTop(heap, size, lo);
    }
  }
  const tau = heap[0];
  let count = 0;
  const rows = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    const a = acc[i];
    const scale = dot ? qn * decoded[normCodes[i]] : 1;
    if (a + 1.5 * (errM * scale + U4 * Math.abs(a) + 1e-45) >= tau) rows[count++] = i;
  }
  return rows.slice(0, count);
}

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/**
 * Approximate accumulators const + sum_j tables[j * 256 + code[j]] of n rows
 * (float64; the bytes of a 4-byte word are summed first, an order the
 * error bound allows). Reads 4 code bytes at a time when it can.
 * @returns {Float64Array}
 */
function accumulators(tables, codes, codeBytes, n, c0) {
  const out = new Float64Array(n);
  if (LITTLE_ENDIAN && codeBytes % 4 === 0 && codes.byteOffset % 4 === 0) {
    const words = new Uint32Array(codes.buffer, codes.byteOffset, (n * codeBytes) >> 2);
    const perRow = codeBytes >> 2;
    for (let i = 0, o = 0; i < n; i++) {
      let acc = c0;
      for (let j = 0, b = 0; j < perRow; j++, b += 1024) {
        const x = words[o++];
        acc += tables[b + (x & 255)] + tables[b + 256 + ((x >>> 8) & 255)]
             + tables[b + 512 + ((x >>> 16) & 255)] + tables[b + 768 + (x >>> 24)];
      }
      out[i] = acc;
    }
    return out;
  }
  for (let i = 0, o = 0; i < n; i++) {
    let acc = c0;
    for (let j = 0, b = 0; j < codeBytes; j++, b += 256) acc += tables[b + codes[o++]];
    out[i] = acc;
  }
  return out;
}

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
