/*! abtest-study.js (MIT) */
// The usability-study reporter, loaded by abtest.js only for study participants. The study
// runner opens the tested design with ?abtest_study=<study>&abtest_pid=<pid>&abtest_task=<task>;
// this file keeps those in sessionStorage (so they follow the participant from page to page in
// that tab) and, on every page load, tells the server which URL was reached. The server decides
// whether it matches the task's success_url and stops the timer; this page learns nothing back.
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
      s = { key: q.get(KEY), pid: q.get('abtest_pid'), task: q.get('abtest_task') };
      try {
        sessionStorage.setItem(KEY, JSON.stringify(s));
      } catch (e) {} // storage blocked: this page still reports
    } else {
      s = JSON.parse(sessionStorage.getItem(KEY));
    }
    if (!s || !s.key || !s.pid || !s.task) return;
    // text/plain keeps this a "simple" cross-origin request (no preflight), which keepalive
    // fetches need in some browsers; the body is JSON all the same. No cookies are sent.
    fetch(`${base}/s/${encodeURIComponent(s.key)}/reached`, {
      method: 'POST',
      mode: 'cors',
      credentials: 'omit',
      keepalive: true,
      headers: { 'Content-Type': 'text/plain' },
      body: JSON.stringify({ pid: s.pid, task: s.task, url: location.href }),
    }).catch(() => {});
  } catch (e) {} // never throw into the tested page
})();
