/*! abtest-study.js (MIT) */
// The usability-study reporter, loaded by abtest.js only for study participants. The study
// runner opens the tested design with ?abtest_study=<study>&abtest_token=<token>, the token being
// signed by the server for this one task attempt (it names study, participant and task, and
// expires); this file keeps both in sessionStorage (so they follow the participant from page to
// page in that tab) and, on every page load, posts the token and the URL reached. The server
// decides whether it matches the task's success_url and stops the timer; this page learns nothing.
(() => {
  'use strict';
  try {
    const KEY = 'abtest_study';
    const script = document.currentScript;
    // The API origin (and path prefix, if any) is wherever this file was served from.
    const base = script.src.replace(/\/static\/abtest-study\.js([?#].*)?$/, '');
    const q = new URLSearchParams(location.search);
    let s = null;
    if (q.get(KEY)) {
      s = { key: q.get(KEY), token: q.get('abtest_token') };
      try {
        sessionStorage.setItem(KEY, JSON.stringify(s));
      } catch (e) {} // storage blocked: this page still reports
    } else {
      s = JSON.parse(sessionStorage.getItem(KEY));
    }
    if (!s || !s.key || !s.token) return; // a self-reported task: nothing to report
    // text/plain keeps this a "simple" cross-origin request (no preflight), which keepalive
    // fetches need in some browsers; the body is JSON all the same. No cookies are sent.
    fetch(`${base}/s/${encodeURIComponent(s.key)}/reached`, {
      method: 'POST',
      mode: 'cors',
      credentials: 'omit',
      keepalive: true,
      headers: { 'Content-Type': 'text/plain' },
      body: JSON.stringify({ token: s.token, url: location.href }),
    }).catch(() => {});
  } catch (e) {} // never throw into the tested page
})();
