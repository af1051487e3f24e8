"""The screening checklist (registry record's 11 inclusion and 18 exclusion criteria) as pure functions.

The checklist and its thresholds live in diary/screening.toml. Computed criteria are evaluated here
from the screening values; the others are yes/no answers by the screener. No Flask, no database.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from decimal import Decimal
from pathlib import Path

from diary.study import (
    _list_of,
    _num,
    _require,
    _str,
    _table_of,
    cockcroft_gault,
    creatinine_mg_dl,
    read_toml,
)

DEFAULT_PATH = Path(__file__).with_name("screening.toml")
KINDS = ("inclusion", "exclusion")
CHECKS = ("computed", "answer")
SEXES = ("female", "male")
CREATININE_UNITS = ("umol/L", "mg/dL")


@dataclass(frozen=True)
class Thresholds:
    """Every number a computed criterion compares against (screening.toml [thresholds])."""

    age_min: float = 18
    age_max: float = 75
    previous_nadir_below: float = 75
    ecog_max: float = 2
    creatinine_max_uln: float = 1.5
    ccr_min: float = 55
    bilirubin_max_uln: float = 1.5
    bilirubin_max_uln_liver: float = 3
    transaminase_max_uln: float = 3
    transaminase_max_uln_liver: float = 5
    inr_max_uln: float = 1.5
    aptt_max_uln: float = 1.5
    plt_at_or_below: float = 10
    liver_exclusion_above_uln: float = 3
    liver_exclusion_at_or_above_uln_liver: float = 5
    egfr_at_or_below: float = 60
    ccr_plausible_max: float = 250

    def __post_init__(self) -> None:
        _require(0 <= self.age_min < self.age_max, "thresholds.age_min", "need 0 ≤ age_min < age_max")


@dataclass(frozen=True)
class Criterion:
    key: str
    kind: str
    number: str
    check: str
    text_en: str
    text_zh: str

    def __post_init__(self) -> None:
        _require(self.kind in KINDS, f"criteria.{self.key}.kind", f"{self.kind!r} is not one of {KINDS}")
        _require(self.check in CHECKS, f"criteria.{self.key}.check", f"{self.check!r} is not one of {CHECKS}")
        if self.check == "computed":
            _require(self.key in COMPUTED, f"criteria.{self.key}.check",
                     f"no computation for {self.key!r}; known: {sorted(COMPUTED)}")

    def text(self, lang: str) -> str:
        return self.text_zh if lang.lower().startswith("zh") else self.text_en

    @property
    def label(self) -> str:
        """'I3' for inclusion 3, 'E13' for exclusion 13."""
        return ("I" if self.kind == "inclusion" else "E") + self.number


@dataclass(frozen=True)
class Checklist:
    thresholds: Thresholds
    criteria: tuple[Criterion, ...]

    def __post_init__(self) -> None:
        keys = [c.key for c in self.criteria]
        duplicates = sorted({k for k in keys if keys.count(k) > 1})
        _require(not duplicates, "criteria", f"duplicate keys {duplicates}")

    @property
    def answered(self) -> tuple[Criterion, ...]:
        """The criteria the screener answers yes or no."""
        return tuple(c for c in self.criteria if c.check == "answer")


_READ = _table_of(Checklist, {
    "thresholds": _table_of(Thresholds, {f.name: _num for f in fields(Thresholds)}),
    "criteria": _list_of(_table_of(Criterion, {name: _str for name in (
        "key", "kind", "number", "check", "text_en", "text_zh")})),
})


def load_checklist(path: str | Path | None = None) -> Checklist:
    """Read and validate a screening TOML (default: the packaged diary/screening.toml)."""
    return read_toml(Path(path) if path is not None else DEFAULT_PATH, "screening checklist", _READ)


# -------------------------------------------------------------------------------------------------
# Screening values


# Plausible entry ranges: a value outside is a typo, refused before it can decide eligibility.
RANGES: dict[str, tuple[float, float]] = {
    "age_years": (0, 120), "weight_kg": (20, 300), "bilirubin": (0, 1000), "bilirubin_uln": (0.01, 1000),
    "alt": (0, 10000), "alt_uln": (0.01, 1000), "ast": (0, 10000), "ast_uln": (0.01, 1000),
    "inr": (0.1, 20), "inr_uln": (0.1, 20), "aptt": (5, 300), "aptt_uln": (5, 300), "ecog": (0, 5),
    "plt": (0, 1500), "previous_nadir_plt": (0, 1500),
}
# Serum creatinine, each unit its own plausible adult range (CLINICAL-NOTES "Creatinine units": roughly
# 20–1,500 µmol/L and 0.2–15 mg/dL). One range for both let 1.8 meant as mg/dL pass as 1.8 µmol/L.
CREATININE_RANGES: dict[str, tuple[float, float]] = {"umol/L": (20, 1500), "mg/dL": (0.2, 15)}


@dataclass(frozen=True)
class Measures:
    """What the screener measured or knows. None is "not entered"; ULNs are in the value's unit."""

    age_years: float | None = None
    sex: str | None = None  # 'female' | 'male' (Cockcroft-Gault × 0.85 for women)
    weight_kg: float | None = None
    creatinine: float | None = None
    creatinine_unit: str = "umol/L"
    creatinine_uln: float | None = None
    bilirubin: float | None = None
    bilirubin_uln: float | None = None
    alt: float | None = None
    alt_uln: float | None = None
    ast: float | None = None
    ast_uln: float | None = None
    inr: float | None = None
    inr_uln: float | None = None
    aptt: float | None = None  # seconds
    aptt_uln: float | None = None
    ecog: float | None = None
    plt: float | None = None
    liver_metastasis: bool | None = None
    adc_planned: bool | None = None  # cohort 1
    previous_nadir_plt: float | None = None  # cohort 2
    same_regimen_two_cycles: bool | None = None  # cohort 2

    def errors(self) -> dict[str, str]:
        """Field name → 'out_of_range' | 'unknown' | 'whole_number' for values that cannot be right."""
        found = {}
        for name, (low, high) in RANGES.items():
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and low <= value <= high):
                found[name] = "out_of_range"
        if self.ecog is not None and "ecog" not in found and self.ecog != int(self.ecog):
            found["ecog"] = "whole_number"
        if self.sex is not None and self.sex not in SEXES:
            found["sex"] = "unknown"
        if self.creatinine_unit not in CREATININE_UNITS:
            found["creatinine_unit"] = "unknown"
        else:
            low, high = CREATININE_RANGES[self.creatinine_unit]
            for name in ("creatinine", "creatinine_uln"):
                value = getattr(self, name)
                if value is not None and not (math.isfinite(value) and low <= value <= high):
                    found[name] = "out_of_range_for_unit"
        return found

    def clearance_error(self, thresholds: Thresholds) -> dict[str, str]:
        """'implausible_clearance' on the creatinine when Cockcroft-Gault gives more than any kidney
        can (> ccr_plausible_max, about 250 mL/min: CLINICAL-NOTES): almost always a unit mix-up."""
        if self.errors():
            return {}
        ccr = creatinine_clearance(self)
        if ccr is not None and ccr > thresholds.ccr_plausible_max:
            return {"creatinine": "implausible_clearance"}
        return {}

    def creatinine_in_mg_dl(self) -> float | None:
        """The creatinine converted to mg/dL (shown before signing), or None if not entered."""
        if self.creatinine is None or self.creatinine_unit not in CREATININE_UNITS:
            return None
        return creatinine_mg_dl(self.creatinine, self.creatinine_unit)

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def creatinine_clearance(m: Measures) -> float | None:
    """Cockcroft-Gault clearance in mL/min, or None when age, weight, sex or creatinine is missing."""
    if None in (m.age_years, m.weight_kg, m.sex, m.creatinine) or m.creatinine <= 0:
        return None
    if not 0 <= m.age_years < 140:
        return None
    scr = creatinine_mg_dl(m.creatinine, m.creatinine_unit)
    return cockcroft_gault(m.age_years, m.weight_kg, scr, m.sex == "female")


