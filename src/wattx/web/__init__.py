"""The dashboard: server-rendered pages (Jinja2), htmx for partial updates, the event
stream for live parts, browser assets from npm. Pages call the same service objects as
the API; the permission matrix (``wattx.api.permissions``) covers every page."""

from wattx.web.app import WEB_ROUTERS, install_web

__all__ = ["WEB_ROUTERS", "install_web"]
