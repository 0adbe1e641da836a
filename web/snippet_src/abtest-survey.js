// abtest-survey.js, readable source: the in-product survey prompt (CSAT, NPS, CES, a choice, a
// free text; one to three questions). abtest.js loads the built web/static/abtest-survey.js only
// when one of the running surveys (abtest._surveys, from the config) names this page, and never
// for study participants or without consent. A survey is its own file because most page views
// show none: the prompt's markup, styles and rules cost nothing where nobody is asked.
//
// Who is asked (all must hold, checked when this file runs and again at the moment of showing):
// the page matches `match`; for a survey linked to an experiment, the visitor is assigned to it
// and not by a QA override (the answers are compared per variant: a forced visitor is no sample);
// abtest._hash.bucket(seed, unit) < share (the experiments' hash, so the server knows the sample);
// this survey was never shown to this browser before; no survey was shown in the last quiet_days
// days. At most one survey per page view: the first in config order that is eligible. What was
// asked is kept in localStorage `abtest_surveys`, {"<key>": "shown"|"answered"|"dismissed",
// "_last": ms}; where that cannot be read or written nothing is shown, since "asked once" could
// not be kept.
//
// When: `delay` seconds after this file runs; or on exit intent (desktop only: the pointer leaves
// the page through its top edge); or `delay` seconds after the page calls abtest.track(event).
//
// Events, through abtest.js's own queue (abtest._record, experiment = the survey's key), each with
// the variant of the linked experiment, or "all":
//   {type: "survey", event: "shown" | "dismissed"}
//   {type: "response", questionnaire: "CSAT"|"NPS"|"CES"|"choice"|"text", task: <question key>,
//    answers: [<scale integer | 0-based choice index | trimmed text>]}  (one per answered question,
//    sent on Send)
//
// The prompt lives in the open shadow root of <div data-abtest-survey="KEY"> (tests reach in
// through it): the site's CSS cannot restyle it and its CSS cannot leak out. It is non-modal
// (no overlay, no focus trap, focus is never moved on show), fixed at the bottom right, and built
// with textContent only: config strings are never parsed as HTML.
(() => {
  'use strict';
  const w = window;
  const d = document;
  const abtest = w.abtest;
  if (!abtest || !abtest._record || abtest._surveyOn) return; // loaded twice: run once
  abtest._surveyOn = 1;
  const STORE = 'abtest_surveys';
  // The declared questionnaires' scales, for a config entry that does not carry low/high.
  const SCALES = { CSAT: [1, 5], NPS: [0, 10], CES: [1, 7] };

  // Event handlers and timers run outside the try below: an exception there would reach the
  // page's console (or its error tracker), so each is wrapped.
  const safe = (fn) => (...args) => {
    try {
      return fn(...args);
    } catch (e) {}
  };
  // Throws when storage is blocked or the value is not ours to read: the caller shows nothing.
  const read = () => JSON.parse(localStorage.getItem(STORE)) || {};
  const write = (key, value, shown) => {
    const s = read();
    s[key] = value;
    if (shown) s._last = Date.now();
    localStorage.setItem(STORE, JSON.stringify(s));
  };

  const eligible = (s) => {
    const state = read();
    const unit = abtest.unit;
    const exp = s.experiment;
    return (
      RegExp(s.match).test(location.href) &&
      (!exp || (abtest.variant(exp) != null && !abtest._forced?.[exp])) &&
      unit != null &&
      abtest._hash.bucket(s.seed || s.key, unit) < (s.share ?? 1) &&
      !Object.hasOwn(state, s.key) &&
      Date.now() - (state._last || 0) >= (s.quiet_days || 0) * 864e5
    );
  };

  // An element with attributes, a text (textContent: a config string is never parsed as HTML)
  // and children.
  const el = (tag, attrs = {}, text, ...children) => {
    const e = d.createElement(tag);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (text != null) e.textContent = text;
    e.append(...children);
    return e;
  };

  // Inside the shadow root: page rules do not reach in, and `all: initial !important` on the host
  // also stops what the page sets on the host itself (and what it would inherit from the page),
  // since an !important rule of the shadow tree beats the page's.
  const CSS =
    ':host{all:initial!important}' +
    '*{box-sizing:border-box}' +
    '.box{position:fixed;right:16px;bottom:16px;z-index:2147483000;width:min(360px,calc(100vw - 32px));' +
    'max-height:calc(100vh - 32px);overflow:auto;padding:16px;background:#fff;color:#1f2328;' +
    'border:1px solid #afb8c1;border-radius:8px;box-shadow:0 4px 24px #0003;font:15px/1.4 system-ui,sans-serif}' +
    'h2{margin:0 32px 12px 0;font-size:16px}' +
    'fieldset{margin:0 0 14px;padding:0;border:0;min-width:0}' +
    'legend{padding:0 0 8px}' +
    'p{margin:0}' +
    'button,textarea{font:inherit;color:inherit}' +
    ':focus-visible,.row :focus-visible+span{outline:2px solid #0a58ca;outline-offset:2px}' +
    '.x{position:absolute;top:8px;right:8px;width:32px;height:32px;border:0;background:none;font-size:22px;cursor:pointer}' +
    // A scale is a row of numbers; each is a real radio (focusable, arrow keys, Space, screen
    // readers) made invisible, and its number is what is seen and clicked.
    '.row{display:grid;gap:4px}' +
    '.row input{position:absolute;opacity:0}' +
    '.row span,textarea{display:block;border:1px solid #8c959f;border-radius:6px}' +
    '.row span{padding:6px 0;text-align:center;cursor:pointer}' +
    '.row span:hover{background:#eaeef2}' +
    '.row :checked+span{background:#1f2328;color:#fff}' +
    '.ends{display:flex;justify-content:space-between;gap:8px;margin-top:4px;font-size:13px;color:#57606a}' +
    '.opt{display:flex;gap:8px;padding:3px 0}' +
    '.opt input{margin:0}' +
    'textarea{width:100%;min-height:64px;padding:6px 8px;resize:vertical}' +
    '[type=submit]{padding:8px 18px;border:0;border-radius:6px;background:#1f2328;color:#fff;cursor:pointer}' +
    ':disabled{opacity:.45;cursor:default}' +
    '@media (prefers-reduced-motion:no-preference){.box{animation:i .2s}}' +
    '@keyframes i{from{opacity:0;transform:translateY(12px)}}';

  const run = (survey) => {
    const key = survey.key;
    let shown;
    let closed;
    const record = (type, fields) =>
      abtest._record(key, type, { ...fields, variant: survey.experiment ? abtest.variant(survey.experiment) : 'all' });

    const show = safe(() => {
      if (shown || !eligible(survey)) return;
      shown = 1;
      const host = el('div', { 'data-abtest-survey': key });
      const box = el('div', { class: 'box', role: 'dialog', 'aria-modal': 'false', 'aria-labelledby': 'h' });
      const close = el('button', { type: 'button', class: 'x', 'aria-label': 'Close survey' }, '×');
      const send = el('button', { type: 'submit', disabled: '' }, 'Send');
      const form = el('form');

      // One fieldset per question; `answers` holds [question, how to read its answer]
      // (undefined: not answered).
      const answers = [];
      for (const q of survey.questions || []) {
        const set = el('fieldset', {}, null, el('legend', {}, q.text));
        let get;
        // Radios named after the question, value = what is sent, with a visible label each.
        const radios = (values, labels, attrs) => {
          const inputs = values.map((value) => el('input', { type: 'radio', name: q.key, value }));
          get = () => {
            const c = inputs.find((i) => i.checked);
            return c && +c.value;
          };
          return inputs.map((input, j) => el('label', attrs, null, input, el('span', {}, labels[j])));
        };
        if (q.type == 'text') {
          // The legend's text is the textarea's label too.
          const area = el('textarea', { id: 'q' + answers.length, maxlength: 4000, rows: 3 });
          set.firstChild.replaceChildren(el('label', { for: area.id }, q.text));
          set.append(area);
          get = () => area.value.trim().slice(0, 4000) || undefined;
        } else if (q.type == 'choice') {
          const choices = q.choices || [];
          set.append(...radios(choices.map((_, j) => j), choices, { class: 'opt' }));
        } else if (SCALES[q.type]) {
          const values = [];
          for (let v = q.low ?? SCALES[q.type][0]; v <= (q.high ?? SCALES[q.type][1]); v++) values.push(v);
          const row = el('div', { class: 'row' }, null, ...radios(values, values));
          row.style.gridTemplateColumns = `repeat(${values.length},minmax(0,1fr))`;
          set.append(row, el('div', { class: 'ends' }, null, el('span', {}, q.low_label), el('span', {}, q.high_label)));
        } else continue; // a question type this file does not know: left out
        answers.push([q, get]);
        form.append(set);
      }
      const given = () => answers.map(([q, get]) => [q, get()]).filter(([, v]) => v !== undefined);
      // Send is possible once at least one question is answered.
      form.addEventListener('input', safe(() => (send.disabled = !given().length)));
      form.append(send);

      const remove = () => host.remove();
      const dismiss = safe(() => {
        if (closed) return;
        closed = 1;
        abtest.unit != null && safe(write)(key, 'dismissed'); // consent withdrawn meanwhile: store nothing
        record('survey', { event: 'dismissed' });
        remove();
      });
      close.addEventListener('click', dismiss);
      box.addEventListener('keydown', (e) => e.key == 'Escape' && dismiss());
      form.addEventListener('submit', safe((e) => {
        e.preventDefault(); // never navigate the page
        const list = given();
        if (closed || !list.length) return;
        closed = 1;
        for (const [q, value] of list) record('response', { questionnaire: q.type, task: q.key, answers: [value] });
        abtest.unit != null && safe(write)(key, 'answered');
        abtest.flush();
        box.replaceChildren(el('p', { id: 'h', class: 'thanks', role: 'status' }, 'Thank you!'));
        setTimeout(remove, 2000);
      }));

      box.append(close, el('h2', { id: 'h' }, survey.title || 'Quick question'), form);
      const root = host.attachShadow({ mode: 'open' });
      // A constructed stylesheet, which a site's Content-Security-Policy (style-src without
      // 'unsafe-inline') does not block as it blocks a <style> element; the element where the
      // browser cannot construct one.
      try {
        const sheet = new CSSStyleSheet();
        sheet.replaceSync(CSS);
        root.adoptedStyleSheets = [sheet];
      } catch (e) {
        root.append(el('style', {}, CSS));
      }
      root.append(box);
      // Once shown counts as asked: stored first, so a browser that cannot store sees nothing.
      write(key, 'shown', 1);
      d.body.append(host);
      record('survey', { event: 'shown' });
    });

    const wait = () => setTimeout(show, (+survey.delay || 0) * 1e3);
    if (survey.show == 'exit-intent') {
      // Touch-only devices have no pointer to leave the page with (and fire odd mouse events).
      if (!matchMedia('(any-pointer:fine)').matches) return;
      d.addEventListener('mouseout', (e) => !e.relatedTarget && e.clientY <= 0 && show());
    } else if (survey.show == 'event') {
      // Tracked already on this page view (an inline call on a thank-you page, one queued before
      // abtest.js arrived): abtest.js keeps the names in _tracked. Later calls: through track.
      if ((abtest._tracked || []).includes(survey.event)) return wait();
      const track = abtest.track;
      let seen;
      abtest.track = function (name) {
        const result = track.apply(this, arguments); // the page's call first, as it was
        // String() of an odd object can throw: safe, so the page's call never does.
        if (!seen && safe(() => '' + name == survey.event)()) {
          seen = 1;
          safe(wait)();
        }
        return result;
      };
    } else wait();
  };

  try {
    read(); // storage unreadable: nothing to do
    const survey = (abtest._surveys || []).find(safe(eligible));
    if (survey) run(survey);
  } catch (e) {} // never throw into the page
})();
