"""recipe past one machine: a shared cache on Bazel's HTTP remote-cache protocol.

``config`` reads where the cache is and how to sign in (``--remote-cache``,
``RECIPE_REMOTE_CACHE``, the plan's ``remote_cache:``); ``http`` speaks the protocol (GET, HEAD
and PUT of ``/ac/<key>`` and ``/cas/<sha256>``); ``results`` turns the store's action results
into REAPI v2 ``ActionResult`` messages and back; ``combined`` puts the store's own action cache
and CAS in front of the remote one behind the interface the builder already uses.

This package sits beside ``engine.build``: it knows the store (the local level) and nothing of
documents, compilers or the builder, which never learns where a hit came from.
"""
