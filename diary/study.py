"""The NCT07243418 protocol as pure functions, and the study configuration that parameterises it.

Sources: the registry record (trial/NCT07243418-record.txt), trial/CLINICAL-NOTES.md, CTCAE v5.0 and
the WHO bleeding scale. Every protocol number lives in study.toml; this module holds only the logic.
No Flask, no database: values in, values out, and "now" is always an argument.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_CONFIG_PATH = Path(__file__).with_name("study.toml")
SYMPTOM_GROUPS = ("bleeding", "thrombosis", "liver", "other")
LAB_UNITS = {"plt": "×10⁹/L", "hb": "g/L", "anc": "×10⁹/L"}


class StudyConfigError(ValueError):
    """The study configuration is invalid; the message names the offending key."""


# -------------------------------------------------------------------------------------------------
# Configuration


def _require(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise StudyConfigError(f"{key}: {message}")


@dataclass(frozen=True)
class Symptom:
    """One checklist answer (CLINICAL-NOTES: WHO bleeding scale, thrombosis warning signs)."""

    key: str
    group: str
    danger: bool
    label_en: str
    label_zh: str
    # Stroke, chest-pain and breathing signs: call the emergency number first, the study team second.
    emergency_first: bool = False

    def __post_init__(self) -> None:
        _require(self.group in SYMPTOM_GROUPS, f"symptoms.{self.key}.group",
                 f"{self.group!r} is not one of {SYMPTOM_GROUPS}")
        _require(self.danger or not self.emergency_first, f"symptoms.{self.key}.emergency_first",
                 "only a danger answer can send the participant to the emergency number")

    def label(self, lang: str) -> str:
        """The plain-language label: Chinese for 'zh' (or 'zh-…'), otherwise English."""
        return self.label_zh if lang.lower().startswith("zh") else self.label_en


@dataclass(frozen=True)
class DoseRules:
    """PLT thresholds (×10⁹/L) of the suggested-dose table (CLINICAL-NOTES "Dose adjustment")."""

    hold_at_or_above: float = 100
    hold_rise_from_baseline: float = 50
    increase_below: float = 50
    urgent_at_or_below: float = 20
    confirm_at_or_below: float = 10

    def __post_init__(self) -> None:
        _require(0 <= self.urgent_at_or_below <= self.increase_below <= self.hold_at_or_above,
                 "rules", "need 0 ≤ urgent_at_or_below ≤ increase_below ≤ hold_at_or_above")
        _require(0 <= self.confirm_at_or_below <= self.urgent_at_or_below, "rules.confirm_at_or_below",
                 "need 0 ≤ confirm_at_or_below ≤ urgent_at_or_below")
        _require(self.hold_rise_from_baseline > 0, "rules.hold_rise_from_baseline", "must be > 0")


@dataclass(frozen=True)
class Reminders:
    """Default local reminder times (DESIGN §4); a participant may choose their own dose time."""

    dose_time: time = time(8, 0)
    followup_hours: float = 2
    draw_evening_time: time = time(19, 0)
    draw_morning_time: time = time(7, 0)
    quiet_start: time = time(21, 30)
    quiet_end: time = time(7, 0)

    def __post_init__(self) -> None:
        _require(self.followup_hours > 0, "reminders.followup_hours", "must be > 0")


@dataclass(frozen=True)
class StudyConfig:
    """The whole study configuration; construction validates it (StudyConfigError names the key)."""

    study_id: str = "NCT07243418"
    default_timezone: str = "Asia/Shanghai"
    course_length_days: int = 14
    draw_days: tuple[int, ...] = (7, 10, 14)
    starting_dose_mg: float = 5.0
    tablet_strength_mg: float = 2.5
    dose_levels_mg: tuple[float, ...] = (0, 2.5, 5, 7.5)
    max_dose_mg: float = 7.5
    rules: DoseRules = field(default_factory=DoseRules)
    plt_lln: float = 125
    plt_range: tuple[float, float] = (0, 1500)
    hb_range: tuple[float, float] = (20, 250)
    anc_range: tuple[float, float] = (0, 100)
    cutoff_days_after: int = 1
    cutoff_time: time = time(12, 0)
    # A blood count drawn this many days before or after a planned draw day covers it.
    draw_window_days: int = 1
    undo_minutes: int = 5
    infusion_date_warn_days: int = 28
    reminders: Reminders = field(default_factory=Reminders)
    symptoms: tuple[Symptom, ...] = ()
    not_taken_reasons: tuple[str, ...] = (
        "forgot", "vomited", "side_effects", "doctor_said", "other")
    advice_en: tuple[str, ...] = ()
    advice_zh: tuple[str, ...] = ()
    adc_drugs: tuple[str, ...] = (
        "trastuzumab_deruxtecan", "trastuzumab_emtansine", "sacituzumab_govitecan",
        "disitamab_vedotin", "datopotamab_deruxtecan", "trastuzumab_rezetecan", "other")
    # The protocol's missed-dose rule in both languages, and the least gap between two doses
    # (issue 10, finding 2; CLINICAL-NOTES "Missed dose").
    missed_dose_rule_en: str = "If you missed a dose, skip it and never take two doses in one day."
    missed_dose_rule_zh: str = "如果漏服了，请跳过这一次，一天内切勿服用两次海曲泊帕。"
    min_hours_between_doses: float = 12

    def __post_init__(self) -> None:
        try:
            known_zone = bool(ZoneInfo(self.default_timezone))
        except (ZoneInfoNotFoundError, ValueError):
            known_zone = False
        _require(known_zone, "default_timezone", f"{self.default_timezone!r} is not an IANA zone")
        length = self.course_length_days
        _require(length >= 1, "course_length_days", "must be ≥ 1")
        for day in self.draw_days:
            _require(1 <= day <= length, "draw_days", f"day {day} is not in 1..{length}")
        strength, levels = self.tablet_strength_mg, self.dose_levels_mg
        _require(strength > 0, "tablet_strength_mg", "must be > 0")
        for level in levels:
            # The participant is told a number of tablets, so every level must be whole tablets.
            _require(level >= 0 and _is_whole(level / strength), "dose_levels_mg",
                     f"{level:g} mg is not a whole number of {strength:g} mg tablets")
            _require(level <= self.max_dose_mg, "dose_levels_mg",
                     f"{level:g} mg is above max_dose_mg")
        # 0 mg is how a hold is prescribed (DESIGN §2), so it is a level like any other.
        for name, value in (("0 (hold)", 0), ("starting_dose_mg", self.starting_dose_mg),
                            ("max_dose_mg", self.max_dose_mg)):
            _require(any(math.isclose(value, level) for level in levels), "dose_levels_mg",
                     f"must include {name} = {value:g}")
        _require(self.starting_dose_mg > 0, "starting_dose_mg", "must be > 0")
        _require(self.plt_lln > 0, "plt_lln", "must be > 0")
        for name in ("plt_range", "hb_range", "anc_range"):
            low, high = getattr(self, name)
            _require(0 <= low < high, name, f"need 0 ≤ low < high, got {low:g}..{high:g}")
        _require(self.cutoff_days_after >= 0, "cutoff_days_after", "must be ≥ 0")
        gaps = [b - a for a, b in zip(sorted(self.draw_days), sorted(self.draw_days)[1:], strict=False)]
        # One count must never cover two planned draws.
        _require(self.draw_window_days >= 0 and all(gap > 2 * self.draw_window_days for gap in gaps),
                 "draw_window_days", "must be ≥ 0 and less than half the gap between draw days")
        _require(self.undo_minutes >= 0, "undo_minutes", "must be ≥ 0")
        _require(self.infusion_date_warn_days >= 1, "infusion_date_warn_days", "must be ≥ 1")
        _require(0 < self.min_hours_between_doses < 24, "min_hours_between_doses",
                 "must be > 0 and < 24 (one dose a day)")
        for name, values in (("draw_days", self.draw_days), ("dose_levels_mg", levels),
                             ("symptoms", [s.key for s in self.symptoms]),
                             ("not_taken_reasons", self.not_taken_reasons),
                             ("adc_drugs", self.adc_drugs)):
            duplicates = sorted({v for v in values if list(values).count(v) > 1})
            _require(not duplicates, name, f"duplicate entries {duplicates}")
        # advice_zh[i] translates advice_en[i]; the page swaps one list for the other by language.
        _require(len(self.advice_en) == len(self.advice_zh), "advice_zh",
                 "must have as many entries as advice_en")

    def symptom(self, key: str) -> Symptom:
        """The symptom with this key; KeyError if the checklist has none."""
        for symptom in self.symptoms:
            if symptom.key == key:
                return symptom
        raise KeyError(key)

    def advice(self, lang: str) -> tuple[str, ...]:
        """Administration advice, ending with the missed-dose rule: Chinese for 'zh' (or 'zh-…'),
        otherwise English."""
        lines = self.advice_zh if lang.lower().startswith("zh") else self.advice_en
        return (*lines, self.missed_dose_rule(lang))

    def missed_dose_rule(self, lang: str) -> str:
        """The protocol's missed-dose rule (default: skip, never double), in the page's language."""
        return self.missed_dose_rule_zh if lang.lower().startswith("zh") else self.missed_dose_rule_en


def _is_whole(quotient: float) -> bool:
    return math.isfinite(quotient) and abs(quotient - round(quotient)) < 1e-9


# TOML readers: each takes the dotted key (for the error message) and the raw value.
def _num(key: str, value: object) -> float:
    # bool is an int in Python, but `true` for a threshold is a typo, not 1.
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    _require(ok, key, f"expected a number, got {value!r}")
    return float(value)


def _int(key: str, value: object) -> int:
    _require(isinstance(value, int) and not isinstance(value, bool), key,
             f"expected a whole number, got {value!r}")
    return value


def _str(key: str, value: object) -> str:
    _require(isinstance(value, str) and value.strip() != "", key, "expected a non-empty string")
    return value


def _bool(key: str, value: object) -> bool:
    _require(isinstance(value, bool), key, f"expected true or false, got {value!r}")
    return value


def _time(key: str, value: object) -> time:
    # "08:00" is friendlier to edit than a TOML local time (08:00:00); accept both.
    try:
        value = time.fromisoformat(value) if isinstance(value, str) else value
    except ValueError:
        pass
    _require(isinstance(value, time) and value.tzinfo is None, key,
             f'expected a local time like "08:00", got {value!r}')
    return value


def _list_of(item):
    def read(key: str, value: object) -> tuple:
        _require(isinstance(value, list), key, f"expected a list, got {value!r}")
        return tuple(item(f"{key}[{i}]", v) for i, v in enumerate(value))
    return read


def _pair(key: str, value: object) -> tuple[float, float]:
    pair = _list_of(_num)(key, value)
    _require(len(pair) == 2, key, "expected [low, high]")
    return pair


def _table_of(cls, readers: dict):
    def read(key: str, raw: object):
        _require(isinstance(raw, dict), key or "file", "expected a table")
        prefix = f"{key}." if key else ""
        # Every key is required: a value silently taken from code would not have been confirmed.
        for name in sorted(readers.keys() - raw.keys()):
            _require(False, f"{prefix}{name}", "missing")
        for name in sorted(raw.keys() - readers.keys()):
            _require(False, f"{prefix}{name}", "unknown key")
        return cls(**{name: reader(prefix + name, raw[name]) for name, reader in readers.items()})
    return read


_STRINGS = _list_of(_str)
_READ_CONFIG = _table_of(StudyConfig, {
    "study_id": _str, "default_timezone": _str, "course_length_days": _int,
    "draw_days": _list_of(_int), "starting_dose_mg": _num, "tablet_strength_mg": _num,
    "dose_levels_mg": _list_of(_num), "max_dose_mg": _num,
    "rules": _table_of(DoseRules, {f.name: _num for f in fields(DoseRules)}),
    "plt_lln": _num, "plt_range": _pair, "hb_range": _pair, "anc_range": _pair,
    "cutoff_days_after": _int, "cutoff_time": _time, "undo_minutes": _int, "infusion_date_warn_days": _int,
    "draw_window_days": _int,
    "reminders": _table_of(Reminders, {f.name: _time for f in fields(Reminders)}
                           | {"followup_hours": _num}),
    "symptoms": _list_of(_table_of(Symptom, {"key": _str, "group": _str, "danger": _bool,
                                             "label_en": _str, "label_zh": _str,
                                             "emergency_first": _bool})),
    "not_taken_reasons": _STRINGS, "advice_en": _STRINGS, "advice_zh": _STRINGS,
    "adc_drugs": _STRINGS, "missed_dose_rule_en": _str, "missed_dose_rule_zh": _str,
    "min_hours_between_doses": _num,
})


def read_toml(path: Path, what: str, reader):
    """Parse a TOML file with `reader`; every error names the file (and the key, from `reader`)."""
    try:
        with path.open("rb") as file:
            raw = tomllib.load(file)
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise StudyConfigError(f"{path}: cannot read the {what}: {error}") from None
    try:
        return reader("", raw)
    except StudyConfigError as error:
        raise StudyConfigError(f"{path}: {error}") from None


def load_config(path: str | Path | None = None) -> StudyConfig:
    """Read and validate a study TOML (default: the packaged diary/study.toml)."""
    return read_toml(Path(path) if path is not None else DEFAULT_CONFIG_PATH, "study configuration", _READ_CONFIG)


# -------------------------------------------------------------------------------------------------
# Calendar: course days are local dates (DESIGN §2); instants are aware and compared in UTC.


def _local(instant: datetime, tz: str) -> datetime:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError("naive datetime: instants must carry a time zone (DESIGN §2)")
    return instant.astimezone(ZoneInfo(tz))


def local_date(instant: datetime, tz: str) -> date:
    """The calendar date at `instant` in time zone `tz`; ValueError on a naive datetime."""
    return _local(instant, tz).date()


def local_instant(day: date, at: time, tz: str) -> datetime:
    """The UTC instant of local wall time `at` on `day` in `tz`."""
    # fold=0 gives the first of two ambiguous wall times, and for a wall time that does not exist
    # (spring-forward gap) PEP 495 applies the pre-transition offset, i.e. shifts it forward.
    local = datetime.combine(day, at.replace(tzinfo=None, fold=0), tzinfo=ZoneInfo(tz))
    return local.astimezone(UTC)


def course_dates(day1: date, cfg: StudyConfig) -> list[date]:
    """Local dates of course days 1..course_length_days, from the date of day 1."""
    # Registry record: "Starting from day 1 after chemotherapy ... for 14 consecutive days". Staff
    # enter day 1 (default: infusion date + 1), never inferred: a day-1-and-8 regimen makes "the
    # day after chemotherapy" ambiguous (CLINICAL-NOTES, ADCs).
    return [day1 + timedelta(days=n) for n in range(cfg.course_length_days)]


def course_day_on(day1: date, on: date, cfg: StudyConfig) -> int | None:
    """The course day number of local date `on`, or None outside the course."""
    day = (on - day1).days + 1
    return day if 1 <= day <= cfg.course_length_days else None


def date_of_day(day1: date, day: int, cfg: StudyConfig) -> date:
    """The local date of course day `day`; ValueError outside 1..course_length_days."""
    if not 1 <= day <= cfg.course_length_days:
        raise ValueError(f"course day {day} is outside 1..{cfg.course_length_days}")
    return day1 + timedelta(days=day - 1)


def too_close(earlier: datetime, later: datetime, min_hours: float) -> float | None:
    """The hours between two doses' stated times when they are less than `min_hours` apart (a
    possible double dose, issue 10 finding 2), else None. Either order: a late-logged dose may be
    stated after the next day's."""
    gap = abs((later - earlier).total_seconds()) / 3600
    return gap if gap < min_hours else None


