"""SQLModel tables for the whole domain (DESIGN §6).

Clinical rows (DoseLog, SymptomReport, LabResult, DoseDecision, Screening) are append-only:
a correction is a new row whose `supersedes_id` names the row it replaces. `db.py` refuses
UPDATE and DELETE of these tables, and of AuditEvent, at flush time.
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Column, Index, LargeBinary, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from diary.sqltypes import UTCDateTime, utc_now

COHORTS = ("primary", "secondary")
ROLES = ("nurse", "investigator", "admin")
LANGUAGES = ("zh", "en")
PARTICIPANT_STATUSES = ("active", "withdrawn", "completed")
DOSE_OUTCOMES = ("taken", "not_taken", "retracted")
SOURCES = ("participant", "staff", "sms")
# Whether a dose was taken on an empty stomach (issue 10, item 11); None: the participant did not say.
FASTING = ("yes", "no", "unsure")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def instant(**kw: Any) -> Any:
    """A timezone-aware UTC instant column."""
    return Field(sa_type=UTCDateTime, **kw)


def created_at() -> Any:
    return Field(default_factory=utc_now, sa_type=UTCDateTime, nullable=False)


class Site(SQLModel, table=True):
    # A site sets both ends of its quiet hours or neither (then the study's apply).
    __table_args__ = (CheckConstraint("(quiet_start IS NULL) = (quiet_end IS NULL)", name="ck_site_quiet_pair"),)

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=32, unique=True)
    name: str = Field(max_length=200)
    timezone: str = Field(max_length=64, default="Asia/Shanghai")
    # The number participants call (shown as tap-to-call) and the on-call number that
    # receives danger alerts: institutional numbers, not personal data.
    phone: str = Field(max_length=32)
    on_call_phone: str | None = Field(default=None, max_length=32)
    # The local emergency number, shown first for stroke, chest-pain and breathing signs and with
    # every danger answer (120: medical emergency in mainland China; CLINICAL-NOTES "Emergency number").
    emergency_phone: str = Field(default="120", max_length=16, sa_column_kwargs={"server_default": "120"})
    # The platelet lower limit of normal (×10⁹/L) of the site's laboratory, for CTCAE grade 1 (< LLN).
    # None: the study default (study.toml plt_lln, the WS/T 405-2012 adult lower limit 125).
    plt_lln: float | None = Field(default=None, gt=0)
    # Local hours in which no participant message is sent, in each participant's zone; equal
    # times switch them off. None: the study's (study.toml [reminders] quiet_start–quiet_end).
    # Read through study.quiet_window; staff alerts ignore them.
    quiet_start: time | None = Field(default=None)
    quiet_end: time | None = Field(default=None)
    created_at: datetime = created_at()


class StaffUser(SQLModel, table=True):
    __table_args__ = (CheckConstraint(_in("role", ROLES), name="ck_staffuser_role"),)

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=254, unique=True)
    name: str = Field(max_length=200)
    role: str = Field(max_length=16)
    password_hash: str = Field(max_length=255)
    # Encrypted TOTP secret (Fernet); None until the second factor is enrolled.
    totp_secret_enc: str | None = Field(default=None, max_length=255)
    # The last accepted TOTP time step: a code seen once cannot be replayed.
    totp_last_step: int | None = None
    is_active: bool = Field(default=True)
    failed_logins: int = Field(default=0)
    locked_until: datetime | None = instant(default=None)
    # Bumped on password change or deactivation so that every open session ends.
    auth_version: int = Field(default=1)
    # Set by an admin (new account, reset): the next sign-in must choose a new password first.
    must_change_password: bool = Field(default=False, sa_column_kwargs={"server_default": text("false")})
    created_at: datetime = created_at()


class StaffSite(SQLModel, table=True):
    """Which sites a staff member works at. Admins see every site."""

    staff_id: int = Field(foreign_key="staffuser.id", primary_key=True)
    site_id: int = Field(foreign_key="site.id", primary_key=True)


class Screening(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    site_id: int = Field(foreign_key="site.id", index=True)
    screening_number: str = Field(max_length=32)
    cohort: str = Field(max_length=16)
    screened_on: date
    answers: dict = Field(default_factory=dict, sa_type=JSON)
    eligible: bool
    failed_criteria: list = Field(default_factory=list, sa_type=JSON)
    signed_by: int = Field(foreign_key="staffuser.id")
    signed_at: datetime = created_at()
    supersedes_id: int | None = Field(default=None, foreign_key="screening.id", unique=True)

    __table_args__ = (CheckConstraint(_in("cohort", COHORTS), name="ck_screening_cohort"),)


class Participant(SQLModel, table=True):
    __table_args__ = (
        CheckConstraint(_in("cohort", COHORTS), name="ck_participant_cohort"),
        CheckConstraint(_in("language", LANGUAGES), name="ck_participant_language"),
        CheckConstraint(_in("status", PARTICIPANT_STATUSES), name="ck_participant_status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    study_number: str = Field(max_length=32, unique=True)
    site_id: int = Field(foreign_key="site.id", index=True)
    screening_id: int | None = Field(default=None, foreign_key="screening.id")
    cohort: str = Field(max_length=16)
    language: str = Field(max_length=8, default="zh")
    timezone: str = Field(max_length=64, default="Asia/Shanghai")
    reminder_time: str = Field(max_length=5, default="08:00")  # local HH:MM
    sms_opt_in: bool = Field(default=True)
    status: str = Field(max_length=16, default="active")
    # The phone number is personal data: stored encrypted, looked up by a keyed hash (DESIGN §6).
    phone_enc: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    phone_hash: str = Field(max_length=64, unique=True)
    pin_hash: str | None = Field(default=None, max_length=255)
    failed_pins: int = Field(default=0)
    locked_until: datetime | None = instant(default=None)
    auth_version: int = Field(default=1)
    enrolled_by: int = Field(foreign_key="staffuser.id")
    enrolled_at: datetime = created_at()
    # Set when status leaves "active" (withdrawn or completed): who, when and why.
    ended_at: datetime | None = instant(default=None)
    ended_by: int | None = Field(default=None, foreign_key="staffuser.id")
    end_reason: str | None = Field(default=None, max_length=500)
    # Someone the study team may call (many older participants rely on a family member). The
    # phone is personal data, encrypted like the participant's; no look-up hash is needed.
    emergency_name: str | None = Field(default=None, max_length=200)
    emergency_relation: str | None = Field(default=None, max_length=64)
    emergency_phone_enc: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))


class AccessCode(SQLModel, table=True):
    """A one-time activation link or PIN-reset code. Only its hash is stored."""

    __table_args__ = (
        CheckConstraint(_in("purpose", ("activation", "pin_reset")), name="ck_accesscode_purpose"),
    )

    id: int | None = Field(default=None, primary_key=True)
    participant_id: int = Field(foreign_key="participant.id", index=True)
    purpose: str = Field(max_length=16)
    code_hash: str = Field(max_length=64, unique=True)
    expires_at: datetime = instant(nullable=False)
    used_at: datetime | None = instant(default=None)
    attempts: int = Field(default=0)
    created_by: int | None = Field(default=None, foreign_key="staffuser.id")
    created_at: datetime = created_at()


class Course(SQLModel, table=True):
    """One ADC administration and the 14-day hetrombopag course that follows it."""

    __table_args__ = (UniqueConstraint("participant_id", "cycle_number"),)

    id: int | None = Field(default=None, primary_key=True)
    participant_id: int = Field(foreign_key="participant.id", index=True)
    cycle_number: int = Field(ge=1)
    adc_drug: str = Field(max_length=64)
    infusion_date: date
    start_date: date  # course day 1; defaults to infusion + 1 but is entered by staff
    # Copied from the study configuration when the course opens, so that a later change of
    # configuration does not rewrite what a participant was told to take.
    starting_dose_mg: float
    created_by: int = Field(foreign_key="staffuser.id")
    created_at: datetime = created_at()
    # Entered in error (e.g. a mistyped infusion date): kept for the audit trail and the export, and
    # excluded everywhere else by course_not_voided(). Set once, by a signed investigator action.
    voided_at: datetime | None = instant(default=None)
    voided_by: int | None = Field(default=None, foreign_key="staffuser.id")
    void_reason: str | None = Field(default=None, max_length=500)
    # Ended early: the last course day dosed; the days after it are neither due nor missed
    # (study.decisions_with_end). None: the full course_length_days.
    last_day: int | None = Field(default=None, ge=1)
    ended_early_at: datetime | None = instant(default=None)
    ended_early_by: int | None = Field(default=None, foreign_key="staffuser.id")
    end_early_reason: str | None = Field(default=None, max_length=500)


def course_not_voided() -> Any:
    """THE predicate for courses that take part in the diary (reminders, pages, adherence, overlap
    checks). Every course query except the audit trail and the export applies it; keep it the only one."""
    return Course.voided_at.is_(None)


class LabResult(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    course_id: int = Field(foreign_key="course.id", index=True)
    course_day: int = Field(ge=0)  # 0: baseline before day 1
    drawn_on: date
    plt: float  # ×10⁹/L
    hb: float | None = None  # g/L
    anc: float | None = None  # ×10⁹/L
    entered_by: int = Field(foreign_key="staffuser.id")
    entered_at: datetime = created_at()
    supersedes_id: int | None = Field(default=None, foreign_key="labresult.id", unique=True)
    correction_reason: str | None = Field(default=None, max_length=500)


class DoseDecision(SQLModel, table=True):
    """A signed prescription change, effective from a course day onwards."""

    id: int | None = Field(default=None, primary_key=True)
    course_id: int = Field(foreign_key="course.id", index=True)
    effective_day: int = Field(ge=1)
    dose_mg: float = Field(ge=0)
    action: str = Field(max_length=16)  # continue | increase | reduce | hold | resume
    suggested_action: str | None = Field(default=None, max_length=16)
    suggested_dose_mg: float | None = None
    rule: str | None = Field(default=None, max_length=300)
    lab_result_id: int | None = Field(default=None, foreign_key="labresult.id", index=True)
    override_reason: str | None = Field(default=None, max_length=500)
    decided_by: int = Field(foreign_key="staffuser.id")
    signed_at: datetime = created_at()
    supersedes_id: int | None = Field(default=None, foreign_key="dosedecision.id", unique=True)


class DoseChangeAck(SQLModel, table=True):
    """The participant's "I understand" of a signed dose change (issue 10, finding 8): who tapped it
    and when. `decision_id` is unique, so a double tap or two phones at once store one row."""

    id: int | None = Field(default=None, primary_key=True)
    decision_id: int = Field(foreign_key="dosedecision.id", unique=True)
    participant_id: int = Field(foreign_key="participant.id", index=True)
    acknowledged_at: datetime = instant(nullable=False)


class DoseLog(SQLModel, table=True):
    __table_args__ = (
        CheckConstraint(_in("outcome", DOSE_OUTCOMES), name="ck_doselog_outcome"),
        CheckConstraint(_in("source", SOURCES), name="ck_doselog_source"),
        CheckConstraint(_in("fasting", FASTING), name="ck_doselog_fasting"),
        Index("ix_doselog_course_day", "course_id", "course_day"),
        # One chain of records per (course, day): one first record, and (supersedes_id is unique)
        # each record superseded at most once, so a day has at most one current log even when
        # two phones check it off at the same instant (issue 11, item 3).
        Index("uq_doselog_first_record", "course_id", "course_day", unique=True,
              sqlite_where=text("supersedes_id IS NULL"), postgresql_where=text("supersedes_id IS NULL")),
    )

    id: int | None = Field(default=None, primary_key=True)
    course_id: int = Field(foreign_key="course.id")
    course_day: int = Field(ge=1)
    outcome: str = Field(max_length=16)
    taken_at: datetime | None = instant(default=None)  # the time the participant states
    reason: str | None = Field(default=None, max_length=32)  # why not taken
    fasting: str | None = Field(default=None, max_length=8)  # yes | no | unsure; None: not said
    note: str | None = Field(default=None, max_length=500)
    # The prescription in force when the record was made (issue 10, item 9): a later decision must
    # never change what a past log meant. None on records made before this was kept.
    dose_mg: float | None = None
    tablets: int | None = None
    source: str = Field(max_length=16)
    staff_id: int | None = Field(default=None, foreign_key="staffuser.id")
    received_at: datetime = created_at()
    # Generated by the phone (or the SMS MessageSid): replays, double taps and offline
    # sync retries hit this constraint instead of creating a second record.
    client_key: str = Field(max_length=64, unique=True)
    supersedes_id: int | None = Field(default=None, foreign_key="doselog.id", unique=True)
    correction_reason: str | None = Field(default=None, max_length=500)


class SymptomReport(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    participant_id: int = Field(foreign_key="participant.id", index=True)
    course_id: int | None = Field(default=None, foreign_key="course.id")
    noticed_at: datetime = instant(nullable=False)  # stated by the participant
    symptoms: list = Field(default_factory=list, sa_type=JSON)  # [{"key": ..., "severity": ...}]
    danger: bool = False  # what the participant was shown, under the configuration in force
    note: str | None = Field(default=None, max_length=1000)
    source: str = Field(max_length=16)
    staff_id: int | None = Field(default=None, foreign_key="staffuser.id")
    received_at: datetime = created_at()
    client_key: str = Field(max_length=64, unique=True)
    supersedes_id: int | None = Field(default=None, foreign_key="symptomreport.id", unique=True)
    correction_reason: str | None = Field(default=None, max_length=500)


class Message(SQLModel, table=True):
    """The SMS outbox: written in the same transaction as the change that causes it."""

    __table_args__ = (Index("ix_message_due", "status", "not_before"),)

    id: int | None = Field(default=None, primary_key=True)
    dedupe_key: str = Field(max_length=200, unique=True)
    kind: str = Field(max_length=32)
    site_id: int = Field(foreign_key="site.id")
    participant_id: int | None = Field(default=None, foreign_key="participant.id", index=True)
    to_enc: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    body: str = Field(max_length=1600)
    # queued | sending | sent | delivered | undelivered | failed | dropped
    status: str = Field(max_length=16, default="queued")
    not_before: datetime = instant(nullable=False)
    expires_at: datetime | None = instant(default=None)  # a reminder no longer useful is dropped
    attempts: int = Field(default=0)
    claimed_at: datetime | None = instant(default=None)
    provider_id: str | None = Field(default=None, max_length=64, index=True)
    last_error: str | None = Field(default=None, max_length=500)
    sent_at: datetime | None = instant(default=None)
    created_at: datetime = created_at()
    # Which dose day a reminder is about, so dispatch can re-check it is still useful.
    course_id: int | None = Field(default=None, foreign_key="course.id", index=True)
    course_day: int | None = None
    # After a transient failure the dispatcher leaves the row alone until this instant (backoff).
    next_attempt_at: datetime | None = instant(default=None)
    delivered_at: datetime | None = instant(default=None)
    # The template it was rendered from (diary/messaging/texts.py): key, named parameters and
    # language; `body` keeps the rendered text for the audit trail and for Twilio.
    template: str | None = Field(default=None, max_length=40)
    template_params: dict | None = Field(default=None, sa_type=JSON)
    language: str | None = Field(default=None, max_length=8)
    # When it was last handed to a provider (reconciliation moves claimed_at, not this).
    attempted_at: datetime | None = instant(default=None)
    # Which provider accepted it (twilio | tencent | aliyun | console), shown to staff.
    provider: str | None = Field(default=None, max_length=16)


class InboundMessage(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    provider_sid: str = Field(max_length=64, unique=True)
    from_hash: str = Field(max_length=64, index=True)
    from_enc: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    body: str = Field(max_length=1600)
    participant_id: int | None = Field(default=None, foreign_key="participant.id", index=True)
    handled_as: str | None = Field(default=None, max_length=32)
    received_at: datetime = created_at()


class Flag(SQLModel, table=True):
    """Something staff must look at. `key` makes each flag exist once."""

    # The queue and the dashboard read "open flags of these sites".
    __table_args__ = (Index("ix_flag_open", "site_id", "acknowledged_at"),)

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=200, unique=True)
    # missed_dose | danger_symptom | overdue_lab | sms_failed | opt_out | urgent_plt | participant_message
    # | dose_in_pause | dose_on_held_day | doses_too_close (labels: staff/vocab.FLAG_KIND)
    kind: str = Field(max_length=32)
    site_id: int = Field(foreign_key="site.id", index=True)
    participant_id: int | None = Field(default=None, foreign_key="participant.id", index=True)
    detail: str = Field(max_length=500)  # English, as raised: the export and the audit trail keep it
    # Which catalogue text `detail` is (diary/flag_texts.py) and its values, so that each staff
    # member reads it in their own language. None on flags raised before, or with free text only.
    detail_key: str | None = Field(default=None, max_length=64)
    detail_params: dict | None = Field(default=None, sa_type=JSON)
    raised_at: datetime = created_at()
    acknowledged_by: int | None = Field(default=None, foreign_key="staffuser.id")
    acknowledged_at: datetime | None = instant(default=None)
    ack_note: str | None = Field(default=None, max_length=500)


PAUSE_CAUSES = ("danger_symptom", "critical_plt")
PAUSE_CLOSINGS = ("continue", "decision")


class ReviewPause(SQLModel, table=True):
    """A clinical-review pause on a course: opened by a danger symptom or a critical PLT, it tells
    the participant to wait for the study team's call before taking the study tablets and stops
    dose reminders until staff close it ("continue dosing" with a note, or a signed decision).
    Acknowledging the flag that came with it does not close it."""

    __table_args__ = (
        CheckConstraint(_in("cause", PAUSE_CAUSES), name="ck_reviewpause_cause"),
        CheckConstraint(f"close_kind IS NULL OR {_in('close_kind', PAUSE_CLOSINGS)}",
                        name="ck_reviewpause_close_kind"),
        # At most one open pause per course: a second danger report while one is open joins it.
        Index("uq_reviewpause_open", "course_id", unique=True,
              sqlite_where=text("closed_at IS NULL"), postgresql_where=text("closed_at IS NULL")),
    )

    id: int | None = Field(default=None, primary_key=True)
    course_id: int = Field(foreign_key="course.id", index=True)
    participant_id: int = Field(foreign_key="participant.id", index=True)
    site_id: int = Field(foreign_key="site.id")
    cause: str = Field(max_length=32)
    flag_key: str | None = Field(default=None, max_length=200)  # the flag raised with it
    opened_at: datetime = instant(nullable=False)
    closed_at: datetime | None = instant(default=None)
    closed_by: int | None = Field(default=None, foreign_key="staffuser.id")
    close_kind: str | None = Field(default=None, max_length=16)
    close_note: str | None = Field(default=None, max_length=500)
    decision_id: int | None = Field(default=None, foreign_key="dosedecision.id")


class AuditEvent(SQLModel, table=True):
    """Append-only and hash-chained: each row's hash covers its content and the previous hash."""

    __table_args__ = (
        UniqueConstraint("chain", "prev_hash", name="uq_auditevent_chain_prev_hash"),
        Index("ix_auditevent_chain_id", "chain", "id"),
        Index("ix_auditevent_entity_entity_id", "entity", "entity_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = created_at()
    actor: str = Field(max_length=64)  # staff:3 | participant:5 | sms | system
    action: str = Field(max_length=64)
    entity: str = Field(max_length=64)
    entity_id: str | None = Field(default=None, max_length=64)
    site_id: int | None = Field(default=None, index=True)
    participant_id: int | None = Field(default=None, index=True)
    before: dict | None = Field(default=None, sa_type=JSON)
    after: dict | None = Field(default=None, sa_type=JSON)
    reason: str | None = Field(default=None, max_length=500)
    # "p:<participant id>", else "s:<site id>", else "g"; "legacy" for events from before chains
    # (diary/audit.py). (chain, prev_hash) is unique: a chain can never fork.
    chain: str = Field(max_length=32)
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64, unique=True)
    # HMAC of the clinical row the event names, as stored when the event was written.
    row_hash: str | None = Field(default=None, max_length=64)


class DeviceSession(SQLModel, table=True):
    """One signed-in phone or browser. Its cookie carries a random id whose hash is stored here,
    and every request checks the row is still open: signing out, a PIN reset, withdrawal or
    staff deactivation ends the session, even in a cookie copied before."""

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True)
    participant_id: int | None = Field(default=None, foreign_key="participant.id", index=True)
    staff_id: int | None = Field(default=None, foreign_key="staffuser.id", index=True)
    device: str = Field(default="", max_length=120)  # browser and system, to recognise it in Settings
    created_at: datetime = created_at()
    last_seen_at: datetime = instant(nullable=False)
    ended_at: datetime | None = instant(default=None)
    ended_reason: str | None = Field(default=None, max_length=32)


