"""``OutboxDep``: the email outbox of the app, for routes that send mail."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from callcov.emails.service import Outbox
from callcov.state import StateDep


def get_outbox(state: StateDep) -> Outbox:
    return Outbox(state.sessionmaker, state.email_sender, state.settings.email)


OutboxDep = Annotated[Outbox, Depends(get_outbox)]
