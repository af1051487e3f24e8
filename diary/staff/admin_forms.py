"""Forms of the administration pages (issue 14, item 1); the rules live in services/administration.py."""

from datetime import time

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import FloatField, SelectField, SelectMultipleField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, NumberRange, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from diary import labels
from diary.staff.forms import REASON, options


class WallTimeField(StringField):
    """A local time typed as HH:MM (the service checks it); a stored time shows as HH:MM too."""

    def _value(self) -> str:
        if isinstance(self.data, time):
            return self.data.strftime("%H:%M")
        return super()._value()


class SiteForm(FlaskForm):
    code = StringField(_l("Site code"), validators=[Length(max=32)])
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=200)])
    timezone = StringField(_l("Time zone (IANA, e.g. Asia/Shanghai)"), validators=[DataRequired(), Length(max=64)])
    phone = StringField(_l("Phone participants call"), validators=[DataRequired(), Length(max=32)],
                        render_kw={"inputmode": "tel"})
    on_call_phone = StringField(_l("On-call mobile (receives danger alerts by SMS)"),
                                validators=[Optional(), Length(max=32)], render_kw={"inputmode": "tel"})
    emergency_phone = StringField(_l("Local emergency number"), default="120",
                                  validators=[DataRequired(), Length(max=16)], render_kw={"inputmode": "tel"})
    plt_lln = FloatField(_l("Laboratory PLT lower limit of normal (×10⁹/L, empty: study default)"),
                         validators=[Optional(), NumberRange(min=1, max=1500)], render_kw={"inputmode": "decimal"})
    quiet_start = WallTimeField(_l("Quiet hours start (HH:MM; both empty: study default)"))
    quiet_end = WallTimeField(_l("Quiet hours end (HH:MM; the same time as the start: no quiet hours)"))


class StaffForm(FlaskForm):
    email = StringField(_l("E-mail"), validators=[Length(max=254)], render_kw={"autocomplete": "off"})
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=200)])
    role = SelectField(_l("Role"), choices=options(labels.ROLE.items()))
    sites = SelectMultipleField(_l("Sites"), coerce=int, widget=ListWidget(prefix_label=False),
                                option_widget=CheckboxInput())


class AccountActionForm(FlaskForm):
    reason = TextAreaField(_l("Reason"), validators=REASON)
