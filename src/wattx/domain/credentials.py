"""The rules of an account's login: what an email and a password must look like.

One definition for every way in (the sign-up route's schema, the account
service and the ``wattx admin`` commands), so they cannot disagree.
"""

from __future__ import annotations

import re

EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+$"
"""A local part, one ``@`` and a domain; no whitespace anywhere."""
EMAIL_MIN_LENGTH = 3
EMAIL_MAX_LENGTH = 320
PASSWORD_MIN_LENGTH = 8
PASSWORD_MAX_LENGTH = 256

_EMAIL = re.compile(EMAIL_PATTERN)


def email_problem(email: str) -> str | None:
    """Why ``email`` cannot be a login email, or None when it can."""
    if not EMAIL_MIN_LENGTH <= len(email) <= EMAIL_MAX_LENGTH:
        return f"email must have {EMAIL_MIN_LENGTH} to {EMAIL_MAX_LENGTH} characters"
    if _EMAIL.match(email) is None:
        return f"not an email address: {email!r} (expected name@domain)"
    return None


def password_problem(password: str) -> str | None:
    """Why ``password`` cannot be a password, or None when it can."""
    if len(password) < PASSWORD_MIN_LENGTH:
        return f"password must have at least {PASSWORD_MIN_LENGTH} characters"
    if len(password) > PASSWORD_MAX_LENGTH:
        return f"password must have at most {PASSWORD_MAX_LENGTH} characters"
    return None
