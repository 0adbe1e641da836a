"""The JSON API under ``/api/v1`` (DESIGN §4.4). Every error is ``{"error": {code, message, field}}``.

Request bodies are validated by the same pydantic models that ``/api/v1/openapi.json`` publishes;
experiment definitions go through ``abtest.definitions.parse_definition`` exactly as ``abtest sync``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

import sqlalchemy as sa
from flask import Blueprint, g, jsonify, request
from pydantic import BaseModel, Field
from pydantic import ValidationError as PydanticError
from sqlmodel import Session, col, select
from werkzeug.exceptions import HTTPException

from abtest import registry
from abtest.assignment import assign
from abtest.definitions import DefinitionDocument, ExperimentDef, InvalidDefinition, parse_definition
from abtest.errors import (
    AbtestError, BadRequest, NotFound, Unavailable, UnsupportedMediaType, ValidationError,
)
from abtest.ingest import EventBatch, StrictBody, explain, exposure_id, ingest, insert_events
from abtest.models import Experiment
from web import get_engine
from web.auth import token_required

api = Blueprint("api", __name__, url_prefix="/api/v1")

Attribute = str | int | bool | list[str | int | bool]


class AssignRequest(StrictBody):
    experiment: Annotated[str, Field(min_length=1, max_length=64)]
    unit: Annotated[str, Field(min_length=1, max_length=200)]
    attributes: dict[str, Attribute] = Field(default_factory=dict, description="targeting attributes")
    force: str | None = Field(default=None, description="QA override: force this variant (excluded from analysis)")
    record: bool = Field(default=True, description="record the exposure (once per unit and variant)")


class AssignResponse(BaseModel):
    experiment: str
    variant: str | None
    in_experiment: bool
    reason: str
    detail: str
    bucket: float | None
    forced: bool


class ConfigVariant(BaseModel):
    key: str
    weight: float


class ConfigNamespace(BaseModel):
    name: str
    range: tuple[float, float]


class ConfigExperiment(BaseModel):
    key: str
    seed: str
    coverage: float
    variants: list[ConfigVariant]
    namespace: ConfigNamespace | None = None
    targeting: dict[str, list[str]] | None = None


class ConfigResponse(BaseModel):
    experiments: list[ConfigExperiment]


class IngestRejection(BaseModel):
    index: int
    error: dict[str, str | None]


class IngestResponse(BaseModel):
    accepted: int
    duplicates: int
    rejected: list[IngestRejection]


class ExperimentDocument(DefinitionDocument):
    """A stored experiment: its definition plus lifecycle timestamps (ISO 8601, UTC)."""

    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    stopped_at: datetime | None
    archived_at: datetime | None


class ExperimentList(BaseModel):
    experiments: list[ExperimentDocument]


class ErrorDetail(BaseModel):
    code: str
    message: str
    field: str | None


class ErrorResponse(BaseModel):
    error: ErrorDetail


@api.errorhandler(AbtestError)
def _domain_error(exc: AbtestError):  # type: ignore[no-untyped-def]
    body: dict[str, Any] = {"error": exc.to_dict()}
    if isinstance(exc, InvalidDefinition):
        body["errors"] = [e.to_dict() for e in exc.errors]
    return jsonify(body), exc.status


def http_error(exc: HTTPException):  # type: ignore[no-untyped-def]
    """404, 405, 413 … as JSON under /api/ (called by the app's handler: routing errors bypass blueprints)."""
    code = (exc.name or "error").lower().replace(" ", "_")
    return jsonify(error={"code": code, "message": exc.description, "field": None}), exc.code


@api.errorhandler(sa.exc.OperationalError)
@api.errorhandler(sa.exc.InterfaceError)
def _database_down(exc: Exception):  # type: ignore[no-untyped-def]
    # Nothing was committed; the client may retry the same batch (same ids) safely.
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


def _config_entry(d: ExperimentDef) -> dict[str, Any]:
    entry: dict[str, Any] = {"key": d.key, "seed": d.seed, "coverage": d.coverage,
                             "variants": [{"key": v.key, "weight": v.weight} for v in d.variants]}
    if d.namespace is not None:
        entry["namespace"] = {"name": d.namespace.name, "range": [d.namespace.start, d.namespace.end]}
    if d.targeting:
        entry["targeting"] = {k: list(v) for k, v in d.targeting.items()}
    return entry


@api.get("/config")
@token_required(public=True)
def config():  # type: ignore[no-untyped-def]
    """Running experiments as the snippet needs them: keys, seeds, weights, coverage, rules."""
    with _session() as session:
        running = registry.list_definitions(session, status=["running"])
    # Studies assign their participants in the runner (/s/<key>), never through the snippet.
    response = jsonify(experiments=[_config_entry(d) for d in running if d.kind == "experiment"])
    response.headers["Cache-Control"] = "public, max-age=60"
    return response


@api.post("/assign")
@token_required(public=True)
def assign_unit():  # type: ignore[no-untyped-def]
    """Assign one unit server-side and record its exposure (stored once per unit and variant)."""
    body: AssignRequest = validated(AssignRequest, json_body())
    with _session() as session:
        row = registry.get_row(session, body.experiment)
        definition = registry.load(session, row)
    if g.token_kind == "public" and definition.status != "running":
        raise NotFound(f"no running experiment with key {body.experiment!r}", field="experiment")
    result = assign(definition, body.unit, body.attributes, {body.experiment: body.force} if body.force else None)
    if body.record and result.variant is not None and definition.status == "running":
        now = datetime.now(UTC)
        with get_engine().begin() as conn:
            insert_events(conn, [{
                "event_id": exposure_id(definition.key, result.variant, body.unit, result.forced), "type": "exposure",
                "experiment_id": row.id, "variant": result.variant, "unit": body.unit, "event": None, "value": None,
                "task": None, "success": None, "duration_ms": None, "questionnaire": None, "answers": None,
                "forced": result.forced, "ts": now, "received_at": now,
            }])
    return jsonify(result.to_dict())


@api.post("/events")
@token_required(public=True)
def events():  # type: ignore[no-untyped-def]
    """Store a batch of up to 1000 events; duplicates (same id) count once; bad ones are listed."""
    batch: EventBatch = validated(EventBatch, json_body())
    statuses = ("running",) if g.token_kind == "public" else ("running", "stopped")
    result = ingest(get_engine(), batch.events, statuses=statuses)
    return jsonify(result.to_dict()), 202


def _refuse_study(kind: str) -> None:
    """Studies keep tasks and questionnaires the experiment API does not carry: they are defined in
    the study form or in TOML loaded with ``abtest sync``, so the API cannot half-store or flatten one."""
    if kind == "study":
        raise ValidationError("usability studies are defined in the study form (/studies/new) or as TOML files "
                              "loaded with `abtest sync`; "
                              "this API creates and edits A/B experiments", field="kind")


def _experiment_document(session: Session, row: Experiment) -> dict[str, Any]:
    document = registry.load(session, row).to_dict()
    for stamp in ("created_at", "updated_at", "started_at", "stopped_at", "archived_at"):
        value = getattr(row, stamp)
        document[stamp] = value.isoformat() if value else None
    return document


@api.get("/experiments")
@token_required()
def list_experiments():  # type: ignore[no-untyped-def]
    with _session() as session:
        rows = session.exec(select(Experiment).order_by(col(Experiment.id))).all()
        return jsonify(experiments=[_experiment_document(session, row) for row in rows])


@api.post("/experiments")
@token_required()
def create_experiment():  # type: ignore[no-untyped-def]
    definition = parse_definition(json_body())
    _refuse_study(definition.kind)
    with _session() as session:
        row = registry.create(session, definition)
        session.commit()
        return jsonify(_experiment_document(session, row)), 201


@api.get("/experiments/<key>")
@token_required()
def get_experiment(key: str):  # type: ignore[no-untyped-def]
    with _session() as session:
        return jsonify(_experiment_document(session, registry.get_row(session, key)))


@api.patch("/experiments/<key>")
@token_required()
def patch_experiment(key: str):  # type: ignore[no-untyped-def]
    """Change some fields of a definition; the result is validated and checked as a whole."""
    changes = json_body()
    if "key" in changes and changes["key"] != key:
        raise ValidationError("the key of an experiment cannot change", field="key")
    with _session() as session:
        current = registry.get(session, key)
        _refuse_study(current.kind)
        row = registry.update(session, parse_definition({**current.to_dict(), **changes}))
        session.commit()
        return jsonify(_experiment_document(session, row))


def _transition(key: str, status: str):  # type: ignore[no-untyped-def]
    with _session() as session:
        row = registry.transition(session, key, status)
        session.commit()
        return jsonify(_experiment_document(session, row))


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
    """The results document (DESIGN §4.5), computed from the database now."""
    from abtest.analysis import analyze

    return jsonify(analyze(get_engine(), key).to_dict())


@api.get("/openapi.json")
def openapi():  # type: ignore[no-untyped-def]
    from web.openapi import document

    return jsonify(document())
