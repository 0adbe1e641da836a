"""Designer pages for experiments: the list, the definition form's routes, lifecycle moves and
install help. The form's logic is :mod:`web.experiment_form`.

htmx: full pages on normal requests, fragments when ``request.htmx`` (never for a history
restore); every response varies on ``HX-Request``. Everything works without JavaScript: the
add/remove buttons and the sample-size button are ordinary submit buttons as well.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import sqlalchemy as sa
from flask import Blueprint, Response, abort, flash, make_response, redirect, render_template, url_for
from flask import session as cookie
from htmx_flask import request
from sqlmodel import Session, col, select

from abtest import pipeline
from abtest.accounts import create_token, list_tokens
from abtest.definitions import ExperimentDef
from abtest.errors import Conflict, ValidationError
from abtest.kinds import to_toml
from abtest.metrics import METRIC_TYPES, PARAMS
from abtest.models import Experiment, Study
from abtest.studies.ia import NOUNS
from abtest.store.registry import TRANSITIONS, check_transition
from web.extensions import get_engine
from web.auth import actor, login_required
from web.experiment_form import SECTIONS, Checked, DefinitionForm, check, field_error, sample_size
from web.form_rows import vary_on_htmx, wants_fragment
from web.kind_pages import PAGES
from web.snippet import paste_snippet

experiments = Blueprint("experiments", __name__, url_prefix="/experiments")

# Lifecycle actions as the pages name them → the status they move to, and what the move means
# (in the kind's own words: visitors are assigned, the participant link opens …).
LIFECYCLE: dict[str, dict[str, str]] = {
    "launch": {"status": "running", "verb": "Launch"},
    "stop": {"status": "stopped", "verb": "Stop"},
    "archive": {"status": "archived", "verb": "Archive"},
}
ACTION_FOR_STATUS = {spec["status"]: action for action, spec in LIFECYCLE.items()}


experiments.after_request(vary_on_htmx)


# ---- rendering helpers -------------------------------------------------------------------------------


def _stored(key: str, any_kind: bool = False) -> tuple[Any, Experiment]:
    """The stored definition and its row; an unknown key raises NotFound (a 404 page).

    Pages about A/B experiments only (this form, install help) refuse another kind, pointing to
    its own pages; lifecycle moves and the TOML file serve every kind (``any_kind``).
    """
    with Session(get_engine()) as session:
        row, definition = pipeline.load(session, key)
    if not any_kind and not isinstance(definition, ExperimentDef):
        pages = PAGES[row.kind]
        raise Conflict(f"{key!r} is a {pages.noun}: edit it at {url_for(pages.edit, key=key)}; "
                       f"its results are at {url_for('results.page', key=key)}", field="kind")
    return definition, row


def _home(row: Experiment) -> str:
    """A test's own page (a study's is its results page)."""
    return url_for(PAGES[row.kind].home, key=row.key)


def _render_form(form: DefinitionForm, stored: ExperimentDef | None, checked: Checked | None = None, *,
                 status: int = 200, focus: str | None = None, fragment: bool = False, oob: bool = False,
                 section: str | None = None) -> tuple[str, int]:
    helper = sample_size({**form.helper, "alpha": form.alpha, "coverage": form.coverage,
                          "variant_count": str(len(form.variants))})
    context = {
        "form": form, "stored": stored, "errors": {**(checked.by_slot if checked else {}), **(helper.errors if helper else {})},
        "problems": checked.errors if checked else [], "submitted": checked is not None and not oob,
        "frozen": stored is not None and stored.status == "running", "focus": focus, "oob": oob,
        "helper": helper, "metric_types": METRIC_TYPES, "metric_params": PARAMS,
        # which types take each parameter: the form shows a type's own inputs only
        "param_takers": {name: " ".join(f"for-{t.name}" for t in METRIC_TYPES.values()
                                        if name in {p.name for p in t.params}) for name in PARAMS},
    }
    if section:
        return render_template(f"experiments/_{section}.html", **context), status
    template = "experiments/_form.html" if fragment else "experiments/form.html"
    return render_template(template, **context), status


def _with_override(site: str, key: str, variant: str) -> str:
    parts = urlsplit(site)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != f"abtest_{key}"]
    query.append((f"abtest_{key}", variant))
    return urlunsplit(parts._replace(query=urlencode(query)))


def _qa_links(definition: ExperimentDef, site: str) -> tuple[list[tuple[str, str]], str | None]:
    """(variant, link) pairs; without a site URL the links are just the query suffix."""
    site = site.strip()
    error = None
    if site and not (urlsplit(site).scheme in ("http", "https") and urlsplit(site).netloc):
        error = "enter a full address starting with https:// or http://, e.g. https://shop.example.com/cart"
    links = []
    for variant in definition.variant_keys:
        suffix = "?" + urlencode({f"abtest_{definition.key}": variant})
        links.append((variant, _with_override(site, definition.key, variant) if site and not error else suffix))
    return links, error


# ---- routes: list ------------------------------------------------------------------------------------


# How the list can be sorted (``?sort=``): running first, newest first, is the default.
SORTS: dict[str, str] = {"": "running first", "name": "name (A–Z)", "status": "status (draft → archived)",
                         "started": "started (newest first)"}
STATUSES = tuple(TRANSITIONS)  # draft, running, stopped, archived: the lifecycle's order


def _order(sort: str) -> list[Any]:
    newest = col(Experiment.id).desc()
    if sort == "name":
        return [sa.func.lower(col(Experiment.name)), col(Experiment.key)]
    if sort == "status":
        return [sa.case({s: i for i, s in enumerate(STATUSES)}, value=col(Experiment.status)),
                sa.func.lower(col(Experiment.name))]
    if sort == "started":  # never started (drafts) last
        return [col(Experiment.started_at).is_(None), col(Experiment.started_at).desc(), newest]
    return [col(Experiment.status) != "running", newest]


@experiments.get("/")
@login_required
def index():  # type: ignore[no-untyped-def]
    """Every experiment with its status; units, progress and verdict load per row (htmx).

    ``?q=`` finds tests by key or name (case-insensitive), ``?status=`` keeps one state and
    ``?sort=`` orders them (:data:`SORTS`); values it does not know are ignored. An htmx request
    (the search form as you type) gets the list alone, and the clean URL to show."""
    q = request.args.get("q", "").strip()[:200]
    status = request.args.get("status", "")
    status = status if status in STATUSES else ""
    sort = request.args.get("sort", "")
    sort = sort if sort in SORTS else ""
    query = select(Experiment).order_by(*_order(sort))
    if q:
        query = query.where(sa.or_(col(Experiment.key).icontains(q, autoescape=True),
                                   col(Experiment.name).icontains(q, autoescape=True)))
    if status:
        query = query.where(col(Experiment.status) == status)
    with Session(get_engine()) as session:
        rows = session.exec(query).all()
        stored = session.exec(select(sa.func.count()).select_from(Experiment)).one()
        # What each study is (a tree test reads as one in the list, not as a "usability study").
        methods = dict(session.exec(select(Study.experiment_id, Study.method)).all())
    url = url_for("experiments.index", q=q or None, status=status or None, sort=sort or None)
    context = {"experiments": rows, "stored": stored, "q": q, "status": status, "sort": sort, "sorts": SORTS,
               "nouns": {row.id: NOUNS[methods[row.id]] for row in rows if methods.get(row.id) in NOUNS},
               "statuses": STATUSES, "filtered": bool(q or status), "list_url": url}
    if wants_fragment():
        response = make_response(render_template("experiments/_list.html", **context))
        response.headers["HX-Push-Url"] = url
        return response
    return render_template("experiments/index.html", **context)


@experiments.get("/<key>/summary")
@login_required
def summary(key: str):  # type: ignore[no-untyped-def]
    """One row's live numbers: exposed units, progress to the plan and the primary verdict."""
    report = pipeline.analyze(get_engine(), key)
    return render_template("experiments/_summary.html", report=report, total=sum(report.units.values()))


