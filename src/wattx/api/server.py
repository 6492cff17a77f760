"""How uvicorn serves the app: the one place its options come from the settings."""

from __future__ import annotations

from typing import Any

import uvicorn

from wattx.config import Settings


def server_config(app: Any, settings: Settings, **options: Any) -> uvicorn.Config:
    """A uvicorn configuration for ``app`` on ``settings.host``/``settings.port``.

    ``X-Forwarded-For`` and ``X-Forwarded-Proto`` are believed only from the
    addresses in ``settings.trusted_proxies`` (none by default: uvicorn would
    otherwise believe them from 127.0.0.1, and any local caller could pick
    its own client address and slip past the per-address rate limits). No
    ``server`` header is sent. ``options`` override the rest (log level,
    lifespan, ...).
    """
    proxies = settings.trusted_proxy_list
    chosen: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": "warning",
        "access_log": False,
        "server_header": False,
        "proxy_headers": bool(proxies),
        "forwarded_allow_ips": proxies or [],
        # No WebSocket pings from the service: the only WebSocket is the node link, whose
        # heartbeats are its liveness check (a silent link is closed, 4410), and pinging
        # thousands of links was most of the service's idle CPU.
        "ws_ping_interval": None,
        # No per-message compression on the link: its frames are small JSON, and a zlib
        # stream in each direction of every link cost CPU on each frame and memory per
        # link (thousands of links on one process).
        "ws_per_message_deflate": False,
        # The sans-I/O protocol of the websockets library: a frame is parsed where it
        # arrives and handed to the link, with no task per connection in between. Over
        # 5 000 links at heartbeat rate it cost less CPU per frame than the default
        # protocol in 7 of 8 paired runs, and 36 MiB less memory (docs/nodes.md).
        "ws": "websockets-sansio",
    }
    chosen.update(options)
    return uvicorn.Config(app, **chosen)
