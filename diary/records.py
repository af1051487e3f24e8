"""Rules of the records a site is audited on: drug accountability and adverse events (issue 12).

Pure, like diary/study.py: values in, values out; no Flask, no database. The numbers and term lists
come from records.toml, each with its source.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from diary.study import _bool, _int, _list_of, _require, _str, _table_of, read_toml

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


@dataclass(frozen=True)
class RecordsConfig:
    accountability: AccountabilityRules
    adverse_events: AeRules


_READ = _table_of(RecordsConfig, {
    "accountability": _table_of(AccountabilityRules, {"tolerance_tablets": _int}),
    "adverse_events": _table_of(AeRules, {
        "sae_report_hours": _int, "sae_criteria": _list_of(_str), "grades": _list_of(_int),
        "relatedness": _list_of(_str), "actions": _list_of(_str), "outcomes": _list_of(_str),
        "terms": _list_of(_table_of(AeTerm, {
            "key": _str, "category": _str, "label_en": _str, "label_zh": _str,
            "symptoms": _list_of(_str), "from_plt": _bool})),
    }),
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
