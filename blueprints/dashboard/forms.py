"""Dashboard forms (Flask-WTF: every form carries a CSRF token)."""

from flask_wtf import FlaskForm
from flask_wtf.file import FileAllowed, FileField, FileSize
from wtforms import (
    DateField,
    EmailField,
    HiddenField,
    IntegerField,
    PasswordField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Email, EqualTo, Length, NumberRange, Optional
from wtforms.widgets import CheckboxInput, HiddenInput, ListWidget

from services.webhooks import DEFAULT_EVENTS, EVENTS


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Email()])
    password = PasswordField("Password", validators=[DataRequired()])


class RegisterForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Email()])
    username = StringField("Your name", validators=[Optional(), Length(max=64)])
    password = PasswordField("Password", validators=[DataRequired(), Length(min=8, max=1024)])


class ChangePasswordForm(FlaskForm):
    current = PasswordField("Current password", validators=[DataRequired()])
    new = PasswordField("New password", validators=[DataRequired(), Length(min=8, max=1024)])
    confirm = PasswordField("Repeat the new password", validators=[EqualTo("new", "The passwords do not match")])


class ForgotPasswordForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Email()])


class ResetPasswordForm(FlaskForm):
    new = PasswordField("New password", validators=[DataRequired(), Length(min=8, max=1024)])
    confirm = PasswordField("Repeat the new password", validators=[EqualTo("new", "The passwords do not match")])


class SessionForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=100)], default="My Session")
    description = StringField("What is it for?", validators=[Optional(), Length(max=500)])


class PairCodeForm(FlaskForm):
    phone = StringField("Phone number", validators=[DataRequired(), Length(max=32)])


class SendForm(FlaskForm):
    to = StringField("Phone number", validators=[DataRequired()])
    message = TextAreaField("Message", validators=[DataRequired(), Length(max=4096)])


class BulkForm(FlaskForm):
    session_id = SelectField("Session", validators=[DataRequired()])
    numbers = TextAreaField("Numbers", validators=[Optional()], render_kw={"rows": 6})
    file = FileField(
        "…or a CSV file",
        render_kw={"accept": ".csv,.txt,text/csv"},
        validators=[
            FileAllowed(["csv", "txt"], "Choose a .csv file: one number per row, or a column named number or phone"),
            FileSize(max_size=1024 * 1024, message="The file is over 1 MB; split the list into smaller files"),
        ],
    )
    message = TextAreaField("Message", validators=[DataRequired(), Length(max=4096)])
    delay = IntegerField("Delay between messages (ms)", default=2000, validators=[NumberRange(min=0, max=600000)])


class BulkPreviewForm(FlaskForm):
    """What the preview showed, carried to the send: the valid numbers, one a line."""

    session_id = HiddenField(validators=[DataRequired()])
    contacts = HiddenField(validators=[DataRequired()])
    message = HiddenField(validators=[DataRequired(), Length(max=4096)])
    delay = IntegerField(widget=HiddenInput(), validators=[NumberRange(min=0, max=600000)])


class ApiKeyForm(FlaskForm):
    name = StringField(
        "Name", validators=[DataRequired(), Length(max=100)], render_kw={"placeholder": "Billing server"}
    )
    mode = SelectField(
        "Mode",
        choices=[("live", "Live: messages are really sent"), ("test", "Test: sends are simulated, nothing is sent")],
        default="live",
    )
    # The user's sessions, as checkboxes; none ticked means every session.
    sessions = SelectMultipleField(
        "Only these sessions", widget=ListWidget(prefix_label=False), option_widget=CheckboxInput()
    )
    expires = DateField("Expires on (optional)", validators=[Optional()])


# What each webhook event means, for the event checkboxes.
EVENT_LABELS = {
    "message.received": "message.received: a contact wrote to a session",
    "message.status": "message.status: a sent message's status changed (sent, delivered, read, failed)",
    "session.connected": "session.connected: a session connected",
    "session.disconnected": "session.disconnected: a session disconnected or was logged out",
    "session.qr": "session.qr: a session has a new QR code to scan",
    "bulk.finished": "bulk.finished: every message of a bulk send was answered",
    "session.paused": "session.paused: the send governor paused a session to protect its number",
    "presence.update": "presence.update: a contact came online, went offline, or is typing",
}


class WebhookForm(FlaskForm):
    url = StringField(
        "Endpoint URL",
        validators=[DataRequired(), Length(max=2048)],
        render_kw={"placeholder": "https://example.com/wagate/webhook", "inputmode": "url"},
    )
    events = SelectMultipleField(
        "Events",
        choices=[(event, EVENT_LABELS[event]) for event in EVENTS],
        default=list(DEFAULT_EVENTS),
        validators=[DataRequired("Tick at least one event")],
        widget=ListWidget(prefix_label=False),
        option_widget=CheckboxInput(),
    )
    # "" for every session; the user's sessions are filled in by the view.
    session_id = SelectField("Session", choices=[("", "Every session")], default="")
