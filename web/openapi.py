"""The API described as OpenAPI 3.1, generated from the pydantic models that validate requests
and from each kind's definition schema (:data:`abtest.kinds.KINDS`)."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any

from pydantic import create_model
from pydantic.json_schema import models_json_schema

import abtest
from abtest.ingest import EventBatch, EventIn
from abtest.kinds import KINDS
from web.api_models import AssignRequest, AssignResponse, ConfigResponse, ErrorResponse, IngestResponse

STAMPS = ("created_at", "updated_at", "started_at", "stopped_at", "archived_at")

_REF = "#/components/schemas/{model}"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF.format(model=name)}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    text = {400: "malformed request", 401: "missing or unknown token", 403: "token lacks the scope",
            404: "no such experiment", 409: "refused by the lifecycle rules", 413: "body too large",
            415: "not JSON", 422: "invalid field", 503: "database unavailable or busy; retry"}
    return {str(c): {"description": text[c], **_json(_ref("ErrorResponse"))} for c in codes}


@cache
def document() -> dict[str, Any]:
    kind_schemas = [kind.schema for kind in KINDS.values()]
    stored = [create_model(f"Stored{m.__name__}", __base__=m, __doc__=f"{m.__doc__} Stored, with its lifecycle "
                           "timestamps (ISO 8601, UTC).", **{s: (datetime | None, ...) for s in STAMPS})
              for m in kind_schemas]
    _, schemas = models_json_schema(
        [(m, "validation") for m in (AssignRequest, EventBatch, EventIn, *kind_schemas)]
        + [(m, "serialization") for m in (AssignResponse, ConfigResponse, IngestResponse, ErrorResponse, *stored)],
        ref_template=_REF,
    )
    definitions = schemas["$defs"]

    def one_of(models: list[Any]) -> dict[str, Any]:
        """A definition of any kind, told apart by its ``kind``."""
        return {"oneOf": [_ref(m.__name__) for m in models],
                "discriminator": {"propertyName": "kind", "mapping": {
                    name: _REF.format(model=m.__name__) for name, m in zip(KINDS, models, strict=True)}}}

    definitions["Definition"] = one_of(kind_schemas)
    definitions["StoredDefinition"] = one_of(stored)
    definitions["DefinitionList"] = {"type": "object", "required": ["experiments"],
                                     "properties": {"experiments": {"type": "array", "items": _ref("StoredDefinition")}}}
    public = [{"bearer": []}, {"publicKey": []}]
    secret = [{"bearer": []}]
    key_param = {"name": "key", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{1,63}$"}}
    definition_doc = _json(_ref("Definition"))
    experiment_doc = _json(_ref("StoredDefinition"))

    def lifecycle(action: str) -> dict[str, Any]:
        return {"post": {"summary": f"{action} the experiment", "security": secret, "parameters": [key_param],
                         "responses": {"200": {"description": "the experiment", **experiment_doc},
                                       **_errors(401, 403, 404, 409)}}}

    paths: dict[str, Any] = {
        "/api/v1/config": {"get": {
            "summary": "Running experiments as the snippet needs them", "security": public,
            "responses": {"200": {"description": "running experiments", **_json(_ref("ConfigResponse"))},
                          **_errors(401)}}},
        "/api/v1/assign": {"post": {
            "summary": "Assign a unit server-side (records the exposure unless record=false)", "security": public,
            "requestBody": {"required": True, **_json(_ref("AssignRequest"))},
            "responses": {"200": {"description": "the assignment", **_json(_ref("AssignResponse"))},
                          **_errors(400, 401, 404, 413, 415, 422, 503)}}},
        "/api/v1/events": {"post": {
            "summary": "Store up to 1000 events idempotently (by event id)", "security": public,
            "requestBody": {"required": True, **_json(_ref("EventBatch"))},
            "responses": {"202": {"description": "stored; duplicates and rejections counted",
                                  **_json(_ref("IngestResponse"))},
                          **_errors(400, 401, 413, 415, 422, 503)}}},
        "/api/v1/images": {"post": {
            "summary": "Store a PNG or JPEG screen for a first-click test (≤ 5 MB, ≤ 8000 px a side); a study's "
                       "screens name it by the answered image", "security": secret,
            "requestBody": {"required": True, "content": {
                "multipart/form-data": {"schema": {"type": "object",
                                                   "properties": {"file": {"type": "string", "format": "binary"}}}},
                "image/png": {"schema": {"type": "string", "format": "binary"}},
                "image/jpeg": {"schema": {"type": "string", "format": "binary"}}}},
            "responses": {"201": {"description": "stored", **_json({"type": "object", "properties": {
                "image": {"type": "string"}, "width": {"type": "integer"}, "height": {"type": "integer"},
                "url": {"type": "string"}}})}, **_errors(400, 401, 403, 413)}}},
        "/api/v1/experiments": {
            "get": {"summary": "All experiments", "security": secret,
                    "responses": {"200": {"description": "experiments and studies", **_json(_ref("DefinitionList"))},
                                  **_errors(401, 403)}},
            "post": {"summary": "Create an experiment or a study (same rules as abtest sync)", "security": secret,
                     "requestBody": {"required": True, **definition_doc},
                     "responses": {"201": {"description": "created", **experiment_doc},
                                   **_errors(400, 401, 403, 409, 415, 422)}}},
        "/api/v1/experiments/{key}": {
            "get": {"summary": "One experiment", "security": secret, "parameters": [key_param],
                    "responses": {"200": {"description": "the experiment", **experiment_doc}, **_errors(401, 403, 404)}},
            "patch": {"summary": "Change some fields; the lifecycle and frozen-split rules apply", "security": secret,
                      "parameters": [key_param],
                      "requestBody": {"required": True, **_json({"type": "object", "description":
                                                                 "any fields of the stored kind's Definition"})},
                      "responses": {"200": {"description": "the experiment", **experiment_doc},
                                    **_errors(400, 401, 403, 404, 409, 415, 422)}}},
        "/api/v1/experiments/{key}/results": {"get": {
            "summary": "The results document: effects, intervals, tests, sample ratio, verdict", "security": secret,
            "parameters": [key_param, {"name": "by", "in": "query", "required": False,
                                       "description": "break every metric down by this attribute (exploratory)",
                                       "schema": {"type": "string"}}],
            "responses": {"200": {"description": "results (DESIGN §4.5)", **_json({"type": "object"})},
                          **_errors(401, 403, 404)}}},
        "/api/v1/experiments/{key}/history": {"get": {
            "summary": "The audit log: who created, edited (each changed field's before and after), launched, "
                       "stopped or archived the test, newest first", "security": secret, "parameters": [key_param],
            "responses": {"200": {"description": "history", **_json({"type": "object", "properties": {
                "key": {"type": "string"}, "history": {"type": "array", "items": {"type": "object", "properties": {
                    "at": {"type": "string", "format": "date-time"}, "actor": {"type": "string"},
                    "action": {"type": "string", "enum": ["create", "update", "running", "stopped", "archived", "erase"]},
                    "changes": {"type": "object"}}}}}})},
                          **_errors(401, 403, 404)}}},
        "/api/v1/units/{unit}": {"delete": {
            "summary": "Erase every event, study progress and rollup row of one unit (GDPR Art. 17), in one "
                       "transaction; the audit log of each test touched records it without the unit id",
            "security": secret,
            "parameters": [{"name": "unit", "in": "path", "required": True,
                            "schema": {"type": "string", "minLength": 1, "maxLength": 200}},
                           {"name": "experiment", "in": "query", "required": False,
                            "description": "only in this test (default: in every test)", "schema": {"type": "string"}}],
            "responses": {"200": {"description": "rows deleted per table, in all and per test", **_json({
                "type": "object", "required": ["deleted", "experiments"], "properties": {
                    "deleted": {"type": "object", "additionalProperties": {"type": "integer"}},
                    "experiments": {"type": "object", "additionalProperties": {
                        "type": "object", "additionalProperties": {"type": "integer"}}}}})},
                          **_errors(401, 403, 404, 422, 503)}}},
        "/api/v1/experiments/{key}/start": lifecycle("Start"),
        "/api/v1/experiments/{key}/stop": lifecycle("Stop"),
        "/api/v1/experiments/{key}/archive": lifecycle("Archive"),
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "abtest API", "version": abtest.__version__,
                 "description": "Experiments, assignment and event collection. Errors are "
                                "{\"error\": {\"code\", \"message\", \"field\"}}."},
        "paths": paths,
        "components": {
            "schemas": definitions,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "sk_… (admin) or pk_… (public)"},
                "publicKey": {"type": "apiKey", "in": "query", "name": "key", "description": "pk_… only"},
            },
        },
    }
