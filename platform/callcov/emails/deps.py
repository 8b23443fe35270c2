"""``OutboxDep``: the email outbox of the app, for routes that send mail."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from callcov.emails.service import Outbox
from callcov.state import StateDep


def get_outbox(state: StateDep) -> Outbox:
    settings = state.settings
    return Outbox(
        state.sessionmaker, state.email_sender, settings.email, reveal_codes=settings.environment.is_local
    )


OutboxDep = Annotated[Outbox, Depends(get_outbox)]
