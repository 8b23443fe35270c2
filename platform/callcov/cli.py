"""``callcov``: operator commands (migrations, users, API keys, bulk re-scoring, housekeeping).

The service itself is started with ``callcov-serve`` (deployments/run.py), which needs Ray.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
from collections.abc import Sequence

from callcov.config import Settings, get_settings
from callcov.db import create_engine, create_sessionmaker, run_migrations


async def _create_user(settings: Settings, email: str, password: str, phone: str | None) -> str:
    from callcov.auth.passwords import check_password_rules, hash_password
    from callcov.auth.service import get_user_by_email
    from callcov.models import User

    check_password_rules(password)
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session:
            if await get_user_by_email(session, email) is not None:
                raise SystemExit(f"error: {email} is already registered")
            user = User(
                email=email.lower(),
                phone_number=phone,
                hashed_password=await hash_password(password),
                is_verified=True,
            )
            session.add(user)
            await session.commit()
            return str(user.id)
    finally:
        await engine.dispose()


async def _create_api_key(settings: Settings, email: str, mode: str, description: str | None) -> str:
    from callcov.api_keys.schemas import ApiKeyCreate
    from callcov.api_keys.service import create_api_key
    from callcov.auth.service import get_user_by_email

    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session:
            user = await get_user_by_email(session, email)
            if user is None or not user.is_active:
                raise SystemExit(f"error: no active user {email}")
            data = ApiKeyCreate(description=description, mode=mode)  # type: ignore[arg-type]
            _key, raw = await create_api_key(session, settings.auth, user, data)
            await session.commit()
            return raw
    finally:
        await engine.dispose()


async def _set_overage_cap(settings: Settings, email: str, minutes: int | None) -> None:
    from callcov.auth.service import get_user_by_email
    from callcov.billing.accounts import set_overage_cap

    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session:
            user = await get_user_by_email(session, email)
            if user is None:
                raise SystemExit(f"error: no user {email}")
            await set_overage_cap(session, user.id, minutes)
            await session.commit()
    finally:
        await engine.dispose()


async def _prune(settings: Settings) -> tuple[int, int]:
    from callcov.emails.service import prune_outbox
    from callcov.idempotency.store import prune_expired

    engine = create_engine(settings)
    try:
        sessionmaker = create_sessionmaker(engine)
        return await prune_expired(sessionmaker), await prune_outbox(sessionmaker, settings.email)
    finally:
        await engine.dispose()


def generated_secrets() -> str:
    """Fresh random values for every secret setting, as ``NAME=value`` lines (an env file)."""
    values = {
        "CALLCOV_AUTH__JWT_SECRET": secrets.token_urlsafe(48),
        "CALLCOV_AUTH__API_KEY_PEPPER": secrets.token_urlsafe(48),
        "CALLCOV_WEBHOOKS__ENCRYPTION_KEYS": json.dumps([secrets.token_urlsafe(48)]),
    }
    return "".join(f"{name}={value}\n" for name, value in values.items())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="callcov", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="apply database migrations (alembic upgrade head)")
    user = sub.add_parser("create-user", help="create a verified user")
    user.add_argument("email")
    user.add_argument("--password", required=True)
    user.add_argument("--phone-number")
    key = sub.add_parser("create-api-key", help="create an API key for a user and print it once")
    key.add_argument("email")
    key.add_argument("--mode", choices=("live", "test"), default="live")
    key.add_argument("--description")
    sub.add_parser("prune", help="delete expired idempotency keys and old outbox emails")
    sub.add_parser(
        "generate-secrets",
        help="print random secrets as an env file (keep it: a new pepper or key invalidates stored keys)",
    )
    cap = sub.add_parser("set-overage-cap", help="set an account's cap on overage minutes per period")
    cap.add_argument("email")
    cap.add_argument("minutes", help="whole minutes, or 'default' for the plan's default cap")
    from callcov.rescores.bulk import add_arguments

    rescore = sub.add_parser(
        "rescore",
        help="re-score stored analyses with a rubric: a bulk run, worked by the running service "
        "(the same code as `ray job submit -- python -m callcov.rescores.bulk`)",
    )
    add_arguments(rescore)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "generate-secrets":
        print(generated_secrets(), end="")
        return 0
    settings = get_settings()
    if args.command == "migrate":
        run_migrations(settings)
        print(f"migrated {settings.database_url.split('@')[-1]}")
    elif args.command == "create-user":
        try:
            user_id = asyncio.run(_create_user(settings, args.email, args.password, args.phone_number))
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(user_id)
    elif args.command == "create-api-key":
        print(asyncio.run(_create_api_key(settings, args.email, args.mode, args.description)))
    elif args.command == "set-overage-cap":
        minutes = None if args.minutes == "default" else int(args.minutes)
        try:
            asyncio.run(_set_overage_cap(settings, args.email, minutes))
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(f"overage cap of {args.email}: {args.minutes}")
    elif args.command == "rescore":
        from callcov.rescores.bulk import run_command

        return run_command(settings, args)
    elif args.command == "prune":
        keys, emails = asyncio.run(_prune(settings))
        print(f"deleted {keys} expired idempotency keys and {emails} old outbox emails")
    return 0


if __name__ == "__main__":
    sys.exit(main())
