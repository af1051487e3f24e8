"""Staff forms. Flask-WTF gives each its CSRF token; the rules themselves live in the services."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    FloatField,
    IntegerField,
    PasswordField,
    RadioField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
    TimeField,
)
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional, Regexp

from diary import labels


def options(pairs) -> list[SelectChoice]:
    """Choices for a select or radio group (WTForms 3.3 deprecates plain tuples)."""
    return [SelectChoice(value, label) for value, label in pairs]


REASON = [DataRequired(_l("Give a reason.")), Length(max=500)]
YES_NO = options([("", _l("not known")), ("yes", _l("yes")), ("no", _l("no"))])


def number(label, required: bool = False):
    first = InputRequired(_l("Enter a number.")) if required else Optional()
    return FloatField(label, validators=[first], render_kw={"inputmode": "decimal"})


class ScreeningForm(FlaskForm):
    screening_number = StringField(_l("Screening number"), validators=[DataRequired(), Length(max=32)])
    site_id = SelectField(_l("Site"), coerce=int)
    cohort = RadioField(_l("Cohort"), choices=options(labels.COHORT.items()), validators=[DataRequired()])
    screened_on = DateField(_l("Screening date"), validators=[InputRequired(_l("Enter a date."))])
    age_years = number(_l("Age (years)"))
    sex = SelectField(_l("Sex"), choices=options([("", _l("not known")), ("female", _l("female")),
                                                  ("male", _l("male"))]))
    weight_kg = number(_l("Weight (kg)"))
    creatinine = number(_l("Serum creatinine"))
    creatinine_unit = SelectField(_l("Creatinine unit"), choices=options([("umol/L", "µmol/L"), ("mg/dL", "mg/dL")]))
    creatinine_uln = number(_l("Creatinine ULN (same unit)"))
    bilirubin = number(_l("Total bilirubin"))
    bilirubin_uln = number(_l("Total bilirubin ULN"))
    alt = number(_l("ALT"))
    alt_uln = number(_l("ALT ULN"))
    ast = number(_l("AST"))
    ast_uln = number(_l("AST ULN"))
    inr = number(_l("INR"))
    inr_uln = number(_l("INR ULN"))
    aptt = number(_l("APTT (seconds)"))
    aptt_uln = number(_l("APTT ULN (seconds)"))
    ecog = number(_l("ECOG performance status (0–5)"))
    plt = number(_l("Screening PLT (×10⁹/L)"))
    liver_metastasis = RadioField(_l("Liver metastasis"), choices=YES_NO, default="")
    adc_planned = RadioField(_l("Cohort 1: ADC treatment planned"), choices=YES_NO, default="")
    previous_nadir_plt = number(_l("Cohort 2: previous ADC cycle's lowest PLT (×10⁹/L)"))
    same_regimen_two_cycles = RadioField(_l("Cohort 2: same regimen planned for at least 2 more cycles"),
                                         choices=YES_NO, default="")
    password = PasswordField(_l("Your password (signature)"), validators=[DataRequired()])


class EnrolForm(FlaskForm):
    study_number = StringField(_l("Study number"), validators=[DataRequired(), Length(max=32)])
    phone = StringField(_l("Mobile phone number"), validators=[DataRequired(), Length(max=32)],
                        render_kw={"inputmode": "tel", "autocomplete": "off"})
    language = SelectField(_l("Language"), choices=options([("zh", "中文"), ("en", "English")]))
    reminder_time = StringField(_l("Reminder time (HH:MM)"), default="08:00",
                                validators=[Regexp(r"^\d\d:\d\d$", message=_l("Use HH:MM, e.g. 08:00."))])
    timezone = StringField(_l("Time zone (empty: the site's)"), validators=[Optional(), Length(max=64)])


class CourseForm(FlaskForm):
    adc_drug = SelectField(_l("ADC given"))
    infusion_date = DateField(_l("Infusion date"), validators=[InputRequired(_l("Enter a date."))])
    start_date = DateField(_l("Course day 1 (empty: the day after the infusion)"), validators=[Optional()])


class VoidCourseForm(FlaskForm):
    reason = TextAreaField(_l("Why this course was entered in error"), validators=REASON)
    password = PasswordField(_l("Your password (signature)"), validators=[DataRequired()])


class EndCourseEarlyForm(FlaskForm):
    last_day = IntegerField(_l("Last course day dosed"), validators=[InputRequired(_l("Enter the course day.")),
                                                                      NumberRange(min=1)])
    reason = TextAreaField(_l("Why the course ends early"), validators=REASON)
    password = PasswordField(_l("Your password (signature)"), validators=[DataRequired()])


class EndForm(FlaskForm):
    status = RadioField(_l("End of participation"), validators=[DataRequired()],
                        choices=options([("withdrawn", _l("Withdrawn")), ("completed", _l("Completed"))]))
    reason = TextAreaField(_l("Reason"), validators=REASON)


class LabForm(FlaskForm):
    course_day = IntegerField(_l("Course day (0 = baseline)"),
                              validators=[InputRequired(_l("Enter the course day.")), NumberRange(min=0)])
    drawn_on = DateField(_l("Draw date"), validators=[InputRequired(_l("Enter a date."))])
    plt = number(_l("PLT (×10⁹/L)"), required=True)
    hb = number(_l("Hb (g/L, optional)"))
    anc = number(_l("ANC (×10⁹/L, optional)"))
    # Shown once a critically low PLT was refused unconfirmed (rules.confirm_at_or_below).
    confirm_low = BooleanField(_l("I have checked the report: this very low PLT is correct"))


class LabCorrectionForm(LabForm):
    reason = TextAreaField(_l("Reason for the correction"), validators=REASON)


class DecisionForm(FlaskForm):
    dose_mg = SelectField(_l("Dose from the effective day"), coerce=float)
    effective_day = SelectField(_l("Effective from course day"), coerce=int)
    override_reason = TextAreaField(_l("Reason (required when departing from the suggestion)"),
                                    validators=[Length(max=500)])
    password = PasswordField(_l("Your password (signature)"), validators=[DataRequired()])


class AckForm(FlaskForm):
    note = TextAreaField(_l("Note"), validators=[DataRequired(_l("Write what was done.")), Length(max=500)])


class DoseCorrectionForm(FlaskForm):
    course_day = IntegerField(_l("Course day"), validators=[InputRequired(), NumberRange(min=1)])
    outcome = SelectField(_l("Record"), choices=options([
        ("taken", _l("Taken")), ("not_taken", _l("Not taken")),
        ("retracted", _l("Clear the record (entered in error)"))]))
    taken_time = TimeField(_l("Time taken (local)"), validators=[Optional()])
    fasting = SelectField(_l("On an empty stomach"), choices=options([
        ("", _l("not said")), ("yes", _l("yes")), ("no", _l("no")), ("unsure", _l("not sure"))]), default="")
    not_taken_reason = SelectField(_l("Why not taken"))
    reason = TextAreaField(_l("Reason for the correction"), validators=REASON)


class SymptomCorrectionForm(FlaskForm):
    reason = TextAreaField(_l("Reason for the correction"), validators=REASON)


class ContactForm(FlaskForm):
    """A correction of the participant's own number or language (issue 14, item 2)."""

    phone = StringField(_l("Mobile phone number"), validators=[DataRequired(), Length(max=32)],
                        render_kw={"inputmode": "tel", "autocomplete": "off"})
    language = SelectField(_l("Language"), choices=options([("zh", "中文"), ("en", "English")]))
    reason = TextAreaField(_l("Reason for the correction"), validators=REASON)


class EmergencyContactForm(FlaskForm):
    name = StringField(_l("Name"), validators=[Length(max=200)], render_kw={"autocomplete": "off"})
    relation = StringField(_l("Relation to the participant"), validators=[Length(max=64)],
                           render_kw={"autocomplete": "off"})
    phone = StringField(_l("Phone number"), validators=[Length(max=32)],
                        render_kw={"inputmode": "tel", "autocomplete": "off"})
    reason = TextAreaField(_l("Reason"), validators=REASON)
