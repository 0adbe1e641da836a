"""The API's request and response shapes (pydantic), shared by the routes that validate with them
and the OpenAPI document that publishes them, so the two cannot drift apart."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field, field_validator

from abtest.attributes import BadAttribute, clean_attributes
from abtest.ingest import FieldProblem, StrictBody


class AssignRequest(StrictBody):
    experiment: Annotated[str, Field(min_length=1, max_length=64)]
    unit: Annotated[str, Field(min_length=1, max_length=200)]
    attributes: dict[str, Any] = Field(default_factory=dict, description=(
        "visitor attributes for targeting (a list gives several values) and, single-valued, the "
        "unit's segments (≤ 20; values ≤ 200 characters)"))
    force: str | None = Field(default=None, description="QA override: force this variant (excluded from analysis)")
    record: bool = Field(default=True, description="record the exposure (once per unit and variant)")

    @field_validator("attributes", mode="before")
    @classmethod
    def _attributes(cls, value: Any) -> Any:
        try:
            return clean_attributes(value, allow_lists=True)
        except BadAttribute as exc:
            raise FieldProblem(exc.field, exc.message) from None


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
    before_exposure: list[int] = Field(
        default_factory=list, description="indices of stored conversions stamped before their unit's first "
        "exposure: kept, but no metric counts them")


class ErrorDetail(BaseModel):
    code: str
    message: str
    field: str | None


class ErrorResponse(BaseModel):
    error: ErrorDetail
