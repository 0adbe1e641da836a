// abtest.js, the browser snippet (DESIGN §5), readable source. The served web/static/abtest.js is
// built from this file by `python -m web.build_snippet` (web/static/README.md); edit here, rebuild,
// commit both. Budget: 5,000 bytes minified, 2,500 gzipped (tests/test_snippet_build.py).
//
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
// What not every page needs is a separate file loaded on demand: abtest-study.js (study
// participants), abtest-vitals.js (page speed, when an experiment the visitor is in asks) and
// abtest-survey.js (on pages a running survey names).
//
// Written to minify small (every page view downloads it; web/static/README.md, Size): one helper
// per repeated shape, storage read and written as properties (localStorage.abtest_id), no value
// computed that nothing reads.
(() => {
  const w = window;
  const d = document;
  const n = navigator;
  const loc = location;
  const html = d.documentElement;
  const classes = html.classList;
  // Loaded twice (two tags, SPA re-injection): the first copy stays in charge, so a visitor
  // gets one exposure per page view, not two.
  if (w.abtest?._hash) return;
  // The loader's stub: calls queued before this file arrived (q: [method, task, arguments, time])
  // and its `ready` with the resolver (r).
  const stub = w.abtest || {};

  const GUARD = 'abtest-loading'; // class hiding <html> while the config loads

  // ---- Assignment (DESIGN §4.3): must agree bit for bit with abtest.assignment in Python. ----

  // 32-bit FNV-1a over UTF-16 code units (charCodeAt), as GrowthBook's SDKs hash. Math.imul keeps
  // the multiply exact in 32 bits (a float multiply would lose low bits); it works on the signed
  // 32-bit value, whose bits are the same, so the unsigned value is taken once at the end.
  const fnv1a32 = (text, h = 2166136261) => {
    for (let i = 0; i < text.length; ) h = Math.imul(h ^ text.charCodeAt(i++), 16777619);
    return h >>> 0;
  };

  // GrowthBook's v2 hash: hashing the decimal string of the first hash evens out the tail bits.
  const bucket = (seed, unit) => (fnv1a32('' + fnv1a32(seed + unit)) % 1e4) / 1e4;

  // Variant i owns [cum, cum + coverage * w_i): running float sums in variant order, exactly as
  // Python adds them, so range edges round the same way. Raising coverage never moves anyone.
  // Outside every range (not covered): undefined, Python's None.
  const chooseVariant = (b, weights, coverage = 1) => {
    for (let i = 0, cum = 0; i < weights.length; cum += weights[i++]) {
      if (cum <= b && b < cum + coverage * weights[i]) return i;
    }
  };

  // GrowthBook's v1 hash, used for namespaces (mutually exclusive experiments).
  const namespacePosition = (unit, name) => (fnv1a32(unit + '__' + name) % 1e3) / 1e3;

  // Same strings as Python's canonical_attribute: True -> "true", 3.0 -> "3". BigInt writes
  // large integers in full (1e21 -> "1000000000000000000000"), as Python's int() does.
  const canonical = (v) => '' + (Number.isInteger(v) ? BigInt(v) : v);

  // Segments (DESIGN §8): the server's rule for event attributes (abtest.attributes): at most 20
  // names like `country` or `plan.tier`, values a string, finite number or boolean of at most
  // 200 characters. What breaks the rule is dropped here, so one bad value cannot cost the
  // whole exposure; lists stay for targeting only. "(other)" and "(not set)" name pooled segments.
  const segments = (attrs) =>
    Object.fromEntries(
      Object.entries(attrs)
        .map(([k, v]) => [k, /^[sb]/.test(typeof v) || Number.isFinite(v) ? canonical(v) : 0])
        // encodeURIComponent throws on a lone surrogate (a string cut inside an emoji); an
        // empty value is dropped too.
        .filter(([k, t]) => /^[A-Za-z_][\w.-]{0,63}$/.test(k) && t.length <= 200 &&
          !/\0|^\((other|not set)\)$/.test(t) && attempt(() => encodeURIComponent(t)))
        .slice(0, 20)
    );

  // mobile / tablet / desktop, as abtest.attributes.device_of reads a User-Agent (a tablet: an
  // iPad, a tablet, or an Android without "mobile"; an Android left over has "mobi"); the client
  // hint (Chromium) settles phones, and an iPad asking for the desktop site shows as a
  // touch-screen Mac.
  const device = (ua = n.userAgent) =>
    /ipad|tablet|^(?!.*mobile).*android/i.test(ua) || (/macintosh/i.test(ua) && n.maxTouchPoints > 1)
      ? 'tablet'
      : n.userAgentData?.mobile || /mobi|iphone|ipod/i.test(ua) ? 'mobile' : 'desktop';

  // ---- Small helpers: storage can throw (privacy modes, sandboxed iframes), so guard it. ----

  const attempt = (fn) => {
    try {
      return fn();
    } catch {}
  };
  // Per-tab state (config cache, QA overrides, task starts, attributes) as JSON in sessionStorage;
  // never a write without consent.
  const load = (k) => attempt(() => JSON.parse(sessionStorage['abtest_' + k]));
  const save = (k, v) => blocked || attempt(() => (sessionStorage['abtest_' + k] = JSON.stringify(v)));
  // A new element with these properties (the modules' scripts, a bare tag's style).
  const element = (name, props) => Object.assign(d.createElement(name), props);

  // crypto.randomUUID exists only in secure contexts (https, localhost). On plain http a blob
  // URL ends in a random version-4 UUID that the browser made for it (its own secure random
  // source), so one is borrowed from an empty blob and the URL released at once.
  const uuid = (u) =>
    crypto.randomUUID?.() ?? (URL.revokeObjectURL((u = URL.createObjectURL(new Blob()))), u.slice(-36));

  // The visitor id lives in a first-party cookie (a server can read it and assign the same way)
  // and in localStorage (survives cookie clearing); whichever exists is reused and both are
  // refreshed. It is hashed exactly as stored; 200 characters is the longest unit the server keeps.
  // `cookie` writes it (only with consent), or deletes it when consent is withdrawn (age 0).
  const cookie = (value, age = 31536000) =>
    (d.cookie = 'abtest_id=' + encodeURIComponent(value) + ';path=/;SameSite=Lax;max-age=' + age +
      (loc.protocol == 'https:' ? ';Secure' : ''));
  const visitorId = () => {
    let id = attempt(() => decodeURIComponent(d.cookie.match(/(^|;\s*)abtest_id=([^;]+)/)[2])) ||
      attempt(() => localStorage.abtest_id);
    if (!id || id.length > 200) id = uuid();
    cookie(id);
    attempt(() => (localStorage.abtest_id = id));
    return id;
  };
  // The optional files: abtest-study.js, abtest-vitals.js, abtest-survey.js, beside this one.
  const module = (name) => d.head.append(element('script', { src: base + '/static/abtest-' + name + '.js' }));

  // ---- Setup ----

  const tag = d.querySelector('script[data-key]');
  const script = d.currentScript || tag || { dataset: {} };
  // Inserted by the snippet, the options are on the snippet's tag; the API origin is still ours.
  const opts = ((stub.q && tag) || script).dataset;
  const base = (opts.api || new URL(script.src || loc, loc).origin).replace(/\/+$/, '');
  // The key rides in the query string: sendBeacon cannot set headers, and a GET without an
  // Authorization header needs no CORS preflight, which keeps the hidden-page time short.
  const endpoint = (path) => base + '/api/v1/' + path + '?key=' + encodeURIComponent(opts.key || '');
  const configUrl = endpoint('config');
  const eventsUrl = endpoint('events');
  const timeout = +opts.timeout || 800;
  // Consent: until abtest.consent(true), a site that requires it, or a visitor with Global Privacy
  // Control on (unless the site says its tests are strictly necessary), gets nothing stored,
  // requested or sent: no id can be kept, so no variant either: the page shows control.
  let blocked = opts.consent == 'required' || (n.globalPrivacyControl === true && opts.consent != 'necessary');

  // A usability-study participant (link from the study runner, or an earlier page in this tab)
  // tests a design, not the site's A/B tests: no assignment, no events, everyone sees control.
  const study = /abtest_study=/.test(loc) || load('study');

  let unit = null; // the visitor id, kept once consent is known (just before start())
  const assigned = {}; // experiment key -> variant, for the experiments the visitor is in
  const forcedIn = {}; // experiment key -> the variant, when a QA override chose it
  const vitals = {}; // experiment key -> the page-speed metrics it asks for (abtest-vitals.js)
  const tracked = []; // the event names abtest.track() saw on this page view (abtest-survey.js)
  const queue = [];
  let timer;
  let failures = 0;
  let settled;
  let at; // while the stub's queue is replayed: the time of the call being replayed
  const now = () => at || performance.timeOrigin + performance.now();
  let resolveReady = stub.r;
  const ready = stub.ready || new Promise((r) => (resolveReady = r));

  // ---- Events (DESIGN §4.4): batched in memory (20 a request), ids make retries safe. ----

  const sendIn = (ms) => {
    clearTimeout(timer);
    timer = setTimeout(send, ms);
  };
  // Runs from timers and page events, where an exception would land in the host page's console;
  // resolves (never rejects) once the queued events are sent or kept for a retry. Everything up
  // to the `await` runs at once, so the beacons of a page being hidden leave before it goes.
  const send = async (hiding) => {
    try {
      clearTimeout(timer);
      const pending = [];
      while (queue.length) {
        const batch = queue.splice(0, 20);
        // A Blob body gives the beacon and the fetch alike their Content-Type.
        const body = new Blob([JSON.stringify({ events: batch })], { type: 'application/json' });
        // On page hide only a beacon (or a keepalive fetch) is sure to outlive the page.
        (hiding && attempt(() => n.sendBeacon(eventsUrl, body))) ||
          pending.push(
            fetch(eventsUrl, { method: 'POST', body, keepalive: true })
              .then((r) => {
                if (r.status > 499 || r.status == 429) throw 0; // worth retrying
                failures = 0; // 2xx, or a 4xx that a retry cannot fix
              })
              .catch(() => {
                // Server away: keep the events (bounded) and retry later, backing off; the server
                // counts a repeated id once, so resending a batch that did arrive costs nothing.
                if (!blocked && ++failures < 6 && queue.length < 200) {
                  queue.unshift(...batch);
                  sendIn(2000 << failures);
                }
              })
          );
      }
      await Promise.all(pending);
    } catch {}
  };

  // Queues one event of one experiment (at the time of the call, or of a replayed call); also
  // the hook the optional modules queue theirs through, as abtest._record.
  const record = (experiment, type, fields, ts = now()) => {
    if (blocked) return;
    queue.push({
      id: uuid(), type, experiment, variant: assigned[experiment], unit, ...fields,
      ...(forcedIn[experiment] && { forced: true }), // forced units are left out of the analysis
      ts: new Date(ts).toISOString(),
    });
    queue.length < 20 ? sendIn(2000) : send();
  };

  // A conversion or task belongs to every experiment the visitor is in: the page cannot know
  // which experiment caused it; the analysis of each one decides.
  // The time is the call's (a queued call keeps its own), the events wait for the assignment.
  const recordAll = (type, fields, ts = now()) =>
    ready.then(() => attempt(() => {
      for (const k in assigned) record(k, type, fields, ts);
    }));

  // ---- Assignment of this page view ----

  const settle = (config) => {
    if (settled) return; // a config arriving after the timeout waits in the cache for next page
    settled = 1;
    // The loader's guard gone means the page has shown (control): a variant now would flash.
    if (stub.q && !classes.contains(GUARD)) config = 0;
    attempt(() => {
      // Later sources win; the page's own `device` beats the guess.
      const attrs = { device: device(), ...attempt(() => JSON.parse(opts.attributes)), ...w.abtestAttributes, ...load('attrs') };
      const attributes = segments(attrs);
      // QA overrides: ?abtest_<key>=<variant>. Kept for the tab's session so a tester can click
      // through a funnel; a variant that does not exist (e.g. ?abtest_<key>=off) ends the override.
      const forced = load('force') || {};
      new URLSearchParams(loc.search).forEach((v, k) => k.startsWith('abtest_') && (forced[k.slice(7)] = v));
      save('force', forced);
      // Each experiment on its own: one that cannot be read leaves the others assigned.
      for (const exp of config?.experiments || []) attempt(() => {
        const key = exp.key;
        const ns = exp.namespace;
        const keys = exp.variants.map((v) => v.key);
        let p;
        // A QA override wins; else every targeting rule must match (an attribute matches when it,
        // or any element of a list, is allowed; a missing one never does: better out of the test
        // than in the wrong audience), the namespace's range must hold the unit, and the unit's
        // bucket must fall in a variant's range (not outside the coverage).
        const variant = keys.includes(forced[key])
          ? (forcedIn[key] = forced[key])
          : Object.entries(exp.targeting || {}).every(([k, allowed]) =>
              [].concat(attrs[k] ?? []).some((v) => allowed.includes(canonical(v)))) &&
            (!ns || ((p = namespacePosition(unit, ns.name)) >= ns.range[0] && p < ns.range[1])) &&
            keys[chooseVariant(bucket(exp.seed || key, unit), exp.variants.map((v) => v.weight), exp.coverage ?? 1)];
        if (!variant) return;
        assigned[key] = variant;
        record(key, 'exposure', { attributes }); // one per experiment per page view
        // Page speed is measured for assigned visitors only: a forced one is QA, not a sample.
        if (!forcedIn[key] && exp.vitals?.length) vitals[key] = exp.vitals;
        html.setAttribute('data-abtest-' + key, variant);
      });
    });
    classes.remove(GUARD);
    resolveReady({ ...assigned });
    // The page's load time (Navigation Timing: loadEventEnd, the entry starting at 0) as a
    // "page-load" task for each experiment the visitor is in: a speed guardrail for every test at
    // no cost to the page. loadEventEnd is set only after the load handlers have returned, hence
    // the setTimeout.
    const measure = () =>
      setTimeout(() => attempt(() => {
        const t = Math.round(performance.getEntriesByType('navigation')[0].loadEventEnd);
        t > 0 && recordAll('task', { task: 'page-load', success: true, duration_ms: t });
      }));
    d.readyState == 'complete' ? measure() : w.addEventListener('load', measure);
    // Core Web Vitals only when an experiment the visitor is in asks for them; the survey
    // prompt only on a page one of the running surveys names (`match`: the server's regular
    // expression for its URL globs, which ignores the query string and fragment).
    attempt(() => {
      for (const k in vitals) return module('vitals');
    });
    attempt(() => (api._surveys = config.surveys).some((s) => RegExp(s.match).test(loc.href)) && module('survey'));
  };

  const start = () => {
    if (study || blocked) return settle();
    // Navigation within a tab reuses the config for 5 minutes: [url, time, config].
    const cached = load('config');
    if (cached?.[0] == configUrl && Date.now() - cached[1] < 3e5) return settle(cached[2]);
    // Hide the page only while it is still being parsed: hiding a page that has already been
    // painted would itself be a flash. The loader hides the page itself, before the first paint,
    // and shows it on its own clock; without it, this timer does. The page always shows, config
    // or not (everyone sees control). The fetch gives up a little later: a config that arrives
    // in between is cached for the next page view; a hanging server keeps no connection open.
    if (!stub.q) {
      if (d.readyState == 'loading' || classes.contains(GUARD)) {
        html.append(element('style', { textContent: `.${GUARD}{opacity:0!important}` }));
        classes.add(GUARD);
      }
      setTimeout(settle, timeout);
    }
    fetch(configUrl, { signal: AbortSignal.timeout?.(timeout + 2000) })
      .then((r) => r.json())
      .then((config) => {
        if (!Array.isArray(config.experiments)) throw 0;
        save('config', [configUrl, Date.now(), config]);
        settle(config);
      })
      .catch(() => settle());
  };

  const keepId = () => (api.unit = unit = attempt(visitorId) || uuid());
  const api = (w.abtest = {
    ready, // resolves with {experiment: variant} once assigned, or {} when config failed
    unit,
    // null when not in the experiment, before `ready`, or when the config could not load:
    // in all these cases the page shows control.
    variant: (k) => assigned[k] || null,
    track: (event, value) =>
      attempt(() => {
        recordAll('conversion', { event: (event = '' + event), ...(Number.isFinite(value) && { value }) });
        tracked.push(event);
      }),
    // Task timing may span pages (start on the cart, end on the receipt): the start is an
    // absolute time kept in sessionStorage, so it survives navigation within the tab.
    task: (name) => ({
      start: () => attempt(() => save('tasks', { ...load('tasks'), [name]: now() })),
      end: (success) =>
        attempt(() => {
          const s = load('tasks') || {};
          if (!(name in s)) return;
          const duration = now() - s[name];
          delete s[name];
          save('tasks', s);
          recordAll('task', { task: '' + name, success: !!success, duration_ms: Math.round(duration * 10) / 10 });
        }),
    }),
    // Attributes learnt after load (a login, a plan): kept for the tab, so targeting and the
    // exposures of the next page views use them (this page's exposures may be sent already).
    attributes: (more) => save('attrs', { ...load('attrs'), ...more }), // save() catches what storage throws
    flush: () => send(), // a Promise, settled once the queued events are sent (or kept)
    // consent(true): the visitor agreed: keep an id from now on (assigned and counted from this
    // page view if it is still hidden, else from the next). Anything else withdraws consent:
    // the id is deleted, queued events are dropped, nothing more is stored or sent.
    consent: (yes) => {
      const was = blocked;
      blocked = yes !== true;
      attempt(() =>
        blocked
          ? ((queue.length = 0), (api.unit = unit = null), cookie('', 0), delete localStorage.abtest_id)
          : was && keepId()
      );
    },
    _hash: { fnv1a32, bucket, chooseVariant, namespacePosition },
    // For the optional modules: what each experiment asks for, which assignments a QA override
    // forced, how to queue an event (abtest-survey.js reads _surveys, set once assigned).
    _vitals: vitals,
    _forced: forcedIn,
    _tracked: tracked,
    _record: record,
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
    // abtest-vitals.js's library listens on window in the capture phase, so its last reports
    // are queued before this listener sends the queue.
    d.addEventListener('visibilitychange', () => d.hidden && send(1));
    w.addEventListener('pagehide', () => send(1));
    // A study participant: load the study reporter, which tells the server which pages were reached.
    study && module('study');
  });
  try {
    blocked || unit || keepId();
    start();
  } catch {
    settle(); // never leave the page hidden or `ready` pending
  }
})();
