"""Dashboard forms (Flask-WTF: every form carries a CSRF token)."""

import re
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from flask_wtf import FlaskForm
from flask_wtf.file import FileAllowed, FileField, FileSize
from wtforms import (
    BooleanField,
    DateField,
    DateTimeLocalField,
    EmailField,
    Field,
    FloatField,
    HiddenField,
    IntegerField,
    PasswordField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
    TimeField,
)
from wtforms.validators import DataRequired, Email, EqualTo, Length, NumberRange, Optional
from wtforms.widgets import CheckboxInput, HiddenInput, ListWidget

from services.errors import ApiError
from services.governor.queue import field_camel
from services.webhooks.endpoints import DEFAULT_EVENTS, EVENTS
from services.webhooks.formats import DEFAULT_FORMAT, FORMAT_LABELS, FORMATS


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


def _when_field(label: str) -> DateTimeLocalField:
    return DateTimeLocalField(
        label,
        validators=[Optional()],
        format=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"],
        invalid_value_message="Pick a date and a time",
    )


def local_send_at(moment: datetime | None, zone: str | None, fallback_zone: str) -> str | None:
    """A datetime-local input's value as the ISO 8601 time (with offset) a `sendAt` takes.
    The input has no zone: it is the browser's (which static/js/app.js puts in a hidden
    field), or without one the session's pace time zone."""
    if moment is None:
        return None
    try:
        tzinfo = ZoneInfo(zone or fallback_zone)
    except (ZoneInfoNotFoundError, ValueError):
        tzinfo = ZoneInfo(fallback_zone)
    return moment.replace(tzinfo=tzinfo).isoformat()


def send_at_error(exc: ApiError) -> str:
    """A refused `sendAt`, said about the form's time field."""
    return exc.message.replace("'sendAt'", "That time")


def field_error(field: Field, exc: ApiError, api_name: str) -> None:
    """Show the service's refusal beside `field`, in the words of its label, not the API's field name."""
    label = str(field.label.text)
    message = exc.message.replace(f"'{api_name}'", f"the {label[0].lower()}{label[1:]}", 1)
    field.errors = [*field.errors, message[0].upper() + message[1:]]


class SendForm(FlaskForm):
    to = StringField("Phone number", validators=[DataRequired()])
    message = TextAreaField("Message", validators=[DataRequired(), Length(max=4096)])
    send_at = _when_field("Send at (optional)")
    timezone = HiddenField(render_kw={"data-browser-timezone": ""})


class RescheduleForm(FlaskForm):
    send_at = _when_field("New time")
    timezone = HiddenField(render_kw={"data-browser-timezone": ""})


class WarmupField(StringField):
    """Daily ceilings typed as a comma list ("50, 100, 200"); empty means no warm-up."""

    def process_formdata(self, valuelist):
        super().process_formdata(valuelist)
        parts = [part for part in re.split(r"[\s,;]+", self.data or "") if part]
        if not all(part.isdigit() for part in parts):
            self.data = []
            raise ValueError("Whole numbers separated by commas, like 50, 100, 200")
        self.data = [int(part) for part in parts]

    def _value(self):
        if self.raw_data:
            return self.raw_data[0]
        return ", ".join(str(cap) for cap in self.data or [])