# -------------------------------------------------------------------------------------------------
# Evaluation


@dataclass(frozen=True)
class Result:
    """One criterion's outcome. `ok`: does not bar enrolment; None: data missing (bars it too)."""

    criterion: Criterion
    ok: bool | None
    detail: str = ""  # numbers and symbols only, readable in any language
    missing: tuple[str, ...] = ()

    @property
    def failed(self) -> bool:
        return self.ok is not True


@dataclass(frozen=True)
class Outcome:
    results: tuple[Result, ...]
    ccr: float | None
    cohort: str
    failed: tuple[str, ...] = field(default=())

    @property
    def eligible(self) -> bool:
        return not self.failed


def _ratio(value: float | None, uln: float | None) -> Decimal | None:
    # Decimal, from the numbers as typed: in binary floating point 2.1 / 1.4 is 1.5000000000000002,
    # which would fail "INR ≤ 1.5×ULN" for an INR of exactly 1.5×ULN (issue 10, finding 16).
    if value is None or uln is None or uln <= 0:
        return None
    return Decimal(repr(value)) / Decimal(repr(uln))


def _limit(value: float) -> Decimal:
    """A threshold from the checklist, as the decimal number written in screening.toml."""
    return Decimal(repr(value))


# CrCl is computed in floating point; only its rounding noise is forgiven at a boundary.
_CCR_TOLERANCE = 1e-9


