"""The admin's forms: Flask-WTF gives each a CSRF token checked on submit."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    IntegerField,
    PasswordField,
    StringField,
    TextAreaField,
)
from wtforms.validators import AnyOf, DataRequired, Length, NumberRange, Optional


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


class InviteForm(FlaskForm):
    """A new invite code for a team of the officer's area; leaders only by such an invite."""

    team = StringField("team", validators=[DataRequired(), Length(max=64)])
    role = StringField("role", validators=[AnyOf(["member", "leader"])])
    days = IntegerField("days", default=30, validators=[NumberRange(1, 90)])
    max_uses = IntegerField("max_uses", default=30, validators=[NumberRange(1, 200)])


class ExportForm(FlaskForm):
    """The period, area and format of a download; posted so that the token guards it."""

    period = StringField("period", default="year", validators=[AnyOf(["year", "range"])])
    year = IntegerField("year", validators=[Optional(), NumberRange(2000, 2100)])
    update_window = BooleanField("update_window")
    start = DateField("start", validators=[Optional()])
    end = DateField("end", validators=[Optional()])
    area = IntegerField("area", validators=[Optional(), NumberRange(1, 2**31 - 1)])
    fmt = StringField("fmt", default="xlsx", validators=[AnyOf(["xlsx", "csv"])])


class ContentForm(FlaskForm):
    """A library item; editing it writes a new version (what was sent keeps the old one)."""

    title = StringField("title", validators=[DataRequired(), Length(max=200)])
    text = TextAreaField("text", validators=[DataRequired(), Length(max=4000)])
    topic = StringField("topic", validators=[Length(max=64)])
    tags = StringField("tags", validators=[Length(max=300)])
    use_in_village = BooleanField("use_in_village")


class PostForm(FlaskForm):
    """A state-changing request with nothing but its CSRF token (buttons, the live count)."""
