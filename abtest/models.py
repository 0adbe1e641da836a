"""Registry tables (SQLModel). Alembic migrations under ``abtest/migrations`` create them.

Configuration rows are read and written through SQLModel; events are written and aggregated
through SQLAlchemy Core (see ``abtest.store.events`` and ``abtest.aggregates``) because the ORM is 10-20x
slower for bulk inserts.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on the way in and out, also on SQLite (which stores no offset)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: abtest stores timezone-aware UTC only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def _ts(nullable: bool = False, **kw: Any) -> Any:
    return Field(sa_column=sa.Column(UTCDateTime(), nullable=nullable, **kw), **({} if nullable else {"default_factory": utcnow}))


# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT for the event table.
BigIntPK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class Experiment(SQLModel, table=True):
    __tablename__ = "experiments"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=64, sa_column_kwargs={"unique": True}, index=False)
    kind: str = Field(default="experiment", max_length=16)
    name: str = Field(max_length=200)
    hypothesis: str = Field(default="", sa_type=sa.Text)
    status: str = Field(default="draft", max_length=16)
    coverage: float = 1.0
    seed: str = Field(max_length=200)
    analysis: str = Field(default="sequential", max_length=16)
    alpha: float = 0.05
    cuped: bool = False
    namespace_name: str | None = Field(default=None, max_length=100)
    namespace_start: float | None = None
    namespace_end: float | None = None
    targeting: dict[str, list[str]] = Field(default_factory=dict, sa_type=sa.JSON)
    plan: dict[str, Any] | None = Field(default=None, sa_type=sa.JSON)
    created_at: datetime = _ts()
    updated_at: datetime = _ts()
    started_at: datetime | None = _ts(nullable=True)
    stopped_at: datetime | None = _ts(nullable=True)
    archived_at: datetime | None = _ts(nullable=True)


class Variant(SQLModel, table=True):
    __tablename__ = "variants"
    __table_args__ = (sa.UniqueConstraint("experiment_id", "key", name="uq_variants_experiment_key"),)

    id: int | None = Field(default=None, primary_key=True)
    experiment_id: int = Field(foreign_key="experiments.id", ondelete="CASCADE", index=True)
    position: int
    key: str = Field(max_length=64)
    weight: float
    name: str = Field(default="", max_length=200)
    description: str = Field(default="", sa_type=sa.Text)


class Metric(SQLModel, table=True):
    __tablename__ = "metrics"
    __table_args__ = (sa.UniqueConstraint("experiment_id", "name", name="uq_metrics_experiment_name"),)

    id: int | None = Field(default=None, primary_key=True)
    experiment_id: int = Field(foreign_key="experiments.id", ondelete="CASCADE", index=True)
    position: int
    name: str = Field(max_length=64)
    type: str = Field(max_length=16)
    params: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)  # the type's own (event, task, days…)
    primary: bool = False


class Event(SQLModel, table=True):
    """One exposure, conversion, task timing or questionnaire response.

    ``event_id`` is the client's id: its unique constraint is what makes retried batches safe.
    """

    __tablename__ = "events"
    __table_args__ = (
        sa.Index("ix_events_experiment_type_unit", "experiment_id", "type", "unit"),
    )

    id: int | None = Field(default=None, sa_column=sa.Column(BigIntPK, primary_key=True, autoincrement=True))
    event_id: str = Field(max_length=64, sa_column_kwargs={"unique": True})
    type: str = Field(max_length=16)
    experiment_id: int = Field(foreign_key="experiments.id", ondelete="CASCADE")
    variant: str | None = Field(default=None, max_length=64)
    unit: str = Field(max_length=200)
    event: str | None = Field(default=None, max_length=64)
    value: float | None = None
    task: str | None = Field(default=None, max_length=64)
    success: bool | None = None
    duration_ms: float | None = None
    questionnaire: str | None = Field(default=None, max_length=32)
    answers: list[Any] | None = Field(default=None, sa_type=sa.JSON)
    # Visitor attributes in canonical string form (abtest.attributes); an exposure's define segments.
    attributes: dict[str, str] | None = Field(default=None, sa_type=sa.JSON(none_as_null=True))
    forced: bool = False
    ts: datetime = _ts()
    received_at: datetime = _ts()


class ApiToken(SQLModel, table=True):
    """An API token; only its SHA-256 is stored (tokens are random, so a slow hash adds nothing)."""

    __tablename__ = "api_tokens"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(default="", max_length=100)
    kind: str = Field(max_length=8)  # secret | public
    prefix: str = Field(max_length=16)
    token_hash: str = Field(max_length=64, sa_column_kwargs={"unique": True})
    created_at: datetime = _ts()
    last_used_at: datetime | None = _ts(nullable=True)
    revoked_at: datetime | None = _ts(nullable=True)
    # Public keys only: the web origins allowed to use the key from a browser (CORS), each
    # normalised by abtest.origins; NULL means any origin.
    origins: list[str] | None = Field(default=None, sa_type=sa.JSON(none_as_null=True))


class User(SQLModel, table=True):
    __tablename__ = "users"

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=254, sa_column_kwargs={"unique": True})
    password_hash: str = Field(max_length=255)
    created_at: datetime = _ts()
    # Stored in every session cookie; logging out or a new password bumps it, so every cookie
    # issued before (a copied one too) stops working.
    session_version: int = Field(default=0, sa_column_kwargs={"server_default": "0"})


class LoginFailure(SQLModel, table=True):
    """One failed designer login, kept for the throttle's window (``abtest.login_throttle``).

    The account and the client address are stored as SHA-256 digests: the throttle only needs
    to count them, and a table of typed-in emails and addresses would be personal data to guard.
    """

    __tablename__ = "login_failures"
    __table_args__ = (sa.Index("ix_login_failures_account_at", "account", "at"),
                      sa.Index("ix_login_failures_address_at", "address", "at"))

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = _ts()
    account: str = Field(max_length=64)
    address: str = Field(max_length=64)


# --- Usability studies (abtest.studies): a study is an ``experiments`` row with kind="study" whose
# variants are its designs; these tables hold what only studies have.


class Study(SQLModel, table=True):
    """A study's settings beside its ``experiments`` row (one each)."""

    __tablename__ = "studies"
    __table_args__ = (sa.UniqueConstraint("experiment_id", name="uq_studies_experiment_id"),)

    id: int | None = Field(default=None, primary_key=True)
    experiment_id: int = Field(foreign_key="experiments.id", ondelete="CASCADE")
    within_subjects: bool = False
    questionnaires: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    comment: bool = False
    completion_code: str | None = Field(default=None, max_length=100)
    consent: str = Field(default="", sa_type=sa.Text)
    design_urls: dict[str, str] = Field(default_factory=dict, sa_type=sa.JSON)
    method: str = Field(default="usability", max_length=16)  # | tree-test | first-click
    seq: bool = True  # the SEQ after each task
    trees: dict[str, list[Any]] | None = Field(default=None, sa_type=sa.JSON)  # design → [[label, parent], …]


