/**
 * normalized-scores.js: cosine scores of normalized learned-E8 stores (format 2,
 * flags bit 0), as the exact JS table scan computes them (used by worker.js).
 *
 * The definition lives in clark_hash_web/codecs/normalized_scores.py (module
 * docstring); this is its JavaScript twin, bit for bit:
 *
 *   score = fl32(fl32(S + bias) * scale_row)
 *
 * S is the float32 table sum (table-scan.js), `bias` one float32 per query
 * (BrowserStore.table_query), and scale_row = fl32(1 / sqrt(n2)) (0 when n2 is
 * 0) per stored row, with n2 summed in float64 in exactly this order:
 *
 *   for each kept block b, for k in 0..7:
 *     x = o[8b + k]; for each stage s of block b: x = x + c_scale[c_b + s] * ROOT[code[c_b + s]][k]
 *     n2 = n2 + x * x
 *
 * (JS numbers are float64; every product here is exact; Math.sqrt and / are
 * correctly rounded, Math.fround rounds to float32 like numpy's astype.)
 * The config numbers come from BrowserStore.score_scales() once per store.
 */

import { E8_ROOTS } from "./table-scan.js";

const fround = Math.fround;

/**
 * The row-scale function of a store, or null when its scores are plain table sums.
 * @param {{stages: Uint8Array, scales: Uint8Array, offset: Uint8Array}|null|undefined} params
 *   stage count per kept block, float32 LE stage scale per code byte, float32 LE offset (K)
 * @returns {null|function(Uint8Array, number): Float32Array}  (codes, count) -> row scales
 */
export function rowScaler(params) {
  if (!params) return null;
  const f32 = (b) => new Float32Array(b.slice().buffer);   // (copies: aligned, little-endian data)
  const stages = Uint8Array.from(params.stages), scales = f32(params.scales), offset = f32(params.offset);
  const cb = scales.length;
  // prod[(c * 256 + v) * 8 + k] = c_scale[c] * ROOT[v][k], exact in float64 (0 for v >= 240)
  const prod = new Float64Array(cb * 256 * 8);
  for (let c = 0; c < cb; c++) {
    for (let j = 0; j < 256 * 8; j++) prod[c * 2048 + j] = scales[c] * E8_ROOTS[j];
  }
  // block b's first code byte; its 8 coordinates are summed side by side (x0..x7), each in
  // stage order, then squared into n2 in k order: the defined order, 8 lookups per index
  const first = [];
  for (let b = 0, c = 0; b < stages.length; c += stages[b], b++) first.push(c);
  return (codes, count) => {
    const out = new Float32Array(count);
    for (let r = 0, base = 0; r < count; r++, base += cb) {
      let n2 = 0;
      for (let b = 0; b < stages.length; b++) {
        const o = 8 * b;
        let x0 = offset[o], x1 = offset[o + 1], x2 = offset[o + 2], x3 = offset[o + 3];
        let x4 = offset[o + 4], x5 = offset[o + 5], x6 = offset[o + 6], x7 = offset[o + 7];
        for (let c = first[b], end = c + stages[b]; c < end; c++) {
          const p = (c * 256 + codes[base + c]) * 8;
          x0 += prod[p]; x1 += prod[p + 1]; x2 += prod[p + 2]; x3 += prod[p + 3];
          x4 += prod[p + 4]; x5 += prod[p + 5]; x6 += prod[p + 6]; x7 += prod[p + 7];
        }
        n2 += x0 * x0; n2 += x1 * x1; n2 += x2 * x2; n2 += x3 * x3;
        n2 += x4 * x4; n2 += x5 * x5; n2 += x6 * x6; n2 += x7 * x7;
      }
      out[r] = n2 > 0 ? fround(1 / Math.sqrt(n2)) : 0;
    }
    return out;
  };
}

/** In place: scores[r] = fl32(fl32(scores[r] + bias) * scales[r]) (float32 table sums in). */
export function finishScores(scores, bias, scales) {
  for (let r = 0; r < scores.length; r++) scores[r] = fround(fround(scores[r] + bias) * scales[r]);
  return scores;
}
