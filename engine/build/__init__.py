"""Scheduling actions into the store. ``engine.build.realise.realise`` is the entry point;
``engine.build.noop`` answers a realise with nothing to do without loading the rest."""
