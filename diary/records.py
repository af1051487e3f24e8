"""Rules of the records a site is audited on: drug accountability and adverse events (issue 12).

Pure, like diary/study.py: values in, values out; no Flask, no database. The numbers and term lists
come from records.toml, each with its source.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from diary.study import _bool, _int, _list_of, _require, _str, _table_of, read_toml, too_close

DEFAULT_RECORDS_PATH = Path(__file__).with_name("records.toml")
TERM_CATEGORIES = ("bleeding", "thrombosis", "liver")
OTHER_TERM = "other"


@dataclass(frozen=True)
class AccountabilityRules:
    tolerance_tablets: int = 2

    def __post_init__(self) -> None:
        _require(self.tolerance_tablets >= 0, "accountability.tolerance_tablets", "must be ≥ 0")


@dataclass(frozen=True)
class AeTerm:
    """A CTCAE v5.0 term offered on the AE form."""

    key: str
    category: str
    label_en: str
    label_zh: str
    symptoms: tuple[str, ...] = ()
    from_plt: bool = False

    def __post_init__(self) -> None:
        _require(self.category in TERM_CATEGORIES, f"adverse_events.terms.{self.key}.category",
                 f"{self.category!r} is not one of {TERM_CATEGORIES}")
        _require(self.key != OTHER_TERM, "adverse_events.terms", f"{OTHER_TERM!r} is reserved for free text")

    def label(self, lang: str) -> str:
        return self.label_zh if lang.lower().startswith("zh") else self.label_en


@dataclass(frozen=True)
class AeRules:
    sae_report_hours: int = 24
    sae_criteria: tuple[str, ...] = ()
    grades: tuple[int, ...] = (1, 2, 3, 4, 5)
    relatedness: tuple[str, ...] = ()
    actions: tuple[str, ...] = ()
    outcomes: tuple[str, ...] = ()
    terms: tuple[AeTerm, ...] = ()

    def __post_init__(self) -> None:
        _require(self.sae_report_hours > 0, "adverse_events.sae_report_hours", "must be > 0")
        for name in ("sae_criteria", "grades", "relatedness", "actions", "outcomes"):
            _require(len(getattr(self, name)) > 0, f"adverse_events.{name}", "must not be empty")
        keys = [t.key for t in self.terms]
        _require(len(keys) == len(set(keys)), "adverse_events.terms", "duplicate keys")
        drafted = [s for t in self.terms for s in t.symptoms]
        _require(len(drafted) == len(set(drafted)), "adverse_events.terms.symptoms",
                 "a symptom may draft only one term")

    def term(self, key: str) -> AeTerm | None:
        return next((t for t in self.terms if t.key == key), None)


CONMED_LEVELS = ("prohibited", "restricted")


@dataclass(frozen=True)
class ConmedRule:
    """A prohibited or restricted medicine, with the names that identify it and its source."""

    key: str
    level: str
    label_en: str
    label_zh: str
    match: tuple[str, ...]
    window_days: int
    source: str

    def __post_init__(self) -> None:
        _require(self.level in CONMED_LEVELS, f"conmeds.{self.key}.level", f"must be one of {CONMED_LEVELS}")
        _require(self.window_days >= 0, f"conmeds.{self.key}.window_days", "must be ≥ 0")
        _require(len(self.match) > 0, f"conmeds.{self.key}.match", "must not be empty")

    def label(self, lang: str) -> str:
        return self.label_zh if lang.lower().startswith("zh") else self.label_en


@dataclass(frozen=True)
class DeviationRules:
    categories: tuple[str, ...] = ()
    missed_draw_grace_days: int = 1

    def __post_init__(self) -> None:
        _require(len(self.categories) > 0, "deviations.categories", "must not be empty")
        _require(self.missed_draw_grace_days >= 0, "deviations.missed_draw_grace_days", "must be ≥ 0")


@dataclass(frozen=True)
class RecordsConfig:
    accountability: AccountabilityRules
    adverse_events: AeRules
    deviations: DeviationRules = DeviationRules(categories=("other",))
    conmeds: tuple[ConmedRule, ...] = ()


_READ = _table_of(RecordsConfig, {
    "accountability": _table_of(AccountabilityRules, {"tolerance_tablets": _int}),
    "adverse_events": _table_of(AeRules, {
        "sae_report_hours": _int, "sae_criteria": _list_of(_str), "grades": _list_of(_int),
        "relatedness": _list_of(_str), "actions": _list_of(_str), "outcomes": _list_of(_str),
        "terms": _list_of(_table_of(AeTerm, {
            "key": _str, "category": _str, "label_en": _str, "label_zh": _str,
            "symptoms": _list_of(_str), "from_plt": _bool})),
    }),
    "deviations": _table_of(DeviationRules, {"categories": _list_of(_str), "missed_draw_grace_days": _int}),
    "conmeds": _list_of(_table_of(ConmedRule, {
        "key": _str, "level": _str, "label_en": _str, "label_zh": _str, "match": _list_of(_str),
        "window_days": _int, "source": _str})),
})


def load_records_config(path: str | Path | None = None) -> RecordsConfig:
    """Read and validate records.toml (default: the packaged one)."""
    return read_toml(Path(path) if path is not None else DEFAULT_RECORDS_PATH, "records configuration", _READ)


# -------------------------------------------------------------------------------------------------
# Drug accountability


@dataclass(frozen=True)
class Reconciliation:
    """Tablets out of the pharmacy against tablets the diary says were taken."""

    dispensed: int
    returned: int
    expected_use: int
    tolerance: int

    @property
    def unaccounted(self) -> int:
        """Positive: tablets missing (neither returned nor logged); negative: more logged than issued."""
        return self.dispensed - self.returned - self.expected_use

    @property
    def discrepant(self) -> bool:
        return abs(self.unaccounted) > self.tolerance


def reconcile(dispensed: int, returned: int, taken_tablets: list[int], rules: AccountabilityRules) -> Reconciliation:
    """Expected use is the sum of tablets logged taken (each at the strength in force that day)."""
    return Reconciliation(dispensed, returned, sum(taken_tablets), rules.tolerance_tablets)


def lot_warnings(*, strength_mg: float, expiry: date, dispensed_on: date, last_course_date: date,
                 study_strength_mg: float) -> list[str]:
    """What the pharmacist must see before the bottle leaves: an expired lot, one that expires before
    the course ends, or tablets of another strength than the diary's dose instructions assume."""
    warnings = []
    if expiry < dispensed_on:
        warnings.append("expired")
    elif expiry < last_course_date:
        warnings.append("expires_during_course")
    if abs(strength_mg - study_strength_mg) > 1e-9:
        warnings.append("wrong_strength")
    return warnings