class PaceForm(FlaskForm):
    """A session's pace (services/governor/queue.py's Pace): the form reads numbers and times, the
    service checks the values (and its errors are shown beside their field)."""

    min_gap_seconds = FloatField("Minimum gap (seconds)", invalid_value_message="Enter a number of seconds")
    jitter_seconds = FloatField("Random extra (seconds)", invalid_value_message="Enter a number of seconds")
    per_minute = IntegerField("At most per minute", invalid_value_message="Enter a whole number")
    per_day = IntegerField("At most per day", invalid_value_message="Enter a whole number")
    warmup = WarmupField("Warm-up: daily ceilings after linking")
    quiet_start = TimeField("Quiet hours from", validators=[Optional()], invalid_value_message="A time like 21:00")
    quiet_end = TimeField("Quiet hours until", validators=[Optional()], invalid_value_message="A time like 08:00")
    # Its own id: the session page's send form has a (hidden) "timezone" too.
    timezone = StringField(
        "Time zone", id="pace-timezone", render_kw={"list": "timezones", "autocomplete": "off", "spellcheck": "false"}
    )
    typing = BooleanField("Show “typing…” before each message")

    # The time zone field's suggestions (zoneinfo reads them from disk: once).
    ZONES = sorted(available_timezones())
    SETTINGS = (
        "min_gap_seconds",
        "jitter_seconds",
        "per_minute",
        "per_day",
        "warmup",
        "quiet_start",
        "quiet_end",
        "timezone",
        "typing",
    )

    @classmethod
    def showing(cls, pace: dict) -> "PaceForm":
        """The form filled in with a pace as services.governor.pace.pace_view gives it (camelCase)."""
        values = {name: pace[field_camel(name)] for name in cls.SETTINGS}
        for name in ("min_gap_seconds", "jitter_seconds"):
            values[name] = plain_number(values[name])
        for name in ("quiet_start", "quiet_end"):
            values[name] = datetime.strptime(values[name], "%H:%M").time() if values[name] else None
        return cls(formdata=None, data=values)

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        if bool(self.quiet_start.data) != bool(self.quiet_end.data) and not (
            self.quiet_start.errors or self.quiet_end.errors
        ):
            missing = self.quiet_end if self.quiet_start.data else self.quiet_start
            missing.errors.append("Set both times for quiet hours, or leave both empty")
            valid = False
        return valid

    def settings(self) -> dict:
        """The values as services.governor.pace.pace_set takes them (camelCase)."""
        values = {name: getattr(self, name).data for name in self.SETTINGS}
        for name in ("quiet_start", "quiet_end"):
            values[name] = values[name].strftime("%H:%M") if values[name] else None
        values["timezone"] = (values["timezone"] or "").strip()
        return {field_camel(name): value for name, value in values.items()}

    def refused(self, exc: ApiError) -> None:
        """Show the service's refusal beside the field it names (else beside the first)."""
        by_camel = {field_camel(name): name for name in self.SETTINGS}
        key = (exc.details or {}).get("field")
        field = getattr(self, by_camel[key]) if key in by_camel else self.min_gap_seconds
        field.errors = [*field.errors, exc.message.replace(f"'{key}'", str(field.label.text))]


def plain_number(value: float) -> float | int:
    """4.0 -> 4 and 2.50 -> 2.5: seconds as a person would write them."""
    value = round(float(value), 2)
    return int(value) if value.is_integer() else value


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
    start_at = _when_field("Start at (optional)")
    timezone = HiddenField(render_kw={"data-browser-timezone": ""})


class BulkPreviewForm(FlaskForm):
    """What the preview showed, carried to the send: the valid numbers, one a line."""

    session_id = HiddenField(validators=[DataRequired()])
    contacts = HiddenField(validators=[DataRequired()])
    message = HiddenField(validators=[DataRequired(), Length(max=4096)])
    delay = IntegerField(widget=HiddenInput(), validators=[NumberRange(min=0, max=600000)])
    send_at = HiddenField()  # ISO 8601 with offset; empty: start now


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
    "message.stalled": "message.stalled: a sent message got no acknowledgement or delivery by its deadline",
    "session.degraded": "session.degraded: a session looked connected but heard nothing, and is reconnected",
    "session.recovered": "session.recovered: a session found deaf hears again",
    "history.progress": "history.progress: a batch of a chat's older messages was stored (a backfill)",
    "history.completed": "history.completed: a chat's history backfill finished",
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
    format = SelectField("Format", choices=[(name, FORMAT_LABELS[name]) for name in FORMATS], default=DEFAULT_FORMAT)
