// abtest-vitals.js, readable source: page speed (Core Web Vitals) for experiments that ask for it.
// abtest.js loads the built web/static/abtest-vitals.js only when an experiment the visitor is
// assigned to (not forced, not a study participant, with consent) has `vitals` in the config.
// The measuring is Google's web-vitals library (web/static/vendor/web-vitals-*.iife.js, unmodified),
// which the build puts in front of this code inside one function, so `webVitals` is in scope here
// and no global is left behind. This file only turns its reports into abtest events.
//
// One event per reported vital and per experiment that asks for it, through abtest.js's own queue
// (abtest._record: variant, unit, batching, sendBeacon on page hide):
//   {type: "vital", event: "LCP", value: 1234.5, attributes: {path: "/shop", navigation: "navigate"}}
// value in ms (CLS unitless), rounded to 0.1 ms (CLS to 4 decimals); path without query string
// or fragment; navigation as web-vitals names it (navigate, reload, back-forward,
// back-forward-cache, prerender, restore).
(() => {
  const abtest = window.abtest;
  const wanted = abtest && abtest._vitals;
  if (!wanted || abtest._vitalsOn) return; // loaded twice: report once
  abtest._vitalsOn = 1;
  const report = (metric) => {
    try {
      const value = metric.name == 'CLS' ? Math.round(metric.value * 1e4) / 1e4 : Math.round(metric.value * 10) / 10;
      const attributes = { path: location.pathname, navigation: metric.navigationType };
      for (const experiment in wanted) {
        if (wanted[experiment].includes(metric.name)) {
          abtest._record(experiment, 'vital', { event: metric.name, value, attributes });
        }
      }
    } catch (e) {} // never throw into the page
  };
  // reportAllChanges stays false: one final value per page view (LCP, CLS and INP when the page
  // is hidden or LCP at the first input; FCP and TTFB as soon as they are known).
  for (const name of ['LCP', 'INP', 'CLS', 'FCP', 'TTFB']) {
    if (Object.values(wanted).some((list) => list.includes(name))) {
      try {
        webVitals['on' + name](report);
      } catch (e) {}
    }
  }
})();