class Survey(SQLModel, table=True):
    """A survey's settings beside its ``experiments`` row (one each); see abtest.surveys."""

    __tablename__ = "surveys"
    __table_args__ = (sa.UniqueConstraint("experiment_id", name="uq_surveys_experiment_id"),)

    id: int | None = Field(default=None, primary_key=True)
    experiment_id: int = Field(foreign_key="experiments.id", ondelete="CASCADE")
    linked_key: str | None = Field(default=None, max_length=64)  # the A/B experiment whose variants answers carry
    pages: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    show: str = Field(default="delay", max_length=16)
    delay: int = 5
    event: str | None = Field(default=None, max_length=64)
    share: float = 1.0
    title: str = Field(default="", max_length=100)
    questions: list[dict[str, Any]] = Field(default_factory=list, sa_type=sa.JSON)


class StudyTask(SQLModel, table=True):
    __tablename__ = "study_tasks"
    __table_args__ = (sa.UniqueConstraint("experiment_id", "key", name="uq_study_tasks_experiment_key"),)

    id: int | None = Field(default=None, primary_key=True)
    experiment_id: int = Field(foreign_key="experiments.id", ondelete="CASCADE", index=True)
    position: int
    key: str = Field(max_length=64)
    prompt: str = Field(sa_type=sa.Text)
    start_url: str | None = Field(default=None, max_length=2000)
    success_url: str | None = Field(default=None, max_length=2000)  # None: the participant's own report
    time_limit: int | None = None  # seconds
    correct: dict[str, list[int]] | None = Field(default=None, sa_type=sa.JSON)  # tree test: design → nodes
    screens: dict[str, Any] | None = Field(default=None, sa_type=sa.JSON)  # first click: design → screen


class StudyParticipant(SQLModel, table=True):
    """One participant's place in a study: a reload resumes from ``step``/``phase``."""

    __tablename__ = "study_participants"
    __table_args__ = (
        sa.UniqueConstraint("experiment_id", "pid", name="uq_study_participants_experiment_pid"),
        sa.UniqueConstraint("experiment_id", "number", name="uq_study_participants_experiment_number"),
    )

    id: int | None = Field(default=None, primary_key=True)
    experiment_id: int = Field(foreign_key="experiments.id", ondelete="CASCADE")
    pid: str = Field(max_length=200)
    number: int  # arrival order: the row of the Latin square for within-subjects studies
    designs: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    step: int = 0
    phase: str = Field(default="ready", max_length=16)  # ready | running | seq
    task_started_at: datetime | None = _ts(nullable=True)
    started_at: datetime = _ts()
    updated_at: datetime = _ts()
    finished_at: datetime | None = _ts(nullable=True)
    abandoned_at: datetime | None = _ts(nullable=True)
    # Tree test: the nodes opened in the running task so far, as [node, ms since its start].
    trail: list[Any] | None = Field(default=None, sa_type=sa.JSON)


