"""Request-id stamping (``callcov.kit.request_id``), the one implementation (the Serve proxy's
middleware reuses it: tests/deployments/test_proxy.py)."""

from __future__ import annotations

from callcov.kit.request_id import stamp_request_id


async def _noop_send(_message: object) -> None:
    return None


def test_keeps_a_well_formed_id_and_replaces_others() -> None:
    kept, scope, _ = stamp_request_id({"headers": [(b"x-request-id", b"req_upstream01")]}, _noop_send)
    assert kept == "req_upstream01" and scope["headers"] == [(b"x-request-id", b"req_upstream01")]
    new, scope, _ = stamp_request_id({"headers": [(b"x-request-id", b"<script>"), (b"a", b"b")]}, _noop_send)
    assert new.startswith("req_") and new != "<script>"
    assert scope["headers"] == [(b"a", b"b"), (b"x-request-id", new.encode())]
