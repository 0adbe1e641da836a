"""The paste-ready snippet a site puts at the top of its ``<head>``: README.md ("Put it on a site"),
web/static/README.md and the Install page show this text (tests/test_readme.py and
tests/test_experiment_pages.py check that), and the browser tests load it.

It is an inline loader, not a bare ``<script src>`` tag, for three reasons (issue 15):

* **No flash.** The page is hidden (``abtest-loading``: opacity 0) before its first paint and shown
  when abtest.js has assigned the visitor, or after 800 ms at the latest, whatever happens to the
  server. An ``async`` tag alone runs after the first paint, so variant visitors saw control first.
* **A dead server cannot break the page.** ``window.abtest`` exists at once as a stub that queues
  ``track``, ``task``, ``attributes`` and ``consent`` (replayed by abtest.js, consent first, the
  others with their own times), answers
  ``variant()`` with null and has a ``ready`` Promise (resolved ``{}`` if abtest.js never comes),
  which ``flush()`` returns.
* **The load event never waits for abtest.** abtest.js is fetched as a preload (which does not
  delay ``load``) and only inserted as a script once it has arrived; a hanging server holds
  nothing. A script element, even ``async``, delays ``load`` until it has run.
"""

from __future__ import annotations

import html
import json

# {src} and {key} are filled in by paste_snippet; everything else is the text users paste.
_LOADER = """<style>.abtest-loading{opacity:0}</style>
<script data-key="{key}">self.abtest||((d,U,G)=>{let c=d.documentElement.classList,
p=(m,n)=>(...x)=>a.q.push([m,n,x,Date.now()]),f=()=>{c.remove(G);a.r({})},
a=self.abtest={q:[],track:p("track"),attributes:p("attributes"),consent:p("consent"),variant:()=>null,flush:()=>a.ready,
task:n=>({start:p("start",n),end:p("end",n)})},e=(t,o)=>d.head.append(Object.assign(d.createElement(t),o))
a.ready=new Promise(r=>a.r=r);c.add(G);setTimeout(f,800)
e("link",{rel:"preload",as:"script",href:U,onload:()=>e("script",{src:U}),onerror:f})
})(document,{src},"abtest-loading")</script>"""


def paste_snippet(src: str, key: str) -> str:
    """The snippet loading abtest.js from ``src`` with the public key ``key`` (or a placeholder)."""
    # The URL lands in a JS string inside <script>: JSON quotes it, and "</" must not end the script.
    return (_LOADER.replace("{key}", html.escape(key, quote=True))
            .replace("{src}", json.dumps(src).replace("</", "<\\/")))