# ---- routes: the definition form ----------------------------------------------------------------------


def _form_page(stored: ExperimentDef | None):  # type: ignore[no-untyped-def]
    """GET shows the form; POST saves, or re-renders after a no-JS add/remove/calculate button."""
    if request.method == "GET":
        form = DefinitionForm.from_definition(stored) if stored else DefinitionForm.blank()
        return _render_form(form, stored)
    form = DefinitionForm.from_request(request.form)
    action = request.form.get("action", "save")
    if action != "save":
        focus = form.apply(action)
        return _render_form(form, stored, focus=focus or "sample-size-result", fragment=wants_fragment())
    checked = check(form, stored)
    if checked.definition is None:
        return _render_form(form, stored, checked, status=409 if checked.conflict else 422,
                            fragment=wants_fragment())
    with Session(get_engine()) as session:
        try:
            (pipeline.update if stored else pipeline.create)(session, checked.definition, actor())
            session.commit()
        except Conflict as exc:  # the state changed since the check (someone launched it meanwhile)
            session.rollback()
            raw_rows = form.to_raw(stored)[2]
            failed = Checked(None, [field_error(exc.field, raw_rows, exc.message)], conflict=True)
            return _render_form(form, stored, failed, status=409, fragment=wants_fragment())
    key = checked.definition.key
    flash(f"Saved “{checked.definition.name}”." if stored else
          f"Created “{checked.definition.name}” as a draft. Launch it when the site has the snippet.", "success")
    return redirect(url_for("experiments.show", key=key))


