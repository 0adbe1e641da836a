/*! abtest.js (MIT) */
// The abtest browser snippet (DESIGN §5). Plain JS: no build step, no dependencies.
// Sites paste the loader of web/snippet.py (README.md, "Put it on a site"): it hides the page
// for at most 800 ms, puts a stub `window.abtest` in place that queues calls, and inserts this
// file once a preload has fetched it, so a slow or dead server never holds the load event.
// A plain <script src="https://HOST/static/abtest.js" data-key="pk_…" async> works too (it may
// show control before the variant). Options: data-* attributes of the tag with data-key:
//           data-key="pk_…" (the public key),
//           data-api="https://…" (API origin; default: this script's origin),
//           data-timeout="800" (plain tag: ms the page may stay hidden while config loads),
//           data-attributes='{"country":"DE"}' (targeting and segments; window.abtestAttributes
//           and abtest.attributes({...}) add to it and win),
//           data-consent="required" (store, fetch and send nothing until abtest.consent(true)) or
//           "necessary" (the site's tests are strictly necessary: Global Privacy Control is not
//           applied). Without it a visitor with Global Privacy Control on counts as not consenting.
(() => {
  'use strict';
  const w = window;
  const d = document;
  const html = d.documentElement;
  // Loaded twice (two tags, SPA re-injection): the first copy stays in charge, so a visitor
  // gets one exposure per page view, not two.
  if (w.abtest && w.abtest._hash) return;
  // The loader's stub: calls queued before this file arrived (q: [method, task, arguments, time])
  // and its `ready` with the resolver (r).
  const stub = w.abtest || {};

  const ID = 'abtest_id'; // cookie and localStorage name of the visitor id
  const CONFIG_TTL = 5 * 60 * 1000; // navigation within a tab reuses the config this long
  const BATCH = 20; // events per request; also the queue length that triggers a send
  const IDLE_MS = 2000; // send after this long without new events
  const GUARD = 'abtest-loading'; // class hiding <html> while the config loads

  // ---- Assignment (DESIGN §4.3): must agree bit for bit with abtest.assignment in Python. ----

  // 32-bit FNV-1a over UTF-16 code units (charCodeAt), as GrowthBook's SDKs hash.
  // Math.imul keeps the multiply exact in 32 bits; a float multiply would lose low bits.
  const fnv1a32 = (text) => {
    let h = 2166136261;
    for (let i = 0; i < text.length; i++) {
      h ^= text.charCodeAt(i);
      h = Math.imul(h, 16777619) >>> 0;
    }
    return h;
  };

  // GrowthBook's v2 hash: hashing the decimal string of the first hash evens out the tail bits.
  const bucket = (seed, unit) => (fnv1a32(String(fnv1a32(seed + unit))) % 10000) / 10000;

  // Variant i owns [cum, cum + coverage * w_i): running float sums in variant order, exactly as
  // Python adds them, so range edges round the same way. Raising coverage never moves anyone.
  const chooseVariant = (b, weights, coverage = 1) => {
    let cum = 0;
    for (let i = 0; i < weights.length; i++) {
      const start = cum;
      cum += weights[i];
      if (start <= b && b < start + coverage * weights[i]) return i;
    }
    return null;
  };

  // GrowthBook's v1 hash, used for namespaces (mutually exclusive experiments).
  const namespacePosition = (unit, name) => (fnv1a32(unit + '__' + name) % 1000) / 1000;

  // Same strings as Python's canonical_attribute: True -> "true", 3.0 -> "3". BigInt writes
  // large integers in full (1e21 -> "1000000000000000000000"), as Python's int() does.
  const canonical = (v) =>
    typeof v === 'boolean' ? String(v) : Number.isInteger(v) ? BigInt(v).toString() : String(v);

  // Every rule must match; an attribute matches when it (or any element of a list) is allowed.
  // A missing attribute never matches: better out of the test than in the wrong audience.
  const targeted = (rules, attrs) =>
    Object.keys(rules || {}).every(
      (name) => attrs[name] != null && [].concat(attrs[name]).some((v) => rules[name].includes(canonical(v)))
    );

  // -> {variant, forced?} or null when the unit is not in the experiment.
  const decide = (exp, unit, attrs, forced) => {
    const keys = exp.variants.map((v) => v.key);
    if (keys.includes(forced)) return { variant: forced, forced: true };
    if (!targeted(exp.targeting, attrs)) return null;
    const ns = exp.namespace;
    if (ns) {
      const p = namespacePosition(unit, ns.name);
      if (!(ns.range[0] <= p && p < ns.range[1])) return null;
    }
    const i = chooseVariant(bucket(exp.seed || exp.key, unit), exp.variants.map((v) => v.weight), exp.coverage ?? 1);
    return i == null ? null : { variant: keys[i] };
  };

  // Segments (DESIGN §8): the server's rule for event attributes (abtest.attributes): at most 20
  // names like `country` or `plan.tier`, values a string, finite number or boolean of at most
  // 200 characters. What breaks the rule is dropped here, so one bad value cannot cost the
  // whole exposure; lists stay for targeting only. "(other)" and "(not set)" name pooled segments.
  const NAME = /^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/;
  const segments = (attrs) => Object.fromEntries(
    Object.entries(attrs)
      .map(([k, v]) => [k, /^[sb]/.test(typeof v) || Number.isFinite(v) ? canonical(v) : null])
      // encodeURIComponent throws on a lone surrogate (a string cut inside an emoji).
      .filter(([k, t]) => NAME.test(k) && t != null && t.length <= 200 && !/\0|^\((other|not set)\)$/.test(t) &&
        attempt(() => encodeURIComponent(t)))
      .slice(0, 20)
  );

  // mobile / tablet / desktop, as abtest.attributes.device_of reads a User-Agent; the client
  // hint (Chromium) settles phones, and an iPad asking for the desktop site shows as a
  // touch-screen Mac.
  const device = () => {
    const n = navigator;
    const ua = n.userAgent.toLowerCase();
    return /ipad|tablet/.test(ua) || (/android/.test(ua) && !/mobile/.test(ua)) ||
      (/macintosh/.test(ua) && n.maxTouchPoints > 1)
      ? 'tablet'
      : (n.userAgentData || {}).mobile || /mobi|iphone|ipod|android/.test(ua) ? 'mobile' : 'desktop';
  };

  // ---- Small helpers: storage can throw (privacy modes, sandboxed iframes), so guard it. ----

  const attempt = (fn, fallback) => {
    try {
      return fn();
    } catch (e) {
      return fallback;
    }
  };
  // store(area, k) reads; store(area, k, v) writes, never without consent.
  const store = (area, k, v) =>
    attempt(() => (v === undefined ? w[area].getItem(k) : blocked || w[area].setItem(k, v)), null);
  // Per-tab state (config cache, QA overrides, task starts) as JSON in sessionStorage.
  const session = (k, v) =>
    v === undefined
      ? readJSON(store('sessionStorage', 'abtest_' + k))
      : store('sessionStorage', 'abtest_' + k, JSON.stringify(v));
  const readJSON = (text) => attempt(() => JSON.parse(text), null);

  // crypto.randomUUID exists only in secure contexts (https, localhost); getRandomValues
  // works everywhere, so build the same version-4 UUID from it on plain http.
  const uuid = () => {
    const c = w.crypto;
    if (c.randomUUID) return c.randomUUID();
    const b = c.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 15) | 64;
    b[8] = (b[8] & 63) | 128;
    const hex = Array.from(b, (x) => (x + 256).toString(16).slice(1)).join('');
    return hex.replace(/(.{8})(.{4})(.{4})(.{4})/, '$1-$2-$3-$4-');
  };

  // The visitor id lives in a first-party cookie (a server can read it and assign the same way)
  // and in localStorage (survives cookie clearing); whichever exists is reused and both are
  // refreshed. It is hashed exactly as stored.
  const visitorId = () => {
    const m = d.cookie.match(/(?:^|;\s*)abtest_id=([^;]+)/);
    let id = (m && attempt(() => decodeURIComponent(m[1]))) || store('localStorage', ID);
    if (!id || id.length > 200) id = uuid(); // 200: the longest unit the server stores
    d.cookie = `${ID}=${encodeURIComponent(id)}; path=/; max-age=31536000; SameSite=Lax` +
      (location.protocol === 'https:' ? '; Secure' : '');
    store('localStorage', ID, id);
    return id;
  };

  // QA overrides: ?abtest_<key>=<variant>. Kept for the tab's session so a tester can click
  // through a funnel; a variant that does not exist (e.g. ?abtest_<key>=off) ends the override.
  const overrides = () => {
    const o = session('force') || {};
    new URLSearchParams(location.search).forEach((v, k) => {
      if (k.startsWith('abtest_')) o[k.slice(7)] = v;
    });
    session('force', o);
    return o;
  };

  // ---- Setup ----

  const tag = d.querySelector('script[data-key]');
  const script = d.currentScript || tag || { dataset: {} };
  // Inserted by the snippet, the options are on the snippet's tag; the API origin is still ours.
  const opts = ((stub.q && tag) || script).dataset;
  const key = encodeURIComponent(opts.key || '');
  const base = (opts.api || new URL(script.src || location.href, location.href).origin).replace(/\/+$/, '');
  // The key rides in the query string: sendBeacon cannot set headers, and a GET without an
  // Authorization header needs no CORS preflight, which keeps the hidden-page time short.
  const configUrl = `${base}/api/v1/config?key=${key}`;
  const eventsUrl = `${base}/api/v1/events?key=${key}`;
  const timeout = +opts.timeout || 800;
  // Consent: until abtest.consent(true), a site that requires it, or a visitor with Global Privacy
  // Control on (unless the site says its tests are strictly necessary), gets nothing stored,
  // requested or sent: no id can be kept, so no variant either: the page shows control.
  let blocked = opts.consent === 'required' || (navigator.globalPrivacyControl === true && opts.consent !== 'necessary');

  // A usability-study participant (link from the study runner, or an earlier page in this tab)
  // tests a design, not the site's A/B tests: no assignment, no events, everyone sees control.
  const study = /abtest_study=/.test(location) || session('study');

  let unit = null; // the visitor id, kept once consent is known (just before start())
  const assigned = Object.create(null); // experiment key -> variant, for the experiments the visitor is in
  const forcedIn = {}; // experiment key -> true when a QA override chose the variant
  const queue = [];
  let timer;
  let failures = 0;
  let settled = false;
  let at; // while the stub's queue is replayed: the time of the call being replayed
  const now = () => at || performance.timeOrigin + performance.now();
  let resolveReady = stub.r;
  const ready = stub.ready || new Promise((r) => (resolveReady = r));

  // ---- Events (DESIGN §4.4): batched in memory, ids make retries safe. ----

  const post = (hiding) => {
    clearTimeout(timer);
    const pending = [];
    while (queue.length) {
      const batch = queue.splice(0, BATCH);
      const body = JSON.stringify({ events: batch });
      // On page hide only a beacon (or a keepalive fetch) is sure to outlive the page.
      const beacon = () => navigator.sendBeacon(eventsUrl, new Blob([body], { type: 'application/json' }));
      if (hiding && attempt(beacon)) continue;
      pending.push(
        fetch(eventsUrl, {
          method: 'POST', body, keepalive: true,
          headers: { 'Content-Type': 'application/json' },
        })
          .then((r) => {
            if (r.status >= 500 || r.status === 429) throw r.status; // worth retrying
            failures = 0; // 2xx, or a 4xx that a retry cannot fix
          })
          .catch(() => {
            // Server away: keep the events (bounded) and retry later, backing off; the server
            // counts a repeated id once, so resending a batch that did arrive costs nothing.
            if (!blocked && ++failures < 6 && queue.length < 200) {
              queue.unshift(...batch);
              clearTimeout(timer);
              timer = setTimeout(send, IDLE_MS << failures);
            }
          })
      );
    }
    return Promise.all(pending).then(() => {});
  };
  // Runs from timers and page events, where an exception would land in the host page's console.
  const send = (hiding) => attempt(() => post(hiding), Promise.resolve());

  const record = (experiment, type, fields, ts = new Date()) => {
    if (blocked) return;
    queue.push(Object.assign(
      { id: uuid(), type, experiment, variant: assigned[experiment], unit },
      fields,
      forcedIn[experiment] && { forced: true }, // forced units are left out of the analysis
      { ts: ts.toISOString() }
    ));
    clearTimeout(timer);
    if (queue.length >= BATCH) send();
    else timer = setTimeout(send, IDLE_MS);
  };

  // A conversion or task belongs to every experiment the visitor is in: the page cannot know
  // which experiment caused it; the analysis of each one decides.
  // The time is the call's (a queued call keeps its own), the events wait for the assignment.
  const recordAll = (type, fields, ts = new Date(now())) =>
    ready.then(() => attempt(() => Object.keys(assigned).forEach((k) => record(k, type, fields, ts))));

  // ---- Assignment of this page view ----

  const unguard = () => attempt(() => html.classList.remove(GUARD));

  const settle = (config) => {
    if (settled) return; // a config arriving after the timeout waits in the cache for next page
    settled = true;
    // The loader's guard gone means the page has shown (control): a variant now would flash.
    if (stub.q && !html.classList.contains(GUARD)) config = null;
    attempt(() => {
      // Later sources win; the page's own `device` beats the guess.
      const attrs = Object.assign({ device: device() }, readJSON(opts.attributes || '{}'),
        w.abtestAttributes, session('attrs'));
      const attributes = segments(attrs);
      const forced = overrides();
      for (const exp of (config && config.experiments) || []) {
        const a = attempt(() => decide(exp, unit, attrs, forced[exp.key]));
        if (!a) continue;
        assigned[exp.key] = a.variant;
        forcedIn[exp.key] = a.forced;
        attempt(() => html.setAttribute('data-abtest-' + exp.key, a.variant));
        record(exp.key, 'exposure', { attributes }); // one per experiment per page view
      }
    });
    unguard();
    resolveReady({ ...assigned });
    pageLoad();
  };

  // The page's load time (Navigation Timing) as a "page-load" task for each experiment the
  // visitor is in: a speed guardrail for every test at no cost to the page.
  const pageLoad = () => {
    if (!Object.keys(assigned).length) return;
    const measure = () => attempt(() => {
      const nav = performance.getEntriesByType('navigation')[0];
      if (nav && nav.loadEventEnd > 0) {
        const duration = Math.round(nav.loadEventEnd - nav.startTime);
        recordAll('task', { task: 'page-load', success: true, duration_ms: duration });
      }
    });
    // loadEventEnd is set only after the load handlers have returned, hence the setTimeout.
    if (d.readyState === 'complete') setTimeout(measure);
    else w.addEventListener('load', () => setTimeout(measure), { once: true });
  };

  const start = () => {
    if (study || blocked) return settle();
    const cached = session('config');
    if (cached && cached.url === configUrl && Date.now() - cached.t < CONFIG_TTL) return settle(cached.config);
    // Hide the page only while it is still being parsed: hiding a page that has already been
    // painted would itself be a flash. The loader hides the page itself, before the first paint.
    if (!stub.q && (d.readyState === 'loading' || html.classList.contains(GUARD))) {
      const style = d.createElement('style');
      style.textContent = `.${GUARD}{opacity:0!important}`;
      (d.head || html).appendChild(style);
      html.classList.add(GUARD);
    }
    // The page always shows, config or not (everyone sees control): the loader shows it on its
    // own clock, else this timer. The fetch gives up a little later: a config that arrives in
    // between is cached for the next page view; a hanging server keeps no connection open.
    stub.q || setTimeout(settle, timeout);
    fetch(configUrl, { signal: attempt(() => AbortSignal.timeout(timeout + 2000)) })
      .then((r) => (r.ok ? r.json() : Promise.reject(r.status)))
      .then((config) => {
        if (!Array.isArray(config.experiments)) throw 0;
        session('config', { url: configUrl, t: Date.now(), config });
        settle(config);
      })
      .catch(() => settle(null));
  };


  const keepId = () => (api.unit = unit = attempt(visitorId) || uuid());
  const api = (w.abtest = {
    ready, // resolves with {experiment: variant} once assigned, or {} when config failed
    unit,
    // null when not in the experiment, before `ready`, or when the config could not load:
    // in all these cases the page shows control.
    variant: (k) => assigned[k] || null,
    track: (event, value) => {
      attempt(() => recordAll('conversion', Object.assign(
        { event: String(event) },
        typeof value === 'number' && isFinite(value) && { value }
      )));
    },
    // Task timing may span pages (start on the cart, end on the receipt): the start is an
    // absolute time kept in sessionStorage, so it survives navigation within the tab.
    task: (name) => ({
      start: () => attempt(() => {
        const s = session('tasks') || {};
        s[name] = now();
        session('tasks', s);
      }),
      end: (success) => attempt(() => {
        const s = session('tasks') || {};
        if (!(name in s)) return;
        const duration = now() - s[name];
        delete s[name];
        session('tasks', s);
        recordAll('task', { task: String(name), success: !!success, duration_ms: Math.round(duration * 10) / 10 });
      }),
    }),
    // Attributes learnt after load (a login, a plan): kept for the tab, so targeting and the
    // exposures of the next page views use them (this page's exposures may be sent already).
    attributes: (more) => attempt(() => session('attrs', Object.assign(session('attrs') || {}, more))),
    flush: () => send(false), // a Promise, settled once the queued events are sent (or kept)
    // consent(true): the visitor agreed: keep an id from now on (assigned and counted from this
    // page view if it is still hidden, else from the next). Anything else withdraws consent:
    // the id is deleted, queued events are dropped, nothing more is stored or sent.
    consent: (yes) => {
      const was = blocked;
      blocked = yes !== true;
      attempt(() => {
        if (blocked) {
          queue.length = 0;
          api.unit = unit = null;
          d.cookie = ID + '=;path=/;max-age=0';
          localStorage.removeItem(ID);
        } else if (was) keepId();
      });
    },
    _hash: { fnv1a32, bucket, chooseVariant, namespacePosition },
  });

  // Calls made before this file arrived, in order, at the time they were made; e.g. a queued
  // attributes() still counts for this page view's targeting. Later calls through the stub (a
  // task object taken from it early) are passed on at once. The stub's `ready` is ours already.
  const replay = ([method, task, args, t]) => {
    at = t;
    attempt(() => (api[method] || api.task(task)[method])(...args));
    at = 0;
  };
  if (stub.q) {
    // Consent first, so the calls queued beside it are kept (or not) as it says.
    stub.q.sort((a, b) => (b[0] == 'consent') - (a[0] == 'consent')).forEach(replay);
    stub.q = { push: replay };
  }

  attempt(() => {
    d.addEventListener('visibilitychange', () => d.visibilityState === 'hidden' && send(true));
    w.addEventListener('pagehide', () => send(true));
    // A study participant: load the study reporter, which tells the server which pages were reached.
    study && d.head.append(Object.assign(d.createElement('script'), { src: base + '/static/abtest-study.js' }));
  });
  try {
    blocked || unit || keepId();
    start();
  } catch (e) {
    settle(null); // never leave the page hidden or `ready` pending
  }
})();