def is_draw_day(day: int, cfg: StudyConfig) -> bool:
    """Whether a blood count is planned on course day `day` (registry: days 7, 10 and 14)."""
    return day in cfg.draw_days


def logging_cutoff(day1: date, day: int, tz: str, cfg: StudyConfig) -> datetime:
    """The UTC instant after which only staff may record day `day`'s dose (DESIGN §3)."""
    last_date = date_of_day(day1, day, cfg) + timedelta(days=cfg.cutoff_days_after)
    return local_instant(last_date, cfg.cutoff_time, tz)


# -------------------------------------------------------------------------------------------------
# Dose days


def dose_for_day(day: int, starting_dose_mg: float,
                 decisions: Sequence[tuple[int, float]]) -> float:
    """Prescribed mg on `day`: the last-signed decision in effect by then, else the start dose."""
    # Signing order, not effective day, decides: a later signature supersedes (DESIGN §6).
    dose = starting_dose_mg
    for effective_day, dose_mg in decisions:
        if effective_day <= day:
            dose = dose_mg
    return dose


def decisions_with_end(decisions: Sequence[tuple[int, float]], last_day: int | None) -> list[tuple[int, float]]:
    """(effective day, mg) decisions in signing order, with a course ended early after `last_day`
    read as a hold from the next day: those days are then neither due nor missed (DESIGN §2)."""
    # Appended last, so it outranks every earlier signature (dose_for_day: signing order decides).
    return [*decisions, (last_day + 1, 0.0)] if last_day is not None else list(decisions)


