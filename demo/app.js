// app.js: the offline-first semantic note search demo.
//
// Pieces:
//   static/embedder.js         text -> 384-d all-MiniLM-L6-v2 vector (onnxruntime-web)
//   static/clark-hash-store.js sketches in IndexedDB, search in a Pyodide worker
//   notes-db.js                the note texts (a small IndexedDB database of our own)
//   sw.js                      caches the whole site so a reload works offline
//   static/sync.js             pushes / pulls sketches to `clark-hash serve` (offline queue)
//
// The note text is the source of truth; its sketch has the same id in the
// ClarkHashStore. At start, notes whose sketch is missing or stale (a page
// closed mid-edit) are embedded again.
//
// Start-up: Pyodide (the store), the model and the note texts load at the same
// time. The search box works as soon as the note texts are there: until the
// model is ready (and every note has its sketch) typing matches words of the
// note texts, and the page says so ("Model loading: showing word matches");
// then it searches by meaning. If the model cannot load, word matching stays.
//
// Sync: every sketch write goes through ClarkHashSync (sync.addMany /
// sync.delete / sync.recordPut), which queues it in IndexedDB whether or not a
// token is set; with a token (kept in localStorage) it syncs with the server
// the page came from, by itself when online and with the Sync button. Only
// sketches and ids travel: notes pulled from another device are "sketch only"
// here, and a note deleted on another device loses its text here too.

import { ClarkHashStore } from "./static/clark-hash-store.js";
import { Embedder } from "./static/embedder.js";
import { NotesDB } from "./notes-db.js";
import { ClarkHashSync, syncStatusText } from "./static/sync.js";
import { newRandomKeyText } from "./static/sync-crypto.js";
import { DEFAULT_NOTES } from "./default-notes.js";

const STORE_NAME = "demo-notes";
const CONFIG = { inputDim: 384 }; // defaults: 96 coordinates x 4 bits = 48-byte sketches, cosine
const TOP_K = 10;
const SEARCH_DELAY_MS = 120;
const TOKEN_KEY = "clark-hash-demo:sync-token"; // localStorage
// The passphrase stays on this device (localStorage) so offline reloads keep encrypting;
// the server only ever gets ciphertext (static/sync-crypto.js).
const PASS_KEY = "clark-hash-demo:sync-passphrase";
const WORDS_ONLY = "Model unavailable: showing word matches only.";

const $ = (id) => document.getElementById(id);
const fmt = (n) => n.toLocaleString("en-US");

const state = {
  notes: new Map(), // id -> note record
  sketchIds: new Map(), // String(id) -> id as stored (notes use strings; an imported file may use ints)
  store: null,
  sync: null, // ClarkHashSync; always open (it queues edits even without a token)
  embedder: null,
  codeBytes: 48,
  denseBytes: 1536,
  searchSeq: 0,
  searchMode: "words", // "words" (note text, before the model is ready) or "meaning"
  modelFailed: false,
  lastResults: null, // {query, ids, scores, labels?, mode} or null
  timings: {}, // ms since navigation start: searchUsable, storeReady, modelReady, meaningReady
};

/** Serializes writes: one add/edit/delete/import at a time. */
let writeQueue = Promise.resolve();
function serialized(fn) {
  const run = writeQueue.then(fn, fn);
  writeQueue = run.catch(() => {});
  return run;
}

function say(text, kind = "info") {
  const el = $("message");
  el.textContent = text;
  el.className = `message ${kind}`;
}

function newId() {
  return `note-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 6)}`;
}

// ---------------------------------------------------------------- rendering
function renderNote(id, score, label) {
  const li = $("note-template").content.firstElementChild.cloneNode(true);
  const note = state.notes.get(id);
  li.dataset.id = id;
  li.dataset.testid = "note";
  const text = li.querySelector(".note-text");
  if (note) {
    text.textContent = note.text;
  } else {
    text.textContent = `Sketch only (imported id “${id}”, from a sketch file or another device): ` +
      "its text is not in this browser.";
    li.classList.add("sketch-only");
    li.querySelector(".edit").remove();
  }
  li.querySelector(".score").textContent = label ?? (score === undefined ? "" : `score ${score.toFixed(3)}`);
  li.querySelector(".cost").textContent = state.sketchIds.has(id)
    ? `${state.codeBytes} B sketch · ${fmt(state.denseBytes)} B as float32`
    : "no sketch yet";
  li.querySelector(".edit")?.addEventListener("click", () => startEdit(li, id));
  li.querySelector(".delete").addEventListener("click", () => removeNote(id));
  return li;
}