class SmsBudget(SQLModel, table=True):
    """A ceiling on SMS that anyone can trigger without signing in ("forgot PIN"), per clock hour.

    Taken by one conditional UPDATE ... RETURNING, so simultaneous requests cannot overshoot it."""

    key: str = Field(primary_key=True, max_length=64)
    window_start: datetime = instant(nullable=False)
    used: int = Field(default=0)


class SchedulerHeartbeat(SQLModel, table=True):
    """One row per scheduler tick: a dead scheduler means silent missed reminders, so /health
    and the staff banner watch the latest row."""

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = instant(nullable=False, index=True)  # the instant the tick ran for
    finished_at: datetime = created_at()
    duration_ms: int = Field(default=0)
    summary: dict = Field(default_factory=dict, sa_type=JSON)  # counts only, no personal data
    host: str = Field(default="", max_length=64)


ACCOUNTABILITY_KINDS = ("dispensed", "returned")
AE_STATUSES = ("draft", "recorded")
AE_SOURCES = ("symptom_report", "lab_result")


class DrugAccountability(SQLModel, table=True):
    """One movement of study tablets: dispensed to a participant for a course, or returned."""

    __table_args__ = (
        CheckConstraint(_in("kind", ACCOUNTABILITY_KINDS), name="ck_drugaccountability_kind"),
        CheckConstraint("tablets >= 0", name="ck_drugaccountability_tablets"),
    )

    id: int | None = Field(default=None, primary_key=True)
    participant_id: int = Field(foreign_key="participant.id", index=True)
    course_id: int = Field(foreign_key="course.id", index=True)
    kind: str = Field(max_length=16)
    on_date: date  # local date dispensed or returned
    tablets: int
    bottles: int | None = None
    strength_mg: float | None = None
    lot_number: str | None = Field(default=None, max_length=64)
    expiry: date | None = None
    # What the pharmacist was shown and went ahead despite (expired, wrong_strength, …).
    warnings: list = Field(default_factory=list, sa_type=JSON)
    staff_id: int = Field(foreign_key="staffuser.id")  # who dispensed or received it
    entered_at: datetime = created_at()
    supersedes_id: int | None = Field(default=None, foreign_key="drugaccountability.id", unique=True)
    correction_reason: str | None = Field(default=None, max_length=500)


