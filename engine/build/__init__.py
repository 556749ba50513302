"""Scheduling actions into the store. ``engine.build.realise.realise`` is the entry point;
``engine.memo`` answers a realise with nothing to do without loading any of it."""