function render() {
  const list = $("notes");
  list.replaceChildren();
  const r = state.lastResults;
  if (r) {
    $("list-title").textContent = `${r.mode === "words" ? "Word matches" : "Best matches"} for “${r.query}”`;
    r.ids.forEach((id, i) => list.append(renderNote(String(id), r.scores[i], r.labels?.[i])));
    if (!r.ids.length) {
      const none = r.mode === "words" ? "No note contains these words." : "Nothing stored yet.";
      list.append(Object.assign(document.createElement("li"), { textContent: none }));
    }
  } else {
    const ids = [...state.notes.values()].sort((a, b) => b.created - a.created).map((n) => n.id); // newest first
    const orphans = [...state.sketchIds.keys()].filter((id) => !state.notes.has(id));
    $("list-title").textContent = `Notes (${fmt(state.notes.size)})`;
    for (const id of [...ids, ...orphans]) list.append(renderNote(id));
  }
  renderTotals();
}

async function renderTotals() {
  const n = state.sketchIds.size;
  const sketch = n * state.codeBytes;
  const dense = n * state.denseBytes;
  let text = `${fmt(n)} sketches: ${fmt(sketch)} B of sketches vs ${fmt(dense)} B as dense float32 ` +
    `(${(state.denseBytes / state.codeBytes).toFixed(0)}× smaller).`;
  if (state.store) {
    try {
      const s = await state.store.stats();
      if (s.recordBytesPerSketch) text += ` IndexedDB payload: ${s.recordBytesPerSketch.toFixed(1)} B per sketch.`;
    } catch (e) { /* stats are informative only */ }
  }
  $("totals").textContent = text;
}

// ---------------------------------------------------------------- search
/** Lower-case words of a text, accents removed ("Café au lait" -> ["cafe", "au", "lait"]). */
function words(text) {
  return text.toLowerCase().normalize("NFKD").replace(/\p{M}/gu, "").match(/[\p{L}\p{N}]+/gu) ?? [];
}

/**
 * Word match over the note texts, for the time before the model is ready.
 * A query word matches a note word it begins (the last word may be half typed);
 * notes rank by the share of query words they contain, newest first on ties.
 */
function wordSearch(query, k) {
  const terms = [...new Set(words(query))];
  const hits = [];
  for (const note of state.notes.values()) {
    const have = words(note.text);
    const found = terms.filter((t) => have.some((w) => w.startsWith(t))).length;
    if (found) hits.push({ note, found });
  }
  hits.sort((a, b) => b.found - a.found || b.note.created - a.note.created);
  const top = hits.slice(0, k);
  return {
    ids: top.map((h) => h.note.id),
    scores: top.map((h) => h.found / terms.length),
    labels: top.map((h) => `${h.found} of ${terms.length} word${terms.length > 1 ? "s" : ""}`),
    matches: hits.length,
  };
}

/** Switch how the search box searches, say so, and rerun the current query. */
function setSearchMode(mode, text) {
  state.searchMode = mode;
  document.body.dataset.searchMode = mode;
  const el = $("search-mode");
  el.textContent = text;
  el.classList.toggle("loading", mode === "words");
  return refreshResults();
}

async function runSearch() {
  const query = $("search").value.trim();
  const seq = ++state.searchSeq;
  if (!query) {
    state.lastResults = null;
    $("search-info").textContent = "";
    render();
    return;
  }
  try {
    if (state.searchMode === "words") {
      const t0 = performance.now();
      const r = wordSearch(query, TOP_K);
      state.lastResults = { query, mode: "words", ...r };
      $("search-info").textContent = `${r.matches} of ${fmt(state.notes.size)} notes contain these words ` +
        `(${(performance.now() - t0).toFixed(1)} ms)` +
        (state.modelFailed ? "." : "; search by meaning starts when the model is ready.");
    } else {
      const r = await state.store.search(query, TOP_K);
      if (seq !== state.searchSeq) return; // a newer keystroke won
      state.lastResults = { query, mode: "meaning", ...r };
      const t = r.timings;
      $("search-info").textContent = `${r.ids.length} results from ${fmt(state.sketchIds.size)} sketches in ` +
        `${t.totalMs.toFixed(0)} ms (embedding ${t.embedMs.toFixed(0)} ms, sketch + scan ${(t.sketchMs + t.searchMs).toFixed(1)} ms)`;
    }
    document.body.dataset.searches = String(Number(document.body.dataset.searches || 0) + 1);
    render();
  } catch (e) {
    if (seq === state.searchSeq) say(`Search failed: ${e.message}`, "error");
  }
}