class AdverseEvent(SQLModel, table=True):
    """An AE log entry. Corrections supersede; `first_id` names the chain's first row (the AE)."""

    __table_args__ = (
        CheckConstraint(_in("status", AE_STATUSES), name="ck_adverseevent_status"),
        # One AE per source report: two staff pressing "draft an AE" at once get the same one.
        Index("ux_adverseevent_source", "source_kind", "source_id", unique=True,
              sqlite_where=text("supersedes_id IS NULL AND source_id IS NOT NULL"),
              postgresql_where=text("supersedes_id IS NULL AND source_id IS NOT NULL")),
    )

    id: int | None = Field(default=None, primary_key=True)
    participant_id: int = Field(foreign_key="participant.id", index=True)
    course_id: int | None = Field(default=None, foreign_key="course.id")
    first_id: int | None = Field(default=None, foreign_key="adverseevent.id", index=True)
    status: str = Field(max_length=16)
    term: str = Field(max_length=64)  # records.toml term key, or "other" with term_text
    term_text: str | None = Field(default=None, max_length=200)
    grade: int | None = None  # CTCAE v5.0
    onset_date: date | None = None
    end_date: date | None = None
    serious: bool = False
    sae_criteria: list = Field(default_factory=list, sa_type=JSON)
    relatedness: str | None = Field(default=None, max_length=32)
    action: str | None = Field(default=None, max_length=32)
    outcome: str | None = Field(default=None, max_length=32)
    description: str | None = Field(default=None, max_length=1000)
    source_kind: str | None = Field(default=None, max_length=16)
    source_id: int | None = None
    staff_id: int = Field(foreign_key="staffuser.id")
    entered_at: datetime = created_at()
    supersedes_id: int | None = Field(default=None, foreign_key="adverseevent.id", unique=True)
    correction_reason: str | None = Field(default=None, max_length=500)


