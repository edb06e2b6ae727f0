// sw.js: makes the demo work offline after the first visit.
//
// Install: fetch build-info.json (written by build_scripts/build_site.py; its
// `files` list names every file of the site) and put every file in the cache,
// so the Pyodide runtime, the wheels, onnxruntime-web and the model are all
// there before the first reload, whatever the page has fetched so far.
// Activate: drop caches of older versions, take control of open pages.
// Fetch (same-origin GET only; the sync API under /api/ is never cached):
//   - build-info.json: network first; when it differs from the cached copy
//     (the site was rebuilt), every listed file is fetched and cached again,
//     so the next load is consistent (cache-first files included);
//   - pages, build-info.json and small text files (.html .js .mjs .css .json):
//     network first, the cache when the network fails (a rebuilt site shows
//     up on the next load; offline, the cached copy answers);
//   - everything else (wasm, wheels, model, zip): cache first.
// Anything fetched from the network is put in the cache as well.

const CACHE = "clark-hash-demo-v1";
const NETWORK_FIRST = /\.(html|js|mjs|css|json)$/;

const INFO = "build-info.json";

/** Cache every file that build-info.json (given as text) lists, then the file itself. */
async function cacheSite(cache, infoText) {
  const files = new Set(["./", ...(JSON.parse(infoText).files || [])]);
  files.delete(INFO);
  // all or nothing; "reload" skips the browser's HTTP cache (a rebuilt file must not come from it)
  await cache.addAll([...files].map((f) => new Request(f, { cache: "reload" })));
  await cache.put(INFO, new Response(infoText, { headers: { "Content-Type": "application/json" } }));
}

async function precache() {
  const resp = await fetch(INFO, { cache: "no-cache" });
  if (!resp.ok) throw new Error(`${INFO}: HTTP ${resp.status}`);
  await cacheSite(await caches.open(CACHE), await resp.text());
}

/** The site was rebuilt (build-info.json changed): cache the new files. */
async function refreshIfRebuilt(infoText) {
  const cache = await caches.open(CACHE);
  const old = await cache.match(INFO);
  if (old && (await old.text()) === infoText) return;
  await cacheSite(cache, infoText);
}

self.addEventListener("install", (event) => {
  event.waitUntil(precache().then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const key of await caches.keys()) if (key !== CACHE) await caches.delete(key);
    await self.clients.claim();
  })());
});

async function networkFirst(request) {
  const cache = await caches.open(CACHE);
  try {
    const resp = await fetch(request);
    if (resp.ok) await cache.put(request, resp.clone());
    return resp;
  } catch (err) {
    const hit = await cache.match(request, { ignoreSearch: true });
    if (hit) return hit;
    if (request.mode === "navigate") {
      const page = await cache.match("./");
      if (page) return page;
    }
    throw err;
  }
}

async function cacheFirst(request) {
  const cache = await caches.open(CACHE);
  const hit = await cache.match(request, { ignoreSearch: true });
  if (hit) return hit;
  const resp = await fetch(request);
  if (resp.ok) await cache.put(request, resp.clone());
  return resp;
}

self.addEventListener("fetch", (event) => {
  const { request } = event;
  const url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== self.location.origin) return;
  const path = url.pathname;
  if (path.startsWith("/api/")) return; // sync pulls (clark-hash serve) must reach the server
  if (path.endsWith("/" + INFO)) {
    event.respondWith((async () => {
      try {
        const resp = await fetch(request);
        if (resp.ok) event.waitUntil(resp.clone().text().then(refreshIfRebuilt));
        return resp;
      } catch (err) {
        const hit = await caches.match(INFO);
        if (hit) return hit;
        throw err;
      }
    })());
  } else if (request.mode === "navigate" || path.endsWith("/") || NETWORK_FIRST.test(path)) {
    event.respondWith(networkFirst(request));
  } else {
    event.respondWith(cacheFirst(request));
  }
});
