"""In-toto v1 statements with a SLSA provenance v1 predicate, one per released tarball.

A statement says: this tarball (the subject, by sha256) is the store path of this derivation,
built from these sources and this toolchain, by this version of recipe. The fields, after
https://in-toto.io/Statement/v1 and https://slsa.dev/provenance/v1:

  subject               [{name: <tarball>, digest: {sha256}}]
  buildDefinition
    buildType           BUILD_TYPE: "a recipe derivation realised, its tree archived"
    externalParameters  what the user chose: the plan's file name, project, target,
                        SOURCE_DATE_EPOCH
    internalParameters  the derivation: its store path name, the sha256 of its canonical JSON,
                        and the whole derivation object (format ``recipe-derivation-1``: the
                        toolchain identity, flags and actions are in it)
    resolvedDependencies  every declared source of the project and of its dependencies (name:
                        its path below the plan's folder), then every toolchain program (uri:
                        its resolved path), each with its sha256
  runDetails
    builder             id ``urn:recipe:builder:<version>``, version {recipe: <version>}
    byproducts          the store path, with the sha256 of its NAR serialisation

Nothing in it comes from the clock, the checkout's or the store's location, or the
environment (but ``SOURCE_DATE_EPOCH``, which is a parameter of the release): two releases of
one plan give the same bytes. Statements are unsigned: wrap them in a DSSE envelope with your
own key (cosign, in-toto) to sign them.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from engine import __version__
from engine.derive.derivation import Derivation
from engine.documents.models import Plan
from engine.hashing import canonical

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
BUILD_TYPE = "urn:recipe:build-type:release:v1"
NAR_MEDIA_TYPE = "application/x-nix-nar"


def builder_id() -> str:
    return f"urn:recipe:builder:{__version__}"


def statement(plan: Plan, drv: Derivation, tarball: str, tarball_sha256: str,
              nar_hash: str, epoch: int) -> dict[str, Any]:
    """The statement for one tarball of one derivation (see the module docstring)."""
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": tarball, "digest": {"sha256": tarball_sha256}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {
                    "plan": plan.file.name,
                    "project": drv.project.name,
                    "target": drv.target.name,
                    **({"triple": drv.target.triple} if drv.target.triple != "host" else {}),
                    "sourceDateEpoch": epoch,
                },
                "internalParameters": {
                    "derivation": {
                        "name": drv.name,
                        "sha256": hashlib.sha256(drv.fingerprint.encode()).hexdigest(),
                        "object": drv.data,
                    },
                },
                "resolvedDependencies": _sources(plan, drv) + _toolchain(drv.data["toolchain"]),
            },
            "runDetails": {
                "builder": {"id": builder_id(), "version": {"recipe": __version__}},
                "byproducts": [{"name": drv.name, "mediaType": NAR_MEDIA_TYPE,
                                "digest": {"sha256": _hex(nar_hash)}}],
            },
        },
    }


def jsonl(statements: list[dict[str, Any]]) -> bytes:
    """One statement per line, canonical JSON (sorted keys, no insignificant whitespace)."""
    return "".join(canonical(s) + "\n" for s in statements).encode("utf-8")


def _sources(plan: Plan, drv: Derivation) -> list[dict[str, Any]]:
    found: dict[str, str] = {}
    for d in [*drv.deps, drv]:
        folder = Path(os.path.relpath(os.path.realpath(d.project.dir), plan.dir)).as_posix()
        for file, digest in d.data["inputs"].items():
            name = file if folder == "." else f"{folder}/{file}"
            found[name] = _hex(digest)
    return [{"name": name, "digest": {"sha256": digest}} for name, digest in sorted(found.items())]


def _toolchain(identity: dict[str, Any]) -> list[dict[str, Any]]:
    paths = {"cc": identity["cc"], "cxx": identity["cxx"], "ar": identity["ar"],
             **identity["programs"]}
    if identity.get("family") == "zig":  # zig itself, and the tree of libc sources it builds
        paths.update(zig=identity["cc"], lib=os.path.join(os.path.dirname(identity["cc"]), "lib"))
    return [{"name": f"toolchain:{name}", "uri": f"file://{paths[name]}",
             "digest": {"sha256": _hex(digest)}}
            for name, digest in sorted(identity["digests"].items())]


def _hex(digest: str) -> str:
    return digest.removeprefix("sha256:")