class SaeReport(SQLModel, table=True):
    """The investigator's statement that an SAE was reported to the sponsor; once per AE."""

    id: int | None = Field(default=None, primary_key=True)
    adverse_event_id: int = Field(foreign_key="adverseevent.id", unique=True)  # the AE's first row
    participant_id: int = Field(foreign_key="participant.id", index=True)
    reported_at: datetime = instant(nullable=False)
    reported_by: int = Field(foreign_key="staffuser.id")
    note: str | None = Field(default=None, max_length=500)
    entered_at: datetime = created_at()


class ConcomitantMedication(SQLModel, table=True):
    """A con-med entry; `matched` keeps the prohibited/restricted list keys it matched when entered."""

    id: int | None = Field(default=None, primary_key=True)
    participant_id: int = Field(foreign_key="participant.id", index=True)
    drug: str = Field(max_length=200)
    dose: str | None = Field(default=None, max_length=100)
    route: str | None = Field(default=None, max_length=50)
    start_date: date
    stop_date: date | None = None
    indication: str | None = Field(default=None, max_length=200)
    matched: list = Field(default_factory=list, sa_type=JSON)
    retracted: bool = False  # a correction that says "entered in error"
    staff_id: int = Field(foreign_key="staffuser.id")
    entered_at: datetime = created_at()
    supersedes_id: int | None = Field(default=None, foreign_key="concomitantmedication.id", unique=True)
    correction_reason: str | None = Field(default=None, max_length=500)


