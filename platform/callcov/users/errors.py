from __future__ import annotations

from callcov.errors import BadRequest


class NoFieldsToUpdate(BadRequest):
    default_message = "No fields to update"


class EmailInUse(BadRequest):
    default_message = "Email already in use"


class PhoneInUse(BadRequest):
    default_message = "Phone number already in use"