def tablet_count(dose_mg: float, cfg: StudyConfig) -> int:
    """Number of tablets for `dose_mg`; ValueError if it is not whole tablets."""
    quotient = dose_mg / cfg.tablet_strength_mg
    if dose_mg < 0 or not _is_whole(quotient):
        raise ValueError(
            f"{dose_mg} mg is not a whole number of {cfg.tablet_strength_mg} mg tablets")
    return round(quotient)


class DoseStatus(StrEnum):
    UPCOMING = "upcoming"
    DUE = "due"
    TAKEN = "taken"
    NOT_TAKEN = "not_taken"
    MISSED = "missed"
    HELD = "held"
    # A clinical-review pause is open: wait for the study team's call (neither taken nor missed).
    PAUSED = "paused"
    # After the participant withdrew or completed: neither due nor missed.
    ENDED = "ended"


def participant_may_log(day_date: date, now: datetime, tz: str, cutoff: datetime) -> bool:
    """Whether the participant may log this day: it has begun locally and the cutoff is ahead."""
    return local_date(now, tz) >= day_date and now < cutoff


# -------------------------------------------------------------------------------------------------
# Blood counts


def check_lab_value(name: str, value: float, cfg: StudyConfig) -> None:
    """Raise ValueError unless `value` is a finite, plausible 'plt', 'hb' or 'anc' result."""
    if name not in LAB_UNITS:
        raise ValueError(f"unknown lab {name!r}; expected one of {sorted(LAB_UNITS)}")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name.upper()} must be a finite number, got {value!r}")
    low, high = getattr(cfg, f"{name}_range")
    if not low <= value <= high:
        unit = LAB_UNITS[name]
        raise ValueError(f"{name.upper()} {value:g} {unit} is outside the plausible range "
                         f"{low:g}–{high:g} {unit}")