# --- Per-unit rollups (abtest.aggregates.rollup): what each exposed unit did, kept fresh from the events so a
# report reads one row per unit instead of scanning every event. Derived data: rebuilt at will.


class RollupUnit(SQLModel, table=True):
    """One exposed unit of one experiment: its variant(s), whether it was forced, when it first saw one."""

    __tablename__ = "rollup_units"

    # No foreign key (migration 0011): PostgreSQL checks one row by row, which cost a build more
    # than writing the rows; the events these rows come from carry the key.
    experiment_id: int = Field(primary_key=True)
    unit: str = Field(max_length=200, primary_key=True)
    # min and max exposure variant: equal for a clean unit; None when no exposure names one
    variant_lo: str | None = Field(default=None, max_length=64)
    variant_hi: str | None = Field(default=None, max_length=64)
    forced: int = 0  # forced exposures (QA overrides)
    first_ts: datetime = _ts()
    first_day: str = Field(max_length=10)  # UTC day of first_ts, YYYY-MM-DD (the daily series)
    # The first exposure's attributes; JSONB on PostgreSQL, where a breakdown reads one per unit.
    attributes: dict[str, str] | None = Field(default=None, sa_type=sa.JSON(none_as_null=True).with_variant(
        postgresql.JSONB(none_as_null=True), "postgresql"))


class RollupMeasure(SQLModel, table=True):
    """What one analysable unit did for one measure: an event name (conversions and values), a
    task (times) or a retention horizon in days. Only units with something to count have a row;
    each carries its unit's variant and start, so a report aggregates this table without a join."""

    __tablename__ = "rollup_measures"

    experiment_id: int = Field(primary_key=True)  # no foreign key, as in rollup_units
    kind: str = Field(max_length=16, primary_key=True)  # event | task | retention
    name: str = Field(max_length=64, primary_key=True)
    unit: str = Field(max_length=200, primary_key=True)
    variant: str = Field(max_length=64)
    first_ts: datetime = _ts()  # the unit's first exposure
    first_day: str = Field(max_length=10)
    k: int = 0  # events at or after first exposure (retention: 1 when the unit came back)
    k_pre: int = 0  # events before it: counted in no metric, reported as left out
    post: float = 0.0  # sum of values at or after first exposure
    pre: float = 0.0  # sum of values before it (CUPED's covariate)
    converted_day: str | None = Field(default=None, max_length=10)  # UTC day of the first event after exposure
    log_n: int = 0  # successful timed attempts after first exposure
    log_sum: float = 0.0  # sum of their log times (seconds)


class RollupDirty(SQLModel, table=True):
    """Units whose events changed since their rollup rows were computed.

    Written by a database trigger on ``events`` in the inserting transaction, so no writer can
    forget it; ``version`` rises with every insert, so a refresh deletes only the marks it saw.
    """

    __tablename__ = "rollup_dirty"

    experiment_id: int = Field(foreign_key="experiments.id", ondelete="CASCADE", primary_key=True)
    unit: str = Field(max_length=200, primary_key=True)
    version: int = 1


class RollupState(SQLModel, table=True):
    """Which measures an experiment's rollups hold (metrics changed: the new ones are built)."""

    __tablename__ = "rollup_state"

    experiment_id: int = Field(foreign_key="experiments.id", ondelete="CASCADE", primary_key=True)
    fingerprint: str = Field(default="", sa_type=sa.Text)
    units: int = 0  # rollup_units rows, kept by each refresh (sizes the next one without a count)
    refreshed_at: datetime = _ts()


class AuditEntry(SQLModel, table=True):
    """Who changed a test, what and when: created, edited (with each changed field's before and
    after), launched, stopped, archived. A designer who swaps what a test measures leaves a trace."""

    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    experiment_id: int = Field(foreign_key="experiments.id", ondelete="CASCADE", index=True)
    at: datetime = _ts()
    actor: str = Field(default="", max_length=200)  # a designer's email, "API token sk_ab12…", "abtest sync"
    action: str = Field(max_length=16)  # create | update | running | stopped | archived
    changes: dict[str, Any] | None = Field(default=None, sa_type=sa.JSON(none_as_null=True))
