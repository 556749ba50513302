"""The benchmark of issue 4: recipe against make -j2 and make + ccache, on a generated corpus.

Run from the repository's root: ``python3 -m bench`` (``--quick`` for one repetition, ``--json
FILE`` for every sample); ``python3 -m bench.profile_realise`` profiles a no-op and a one-unit
edit. Modules: ``corpus`` writes the sources, documents and Makefiles; ``tools`` drives recipe
and make; ``scenarios`` runs and checks each scenario; ``report`` prints the table.
"""
