"""Every page fits its screen (issue 15): headless Chromium against a real `abtest serve --demo`.

Each page a designer can reach after logging in, the login and error pages, and every step of the
participant runner (/s/checkout-study, no login) are loaded at a phone (390 px), a tablet (768 px)
and a desktop (1280 px) width, and must:

- be no wider than the screen (``document.documentElement.scrollWidth`` <= the viewport width);
- have no element sticking out past the right edge, unless it sits in a scroll box
  (``.overflow-auto`` or ``pre``) that scrolls it sideways on purpose;
- cut no table column: a table wider than its box is inside such a scroll box; from the tablet
  width up, no table needs one (every column shows without scrolling);
- draw every chart inside its column, with every label inside the chart (the SVG scales to the
  column: nothing of it is cropped or hidden behind a scroll);
- keep each date on one line (2026-12-02, never "2026-" over "12-02");
- (runner) show each rating scale's points in order on one row, its end labels under the ends.

Full-page screenshots land in tests/browser/artifacts/pages-fit/ (not committed), named
``<page>-<width>.png``, for a person to look at.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.live_server import LiveServer, abtest_env, live_server

pytestmark = pytest.mark.browser

WIDTHS = (390, 768, 1280)
TABLET = 768  # from this width up every table shows all its columns without scrolling
HEIGHT = 900
EMAIL, PASSWORD = "demo@abtest.local", "demo-password"  # abtest/demo.py

# (name, path, status): every page a logged-in designer can open, with the demo's experiments in
# every state (checkout-button running, onboarding-copy stopped, pricing-layout draft) and its
# usability study (checkout-study, running), the CSAT survey on checkout-button (checkout-csat, running).
PAGES: tuple[tuple[str, str, int], ...] = (
    ("experiments", "/experiments/", 200),
    ("show-checkout-button", "/experiments/checkout-button", 200),
    ("show-onboarding-copy", "/experiments/onboarding-copy", 200),
    ("show-pricing-layout", "/experiments/pricing-layout", 200),
    ("results-checkout-button", "/experiments/checkout-button/results", 200),
    ("results-checkout-button-by-device", "/experiments/checkout-button/results?by=device", 200),
    ("results-onboarding-copy", "/experiments/onboarding-copy/results", 200),
    ("results-onboarding-copy-by-device", "/experiments/onboarding-copy/results?by=device", 200),
    ("results-pricing-layout", "/experiments/pricing-layout/results", 200),
    ("install-checkout-button", "/experiments/checkout-button/install", 200),
    ("install-onboarding-copy", "/experiments/onboarding-copy/install", 200),
    ("install-pricing-layout", "/experiments/pricing-layout/install", 200),
    ("edit-checkout-button", "/experiments/checkout-button/edit", 200),
    ("edit-onboarding-copy", "/experiments/onboarding-copy/edit", 200),
    ("edit-pricing-layout", "/experiments/pricing-layout/edit", 200),
    ("new-experiment", "/experiments/new", 200),
    ("new-study", "/studies/new", 200),
    ("edit-study", "/studies/checkout-study/edit", 200),
    ("study-results", "/experiments/checkout-study/results", 200),
    ("study-results-by-device", "/experiments/checkout-study/results?by=device", 200),
    ("tree-test-results", "/experiments/menu-tree-test/results", 200),
    ("first-click-results", "/experiments/home-first-click/results", 200),
    ("tree-test-edit", "/studies/menu-tree-test/edit", 200),
    ("tree-test-stop", "/experiments/menu-tree-test/stop", 200),
    ("first-click-edit", "/studies/home-first-click/edit", 200),
    ("first-click-stop", "/experiments/home-first-click/stop", 200),
    ("study-planner", "/experiments/checkout-study/results?p=31&n=5&target=85&rate=78&margin=10#planner", 200),
    ("study-planner-answer", "/experiments/checkout-study/planner?p=31&n=5&target=85&rate=78&margin=10", 200),
    ("new-survey", "/surveys/new", 200),
    ("edit-survey", "/surveys/checkout-csat/edit", 200),
    ("survey-results", "/experiments/checkout-csat/results", 200),
    ("install-survey", "/surveys/checkout-csat/install", 200),
    ("stop-checkout-csat", "/experiments/checkout-csat/stop", 200),
    ("stop-checkout-button", "/experiments/checkout-button/stop", 200),
    ("launch-pricing-layout", "/experiments/pricing-layout/launch", 200),
    ("archive-pricing-layout", "/experiments/pricing-layout/archive", 200),
    ("archive-onboarding-copy", "/experiments/onboarding-copy/archive", 200),
    ("stop-checkout-study", "/experiments/checkout-study/stop", 200),
    ("refused-launch-checkout-button", "/experiments/checkout-button/launch", 409),
    ("sample-size", "/experiments/sample-size", 200),
    ("sample-size-answer", "/experiments/sample-size?baseline=0.1&mde=0.02&daily_traffic=1000", 200),
    ("not-found-experiment", "/experiments/no-such-experiment", 404),
    ("not-found-url", "/no/such/page", 404),
    ("wrong-kind", "/experiments/checkout-study/edit", 409),
)
# Links that are no page of their own: downloads, the JSON twin, the participant link (checked
# by the runner test below), logging out.
NOT_PAGES = re.compile(r"^/(static|api)/|\.(toml|csv|json)$|^/s/|^/logout$")

# Measures one loaded page; returns the problems in words (an empty list: the page fits).
MEASURE = r"""
({tablesMustFit}) => {
  const vw = document.documentElement.clientWidth;
  const problems = [];
  const describe = el => {
    let s = el.tagName.toLowerCase();
    if (el.id) s += '#' + el.id;
    if (typeof el.className === 'string' && el.className.trim()) s += '.' + el.className.trim().split(/\s+/).join('.');
    const text = (el.textContent || '').trim().replace(/\s+/g, ' ').slice(0, 50);
    return text ? `${s} "${text}"` : s;
  };
  const scrollBox = el => {
    for (let p = el.parentElement; p; p = p.parentElement) if (p.matches('.overflow-auto, pre')) return p;
    return null;
  };
  const shown = el => {
    const r = el.getBoundingClientRect();
    return r.width > 0 && r.height > 0 && getComputedStyle(el).visibility !== 'hidden';
  };
  if (document.documentElement.scrollWidth > vw)
    problems.push(`page is ${document.documentElement.scrollWidth} px wide on a ${vw} px screen`);

  // Elements past the right edge, outside a scroll box (only the outermost of a sticking-out subtree).
  for (const el of document.body.querySelectorAll('*')) {
    if (!shown(el) || scrollBox(el)) continue;
    const right = el.getBoundingClientRect().right;
    const parent = el.parentElement;
    if (right > vw + 0.5 && (parent === document.body || parent.getBoundingClientRect().right <= vw + 0.5))
      problems.push(`${describe(el)} sticks out to x=${Math.round(right)}`);
  }

  // Tables: none wider than its box outside a scroll box; from the tablet width up, none scrolls.
  for (const table of document.querySelectorAll('table')) {
    if (!shown(table)) continue;
    const box = scrollBox(table);
    const width = table.getBoundingClientRect().width;
    const room = table.parentElement.clientWidth;
    if (!box && width > room + 0.5)
      problems.push(`${describe(table)}: ${Math.round(width)} px in a ${room} px box, columns cut`);
    if (box && tablesMustFit && box.scrollWidth > box.clientWidth + 1) {
      const hidden = [...table.querySelectorAll('thead th')]
        .filter(th => th.getBoundingClientRect().right > box.getBoundingClientRect().right + 1)
        .map(th => th.textContent.trim().replace(/\s+/g, ' '));
      problems.push(`${describe(table)}: needs sideways scrolling (${box.scrollWidth} > ${box.clientWidth} px), ` +
                    `off screen: ${hidden.join(', ') || 'part of the last column'}`);
    }
  }

  // Charts: inside their column, never in a scroll box, every label inside the drawing.
  for (const svg of document.querySelectorAll('svg.chart')) {
    const r = svg.getBoundingClientRect();
    const name = (svg.getAttribute('aria-label') || 'chart').slice(0, 40);
    if (r.width > svg.parentElement.clientWidth + 0.5 || r.right > vw + 0.5)
      problems.push(`chart "${name}" is ${Math.round(r.width)} px in a ${svg.parentElement.clientWidth} px column`);
    if (scrollBox(svg)) problems.push(`chart "${name}" sits in a scroll box`);
    for (const text of svg.querySelectorAll('text')) {
      const t = text.getBoundingClientRect();
      if (t.width === 0) continue;
      if (t.left < r.left - 1 || t.right > r.right + 1 || t.top < r.top - 1 || t.bottom > r.bottom + 1)
        problems.push(`chart "${name}": label "${text.textContent.trim()}" is cropped ` +
                      `(x ${Math.round(t.left)}-${Math.round(t.right)} of ${Math.round(r.left)}-${Math.round(r.right)})`);
    }
  }

  // Dates stay on one line.
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    for (const m of node.textContent.matchAll(/\b\d{4}-\d{2}-\d{2}\b/g)) {
      const range = document.createRange();
      range.setStart(node, m.index);
      range.setEnd(node, m.index + m[0].length);
      const tops = new Set([...range.getClientRects()].filter(q => q.width > 0).map(q => Math.round(q.top)));
      if (tops.size > 1) problems.push(`date ${m[0]} wraps over ${tops.size} lines in ${describe(node.parentElement)}`);
    }
  }
  return problems;
}
"""

# Each rating scale: its points in order on one row, the end labels under the first and last.
SCALES = r"""
() => [...document.querySelectorAll('fieldset.scale')].flatMap(fieldset => {
  const legend = fieldset.querySelector('legend').textContent.trim().slice(0, 40);
  const points = [...fieldset.querySelectorAll('.scale-options label')].map(label => label.getBoundingClientRect());
  const values = [...fieldset.querySelectorAll('.scale-options input')].map(input => Number(input.value));
  const problems = [];
  if (values.some((v, i) => i && v !== values[i - 1] + 1)) problems.push(`${legend}: values out of order ${values}`);
  points.forEach((p, i) => {
    if (i && (Math.abs(p.top - points[0].top) > 2 || p.left <= points[i - 1].left))
      problems.push(`${legend}: point ${values[i]} is not right of point ${values[i - 1]} on the first row`);
  });
  const ends = [...fieldset.querySelectorAll('.scale-ends small')].map(e => e.getBoundingClientRect());
  if (ends.length !== 2) problems.push(`${legend}: no end labels`);
  else {
    const [low, high] = ends, first = points[0], last = points[points.length - 1];
    if (low.left > first.left + first.width / 2 || low.top < first.bottom - 1)
      problems.push(`${legend}: the low end label is not under the first point`);
    if (high.right < last.right - last.width / 2 || high.top < last.bottom - 1)
      problems.push(`${legend}: the high end label is not under the last point`);
  }
  return problems;
})
"""


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(abtest_env(tmp_path_factory.mktemp("pages-fit")), "--demo") as server:
        yield server


@pytest.fixture(scope="module")
def shots(artifacts: Path) -> Path:
    folder = artifacts / "pages-fit"
    folder.mkdir(exist_ok=True)
    return folder


def _open(page, url: str) -> int:  # type: ignore[no-untyped-def]
    """Load a page and everything it fetches on load (the list's per-row summaries) and fonts."""
    response = page.goto(url, wait_until="load")
    page.wait_for_function("() => !document.querySelector('[aria-busy=true]')")
    page.evaluate("() => document.fonts.ready")
    return response.status


def _check(page, shots: Path, name: str, width: int) -> list[str]:  # type: ignore[no-untyped-def]
    page.screenshot(path=str(shots / f"{name}-{width}.png"), full_page=True)
    return [f"{name} at {width} px: {problem}"
            for problem in page.evaluate(MEASURE, {"tablesMustFit": width >= TABLET})]


def _log_in(page, base: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(base + "/login")
    page.fill("input[name=email]", EMAIL)
    page.fill("input[name=password]", PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_url(re.compile(r"/experiments/$"))


def _context(browser, width: int):  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": width, "height": HEIGHT})
    context.set_default_timeout(15_000)
    return context


@pytest.mark.parametrize("width", WIDTHS)
def test_every_logged_in_page_fits_the_screen(browser, demo, shots, width):  # type: ignore[no-untyped-def]
    context = _context(browser, width)
    try:
        page = context.new_page()
        _log_in(page, demo.url)
        problems = []
        for name, path, status in PAGES:
            answered = _open(page, demo.url + path)
            assert answered == status, f"{path} answered {answered}, expected {status}"
            problems += _check(page, shots, name, width)
    finally:
        context.close()
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("width", WIDTHS)
def test_login_page_fits_the_screen(browser, demo, shots, width):  # type: ignore[no-untyped-def]
    context = _context(browser, width)
    try:
        page = context.new_page()
        assert _open(page, demo.url + "/login") == 200
        problems = _check(page, shots, "login", width)
        page.fill("input[name=email]", EMAIL)
        page.fill("input[name=password]", "wrong password")
        page.click("form button[type=submit]")
        page.wait_for_load_state("networkidle")
        problems += _check(page, shots, "login-refused", width)
    finally:
        context.close()
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("width", WIDTHS)
def test_every_step_of_the_participant_runner_fits_the_screen(browser, demo, shots, width):  # type: ignore[no-untyped-def]
    """A new participant (no login) goes through the demo study: consent, each task (ready and
    running), its SEQ, the SUS, UMUX-Lite and NPS, the comment and the thanks page."""
    context = _context(browser, width)
    seen = []
    try:
        page = context.new_page()
        assert _open(page, demo.url + "/s/checkout-study") == 200
        problems = _check(page, shots, "runner-consent", width)
        page.click("button:text('I agree')")
        for _ in range(20):
            page.wait_for_load_state("networkidle")
            if "/thanks" in page.url:
                seen.append("thanks")
                problems += _check(page, shots, "runner-thanks", width)
                break
            if page.locator("button:text('Start task')").count():
                step = f"task-{seen.count('task-ready') + 1}-ready"
                seen.append("task-ready")
                problems += _check(page, shots, f"runner-{step}", width)
                page.click("button:text('Start task')")
            elif page.locator("button[value=done]").count():
                step = f"task-{seen.count('task-running') + 1}-running"
                seen.append("task-running")
                problems += _check(page, shots, f"runner-{step}", width)
                page.click("button[value=done]")
            elif page.locator("fieldset.scale").count():
                questionnaire = page.locator("fieldset.scale input").first.get_attribute("name").rsplit("-", 1)[0]
                seen.append(questionnaire)
                problems += _check(page, shots, f"runner-{questionnaire}-{seen.count(questionnaire)}", width)
                problems += [f"runner {questionnaire} at {width} px: {p}" for p in page.evaluate(SCALES)]
                for fieldset in page.locator("fieldset.scale").all():
                    fieldset.locator("input").last.check()
                page.click("button:text('Next')")
            elif page.locator("textarea#comment").count():
                seen.append("comment")
                problems += _check(page, shots, "runner-comment", width)
                page.click("button:text('Next')")
            else:
                pytest.fail(f"unexpected runner page at {page.url}: {page.inner_text('main')[:300]}")
    finally:
        context.close()
    assert seen == ["task-ready", "task-running", "SEQ", "task-ready", "task-running", "SEQ",
                    "SUS", "UMUX-Lite", "NPS", "comment", "thanks"], seen
    assert not problems, "\n".join(problems)


def test_the_page_list_covers_every_linked_page(browser, demo):  # type: ignore[no-untyped-def]
    """Every page linked from a checked page is itself in PAGES, so a new page cannot escape the
    checks above by not being listed."""
    context = _context(browser, 1280)
    try:
        page = context.new_page()
        _log_in(page, demo.url)
        listed = {urlsplit(path).path for _name, path, _status in PAGES}
        linked: dict[str, str] = {}
        for _name, path, _status in PAGES:
            _open(page, demo.url + path)
            for href in page.eval_on_selector_all("a[href]", "links => links.map(a => a.href)"):
                parts = urlsplit(href)
                if f"{parts.scheme}://{parts.netloc}" == demo.url and not NOT_PAGES.search(parts.path):
                    linked.setdefault(parts.path, path)
    finally:
        context.close()
    missing = {link: source for link, source in linked.items() if link not in listed}
    assert not missing, f"linked but not checked (link: linked from): {missing}"
