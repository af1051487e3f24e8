"""Sign-in forms. Flask-WTF gives each one its CSRF token; messages are translated."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length, Regexp

PIN = [
    DataRequired(_l("Please enter your PIN.")),
    Regexp(r"^\d{4,6}$", message=_l("The PIN is 4 to 6 digits.")),
]


class StaffLoginForm(FlaskForm):
    email = EmailField(_l("E-mail"), validators=[DataRequired(), Length(max=254)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=200)])


class TotpForm(FlaskForm):
    code = StringField(
        _l("6-digit code from your authenticator app"),
        validators=[DataRequired(), Regexp(r"^\s*\d{3}\s?\d{3}\s*$", message=_l("Enter the 6 digits."))],
    )


class ParticipantLoginForm(FlaskForm):
    phone = StringField(
        _l("Mobile phone number"), validators=[DataRequired(_l("Please enter your mobile number.")), Length(max=32)]
    )
    pin = PasswordField(_l("PIN"), validators=PIN)


class ChoosePinForm(FlaskForm):
    pin = PasswordField(_l("Choose a PIN (4 to 6 digits)"), validators=PIN)
    pin_confirm = PasswordField(
        _l("Type the same PIN again"),
        validators=[
            DataRequired(_l("Please type the PIN again.")),
            EqualTo("pin", message=_l("The two PINs are not the same.")),
        ],
    )


class ForgotPinForm(FlaskForm):
    phone = StringField(
        _l("Mobile phone number"), validators=[DataRequired(_l("Please enter your mobile number.")), Length(max=32)]
    )


class ResetPinForm(ChoosePinForm):
    phone = StringField(
        _l("Mobile phone number"), validators=[DataRequired(_l("Please enter your mobile number.")), Length(max=32)]
    )
    code = StringField(
        _l("Code from the text message"),
        validators=[
            DataRequired(_l("Please enter the code.")),
            Regexp(r"^\s*\d{6}\s*$", message=_l("The code is 6 digits.")),
        ],
    )


class NewPasswordForm(FlaskForm):
    password = PasswordField(_l("New password (at least 12 characters)"),
                             validators=[DataRequired(), Length(min=12, max=200,
                                                                message=_l("At least 12 characters."))])
    password_confirm = PasswordField(_l("Type the new password again"), validators=[
        DataRequired(), EqualTo("password", message=_l("The two passwords are not the same."))])