def platelet_grade(plt: float, cfg: StudyConfig, lln: float | None = None) -> int:
    """CTCAE v5.0 grade of "Platelet count decreased" for PLT in ×10⁹/L (0 = not decreased).

    `lln`: the site laboratory's lower limit of normal; None takes the study default (cfg.plt_lln)."""
    # CTCAE v5.0: 1 <LLN–75, 2 <75–50, 3 <50–25, 4 <25 ×10⁹/L; these cut-points are the published
    # standard, only the LLN is site-specific (Site.plt_lln, else study.toml).
    check_lab_value("plt", plt, cfg)
    if plt >= (cfg.plt_lln if lln is None else lln):
        return 0
    for grade, lower_bound in ((1, 75), (2, 50), (3, 25)):
        if plt >= lower_bound:
            return grade
    return 4


def nadir(plts: Iterable[float], cfg: StudyConfig,
          lln: float | None = None) -> tuple[float, int] | None:
    """The lowest PLT and its CTCAE grade, or None when there are no values."""
    values = list(plts)
    if not values:
        return None
    lowest = min(values)
    return lowest, platelet_grade(lowest, cfg, lln)


def plt_needs_confirmation(plt: float, cfg: StudyConfig) -> bool:
    """Whether a PLT this low must be confirmed by the nurse before it is saved (0 or ≤ the tier)."""
    # A 0 or a single-digit count is more often a typo (a dropped digit) than a result; NCT07334093
    # rescues at PLT ≤ 10, so a true value must not be lost either: confirm, never refuse.
    return plt <= cfg.rules.confirm_at_or_below


