"""The admin's forms: Flask-WTF gives each a CSRF token checked on submit."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length


class LoginForm(FlaskForm):
    username = StringField("username", validators=[DataRequired(), Length(max=80)])
    password = PasswordField("password", validators=[DataRequired(), Length(max=200)])


class ReviewForm(FlaskForm):
    """Verify, or return with a reason the member reads in chat."""

    reason = TextAreaField("reason", validators=[Length(max=500)])


class LogoutForm(FlaskForm):
    pass


class CaseStatusForm(FlaskForm):
    pass
