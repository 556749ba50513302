"""Scheduling actions into the store: ``realise`` is the entry point."""

from engine.build.realise import BuildFailed, RealiseResult, derive, realise

__all__ = ["BuildFailed", "RealiseResult", "derive", "realise"]