# The rule table's texts, with their values named: staff see them translated (staff/vocab.RULE, the
# same English words) and the signed decision keeps the English (DoseDecision.rule).
RULE_TEXTS = {
    "R1": "R1: PLT ≥ %(hold)s×10⁹/L → hold for the rest of the course",
    "R2": "R2: PLT ≥ %(rise)s×10⁹/L above the course baseline (%(baseline)s) → hold for the rest of the course",
    "R4": "R4: held and PLT < %(hold)s×10⁹/L → resume at the starting dose %(start)s mg",
    "R3_max": "R3: PLT < %(below)s×10⁹/L but already at the maximum %(max)s mg → continue at %(mg)s mg",
    "R3": "R3: PLT < %(below)s×10⁹/L → one step up to %(mg)s mg",
    "R5": "R5: PLT %(below)s–%(hold)s×10⁹/L → continue at %(mg)s mg",
}


@dataclass(frozen=True)
class DoseSuggestion:
    """What the rule table suggests; a clinician decides (DESIGN §2)."""

    action: str  # 'hold' | 'increase' | 'continue' | 'resume'
    dose_mg: float
    rule: str  # in English, as RULE_TEXTS[rule_key] with rule_params
    urgent: bool  # PLT ≤ urgent threshold: staff flag "consider rescue therapy"
    rule_key: str = ""
    rule_params: tuple[tuple[str, str], ...] = ()


