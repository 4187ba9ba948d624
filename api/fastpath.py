"""Hot routes served without FastAPI's dependency solving, derived from the routes.

A route opts in with :func:`fast`. At start-up :func:`FastPath.from_app`
reads each such route's path template, methods, the roles of its
:func:`api.auth.permit` dependency and its parameters, and refuses to start
(:class:`RuntimeError`) if the endpoint needs anything the fast path cannot
give it without solving: every parameter must be the request, the services,
the caller, a path parameter, or a query/header parameter with a default.

A request is served here only when it matches such a route, carries no query
string, none of the route's header parameters, and a bearer token this worker
authenticated in the last seconds (:class:`api.auth.TokenCache`) whose role
the route admits. The endpoint itself is then called with the path parameters
and the route's own defaults, and its errors become the same problem
responses (:func:`api.problems.problem_for`). Everything else (other routes,
requests with parameters, unknown tokens, 401s and 403s) goes through
FastAPI untouched.

:class:`FastPath` is an ASGI middleware added innermost, so every outer
middleware (request ids, metrics, security headers) sees every request,
fast or not.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Receive, Scope, Send

from api.auth import Account, TokenCache
from api.problems import problem_for
from ledger.accounts import hash_token
from ledger.offload import in_thread
from ledger.services import Services

__all__ = ["FastPath", "fast"]

F = TypeVar("F", bound=Callable[..., Any])


def fast(endpoint: F) -> F:
    """Mark a route's endpoint as one the fast path may call directly."""
    endpoint.__fast_path__ = True  # type: ignore[attr-defined]
    return endpoint


@dataclass(frozen=True, slots=True)
class _FastRoute:
    route: APIRoute
    roles: tuple[str, ...]
    request_arg: str | None
    services_arg: str
    account_arg: str
    defaults: dict[str, Any]
    headers: tuple[bytes, ...]
    is_async: bool


def _derive(route: APIRoute) -> _FastRoute:
    """What the fast path needs to call ``route``'s endpoint, read from the route."""
    name = f"fast path: {sorted(route.methods or ())} {route.path}"
    dependant = route.dependant
    roles: tuple[str, ...] | None = None
    account_arg = services_arg = None
    for dep in dependant.dependencies:
        call = dep.call
        if getattr(call, "roles", None) is not None:
            roles, account_arg = call.roles, dep.name  # type: ignore[union-attr]
        elif dep.name is not None and getattr(call, "provides_services", False):
            services_arg = dep.name
        else:
            raise RuntimeError(f"{name}: dependency {dep.name!r} cannot be served fast")
    if roles is None or account_arg is None or services_arg is None:
        raise RuntimeError(f"{name}: needs a permit(...) caller and the services")
    defaults: dict[str, Any] = {}
    for param in (*dependant.query_params, *dependant.header_params):
        if param.field_info.is_required():
            raise RuntimeError(f"{name}: parameter {param.name!r} has no default")
        defaults[param.name] = param.field_info.get_default()
    if dependant.body_params or dependant.cookie_params:
        raise RuntimeError(f"{name}: body or cookie parameters cannot be served fast")
    signature = inspect.signature(route.endpoint)
    returns = signature.return_annotation
    if returns not in ("Response", "JSONResponse") and not (
        isinstance(returns, type) and issubclass(returns, Response)
    ):
        raise RuntimeError(f"{name}: the endpoint must return a Response")
    headers = tuple(
        (p.field_info.alias or p.name.replace("_", "-")).lower().encode("latin-1")
        for p in dependant.header_params
    )
    return _FastRoute(
        route=route,
        roles=tuple(roles),
        request_arg=dependant.request_param_name,
        services_arg=services_arg,
        account_arg=account_arg,
        defaults=defaults,
        headers=headers,
        is_async=inspect.iscoroutinefunction(route.endpoint),
    )


def _api_routes(routes: Iterable[BaseRoute]) -> Iterator[APIRoute]:
    """Every APIRoute, including those of included routers (which FastAPI may
    keep as the original router's routes; ours carry their full path)."""
    for r in routes:
        if isinstance(r, APIRoute):
            yield r
        inner = getattr(r, "original_router", None)
        if inner is not None:
            yield from _api_routes(inner.routes)


class FastPath:
    """ASGI middleware answering the routes marked :func:`fast` directly."""

    def __init__(self, app: ASGIApp, fastapi: FastAPI) -> None:
        self.app = app
        self._fastapi = fastapi
        self._routes: list[_FastRoute] | None = None

    def routes(self) -> list[_FastRoute]:
        """The fast routes of the application (derived, and checked, once)."""
        if self._routes is None:
            self._routes = [
                _derive(r)
                for r in _api_routes(self._fastapi.routes)
                if getattr(r.endpoint, "__fast_path__", False)
            ]
        return self._routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            self.routes()  # refuse to start on a route that diverges
        if (
            scope["type"] != "http"
            or scope["query_string"]
            or not await self._serve(scope, receive, send)
        ):
            await self.app(scope, receive, send)

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> bool:
        for fr in self.routes():
            match, child = fr.route.matches(scope)
            if match is not Match.FULL:
                continue
            account = self._cached_account(scope, fr)
            if account is None:
                return False
            state = self._fastapi.state
            state.fast_path_served += 1
            scope["route"] = fr.route  # as the router would: outer middleware reads it
            services: Services = state.services
            kwargs: dict[str, Any] = {
                **fr.defaults,
                **child["path_params"],
                fr.services_arg: services,
                fr.account_arg: account,
            }
            if fr.request_arg is not None:
                kwargs[fr.request_arg] = Request(scope, receive)
            response: Response | None
            try:
                if fr.is_async:
                    response = await fr.route.endpoint(**kwargs)
                elif services.ledger.store.kind == "sqlite":
                    # SQLite reads are page-cache reads inside this process
                    # (WAL: never behind a writer), cheaper than a thread hop;
                    # PostgreSQL reads are round trips, made off the loop.
                    response = fr.route.endpoint(**kwargs)
                else:
                    response = await in_thread(fr.route.endpoint, **kwargs)
            except Exception as e:
                response = problem_for(e)
                if response is None:
                    raise
            assert response is not None
            await response(scope, receive, send)
            return True
        return False

    def _cached_account(self, scope: Scope, fr: _FastRoute) -> Account | None:
        """The caller, if their token is cached and their role fits; None to defer."""
        authorization = None
        for key, value in scope["headers"]:
            if key == b"authorization" and authorization is None:
                authorization = value
            elif key in fr.headers:
                return None
        if authorization is None:
            return None
        scheme, _, token = authorization.decode("latin-1").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        cache: TokenCache = self._fastapi.state.token_cache
        account = cache.get(hash_token(token))
        if account is None or account.role not in fr.roles:
            return None
        return account
