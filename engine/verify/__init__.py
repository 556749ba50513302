"""Run cases against realised executables and compare them with their expectations.

``runner`` selects and runs (one format per case kind), ``process`` runs a process case,
``compare`` judges, ``cache`` keeps observations in the store's action cache, ``report`` renders
outcomes (table, JUnit, JSON), ``update`` re-records expectations.
"""