def _missing(m: Measures, *names: str) -> tuple[str, ...]:
    return tuple(n for n in names if getattr(m, n) is None)


Computation = Callable[[Measures, str, Thresholds, float | None], tuple[bool | None, str, tuple[str, ...]]]


def _age(m: Measures, _cohort: str, t: Thresholds, _ccr: float | None):
    if m.age_years is None:
        return None, "", ("age_years",)
    return t.age_min <= m.age_years <= t.age_max, f"{m.age_years:g} y ({t.age_min:g}–{t.age_max:g})", ()


def _cohort(m: Measures, cohort: str, t: Thresholds, _ccr: float | None):
    if cohort == "primary":
        if m.adc_planned is None:
            return None, "", ("adc_planned",)
        return m.adc_planned, "ADC ✓" if m.adc_planned else "ADC ✗", ()
    missing = _missing(m, "previous_nadir_plt", "same_regimen_two_cycles")
    if missing:
        return None, "", missing
    nadir_ok = m.previous_nadir_plt < t.previous_nadir_below
    detail = (f"nadir {m.previous_nadir_plt:g}×10⁹/L (< {t.previous_nadir_below:g}) "
              f"{'✓' if nadir_ok else '✗'} · ≥ 2 cycles {'✓' if m.same_regimen_two_cycles else '✗'}")
    return nadir_ok and m.same_regimen_two_cycles, detail, ()


def _ecog(m: Measures, _cohort: str, t: Thresholds, _ccr: float | None):
    if m.ecog is None:
        return None, "", ("ecog",)
    return m.ecog <= t.ecog_max, f"ECOG {m.ecog:g} (≤ {t.ecog_max:g})", ()


def _renal_in(m: Measures, _cohort: str, t: Thresholds, ccr: float | None):
    missing = _missing(m, "creatinine", "creatinine_uln", "age_years", "weight_kg", "sex")
    if missing:
        return None, "", missing
    cr = _ratio(m.creatinine, m.creatinine_uln)
    ok = cr <= _limit(t.creatinine_max_uln) and ccr >= t.ccr_min - _CCR_TOLERANCE
    return ok, f"Cr {cr:.2f}×ULN (≤ {t.creatinine_max_uln:g}) · CrCl {ccr:.1f} mL/min (≥ {t.ccr_min:g})", ()


def _renal_ex(m: Measures, _cohort: str, t: Thresholds, ccr: float | None):
    missing = _missing(m, "creatinine", "creatinine_uln", "age_years", "weight_kg", "sex")
    if missing:
        return None, "", missing
    cr = _ratio(m.creatinine, m.creatinine_uln)
    applies = cr >= _limit(t.creatinine_max_uln) or ccr <= t.egfr_at_or_below + _CCR_TOLERANCE
    return not applies, (f"Cr {cr:.2f}×ULN (≥ {t.creatinine_max_uln:g} excludes) · eGFR {ccr:.1f} mL/min "
                         f"(≤ {t.egfr_at_or_below:g} excludes)"), ()


_LIVER = ("bilirubin", "bilirubin_uln", "alt", "alt_uln", "ast", "ast_uln", "liver_metastasis")


def _liver_ratios(m: Measures) -> tuple[float, float, float]:
    return _ratio(m.bilirubin, m.bilirubin_uln), _ratio(m.alt, m.alt_uln), _ratio(m.ast, m.ast_uln)


