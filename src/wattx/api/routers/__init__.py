"""Thin routers: parse, call one service method, shape the response."""
