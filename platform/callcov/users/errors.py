from __future__ import annotations

from callcov.errors import BadRequest


class NoFieldsToUpdate(BadRequest):
    default_message = "No fields to update"


class CurrentPasswordRequired(BadRequest):
    code = "current_password_required"
    default_message = "Changing the email or the password needs current_password"


class InvalidPassword(BadRequest):
    code = "invalid_password"
    default_message = "current_password is not the account's password"
