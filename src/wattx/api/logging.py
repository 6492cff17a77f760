"""structlog configured for one JSON object per line, with the request id bound."""

from __future__ import annotations

import logging
import sys

import structlog


def configure_logging(level: str) -> None:
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


def drop_below(level: int) -> None:
    """From now on, drop every event below ``level``: loggers already handed out follow,
    since none is cached on first use. The standard library's levels do not reach
    structlog's own filtering, so a stopping process has to say it here too."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(level))
