"""The HTTP API: app factory, routers, auth, RBAC, rate limits, SSE."""
