"""Errors raised by the store. Only ``engine.cli`` renders them."""

from __future__ import annotations

from engine.errors import RecipeError


class StoreError(RecipeError):
    """The store cannot do what was asked: a wrong folder, a bad name, an invalid path."""


class BlobError(StoreError):
    """A content-addressed blob is missing or its content does not match its digest."""