def _liver_in(m: Measures, _cohort: str, t: Thresholds, _ccr: float | None):
    missing = _missing(m, *_LIVER)
    if missing:
        return None, "", missing
    tbil, alt, ast = _liver_ratios(m)
    # Registry inclusion 6.2: liver metastasis (or intrahepatic cholangiocarcinoma) relaxes both limits.
    bil_max = t.bilirubin_max_uln_liver if m.liver_metastasis else t.bilirubin_max_uln
    tx_max = t.transaminase_max_uln_liver if m.liver_metastasis else t.transaminase_max_uln
    ok = tbil <= _limit(bil_max) and alt <= _limit(tx_max) and ast <= _limit(tx_max)
    mets = "liver mets" if m.liver_metastasis else "no liver mets"
    return ok, (f"{mets}: TBIL {tbil:.2f}×ULN (≤ {bil_max:g}) · ALT {alt:.2f}×ULN · AST {ast:.2f}×ULN "
                f"(≤ {tx_max:g})"), ()


def _liver_ex(m: Measures, _cohort: str, t: Thresholds, _ccr: float | None):
    missing = _missing(m, *_LIVER)
    if missing:
        return None, "", missing
    values = _liver_ratios(m)
    # The record joins the conditions with "and"; any one of them is read as excluding (conservative).
    if m.liver_metastasis:
        limit = t.liver_exclusion_at_or_above_uln_liver
        applies = any(v >= _limit(limit) for v in values)
        rule = f"≥ {limit:g}"
    else:
        limit = t.liver_exclusion_above_uln
        applies = any(v > _limit(limit) for v in values)
        rule = f"> {limit:g}"
    tbil, alt, ast = values
    return not applies, (f"TBIL {tbil:.2f} · ALT {alt:.2f} · AST {ast:.2f} ×ULN ({rule} excludes)"), ()


def _inr(m: Measures, _cohort: str, t: Thresholds, _ccr: float | None):
    missing = _missing(m, "inr", "inr_uln")
    if missing:
        return None, "", missing
    ratio = _ratio(m.inr, m.inr_uln)
    return ratio <= _limit(t.inr_max_uln), f"INR {ratio:.2f}×ULN (≤ {t.inr_max_uln:g})", ()


def _aptt(m: Measures, _cohort: str, t: Thresholds, _ccr: float | None):
    missing = _missing(m, "aptt", "aptt_uln")
    if missing:
        return None, "", missing
    ratio = _ratio(m.aptt, m.aptt_uln)
    return ratio <= _limit(t.aptt_max_uln), f"APTT {ratio:.2f}×ULN (≤ {t.aptt_max_uln:g})", ()


def _plt(m: Measures, _cohort: str, t: Thresholds, _ccr: float | None):
    if m.plt is None:
        return None, "", ("plt",)
    return m.plt > t.plt_at_or_below, f"PLT {m.plt:g}×10⁹/L (≤ {t.plt_at_or_below:g} excludes)", ()


COMPUTED: dict[str, Computation] = {
    "in1_age": _age, "in3_cohort": _cohort, "in5_ecog": _ecog, "in6a_renal": _renal_in,
    "in6b_liver": _liver_in, "in6c_inr": _inr, "in6d_aptt": _aptt, "ex1_plt": _plt, "ex12_liver": _liver_ex,
    "ex13_renal": _renal_ex,
}


def evaluate(checklist: Checklist, cohort: str, measures: Measures,
             answers: Mapping[str, bool | None]) -> Outcome:
    """Every criterion's result; the outcome fails on each criterion not met, applying or unanswered."""
    if cohort not in ("primary", "secondary"):
        raise ValueError(f"unknown cohort {cohort!r}")
    bad = measures.errors() | measures.clearance_error(checklist.thresholds)
    if bad:
        raise ValueError(f"implausible screening values: {sorted(bad)}")
    ccr = creatinine_clearance(measures)
    results = []
    for criterion in checklist.criteria:
        if criterion.check == "computed":
            ok, detail, missing = COMPUTED[criterion.key](measures, cohort, checklist.thresholds, ccr)
            results.append(Result(criterion, ok, detail, missing))
            continue
        answer = answers.get(criterion.key)
        if answer is None:
            results.append(Result(criterion, None, "", ("answer",)))
        else:
            # Inclusion: "yes" = met. Exclusion: "yes" = it applies.
            ok = answer if criterion.kind == "inclusion" else not answer
            results.append(Result(criterion, ok, "yes" if answer else "no"))
    failed = tuple(r.criterion.key for r in results if r.failed)
    return Outcome(tuple(results), ccr, cohort, failed)
