from __future__ import annotations

from callcov.errors import BadRequest, NotFound


class TooManyApiKeys(BadRequest):
    code = "api_key_limit_reached"
    default_message = "At most 10 active API keys per account: revoke an unused key first"


class ApiKeyNotFound(NotFound):
    default_message = "API key not found"
