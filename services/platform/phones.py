"""Phone numbers as WhatsApp wants them: digits with the country code, nothing else."""

import re

import phonenumbers

from services.errors import ValidationError

ALLOWED_PUNCTUATION = " -().\u00a0"


def phone_normalize(raw: object, field: str = "to") -> str:
    """'+91 98765-43210' -> '919876543210'; a clear 400 for anything that is not a number."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        raw = str(raw)
    if not isinstance(raw, str) or not raw.strip():
        raise ValidationError(
            f"'{field}' is required: a phone number with country code, e.g. 919876543210",
            code="INVALID_NUMBER",
            details={"field": field},
        )
    text = raw.strip()
    digits = text[1:] if text.startswith("+") else text
    digits = "".join(ch for ch in digits if ch not in ALLOWED_PUNCTUATION)
    if not digits.isdigit() or not 8 <= len(digits) <= 15:
        raise ValidationError(
            f"'{field}' must be a phone number with country code (8 to 15 digits), e.g. 919876543210",
            code="INVALID_NUMBER",
            details={"field": field},
        )
    if digits.startswith("00"):  # how many countries dial abroad; WhatsApp wants the country code alone
        raise ValidationError(
            f"'{field}' starts with 00, the prefix for dialling abroad: give the country code without it, "
            f"e.g. {digits[2:]}",
            code="INVALID_NUMBER",
            details={"field": field},
        )
    try:
        parsed = phonenumbers.parse("+" + digits)
    except phonenumbers.NumberParseException as exc:
        raise ValidationError(
            f"'{field}' is not a phone number with a valid country code",
            code="INVALID_NUMBER",
            details={"field": field},
        ) from exc
    # Possible, not "valid": a country's allocation tables lag behind its operators (a new
    # Cameroonian mobile range, a US 555 number in an example), and whether WhatsApp knows a
    # number is the number check's to say. Length and country code are what can be wrong here.
    reason = phonenumbers.is_possible_number_with_reason(parsed)
    if reason != phonenumbers.ValidationResult.IS_POSSIBLE:
        why = {
            phonenumbers.ValidationResult.TOO_SHORT: "too short",
            phonenumbers.ValidationResult.IS_POSSIBLE_LOCAL_ONLY: "too short (a local number)",
            phonenumbers.ValidationResult.TOO_LONG: "too long",
            phonenumbers.ValidationResult.INVALID_LENGTH: "not of a length its country uses",
        }.get(reason, "not a number of its country")
        raise ValidationError(
            f"'{field}' is {why} for a phone number of its country (+{parsed.country_code}); "
            "include the country code, e.g. 919876543210",
            code="INVALID_NUMBER",
            details={"field": field},
        )
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)[1:]


def card_phone(raw: object, field: str = "contact.phoneNumber") -> str:
    """A contact card's number: what the card shows and WhatsApp links to, not a recipient, so
    any number written with digits (and + - ( ) . spaces) goes, as its digits."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        raw = str(raw)
    digits = (
        "".join(ch for ch in raw.strip().removeprefix("+") if ch not in ALLOWED_PUNCTUATION)
        if isinstance(raw, str)
        else ""
    )
    if not digits.isdigit() or not 3 <= len(digits) <= 20:
        raise ValidationError(
            f"'{field}' must be a phone number (3 to 20 digits), e.g. 919876543210",
            code="INVALID_NUMBER",
            details={"field": field},
        )
    return digits


GROUP_ID = re.compile(r"^\d{5,25}(-\d{5,15})?@g\.us$")


def is_group_id(value: object) -> bool:
    return isinstance(value, str) and GROUP_ID.match(value.strip()) is not None


def recipient_normalize(raw: object, field: str = "to") -> str:
    """Whom a message goes to: a phone number (normalized) or a group id, as given."""
    return raw.strip() if is_group_id(raw) else phone_normalize(raw, field)