def suggest_dose(current_mg: float, plt: float, baseline_plt: float | None,
                 cfg: StudyConfig) -> DoseSuggestion:
    """Apply the configured PLT rule table (CLINICAL-NOTES default; a clinician decides)."""
    check_lab_value("plt", plt, cfg)
    if baseline_plt is not None:
        check_lab_value("plt", baseline_plt, cfg)
    if not math.isfinite(current_mg) or current_mg < 0:
        raise ValueError(f"current dose must be ≥ 0 mg, got {current_mg!r}")
    r = cfg.rules
    # NCT07334093 rescues at PLT ≤ 10 (or < 20 with bleeding risk). The flag is independent of the
    # dose so that a suggested increase never hides the need to consider rescue therapy.
    urgent = plt <= r.urgent_at_or_below

    def suggest(action: str, dose_mg: float, rule_key: str, **values: float) -> DoseSuggestion:
        params = tuple((name, f"{value:g}") for name, value in values.items())
        return DoseSuggestion(action, float(dose_mg), RULE_TEXTS[rule_key] % dict(params), urgent,
                              rule_key, params)

    # R1/R2 after NCT07334093 ("stop if PLT ≥ 100 or a rise ≥ 50 from baseline") and NCT07408648.
    if plt >= r.hold_at_or_above:
        return suggest("hold", 0, "R1", hold=r.hold_at_or_above)
    if baseline_plt is not None and plt - baseline_plt >= r.hold_rise_from_baseline:
        return suggest("hold", 0, "R2", rise=r.hold_rise_from_baseline, baseline=baseline_plt)
    if current_mg == 0:
        # One step up from 0 would be the lowest level (2.5 mg), below the registry's 5 mg starting
        # dose: a participant whose PLT fell back after a hold restarts where the protocol starts.
        return suggest("resume", cfg.starting_dose_mg, "R4", hold=r.hold_at_or_above, start=cfg.starting_dose_mg)
    if plt < r.increase_below:
        higher = [mg for mg in cfg.dose_levels_mg if current_mg < mg <= cfg.max_dose_mg]
        if not higher:
            return suggest("continue", current_mg, "R3_max", below=r.increase_below, max=cfg.max_dose_mg,
                           mg=current_mg)
        return suggest("increase", min(higher), "R3", below=r.increase_below, mg=min(higher))
    return suggest("continue", current_mg, "R5", below=r.increase_below, hold=r.hold_at_or_above, mg=current_mg)


# -------------------------------------------------------------------------------------------------
# Symptoms and messages


