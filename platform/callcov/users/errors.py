from __future__ import annotations

from callcov.errors import BadRequest


class NoFieldsToUpdate(BadRequest):
    default_message = "No fields to update"
