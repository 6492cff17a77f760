"""The permission matrix, walked route by route and role by role."""

from __future__ import annotations

import re

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.routing import Route

from wattx.api.app import check_strict_json, route_rules
from wattx.api.permissions import MATRIX, check_complete, rule_for
from wattx.services.principal import Role

from .client import ApiClient, User

# Read-only and documentation routes are exercised with GET; the streams are
# skipped for allowed callers (they never end) and checked for refusals only.
_STREAMING = {("GET", "/api/v1/events"), ("GET", "/live/events")}
# Logging out ends the session the other calls use, so these go last.
_LOGOUTS = {("POST", "/api/v1/auth/logout"), ("POST", "/logout")}


def _concrete(path: str) -> str:
    return re.sub(r"\{epoch_id\}", "1", re.sub(r"\{[a-z_]+\}", "unknown", path))


def test_the_declared_routes_are_the_routes_fastapi_serves(app: FastAPI) -> None:
    """``route_rules`` reads the routers, not FastAPI's per-app effective routes; a router
    included some other way than through ``create_app``'s lists would be missed."""
    effective = {
        (method, context.path or context.original_route.path)
        for context in iter_route_contexts(app.routes)
        if isinstance(context.original_route, APIRoute | Route)
        for method in context.original_route.methods or ()
        if method != "HEAD"
    }
    assert sorted(route_rules(app)) == sorted(effective)


def test_a_route_added_without_a_rule_or_strict_json_is_refused(app: FastAPI) -> None:
    async def lax() -> dict[str, str]:
        return {}

    app.add_api_route("/api/v1/lax", lax, methods=["POST"])
    with pytest.raises(RuntimeError, match="POST /api/v1/lax"):
        check_complete(route_rules(app))
    with pytest.raises(RuntimeError, match="without StrictJsonRoute: /api/v1/lax"):
        check_strict_json(app)


def test_every_route_has_exactly_one_rule(app: FastAPI) -> None:
    served = set(route_rules(app))
    assert served, "the app serves no routes"
    assert all(rule_for(method, path) is not None for method, path in served)
    assert set(MATRIX) == served, "the matrix lists routes the app does not serve"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_role_matrix(api: ApiClient, app: FastAPI) -> None:
    await api.state.zones.seed_default("main", "Main")
    users: dict[Role, User] = {role: await api.signup(role) for role in Role}
    routes = sorted(route_rules(app), key=lambda r: r in _LOGOUTS)
    for method, path in routes:
        rule = rule_for(method, path)
        assert rule is not None
        url = _concrete(path)
        if rule.public and (method, path) in _STREAMING:
            continue
        anonymous = await api.http.request(method, url)
        if rule.public and method == "POST" and not path.startswith("/api/"):
            # A dashboard form without its CSRF token is refused before anything else.
            assert anonymous.status_code == 403, (method, path)
            assert anonymous.json()["code"] == "csrf_failed"
        elif rule.public:
            assert anonymous.status_code not in (401, 403), (method, path)
        else:
            assert anonymous.status_code == 401, (method, path, anonymous.text)
        for role, user in users.items():
            if (method, path) in _STREAMING and rule.allows(role):
                continue
            response = await api.http.request(method, url, headers=user.headers)
            if rule.allows(role):
                assert response.status_code not in (401, 403), (method, path, role, response.text)
            else:
                assert response.status_code == 403, (method, path, role, response.text)
                assert response.json()["code"] == "forbidden"
