"""The JSON API under ``/api/v1`` (DESIGN §4.4). Every error is ``{"error": {code, message, field}}``.

Request bodies are validated by the same pydantic models that ``/api/v1/openapi.json`` publishes
(:mod:`web.api_models`); definitions of every kind go through the kind's parser exactly as
``abtest sync``. The public routes (config, assign, events) reach only the kinds
:func:`abtest.kinds.snippet_kinds` names, checked in one place (:func:`_snippet_definition`).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, current_app, g, jsonify, request
from pydantic import BaseModel
from pydantic import ValidationError as PydanticError
from sqlmodel import Session
from werkzeug.exceptions import HTTPException

from abtest import pipeline
from abtest.attributes import segment_attributes
from abtest.checks import InvalidDefinition
from abtest.clickhouse.client import EventsUnavailable
from abtest.db import is_busy
from abtest.errors import AbtestError, BadRequest, Busy, NotFound, Unavailable, UnsupportedMediaType, ValidationError
from abtest.ingest import EventBatch, explain, ingest
from abtest.kinds import KINDS, parse_definition, require_snippet_kind, snippet_kinds
from abtest.studies.screens import resolve_images
from abtest.store.erasure import forget
from abtest.store.events import event_row, exposure_id, write_events
from web.extensions import get_engine
from web.api_models import AssignRequest
from web.auth import actor, token_required
from web.public_api import public_limits
from web.study_images import image_store

api = Blueprint("api", __name__, url_prefix="/api/v1")


@api.errorhandler(AbtestError)
def _domain_error(exc: AbtestError):  # type: ignore[no-untyped-def]
    body: dict[str, Any] = {"error": exc.to_dict()}
    if isinstance(exc, InvalidDefinition):
        body["errors"] = [e.to_dict() for e in exc.errors]
    return jsonify(body), exc.status, exc.headers()


def http_error(exc: HTTPException):  # type: ignore[no-untyped-def]
    """404, 405, 413 … as JSON under /api/ (called by the app's handler: routing errors bypass blueprints)."""
    code = (exc.name or "error").lower().replace(" ", "_")
    return jsonify(error={"code": code, "message": exc.description, "field": None}), exc.code, http_headers(exc)


def http_headers(exc: HTTPException) -> list[tuple[str, str]]:
    """The headers an HTTP error carries besides its body's type: a 405's ``Allow`` (which RFC 9110
    requires), a 416's ``Content-Range`` … kept when the body is rendered our way."""
    return [(name, value) for name, value in exc.get_headers() if name.lower() != "content-type"]


@api.errorhandler(EventsUnavailable)
@api.errorhandler(sa.exc.OperationalError)
@api.errorhandler(sa.exc.InterfaceError)
def _database_down(exc: Exception):  # type: ignore[no-untyped-def]
    # Nothing was committed; the client may retry the same batch (same ids) safely.
    if is_busy(exc):
        current_app.logger.warning("database busy, answered 503: %s %s: %s", request.method, request.path,
                                   str(getattr(exc, "orig", exc)).splitlines()[0])
        busy = Busy("busy: the database is locked by other writers; retry in a moment with the same event ids")
        return jsonify(error=busy.to_dict()), 503, {"Retry-After": "2"}
    current_app.logger.error("database unavailable, answered 503: %s %s: %s", request.method, request.path,
                             str(getattr(exc, "orig", exc)).splitlines()[0])
    error = Unavailable("the database is unavailable; retry later with the same event ids", field=None)
    return jsonify(error=error.to_dict()), 503, {"Retry-After": "5"}


def json_body() -> dict[str, Any]:
    """The request's JSON object, or a 4xx naming what is wrong with it."""
    if request.mimetype != "application/json":
        raise UnsupportedMediaType(f"send JSON with Content-Type: application/json, not {request.mimetype or 'nothing'}",
                                   field="Content-Type")
    try:
        text = request.get_data(cache=False).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"the body is not UTF-8 (byte {exc.start})", field="body") from exc
    try:
        body = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadRequest(f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}", field="body") from exc
    except RecursionError as exc:
        raise BadRequest("malformed JSON: nested too deeply", field="body") from exc
    except ValueError as exc:  # an integer of more than 4300 digits, which Python will not read
        raise BadRequest(f"malformed JSON: {str(exc).split(';')[0]}", field="body") from exc
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object", field="body")
    return body


def validated(model: type[BaseModel], body: dict[str, Any]) -> Any:
    try:
        return model.model_validate(body)
    except PydanticError as exc:
        field, message = explain(exc)
        raise ValidationError(message, field=field) from exc


def _session() -> Session:
    return Session(get_engine(), expire_on_commit=False)


@api.get("/config")
@token_required(public=True)
def config():  # type: ignore[no-untyped-def]
    """Running experiments and surveys as the snippet needs them: keys, seeds, weights, coverage,
    rules; each survey's pages, timing, share and questions."""
    with _session() as session:
        running = pipeline.list_all(session, status=["running"], kinds=snippet_kinds())
    settings = current_app.extensions["abtest.settings"]
    # Every snippet kind's section, empty ones too: the snippet reads them without checking.
    sections: dict[str, list[dict[str, Any]]] = {KINDS[k].config_section: [] for k in snippet_kinds()}
    for _row, d in running:
        kind = KINDS[d.kind]
        sections[kind.config_section].append(kind.config_entry(d, settings))
    response = jsonify(sections)
    response.headers["Cache-Control"] = "public, max-age=60"
    return response


