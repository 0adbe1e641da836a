"""The API described as OpenAPI 3.1, generated from the pydantic models that validate requests."""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic.json_schema import models_json_schema

import abtest
from abtest.definitions import DefinitionDocument
from abtest.ingest import EventBatch, EventIn
from web.api import (
    AssignRequest, AssignResponse, ConfigResponse, ErrorResponse, ExperimentDocument, ExperimentList, IngestResponse,
)

_REF = "#/components/schemas/{model}"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF.format(model=name)}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    text = {400: "malformed request", 401: "missing or unknown token", 403: "token lacks the scope",
            404: "no such experiment", 409: "refused by the lifecycle rules", 413: "body too large",
            415: "not JSON", 422: "invalid field", 503: "database unavailable; retry"}
    return {str(c): {"description": text[c], **_json(_ref("ErrorResponse"))} for c in codes}


@cache
def document() -> dict[str, Any]:
    _, schemas = models_json_schema(
        [(m, "validation") for m in (AssignRequest, EventBatch, EventIn, DefinitionDocument)]
        + [(m, "serialization") for m in (AssignResponse, ConfigResponse, IngestResponse, ErrorResponse,
                                          ExperimentDocument, ExperimentList)],
        ref_template=_REF,
    )
    public = [{"bearer": []}, {"publicKey": []}]
    secret = [{"bearer": []}]
    key_param = {"name": "key", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{1,63}$"}}
    definition_doc = _json(_ref("DefinitionDocument"))
    experiment_doc = _json(_ref("ExperimentDocument"))

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
        "/api/v1/experiments": {
            "get": {"summary": "All experiments", "security": secret,
                    "responses": {"200": {"description": "experiments", **_json(_ref("ExperimentList"))},
                                  **_errors(401, 403)}},
            "post": {"summary": "Create an experiment (same rules as abtest sync)", "security": secret,
                     "requestBody": {"required": True, **definition_doc},
                     "responses": {"201": {"description": "created", **experiment_doc},
                                   **_errors(400, 401, 403, 409, 415, 422)}}},
        "/api/v1/experiments/{key}": {
            "get": {"summary": "One experiment", "security": secret, "parameters": [key_param],
                    "responses": {"200": {"description": "the experiment", **experiment_doc}, **_errors(401, 403, 404)}},
            "patch": {"summary": "Change some fields; the lifecycle and frozen-split rules apply", "security": secret,
                      "parameters": [key_param],
                      "requestBody": {"required": True, **_json({"type": "object", "description":
                                                                 "any fields of DefinitionDocument"})},
                      "responses": {"200": {"description": "the experiment", **experiment_doc},
                                    **_errors(400, 401, 403, 404, 409, 415, 422)}}},
        "/api/v1/experiments/{key}/results": {"get": {
            "summary": "The results document: effects, intervals, tests, sample ratio, verdict", "security": secret,
            "parameters": [key_param],
            "responses": {"200": {"description": "results (DESIGN §4.5)", **_json({"type": "object"})},
                          **_errors(401, 403, 404)}}},
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
            "schemas": schemas["$defs"],
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "sk_… (admin) or pk_… (public)"},
                "publicKey": {"type": "apiKey", "in": "query", "name": "key", "description": "pk_… only"},
            },
        },
    }