DEVIATION_STATUSES = ("proposed", "confirmed", "dismissed", "closed")


class ProtocolDeviation(SQLModel, table=True):
    """A deviation-log entry. Each change of state is a new version superseding the last; `first_id`
    names the deviation; `finding_key` makes a software proposal exist once."""

    __table_args__ = (
        CheckConstraint(_in("status", DEVIATION_STATUSES), name="ck_protocoldeviation_status"),
        Index("ux_protocoldeviation_finding", "finding_key", unique=True,
              sqlite_where=text("supersedes_id IS NULL AND finding_key IS NOT NULL"),
              postgresql_where=text("supersedes_id IS NULL AND finding_key IS NOT NULL")),
    )

    id: int | None = Field(default=None, primary_key=True)
    participant_id: int = Field(foreign_key="participant.id", index=True)
    first_id: int | None = Field(default=None, foreign_key="protocoldeviation.id", index=True)
    status: str = Field(max_length=16)
    category: str = Field(max_length=32)
    description: str = Field(max_length=1000)
    occurred_on: date
    classification: str | None = Field(default=None, max_length=8)  # minor | major
    found_by: str = Field(max_length=64)  # staff:3 or system (a software proposal)
    finding_key: str | None = Field(default=None, max_length=120)
    conmed_id: int | None = Field(default=None, foreign_key="concomitantmedication.id")
    staff_id: int | None = Field(default=None, foreign_key="staffuser.id")  # who made this version
    entered_at: datetime = created_at()
    supersedes_id: int | None = Field(default=None, foreign_key="protocoldeviation.id", unique=True)
    reason: str | None = Field(default=None, max_length=500)  # why confirmed, dismissed, closed or corrected


APPEND_ONLY = (DoseLog, SymptomReport, LabResult, DoseDecision, DoseChangeAck, Screening, AuditEvent,
               DrugAccountability, AdverseEvent, SaeReport, ConcomitantMedication, ProtocolDeviation)
