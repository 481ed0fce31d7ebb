// chibo's service worker: keeps the app shell available offline. Nothing else.
//
// - Hashed assets (the precache list, filled in by `cargo xtask build-app`) are cache-first:
//   their names change when their content does.
// - Navigations are network-first, falling back to the cached index.html when offline.
// - /sync and every other request are left to the network: sync runs from the page.
// - On activate, caches of older builds are deleted.

const CACHE_VERSION = "__CACHE_VERSION__";
const PRECACHE = ["__PRECACHE__"];
const CACHE = `chibo-shell-${CACHE_VERSION}`;
const SHELL = "/index.html";

self.addEventListener("install", (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(CACHE);
      // `reload` bypasses the HTTP cache, so the shell is this build's and not a stale copy.
      await cache.addAll(PRECACHE.map((url) => new Request(url, { cache: "reload" })));
      await self.skipWaiting();
    })(),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    (async () => {
      for (const name of await caches.keys()) {
        if (name.startsWith("chibo-shell-") && name !== CACHE) await caches.delete(name);
      }
      await self.clients.claim();
    })(),
  );
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin || url.pathname === "/sync" || url.pathname.startsWith("/sync/")) return;

  if (request.mode === "navigate") {
    event.respondWith(networkFirst(request));
  } else if (PRECACHE.includes(url.pathname)) {
    event.respondWith(cacheFirst(request));
  }
});

async function networkFirst(request) {
  try {
    // Not written back to the cache: the cached index.html must name this build's assets.
    return await fetch(request);
  } catch (offline) {
    const cached = await caches.match(SHELL, { cacheName: CACHE });
    if (cached) return cached;
    throw offline;
  }
}

async function cacheFirst(request) {
  const cached = await caches.match(request, { cacheName: CACHE });
  return cached ?? fetch(request);
}
