"""Reproducibility: proving that a build is reproducible, and shipping it as artifacts anyone can
check (DESIGN section 5).

``check``     realise every derivation a second time, from a copy of the checkout at another
              path, into a fresh store, under a varied environment; compare the trees
``release``   deterministic tarballs, ``SHA256SUMS`` and in-toto / SLSA provenance

Both are one layer ("release" in DESIGN section 6): they may use build, derive, documents,
toolchain, store and verify, and nothing here prints. ``check`` lives here rather than in a
package of its own because it and ``release`` are the two halves of one promise (the same
sources give the same bytes) and share what that needs: the derivations and their trees.
"""
