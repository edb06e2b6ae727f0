// notes-db.js: the demo's note texts in IndexedDB (the sketches live in the
// ClarkHashStore's own database, "clark-hash:demo-notes").
//
// Database "clark-hash-demo-notes", version 1:
//   notes  keyPath "id" -> {id: string, text: string, created: ms, updated: ms,
//                           sketched: boolean}
//          `sketched` is false while the note's sketch is being (re)written:
//          a note left unsketched by a closed page is re-embedded at the next
//          start (the note text is the source of truth).
//   meta   key "seeded" -> true once the default notes were added (so that
//          deleting every note does not bring the defaults back).

const DB_NAME = "clark-hash-demo-notes";

function req(r) {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

function done(tx) {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error || new Error("notes transaction aborted"));
  });
}

/** Note texts, persisted per origin. Create with `await NotesDB.open()`. */
export class NotesDB {
  constructor(db) {
    this.db = db;
  }

  static async open() {
    const r = indexedDB.open(DB_NAME, 1);
    r.onupgradeneeded = () => {
      r.result.createObjectStore("notes", { keyPath: "id" });
      r.result.createObjectStore("meta");
    };
    return new NotesDB(await req(r));
  }

  /** @returns {Promise<object[]>} every note, oldest first */
  async all() {
    const tx = this.db.transaction("notes");
    const notes = await req(tx.objectStore("notes").getAll());
    return notes.sort((a, b) => a.created - b.created || (a.id < b.id ? -1 : 1));
  }

  /** Write notes (insert or replace) in one transaction. */
  async put(notes) {
    const tx = this.db.transaction("notes", "readwrite");
    for (const n of notes) tx.objectStore("notes").put(n);
    return done(tx);
  }

  async delete(id) {
    const tx = this.db.transaction("notes", "readwrite");
    tx.objectStore("notes").delete(id);
    return done(tx);
  }

  async getFlag(key) {
    return req(this.db.transaction("meta").objectStore("meta").get(key));
  }

  async setFlag(key, value) {
    const tx = this.db.transaction("meta", "readwrite");
    tx.objectStore("meta").put(value, key);
    return done(tx);
  }
}
