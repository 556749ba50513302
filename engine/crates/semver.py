"""Moved to ``engine.semver`` (a pure grammar that documents check requirements with, so it sits
below documents). This name stays for the crates modules that still import it."""

from engine.semver import Requirement, SemverError, Version

__all__ = ["Requirement", "SemverError", "Version"]
