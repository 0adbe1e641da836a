"""What a kind of test is (DESIGN §8): one class that knows its definitions' parse, update rule,
storage, analysis and document. The pipeline (:mod:`abtest.pipeline`) does the rest the same way
for every kind: one sync, one lifecycle, one load-or-404, one results route.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar

from pydantic import BaseModel
from sqlmodel import Session

from abtest.aggregates.base import AggregateSource, Request
from abtest.assignment import Assignment
from abtest.config import Settings
from abtest.definitions import Core
from abtest.models import Experiment
from abtest.report import Report
from abtest.store.registry import check_core_update


class Kind(ABC):
    name: ClassVar[str]
    noun: ClassVar[str]  # how pages and messages name one ("experiment", "usability study")
    variants_field: ClassVar[str]  # what its files call the variants ("variants", "designs")
    snippet: ClassVar[bool]  # reachable with a public key (config, assign, events): A/B experiments only
    schema: ClassVar[type[BaseModel]]  # the definition's shape, for the OpenAPI document

    @abstractmethod
    def parse(self, raw: Mapping[str, Any], source: str | None = None) -> Any:
        """A validated definition, or InvalidDefinition naming every bad field."""

    def check_update(self, old: Any, new: Any) -> None:
        """Every rule an edit of a stored definition must pass; the core's first."""
        check_core_update(old.core, new.core, self.variants_field, self.noun)

    @abstractmethod
    def store(self, session: Session, row: Experiment, definition: Any) -> None:
        """Write what only this kind has (the registry has written the core)."""

    @abstractmethod
    def load(self, session: Session, row: Experiment, core: Core) -> Any:
        """The stored definition around its core."""

    def load_many(self, session: Session, stored: Sequence[tuple[Experiment, Core]]) -> list[Any]:
        return [self.load(session, row, core) for row, core in stored]

    @abstractmethod
    def requests(self, definition: Any) -> list[Request]:
        """What its report needs from an aggregate source."""

    @abstractmethod
    def analyze(self, definition: Any, source: AggregateSource, now: datetime, by: str | None = None) -> Report:
        """The results document (pure: no SQL, only the source's aggregates)."""

    @abstractmethod
    def assign(self, definition: Any, unit: str, attributes: Mapping[str, object] | None = None,
               overrides: Mapping[str, str] | None = None) -> Assignment:
        """Which variant ``unit`` gets and why (records nothing)."""

    # Stored after the kinds with a lower number when synced together (a survey links to an experiment).
    sync_order: ClassVar[int] = 0
    # Where a running test of this kind appears in the snippet's config (``/api/v1/config``).
    config_section: ClassVar[str] = "experiments"

    def config_entry(self, definition: Any, settings: Settings) -> dict[str, Any]:
        """What the snippet needs of one running test (snippet kinds only), under this instance's settings."""
        raise NotImplementedError(f"{self.name} tests are not in the snippet's config")

    def document(self, definition: Any) -> dict[str, Any]:
        """The definition in its TOML/JSON shape, with its ``kind``."""
        return definition.to_dict()