let searchTimer = null;
function scheduleSearch() {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(runSearch, SEARCH_DELAY_MS);
}

// ---------------------------------------------------------------- writes
/** (Re)write the sketch of a note: mark unsketched, replace the sketch, mark sketched. */
async function sketchNotes(notes) {
  if (!notes.length) return;
  for (const n of notes) n.sketched = false;
  await state.notesDb.put(notes);
  const stale = notes.map((n) => n.id).filter((id) => state.sketchIds.has(id));
  if (stale.length) {
    await state.sync.delete(stale);
    stale.forEach((id) => state.sketchIds.delete(id));
  }
  await state.sync.addMany(notes.map((n) => n.text), { ids: notes.map((n) => n.id) });
  notes.forEach((n) => { n.sketched = true; state.sketchIds.set(n.id, n.id); });
  await state.notesDb.put(notes);
}

function addNote() {
  const text = $("new-note").value.trim();
  if (!text) return say("Write something first.", "error");
  return serialized(async () => {
    const now = Date.now();
    const note = { id: newId(), text, created: now, updated: now, sketched: false };
    state.notes.set(note.id, note);
    try {
      await sketchNotes([note]);
      $("new-note").value = "";
      say(`Added: ${state.codeBytes} bytes of sketch instead of ${fmt(state.denseBytes)}.`);
    } catch (e) {
      say(`Could not add the note: ${e.message}`, "error");
    }
    await refreshResults();
  });
}

function startEdit(li, id) {
  const note = state.notes.get(id);
  const box = li.querySelector(".note-text");
  const area = Object.assign(document.createElement("textarea"), { value: note.text, rows: 3 });
  area.dataset.testid = "edit-text";
  const save = Object.assign(document.createElement("button"), { textContent: "Save" });
  const cancel = Object.assign(document.createElement("button"), { textContent: "Cancel" });
  box.replaceChildren(area, save, cancel);
  area.focus();
  cancel.addEventListener("click", render);
  save.addEventListener("click", () => serialized(async () => {
    const text = area.value.trim();
    if (!text) return say("A note cannot be empty: delete it instead.", "error");
    note.text = text;
    note.updated = Date.now();
    try {
      await sketchNotes([note]);
      say("Saved and re-embedded.");
    } catch (e) {
      say(`Could not save: ${e.message}`, "error");
    }
    await refreshResults();
  }));
}

function removeNote(id) {
  return serialized(async () => {
    try {
      if (state.notes.has(id)) await state.notesDb.delete(id);
      state.notes.delete(id);
      if (state.sketchIds.has(id)) {
        await state.sync.delete([state.sketchIds.get(id)]);
        state.sketchIds.delete(id);
      }
      say("Deleted.");
    } catch (e) {
      say(`Could not delete: ${e.message}`, "error");
    }
    await refreshResults();
  });
}

async function importFile(file) {
  return serialized(async () => {
    try {
      const bytes = new Uint8Array(await file.arrayBuffer());
      const stored = await state.store.importSketchFile(bytes);
      stored.forEach((id) => state.sketchIds.set(String(id), id));
      await state.sync.recordPut(stored.map(String)); // queued for the server like any edit
      const ids = stored.map(String);
      const mapped = ids.filter((id) => state.notes.has(id)).length;
      say(`Imported ${fmt(ids.length)} sketches from ${file.name} (${fmt(bytes.length)} bytes): ` +
        `${fmt(mapped)} map to notes, ${fmt(ids.length - mapped)} are sketch-only.`);
    } catch (e) {
      say(`Import of ${file.name} failed, nothing was added: ${e.message}`, "error");
    }
    $("import-file").value = "";
    await refreshResults();
  });
}

async function exportFile() {
  const bytes = await state.store.exportSketchFile();
  const url = URL.createObjectURL(new Blob([bytes], { type: "application/x-clark-hash-sketches" }));
  const a = Object.assign(document.createElement("a"), { href: url, download: "notes.chs" });
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
  say(`Exported ${fmt(state.sketchIds.size)} sketches (${fmt(bytes.length)} bytes).`);
}

async function refreshResults() {
  if ($("search").value.trim()) await runSearch();
  else render();
}