def danger_symptoms(keys: Iterable[str], cfg: StudyConfig) -> list[Symptom]:
    """The reported symptoms that need the study team now, in checklist order.

    ValueError on a key the checklist does not have."""
    wanted = set(keys)
    unknown = wanted - {s.key for s in cfg.symptoms}
    if unknown:
        raise ValueError(f"unknown symptom key(s): {sorted(unknown)}")
    return [s for s in cfg.symptoms if s.key in wanted and s.danger]


@dataclass(frozen=True)
class QuietHours:
    """The local hours in which no participant message is sent (DESIGN §4), `start` to `end`, which
    may cross midnight; `start == end` is an empty window: quiet hours switched off."""

    start: time
    end: time

    def __contains__(self, wall: time) -> bool:
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= wall < self.end
        return wall >= self.start or wall < self.end

    @property
    def off(self) -> bool:
        return self.start == self.end


def quiet_window(cfg: StudyConfig, start: time | None = None, end: time | None = None) -> QuietHours:
    """A site's quiet hours: its own `start`–`end` (Site.quiet_start/quiet_end) when it set both, else
    the study's (study.toml [reminders] quiet_start–quiet_end). The one rule every sender and every
    reminder-time check reads."""
    if start is None or end is None:
        return QuietHours(cfg.reminders.quiet_start, cfg.reminders.quiet_end)
    return QuietHours(start, end)


def in_quiet_hours(instant: datetime, tz: str, quiet: QuietHours) -> bool:
    """Whether `instant` falls in the quiet window, judged in the local zone `tz`."""
    return _local(instant, tz).time() in quiet


_HHMM = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]", re.ASCII)


def hhmm(value: object) -> time | None:
    """The wall time of an "HH:MM" string (ASCII digits, 00:00–23:59); None for anything else."""
    if not isinstance(value, str) or not _HHMM.fullmatch(value):
        return None
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def reminder_time_refusal(value: object, quiet: QuietHours) -> str | None:
    """Why a chosen local dose-reminder time cannot be used, or None when it can.

    "invalid": not HH:MM in ASCII digits. "quiet_hours": inside the participant's site's quiet
    window (`quiet_window`, DESIGN §4), where no participant message is sent, so the reminder
    would wait until the window ends or expire unsent. One rule for the participant's settings
    and for staff enrolment."""
    wall = hhmm(value)
    if wall is None:
        return "invalid"
    if wall in quiet:
        return "quiet_hours"
    return None


def quiet_hours_end(instant: datetime, tz: str, quiet: QuietHours) -> datetime:
    """The UTC instant the current quiet window ends; `instant` itself when not in quiet hours."""
    if not in_quiet_hours(instant, tz, quiet):
        return instant.astimezone(UTC)
    local = _local(instant, tz)
    # Before midnight in a window that crosses it, the window ends tomorrow morning.
    crosses_tonight = quiet.start > quiet.end and local.time() >= quiet.start
    end_date = local.date() + timedelta(days=1) if crosses_tonight else local.date()
    return local_instant(end_date, quiet.end, tz)


# -------------------------------------------------------------------------------------------------
# Screening formulae (CLINICAL-NOTES "Formulae")


def cockcroft_gault(age_years: float, weight_kg: float, scr_mg_dl: float, female: bool) -> float:
    """Creatinine clearance in mL/min: (140 − age) × weight / (72 × SCr), × 0.85 if female."""
    if not (scr_mg_dl > 0 and weight_kg > 0 and 0 <= age_years < 140):
        raise ValueError("Cockcroft-Gault needs SCr > 0, weight > 0 and 0 ≤ age < 140")
    clearance = (140 - age_years) * weight_kg / (72 * scr_mg_dl)
    return clearance * 0.85 if female else clearance


def creatinine_mg_dl(value: float, unit: str) -> float:
    """Serum creatinine in mg/dL from 'mg/dL' or 'umol/L' (µmol/L ÷ 88.4)."""
    if unit == "mg/dL":
        return value
    if unit in ("umol/L", "µmol/L", "μmol/L"):
        return value / 88.4
    raise ValueError(f"unknown creatinine unit {unit!r}; expected 'mg/dL' or 'umol/L'")
