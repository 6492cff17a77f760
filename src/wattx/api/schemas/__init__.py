"""Pydantic models of the HTTP edge: request bodies and typed responses."""