// ---------------------------------------------------------------- sync
function showSyncState(s) {
  const el = $("sync-status");
  el.dataset.status = s.status;
  el.dataset.pending = String(s.pending);
  el.textContent = state.sync?.token
    ? `Sync: ${syncStatusText(s)}`
    : `Sync: no server token: changes stay in this browser${s.pending ? ` (${fmt(s.pending)} queued)` : ""}.`;
  el.classList.toggle("error", s.status === "error");
}

/** Sketches pulled from the server: refresh the id list; a note deleted elsewhere loses its text. */
function onRemoteChange({ removed }) {
  return serialized(async () => {
    for (const id of removed) {
      if (state.notes.has(id)) {
        await state.notesDb.delete(id);
        state.notes.delete(id);
      }
    }
    state.sketchIds = new Map((await state.store.ids()).map((id) => [String(id), id]));
    await refreshResults();
  });
}

/** Note texts that arrived (decrypted) from another device: stored before their sketches. */
async function applyRemoteTexts(texts) {
  const now = Date.now();
  const notes = [];
  for (const [id, text] of texts) {
    const note = state.notes.get(id) ?? { id, created: now, sketched: true };
    Object.assign(note, { text, updated: now });
    state.notes.set(id, note);
    notes.push(note);
  }
  await state.notesDb.put(notes);
}

/** (Re)open the sync client with `token` (may be empty: edits are queued, nothing is sent). */
async function openSync(token, passphrase = localStorage.getItem(PASS_KEY) ?? "") {
  state.sync?.close();
  const notes = { text: async (id) => state.notes.get(id)?.text ?? null, apply: applyRemoteTexts };
  const sync = await ClarkHashSync.open({ store: state.store, token, collection: STORE_NAME,
                                          autoSync: Boolean(token), passphrase, notes });
  sync.addEventListener("state", (e) => { if (state.sync === sync) showSyncState(e.detail); }); // not a closed one
  sync.addEventListener("change", (e) => onRemoteChange(e.detail));
  state.sync = sync;
  showSyncState(sync.state);
  if (token && navigator.onLine) sync.syncNow().catch(() => {}); // the status line shows the outcome
}

function syncNow() {
  if (!state.sync.token) return say("Enter the server token first (clark-hash serve prints it).", "error");
  return state.sync.syncNow().catch(() => {}); // shown on the status line
}

function setToken(token) {
  token = token.trim();
  if (token) localStorage.setItem(TOKEN_KEY, token);
  else localStorage.removeItem(TOKEN_KEY);
  return serialized(() => openSync(token)); // never swap clients in the middle of a write
}

function setPassphrase(passphrase) {
  if (passphrase) localStorage.setItem(PASS_KEY, passphrase);
  else localStorage.removeItem(PASS_KEY);
  return serialized(() => openSync(localStorage.getItem(TOKEN_KEY) ?? "", passphrase));
}

function newKey() {
  const key = newRandomKeyText();
  $("sync-passphrase").value = key;
  say(`New random key (shown once; type it on your other devices): ${key}`);
  return setPassphrase(key);
}

// ---------------------------------------------------------------- start-up
async function registerServiceWorker() {
  const el = $("offline-status");
  if (!("serviceWorker" in navigator)) {
    el.textContent = "not available in this browser";
    return;
  }
  try {
    await navigator.serviceWorker.register("sw.js");
    el.textContent = "caching the site…";
    await navigator.serviceWorker.ready;
    el.textContent = navigator.onLine ? "site cached: works offline" : "offline: running from the cache";
    document.body.dataset.offlineReady = "true";
  } catch (e) {
    el.textContent = `service worker failed: ${e.message}`;
  }
  addEventListener("online", () => { el.textContent = "site cached: works offline"; });
  addEventListener("offline", () => { el.textContent = "offline: running from the cache"; });
}

/** First open: store the starter notes' texts (not yet sketched: reconcile embeds them). */
async function seedStarterNotes() {
  if (await state.notesDb.getFlag("seeded")) return;
  const now = Date.now();
  const fresh = DEFAULT_NOTES.filter(([id]) => !state.notes.has(id))
    .map(([id, text], i) => ({ id, text, created: now - i, updated: now, sketched: false })); // welcome on top
  fresh.forEach((n) => state.notes.set(n.id, n));
  await state.notesDb.put(fresh);
  await state.notesDb.setFlag("seeded", true);
}

/** Embed the notes whose sketch is missing or stale (starter notes, a page closed mid-edit). */
async function reconcile() {
  const todo = [...state.notes.values()].filter((n) => !n.sketched || !state.sketchIds.has(n.id));
  if (todo.length) {
    say(`Embedding ${todo.length} notes…`);
    await sketchNotes(todo);
  }
}

