/**
 * sync-crypto.js: end-to-end encrypted note bodies for static/sync.js (WebCrypto).
 *
 * The same format as clark_hash_web/sync/crypto.py (documented there in full):
 *
 *   payload = "CHE1" || nonce (12 random bytes) || AES-256-GCM(ciphertext || 16-byte tag)
 *   AAD     = "clark-hash-note/v1" 0x00 collection 0x00 item id        (UTF-8)
 *   key     = PBKDF2-SHA256(passphrase NFC UTF-8, collection salt, 600,000 iterations) -> 256 bits
 *             or a random key shown once as "chk1_" + 43 base64url characters
 *   key check = encrypt("clark-hash key check v1") with AAD "clark-hash-keycheck/v1" 0x00 collection
 *
 * The salt (16 bytes) and the key check live in the server's collection info;
 * the server only ever sees ciphertext.
 */

export const ITERATIONS = 600000;
export const MAX_PAYLOAD_BYTES = 64 * 1024;
const MAGIC = new Uint8Array([0x43, 0x48, 0x45, 0x31]); // "CHE1"
const KEY_CHECK_TEXT = "clark-hash key check v1";
const RAW_KEY = /^chk1_[A-Za-z0-9_-]{43}$/;
const utf8 = new TextEncoder();

/** The payload does not decrypt with this key: wrong passphrase (or an altered / moved payload). */
export class WrongKeyError extends Error {
  constructor(message) { super(message); this.name = "WrongKeyError"; this.type = "WrongKey"; }
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}
const Z = new Uint8Array([0]);
const noteAad = (collection, id) => concat(utf8.encode("clark-hash-note/v1"), Z, utf8.encode(collection), Z, utf8.encode(id));
const checkAad = (collection) => concat(utf8.encode("clark-hash-keycheck/v1"), Z, utf8.encode(collection));

function b64url(u8) {
  return btoa(String.fromCharCode(...u8)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}
function unb64url(s) {
  const bin = atob(s.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (s.length % 4)) % 4));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

/** AES-GCM key from a passphrase and the collection's salt (PBKDF2-SHA256). */
export async function deriveKey(passphrase, salt, iterations = ITERATIONS) {
  if (!passphrase) throw new WrongKeyError("the passphrase is empty");
  const base = await crypto.subtle.importKey("raw", utf8.encode(passphrase.normalize("NFC")), "PBKDF2", false, ["deriveKey"]);
  return crypto.subtle.deriveKey({ name: "PBKDF2", hash: "SHA-256", salt, iterations }, base,
    { name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]);
}

/** A "chk1_..." random-key text gives that key; anything else is a passphrase. */
export async function keyFromText(text, salt, iterations = ITERATIONS) {
  const t = text.trim();
  if (RAW_KEY.test(t)) return crypto.subtle.importKey("raw", unb64url(t.slice(5)), "AES-GCM", false, ["encrypt", "decrypt"]);
  return deriveKey(text, salt, iterations);
}

/** A new random key as text (show it once; type it on the other devices). */
export function newRandomKeyText() {
  return "chk1_" + b64url(crypto.getRandomValues(new Uint8Array(32)));
}

async function seal(key, plain, aad, nonce) {
  nonce = nonce ?? crypto.getRandomValues(new Uint8Array(12));
  const ct = await crypto.subtle.encrypt({ name: "AES-GCM", iv: nonce, additionalData: aad, tagLength: 128 }, key, plain);
  return concat(MAGIC, nonce, new Uint8Array(ct));
}

async function unseal(key, payload, aad, what) {
  if (payload.length < 32 || MAGIC.some((b, i) => payload[i] !== b)) {
    throw new WrongKeyError(`${what}: not an encrypted payload`);
  }
  try {
    return new Uint8Array(await crypto.subtle.decrypt(
      { name: "AES-GCM", iv: payload.subarray(4, 16), additionalData: aad, tagLength: 128 }, key, payload.subarray(16)));
  } catch (e) {
    throw new WrongKeyError(`${what}: does not decrypt with this key (wrong passphrase?)`);
  }
}

/** Encrypt a note's text for item `id` of `collection` (nonce: for tests only). */
export async function encryptNote(key, collection, id, text, nonce) {
  const plain = utf8.encode(text);
  if (plain.length + 32 > MAX_PAYLOAD_BYTES) {
    throw new RangeError(`note ${id}: ${plain.length} bytes of text, at most ${MAX_PAYLOAD_BYTES - 32} fit`);
  }
  return seal(key, plain, noteAad(collection, id), nonce);
}

/** The text of a payload; throws WrongKeyError when it does not decrypt. */
export async function decryptNote(key, collection, id, payload) {
  return new TextDecoder().decode(await unseal(key, payload, noteAad(collection, id), `note ${id}`));
}

/** The key check to store in a new collection. */
export function makeKeyCheck(key, collection) {
  return seal(key, utf8.encode(KEY_CHECK_TEXT), checkAad(collection));
}

/** Throws WrongKeyError unless `check` was made with `key` for `collection`. */
export async function verifyKeyCheck(key, collection, check) {
  const plain = await unseal(key, check, checkAad(collection), `collection ${collection}`);
  if (new TextDecoder().decode(plain) !== KEY_CHECK_TEXT) throw new WrongKeyError(`collection ${collection}: bad key check`);
}