def _snippet_definition(session: Session, key: str) -> tuple[Any, Any]:
    """The row and definition of a test the public routes may touch: of a snippet kind, and for a
    public key running; anything else answers exactly as an unknown key does (404, nothing stored)."""
    public = g.token_kind == "public"
    try:
        row, definition = pipeline.load(session, key)
        require_snippet_kind(row.kind, key)
    except NotFound:
        if not public:
            raise
        row = definition = None
    if public and (definition is None or definition.status != "running"):
        raise NotFound(f"no running experiment with key {key!r}", field="experiment")
    return row, definition


@api.post("/assign")
@token_required(public=True)
@public_limits
def assign_unit():  # type: ignore[no-untyped-def]
    """Assign one unit server-side and record its exposure (stored once per unit and variant)."""
    body: AssignRequest = validated(AssignRequest, json_body())
    with _session() as session:
        row, definition = _snippet_definition(session, body.experiment)
    result = KINDS[row.kind].assign(definition, body.unit, body.attributes,
                                    {body.experiment: body.force} if body.force else None)
    if body.record and result.variant is not None and definition.status == "running":
        now = datetime.now(UTC)
        with get_engine().begin() as conn:
            write_events(conn, [event_row(row.id, exposure_id(definition.key, result.variant, body.unit, result.forced),
                                          "exposure", body.unit, now, variant=result.variant, forced=result.forced,
                                          attributes=segment_attributes(body.attributes))])
    return jsonify(result.to_dict())


@api.post("/events")
@token_required(public=True)
@public_limits
def events():  # type: ignore[no-untyped-def]
    """Store a batch of up to 1000 events; duplicates (same id) count once; bad ones are listed."""
    batch: EventBatch = validated(EventBatch, json_body())
    statuses = ("running",) if g.token_kind == "public" else ("running", "stopped")
    result = ingest(get_engine(), batch.events, kinds=snippet_kinds(), statuses=statuses,
                    registry_version=g.get("registry_version"))
    return jsonify(result.to_dict()), 202


@api.get("/experiments")
@token_required()
def list_experiments():  # type: ignore[no-untyped-def]
    """Every test, of every kind (each says its ``kind``)."""
    with _session() as session:
        return jsonify(experiments=[pipeline.document(row, d) for row, d in pipeline.list_all(session)])


@api.post("/experiments")
@token_required()
def create_experiment():  # type: ignore[no-untyped-def]
    """Create a test of any kind (``kind``: experiment, the default, or study), as ``abtest sync``."""
    definition = parse_definition(resolve_images(json_body(), image_store()))
    with _session() as session:
        row = pipeline.create(session, definition, actor())
        session.commit()
        return jsonify(pipeline.document(row, definition)), 201


@api.get("/experiments/<key>")
@token_required()
def get_experiment(key: str):  # type: ignore[no-untyped-def]
    with _session() as session:
        return jsonify(pipeline.document(*pipeline.load(session, key)))


@api.get("/experiments/<key>/history")
@token_required()
def experiment_history(key: str):  # type: ignore[no-untyped-def]
    """Who created, edited, launched, stopped or archived the test, newest first."""
    with _session() as session:
        return jsonify(key=key, history=pipeline.history(session, key))


@api.patch("/experiments/<key>")
@token_required()
def patch_experiment(key: str):  # type: ignore[no-untyped-def]
    """Change some fields of a definition; the result is validated and checked as a whole."""
    changes = json_body()
    if "key" in changes and changes["key"] != key:
        raise ValidationError("the key of an experiment cannot change", field="key")
    with _session() as session:
        _row, current = pipeline.load(session, key)
        merged = {**KINDS[current.kind].document(current), **changes}
        row = pipeline.update(session, parse_definition(resolve_images(merged, image_store())), actor())
        session.commit()
        return jsonify(pipeline.document(row, pipeline.definition_of(session, row)))


def _transition(key: str, status: str):  # type: ignore[no-untyped-def]
    with _session() as session:
        row = pipeline.transition(session, key, status, actor())
        session.commit()
        return jsonify(pipeline.document(row, pipeline.definition_of(session, row)))


@api.post("/experiments/<key>/start")
@token_required()
def start_experiment(key: str):  # type: ignore[no-untyped-def]
    return _transition(key, "running")


@api.post("/experiments/<key>/stop")
@token_required()
def stop_experiment(key: str):  # type: ignore[no-untyped-def]
    return _transition(key, "stopped")


@api.post("/experiments/<key>/archive")
@token_required()
def archive_experiment(key: str):  # type: ignore[no-untyped-def]
    return _transition(key, "archived")


@api.get("/experiments/<key>/results")
@token_required()
def experiment_results(key: str):  # type: ignore[no-untyped-def]
    """The results document (DESIGN §4.5) of a test of any kind; ``?by=ATTR`` breaks it down."""
    return jsonify(pipeline.analyze(get_engine(), key, by=request.args.get("by") or None).to_dict())


@api.delete("/units/<path:unit>")
@token_required()
def forget_unit(unit: str):  # type: ignore[no-untyped-def]
    """Erase every stored row of one unit (GDPR Art. 17), in one test with ``?experiment=KEY``."""
    return jsonify(forget(get_engine(), unit, request.args.get("experiment"), actor()).to_dict())


@api.get("/openapi.json")
def openapi():  # type: ignore[no-untyped-def]
    from web.openapi import document

    return jsonify(document())