/** performance.now() of a start-up step, kept in state.timings (benchmarks/browser_bench.py reads it). */
function mark(step) {
  state.timings[step] = performance.now();
}

async function main() {
  registerServiceWorker();
  // The model and Pyodide (inside the store's worker) start at once, in parallel
  // with reading the note texts below.
  const modelStatus = $("model-status");
  const embedderReady = Embedder.load({ onStatus: (s) => { modelStatus.textContent = `${s}…`; } });
  const storeReady = ClarkHashStore.open({
    name: STORE_NAME,
    config: CONFIG,
    embedder: async (texts) => (await embedderReady).embed(texts),
  });
  embedderReady.then((e) => {
    mark("modelReady");
    modelStatus.textContent = `all-MiniLM-L6-v2 ready (${(e.info.modelBytes / 1e6).toFixed(0)} MB, ` +
      `${((e.info.tokenizerMs + e.info.modelMs) / 1000).toFixed(1)} s, ${e.info.backend})`;
  }, (err) => {
    modelStatus.textContent = `failed: ${err.message}`;
    modelStatus.classList.add("error");
    state.modelFailed = true;
    if (!$("search").disabled) setSearchMode("words", WORDS_ONLY); // (else: said when the box opens)
  });
  storeReady.catch(() => {}); // reported below, when it is awaited

  // The search box works as soon as the note texts are there (word matches).
  state.notesDb = await NotesDB.open();
  for (const n of await state.notesDb.all()) state.notes.set(n.id, n);
  await seedStarterNotes();
  await setSearchMode("words", state.modelFailed ? WORDS_ONLY : "Model loading: showing word matches.");
  $("search").addEventListener("input", scheduleSearch);
  $("search").disabled = false;
  mark("searchUsable");
  render();

  const backend = $("backend");
  try {
    state.store = await storeReady;
    mark("storeReady");
  } catch (e) {
    backend.textContent = `failed: ${e.message}`;
    backend.classList.add("error");
    await setSearchMode("words", "Codec unavailable: showing word matches only.");
    throw e;
  }
  const info = await state.store.runtime.ready;
  const stats = await state.store.stats();
  state.codeBytes = stats.storageBytesPerVector ?? stats.codeBytes;
  state.denseBytes = stats.denseBytesPerVector;
  const showBackend = () => {
    backend.textContent = `Clark Hash on the ${state.store.backend} backend ` +
      `(Pyodide ${info.pyodideVersion}, ${state.store.config.sketch_dim}×${state.store.config.bits} bits, config ${state.store.config.fingerprint})`;
  };
  showBackend();
  state.store.runtime.addEventListener("backend", showBackend);   // numpy arrives after start-up
  (await state.store.ids()).forEach((id) => state.sketchIds.set(String(id), id));
  render();
  $("sync-token").value = localStorage.getItem(TOKEN_KEY) ?? "";
  $("sync-passphrase").value = localStorage.getItem(PASS_KEY) ?? "";
  await openSync($("sync-token").value.trim());

  try {
    state.embedder = await embedderReady;
  } catch (e) {
    await setSearchMode("words", WORDS_ONLY);
    throw e;
  }
  await serialized(reconcile);
  await setSearchMode("meaning", "Searching by meaning (all-MiniLM-L6-v2).");
  mark("meaningReady");
  say(`Ready: ${fmt(state.notes.size)} notes.`);
  for (const id of ["add-note", "import-file", "export", "sync-token", "sync-passphrase", "sync-new-key", "sync-now"]) {
    $(id).disabled = false;
  }
  $("add-note").addEventListener("click", addNote);
  $("new-note").addEventListener("keydown", (ev) => { if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) addNote(); });
  $("import-file").addEventListener("change", (ev) => { if (ev.target.files[0]) importFile(ev.target.files[0]); });
  $("export").addEventListener("click", exportFile);
  $("sync-token").addEventListener("change", (ev) => setToken(ev.target.value));
  $("sync-passphrase").addEventListener("change", (ev) => setPassphrase(ev.target.value));
  $("sync-new-key").addEventListener("click", newKey);
  $("sync-now").addEventListener("click", syncNow);
  render();
  document.body.dataset.ready = "true";
}

window.demo = { state, ready: main().catch((e) => { say(`Start-up failed: ${e.message}`, "error"); document.body.dataset.ready = "error"; throw e; }) };