@experiments.route("/new", methods=["GET", "POST"])
@login_required
def new():  # type: ignore[no-untyped-def]
    return _form_page(None)


@experiments.route("/<key>/edit", methods=["GET", "POST"])
@login_required
def edit(key: str):  # type: ignore[no-untyped-def]
    return _form_page(_stored(key)[0])


def _editing() -> ExperimentDef | None:
    """The stored definition an htmx form request is about (the form's hidden ``editing`` key)."""
    key = request.form.get("editing")
    return _stored(key)[0] if key else None


@experiments.post("/validate")
@login_required
def validate():  # type: ignore[no-untyped-def]
    """Errors as you type: the form with every error beside its input (slots swapped out of band).

    Answers 200 either way (htmx swaps only 2xx); the error slots say what is wrong.
    """
    stored = _editing()
    form = DefinitionForm.from_request(request.form)
    checked = check(form, stored)
    if wants_fragment():
        return _render_form(form, stored, checked, fragment=True, oob=True)
    return _render_form(form, stored, checked)


@experiments.post("/form/<section>")
@login_required
def form_section(section: str):  # type: ignore[no-untyped-def]
    """htmx: apply one row button (add/remove a variant, metric, targeting rule) to one fieldset."""
    if section not in SECTIONS:
        abort(404)
    stored = _editing()
    form = DefinitionForm.from_request(request.form)
    focus = form.apply(request.form.get("action", ""))
    if not wants_fragment():
        return _render_form(form, stored, focus=focus)
    return _render_form(form, stored, focus=focus, section=section)


@experiments.get("/sample-size")
@login_required
def sample_size_page():  # type: ignore[no-untyped-def]
    """Units per variant and days needed; a fragment for the form's helper, or a page of its own."""
    answer = sample_size(request.args)
    context = {"helper": answer, "values": request.args, "helper_oob": wants_fragment(),
               "errors": answer.errors if answer else {}}
    if wants_fragment():
        return render_template("experiments/_sample_size.html", **context)
    return render_template("experiments/sample_size.html", **context), 422 if answer and answer.errors else 200


# ---- routes: one experiment ---------------------------------------------------------------------------


@experiments.get("/<key>")
@login_required
def show(key: str):  # type: ignore[no-untyped-def]
    definition, row = _stored(key)
    target = None
    if definition.plan is not None:
        target = _planned_units(definition)
    actions = [ACTION_FOR_STATUS[s] for s in TRANSITIONS.get(definition.status, ())]
    with Session(get_engine()) as session:
        history = pipeline.history(session, key)
    return render_template("experiments/show.html", d=definition, row=row, actions=actions,
                           lifecycle=LIFECYCLE, target=target, metric_types=METRIC_TYPES, history=history)


