"""What a POST's route requires of its caller, read from the route's dependencies: a user token
(``JwtUser``), any principal (``AnyPrincipal``), or nothing (public). Idempotency replays only to a
caller that the route itself accepts, so a refusal (401, 403) is never answered from the store.

The table is built once per app from FastAPI's flattened routes (``iter_route_contexts``, which
its OpenAPI generator uses) and matched on the path that the trailing-slash middleware normalised.
"""

from __future__ import annotations

import enum
import re
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.routing import compile_path
from starlette.types import Scope

from callcov.auth.deps import get_jwt_user, get_principal

try:
    from fastapi.routing import iter_route_contexts
except ImportError:  # FastAPI before nested routers: app.routes is already flat

    def iter_route_contexts(routes: Iterable[Any]) -> Iterable[Any]:  # type: ignore[misc]
        return routes


class Requirement(enum.Enum):
    public = "public"  # no credential needed (or no such route: 404, 405)
    principal = "principal"  # an API key or a user token
    jwt = "jwt"  # a user token only


@dataclass(frozen=True)
class _Route:
    regex: re.Pattern[str]
    methods: frozenset[str]
    requirement: Requirement


_TABLES: weakref.WeakKeyDictionary[Any, list[_Route]] = weakref.WeakKeyDictionary()


def _calls(dependant: Dependant) -> set[Any]:
    found = {dependant.call}
    for sub in dependant.dependencies:
        found |= _calls(sub)
    return found


def _requirement_of(dependant: Dependant) -> Requirement:
    calls = _calls(dependant)
    if get_jwt_user in calls:
        return Requirement.jwt
    return Requirement.principal if get_principal in calls else Requirement.public


def _table(app: Any) -> list[_Route]:
    table = _TABLES.get(app)
    if table is None:
        table = []
        for context in iter_route_contexts(app.routes):
            route = getattr(context, "original_route", context)
            if not isinstance(route, APIRoute):
                continue
            dependant = getattr(context, "dependant", None) or route.dependant
            regex, _, _ = compile_path(context.path)
            table.append(_Route(regex, frozenset(context.methods or ()), _requirement_of(dependant)))
        _TABLES[app] = table
    return table


def requirement(scope: Scope) -> Requirement:
    """The requirement of the route that will serve this request."""
    path, root = scope["path"], scope.get("root_path", "")
    if root and path.startswith(root):  # as Starlette routes: the path below a mount point
        path = path[len(root) :]
    for route in _table(scope["app"]):
        if scope["method"] in route.methods and route.regex.match(path):
            return route.requirement
    return Requirement.public