# -------------------------------------------------------------------------------------------------
# Adverse events


def draft_term_for_symptoms(symptom_keys: list[str], rules: AeRules) -> str:
    """The CTCAE term a danger report suggests (its first mapped answer), else free text."""
    for key in symptom_keys:
        for term in rules.terms:
            if key in term.symptoms:
                return term.key
    return OTHER_TERM


def draft_term_for_plt(rules: AeRules) -> str:
    return next((t.key for t in rules.terms if t.from_plt), OTHER_TERM)


def sae_deadline(aware_at: datetime, rules: AeRules) -> datetime:
    """When the SAE report to the sponsor is due (ICH E6(R2) 4.11.1: within 24 h of awareness)."""
    return aware_at + timedelta(hours=rules.sae_report_hours)


def sae_time_left(aware_at: datetime, now: datetime, rules: AeRules) -> timedelta:
    """Time left on the reporting clock; negative once it is overdue."""
    return sae_deadline(aware_at, rules) - now


# -------------------------------------------------------------------------------------------------
# Concomitant medications and protocol deviations


def conmed_matches(drug: str, rules: tuple[ConmedRule, ...]) -> list[ConmedRule]:
    """The prohibited or restricted entries a medicine's name matches (case-insensitive substring)."""
    name = drug.casefold()
    return [r for r in rules if any(_names(term.casefold(), name) for term in r.match)]


def _names(term: str, name: str) -> bool:
    # Latin names match at a word start ("iron" must not match "spironolactone"); Chinese has no
    # word breaks, so a Chinese term matches anywhere.
    if term.isascii():
        return re.search(r"(?<![a-z0-9])" + re.escape(term), name) is not None
    return term in name


def in_window(rule: ConmedRule, start: date, stop: date | None, courses: list[tuple[date, date]]) -> bool:
    """Whether [start, stop] (open-ended without stop) overlaps a course or the days before it that
    the rule's window covers."""
    for first, last in courses:
        window_start = first - timedelta(days=rule.window_days)
        if start <= last and (stop is None or stop >= window_start):
            return True
    return False


@dataclass(frozen=True)
class ProposedDeviation:
    key: str  # unique: the same finding is proposed once
    category: str
    occurred_on: date
    description: str


@dataclass(frozen=True)
class DayRecord:
    """One course day as the deviation rules see it."""

    day: int
    date: date
    dose_mg: float
    taken_at_local: datetime | None  # None: not logged taken
    draw_day: bool
    has_result: bool
    paused: bool = False  # inside a clinical-review pause (course_record.paused_days)


def course_deviations(course_id: int, cycle: int, days: list[DayRecord], today: date,
                      rules: DeviationRules, min_hours_between_doses: float) -> list[ProposedDeviation]:
    """What the diary can see: a dose on a held or paused day, two doses too close (study.too_close,
    study.toml min_hours_between_doses), a dose logged outside its day, a draw day without a result
    after the grace days."""
    found = []
    previous: DayRecord | None = None
    for d in days:
        if d.taken_at_local is not None:
            if d.dose_mg == 0:
                found.append(ProposedDeviation(f"held_dose:{course_id}:{d.day}", "dosing", d.date,
                                               f"Cycle {cycle} day {d.day}: dose logged taken on a held day"))
            elif d.paused:
                found.append(ProposedDeviation(
                    f"paused_dose:{course_id}:{d.day}", "dosing", d.date,
                    f"Cycle {cycle} day {d.day}: dose logged taken during a clinical-review pause"))
            if d.taken_at_local.date() != d.date:
                found.append(ProposedDeviation(
                    f"outside_day:{course_id}:{d.day}", "dosing", d.taken_at_local.date(),
                    f"Cycle {cycle} day {d.day}: dose taken on {d.taken_at_local.date().isoformat()}, "
                    f"outside its day"))
            gap = None
            if previous is not None and previous.day == d.day - 1 and previous.taken_at_local is not None:
                gap = too_close(previous.taken_at_local, d.taken_at_local, min_hours_between_doses)
            if gap is not None:
                found.append(ProposedDeviation(
                    f"too_close:{course_id}:{d.day}", "dosing", d.taken_at_local.date(),
                    f"Cycle {cycle} days {previous.day} and {d.day}: doses {gap:.1f} h apart "
                    f"(less than {min_hours_between_doses:g} h)"))
        if d.draw_day and not d.has_result and (today - d.date).days > rules.missed_draw_grace_days:
            found.append(ProposedDeviation(f"missed_draw:{course_id}:{d.day}", "missed_assessment", d.date,
                                           f"Cycle {cycle} day {d.day}: no blood count for the draw day"))
        previous = d
    return found