def _planned_units(definition: ExperimentDef) -> int | None:
    plan = definition.plan
    if plan is None:
        return None
    if plan.units_per_variant:
        return plan.units_per_variant
    if plan.baseline is None or plan.mde is None:
        return None
    from abtest.stats.power import sample_size_proportions

    try:
        return sample_size_proportions(plan.baseline, plan.mde, alpha=definition.alpha, power=plan.power,
                                       variants=len(definition.variants)).n_per_variant
    except ValidationError:
        return None


@experiments.route("/<key>/<any(launch, stop, archive):action>", methods=["GET", "POST"])
@login_required
def lifecycle(key: str, action: str):  # type: ignore[no-untyped-def]
    """GET: what the move means, in plain words, with a confirm button. POST: make the move.

    Moves the lifecycle does not allow answer 409 with the registry's reason; nothing changes.
    """
    spec = LIFECYCLE[action]
    definition, row = _stored(key, any_kind=True)
    pages = PAGES[row.kind]
    page = {"d": definition, "row": row, "action": action, "spec": spec, "home": _home(row)}
    try:
        check_transition(definition.status, spec["status"])
        if definition.status == spec["status"]:
            raise Conflict(f"the {pages.noun} is already {definition.status}", field="status")
    except Conflict as exc:
        return render_template("experiments/lifecycle.html", **page, refused=exc.message), 409
    if request.method == "GET":
        return render_template("experiments/lifecycle.html", **page, refused=None)
    with Session(get_engine()) as session:
        try:
            pipeline.transition(session, key, spec["status"], actor())
            session.commit()
        except Conflict as exc:  # moved by someone else since the page was shown
            session.rollback()
            return render_template("experiments/lifecycle.html", **page, refused=exc.message), 409
    flash(f"“{definition.name}” {pages.done[spec['status']]}.", "success")
    return redirect(page["home"])


@experiments.route("/<key>/install", methods=["GET", "POST"])
@login_required
def install(key: str):  # type: ignore[no-untyped-def]
    """The snippet, the server call, CSS hooks, QA links and the TOML. POST creates a public key.

    Keys are stored hashed, so a new one is shown once: it travels to the next page view in the
    session (a public key is public by design: it sits in every page that carries the snippet).
    """
    definition, row = _stored(key)
    if request.method == "POST":
        with Session(get_engine()) as session:
            token = create_token(session, "public", f"site for {key}")
            session.commit()
        cookie["new_public_key"] = token.secret
        flash("Created a public key. It is in the snippet below; copy it now: it cannot be shown again.", "success")
        return redirect(url_for("experiments.install", key=key))
    new_key = cookie.pop("new_public_key", None)
    with Session(get_engine()) as session:
        public_keys = [t for t in list_tokens(session) if t.kind == "public" and t.revoked_at is None]
    site = request.args.get("site", "")
    links, site_error = _qa_links(definition, site)
    snippet = paste_snippet(url_for("static", filename="abtest.js", _external=True), new_key or "pk_…")
    return render_template("experiments/install.html", d=definition, row=row, public_key=new_key,
                           public_keys=public_keys, snippet=snippet, toml=to_toml(definition), links=links, site=site,
                           site_error=site_error, errors={"site": [site_error]} if site_error else {})


@experiments.get("/<key>/qa-links")
@login_required
def qa_links(key: str):  # type: ignore[no-untyped-def]
    """htmx: the QA links for the typed site URL; without htmx, the install page with them."""
    definition, _ = _stored(key)
    site = request.args.get("site", "")
    if not wants_fragment():
        return redirect(url_for("experiments.install", key=key, site=site or None) + "#qa")
    links, site_error = _qa_links(definition, site)
    return render_template("experiments/_qa_links.html", d=definition, links=links, site=site,
                           site_error=site_error, errors={"site": [site_error]} if site_error else {}, oob=True)


@experiments.get("/<key>.toml")
@login_required
def definition_toml(key: str):  # type: ignore[no-untyped-def]
    """The definition as a file for ``experiments/`` in version control, ready for ``abtest sync``."""
    definition, _ = _stored(key, any_kind=True)
    return Response(to_toml(definition), mimetype="application/toml",
                    headers={"Content-Disposition": f'attachment; filename="{key}.toml"'})
