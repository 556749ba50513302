"""Running one action through the store's action cache (Bazel's CAS + action cache model).

An archive's or link's key is the sha256 of the canonical JSON of its argv template, the
toolchain's identity, the digests of its inputs, and the store path names of the dependencies
visible to it. A compile cannot know before it runs which headers it reads, so it is looked up
in two steps, as ccache's direct mode does: its *manifest* key covers the same minus the
headers, and the manifest lists, for each earlier compile, the headers that compile read (from
gcc's depfile) with their digests and the key of its result. A candidate whose headers all still
have those digests is a hit; otherwise the unit compiles, and a new candidate is recorded. So
editing a header recompiles exactly the units that read it, in the project or in a dependency
(whose headers are hashed in its store path); system headers are fixed by the toolchain's
identity.

A result maps each output (a path relative to the staging folder) to the digest of a blob in the
store's CAS; a compile's, its object (its depfile is read for the header set, and not kept). A
compile's result is held in its candidate, under the candidate's own key (its
manifest key and its header set: what a path built from it keeps, and ``store gc`` keeps the
candidate's blobs for): one entry a compile, one file written and read (two cost a tenth of a
cold build's own CPU). A hit returns those digests; the builder copies a blob out only when
something reads it (see ``engine.build.builder``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from engine.build import reaper
from engine.build.cache import ActionCache, LocalCache
from engine.derive.actions import STAGING, STORE, Action
from engine.derive.derivation import Derivation, Recorded
from engine.errors import Failure
from engine.hashing import canonical_hash, file_digest
from engine.store import Store
from engine.store.cas import DIGEST, KEY
from engine.toolchain.flags import SOURCE_DATE_EPOCH

ACTION_FORMAT = 3  # 3: a compile's result inline in its manifest's candidate
MAX_CANDIDATES = 16  # header sets remembered per manifest, newest first


class ActionFailed(Failure):
    """A compiler, archiver or linker exited non-zero; ``detail`` holds its words verbatim."""

    def __init__(self, what: str, detail: str, fix: str | None = None) -> None:
        super().__init__(what, fix)
        self.detail = detail


#: What can be built: a derivation from documents, or one read back from the store.
Buildable = Derivation | Recorded
#: Runs one action's program to its end, contained: (argv, cwd, env, umask) -> (code, output).
Runner = Callable[[list[str], Path, dict[str, str], int], tuple[int, bytes]]


@dataclass
class ActionRun:
    """What running (or looking up) one action gave."""

    cached: bool
    digests: dict[str, str]  # output path -> blob digest (a compile's: its object's)
    log: str  # command line and what it printed
    keys: list[str]  # the action-cache keys it used: its own, and a compile's candidate's


def toolchain_path(data: dict[str, Any]) -> str:
    """``PATH`` of a build: the folders of the programs the derivation names, and no other."""
    identity = data["toolchain"]
    programs = [a["argv"][0] for a in data["actions"]]
    programs += [identity["cc"], identity["cxx"], identity["ar"], *identity["programs"].values()]
    return os.pathsep.join(dict.fromkeys(os.path.dirname(p) for p in programs))


def build_env(drv: Buildable) -> dict[str, str]:
    """The clean, fixed environment of every build action."""
    return {
        "PATH": toolchain_path(drv.data),
        "LC_ALL": "C",
        "TZ": "UTC",
        "SOURCE_DATE_EPOCH": str(SOURCE_DATE_EPOCH),
        "HOME": "/homeless-shelter",  # as in Nix: a path that never exists
    }


def action_key(drv: Buildable, action: Action, digests: dict[str, str]) -> str:
    """An archive's or link's result key; a compile's manifest key."""
    key = {
        "format": ACTION_FORMAT,
        "kind": "manifest" if action.kind == "compile" else action.kind,
        "argv": action.argv,
        "toolchain": drv.data["toolchain"]["digests"],
        "inputs": {path: digests[path] for path in action.inputs},
    }
    if action.env:
        key["env"] = action.env
    if action.kind != "compile":
        # A compile reads only its dependencies' headers, which its manifest tracks one by
        # one; a link reads their libraries.
        key["depends"] = sorted(drv.data["depends"].values())
    return canonical_hash(key)


def result_key(manifest: str, headers: dict[str, str]) -> str:
    """A compile's result key (its candidate's, in the manifest): its manifest key and the
    headers it read, with digests."""
    return canonical_hash({"format": ACTION_FORMAT, "manifest": manifest, "headers": headers})


def substitute(argv: list[str], staging: Path, store_root: Path) -> list[str]:
    at, root = str(staging), str(store_root)
    out = [a.replace(STAGING, at).replace(STORE, root) for a in argv]
    if any("@RECIPE_" in a for a in out):  # zig's linker wrapper (Rust on a cross target)
        from engine.toolchain.rust_cross import concrete

        out = [concrete(a) for a in out]
    return out


#: A lookup that missed: the action's key and, for a compile, the manifest it read (or None).
Missed = tuple[str, dict[str, Any] | None]


def look_up(store: Store, drv: Buildable, actions: list[Action], digests: dict[str, str],
            staging: Path, cache: ActionCache, first: int = 0) -> Iterator[ActionRun | Missed]:
    """Find ``actions`` (of one wave: none reads another's outputs) in ``cache``, one at a
    time as the caller asks: for each, a hit's ``ActionRun`` or what a run needs of the miss.
    Keys are rooted before their entries are read (a collection keeps what it sees rooted):
    the ``first`` actions' in one write, the rest's in one more (the first are likely misses,
    whose tools can start before the rest's keys are computed); the hits' result keys in a
    last one, before the last answer is given."""
    keys: list[str] = []
    used: list[str] = []
    for n, action in enumerate(actions):
        if n == len(keys):  # the next batch: the first ones, then all the others
            batch = actions[n:first] if n < first else actions[n:]
            more = [action_key(drv, a, digests) for a in batch]
            store.add_temp_roots(actions=more)
            keys += more
        key = keys[n]
        found: ActionRun | Missed
        if action.kind == "compile":
            manifest = cache.get_action(key)
            hit = _candidate(manifest, action.outputs[:1], digests, staging, cache)
            if hit is None:
                found = (key, manifest)
            else:
                found = ActionRun(True, hit[1], f"# cached {action.label}\n", [key, hit[0]])
                used.append(hit[0])
        else:
            result = cache.get_action(key)
            outputs = result.get("outputs") if isinstance(result, dict) else None
            found = (key, None)
            if isinstance(outputs, dict) and all(isinstance(outputs.get(o), str)
                                                 for o in action.outputs):
                found = ActionRun(True, {o: outputs[o] for o in action.outputs},
                                  f"# cached {action.label}\n", [key])
        if n == len(actions) - 1 and used:
            store.add_temp_roots(actions=used)
        yield found


def run_action(store: Store, drv: Buildable, action: Action, staging: Path,
               digests: dict[str, str], env: dict[str, str], use_cache: bool = True,
               prepare: Callable[[Action], None] | None = None,
               cache: ActionCache | None = None, runner: Runner | None = None,
               missed: Missed | None = None,
               made: Callable[[Action], None] | None = None, take: bool = False,
               later: Callable[[Callable[[], None]], None] | None = None,
               slot: AbstractContextManager[Any] | None = None) -> ActionRun:
    """Run one action inside a staging folder, or find its result in the action cache. A hit
    gives the digests of the outputs and writes nothing; before a real run, ``prepare`` puts
    the action's inputs in place, and its outputs' folders with no file at an output's place
    (a tool writes its output in place: never through a hard link to a CAS blob). Results
    are looked up and recorded in ``cache`` (by default the store's own action cache);
    outputs always go to the store's CAS. ``runner``: the build's reaper
    (``reaper_service.Service.run``); by default a reaper of its own.
    ``missed``: ``look_up`` already found no result in ``cache``. ``made``: told as soon as
    the tool has made the outputs, before they are hashed into the CAS. ``take``: the outputs
    will only be read from now on (a build that registers nothing): linked into the CAS, not
    copied, as a compile's are. ``later``: given the writes of the action's result into the
    cache, to do once what waits for this action has started (by default: now). ``slot``:
    held while the cache runs the action elsewhere (``-j`` counts those runs too)."""
    cache = LocalCache(store) if cache is None else cache
    compile = action.kind == "compile"
    if missed is not None:
        key, manifest = missed
    elif use_cache:
        found = next(look_up(store, drv, [action], digests, staging, cache))
        if isinstance(found, ActionRun):
            return found
        key, manifest = found
    else:
        key, manifest = action_key(drv, action, digests), None
        store.add_temp_roots(actions=[key])  # until the path that uses it is registered
    ran = None
    if use_cache:
        with slot or nullcontext():
            ran = cache.execute(drv, action, staging, digests, key)
    if ran is not None:  # run elsewhere; its outputs are in the cache, copied out on use
        store.add_temp_roots(actions=ran["keys"])
        return ActionRun(True, ran["digests"], ran["log"], ran["keys"])
    if prepare is not None:
        prepare(action)
        if not compile:  # an input made again (its blob was damaged) may have a new digest
            key = action_key(drv, action, digests)
            store.add_temp_roots(actions=[key])
    else:
        for out in action.outputs:
            (staging / out).parent.mkdir(parents=True, exist_ok=True)
            # A tool writes its output in place: never through a hard link to a CAS blob.
            (staging / out).unlink(missing_ok=True)
    argv = substitute(action.argv, staging, store.root)
    if action.env or action.kind == "build-script":  # crates (engine/build/build_script.py)
        from engine.build import build_script  # only crates need it, and its directives

        env = {**env, **dict(zip(action.env, substitute(list(action.env.values()), staging,
                                                          store.root), strict=True))}
        argv = build_script.before(action, argv, env, staging)
    if action.kind == "build-script":  # a crate's build script: its stdout is read apart
        from engine.build import build_script

        code, output = build_script.run(argv, env, staging, store)
    else:
        # A fixed umask, as the environment is fixed: the caller's must not reach a tool's
        # output. Under the reaper: a compiler (and its cc1, as, ld) never outlives this
        # process, even a SIGKILLed one, to write into a build folder the next run is removing.
        if runner is not None:
            code, raw = runner(argv, staging / "w", env, 0o022)
        else:
            code, raw = reaper.run(argv, store, cwd=staging / "w", env=env, umask=0o022)
        output = raw.decode(errors="replace")
    if code != 0:
        raise ActionFailed(f"{drv.title}: {action.kind} {action.label} failed", output)
    if action.kind == "rustc" and any(p.endswith(".native-libs") for p in action.outputs):
        from engine.build import build_script  # a Rust static library's native libraries

        build_script.after(action, output, staging)
    if made is not None:
        made(action)
    log = f"$ {' '.join(argv)}\n{output}"
    if compile:
        # Its object is only read from here on (by the link): linked into the CAS, not copied
        # (no temporary file). Its depfile is read once, for the header set its candidate
        # records, and not kept: nothing reads it again (a blob each was a tenth of what
        # the store's files cost a cold build).
        with open(f"{staging}/{action.outputs[1]}", "rb", buffering=0) as f:
            depfile = f.read()
        outputs = {action.outputs[0]: store.take_file(f"{staging}/{action.outputs[0]}")}
    elif take:  # only read from now on: linked into the CAS, as an object is
        outputs = {path: store.take_file(f"{staging}/{path}") for path in action.outputs}
    else:  # an archive or program: copied, as files of the output tree must be
        outputs = {path: store.put_file(f"{staging}/{path}") for path in action.outputs}
    keys = [key]
    if compile:
        headers = _headers_read(drv, action, staging, digests,
                                depfile.decode(errors="replace"))
        keys.append(result_key(key, headers))
        store.add_temp_roots(actions=keys[1:])  # rooted now: the writes may come later
    write = partial(_put, cache, keys, manifest, headers if compile else None,
                    {"outputs": outputs, "log": output})
    if later is None:
        write()
    else:
        later(write)
    return ActionRun(False, outputs, log, keys)


def _put(cache: ActionCache, keys: list[str], manifest: dict[str, Any] | None,
         headers: dict[str, str] | None, result: dict[str, Any]) -> None:
    """An action's result in the cache: a compile's with its header set, first among the
    candidates of its manifest."""
    if headers is None:
        cache.put_action(keys[0], result)
    else:
        _remember(cache, keys[0], manifest, {"headers": headers, "key": keys[1], **result})


def _candidate(manifest: dict[str, Any] | None, outputs: list[str], digests: dict[str, str],
               staging: Path, cache: ActionCache) -> tuple[str, dict[str, str]] | None:
    """The key and output digests of the first recorded compile whose headers are all
    unchanged, if the cache still has its outputs' blobs; None: a miss."""
    for candidate in (manifest or {}).get("candidates", []):
        try:
            if not all(_digest(h, digests, staging) == d
                       for h, d in candidate["headers"].items()):
                continue
            found = {o: candidate["outputs"][o] for o in outputs}
            if KEY.fullmatch(candidate["key"]) and \
                    all(isinstance(d, str) and DIGEST.fullmatch(d) for d in found.values()) \
                    and cache.has_outputs(list(found.values())):
                return candidate["key"], found
        except (TypeError, KeyError, AttributeError, ValueError):
            return None  # a damaged manifest is a miss
    return None


def _digest(rel: str, digests: dict[str, str], staging: Path) -> str | None:
    """The digest of a file a unit may read: a staged input, or a header of a dependency's
    store path (immutable: hashed once per build)."""
    if rel in digests:
        return digests[rel]
    if rel.startswith("d/") and ".." not in rel.split("/"):
        try:
            return digests.setdefault(rel, file_digest(staging / rel))
        except OSError:
            return None
    return None


def _remember(store: ActionCache, key: str, manifest: dict[str, Any] | None,
              candidate: dict[str, Any]) -> None:
    """Put this compile's candidate (its header set, key and result) first in the manifest.
    Two processes updating one manifest at once may lose a candidate: that costs a compile
    later, never a wrong hit."""
    old = [c for c in (manifest or {}).get("candidates", [])
           if isinstance(c, dict) and c.get("key") != candidate["key"]]
    candidates = [candidate, *old][:MAX_CANDIDATES]
    store.put_action(key, {"outputs": {}, "candidates": candidates})


def depfile_names(text: str) -> list[str]:
    """The prerequisites of a make rule as gcc writes it: ``target: a b \\<newline> c``,
    with ``\\ `` for a space in a name and ``$$`` for ``$``."""
    body = text.replace("\\\n", " ").split(": ", 1)[-1]
    if "\\" not in body and "$" not in body:
        return body.split()  # no escapes: gcc's usual output, split at once
    names, current, i = [], [], 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body) and body[i + 1] in " #":
            current.append(body[i + 1])
            i += 2
            continue
        if ch == "$" and body[i + 1:i + 2] == "$":
            current.append("$")
            i += 2
            continue
        if ch.isspace():
            if current:
                names.append("".join(current))
                current = []
        else:
            current.append(ch)
        i += 1
    if current:
        names.append("".join(current))
    return names


def _headers_read(drv: Buildable, action: Action, staging: Path, digests: dict[str, str],
                  text: str) -> dict[str, str]:
    """The declared files this unit read, with their digests (from its depfile's ``text``). A
    relative include that climbs out of the staging folder (``#include "../../x.h"``) would read
    an undeclared file: it fails the action."""
    root = os.path.normpath(staging) + os.sep
    work = f"{root}w"
    source = action.inputs[0]
    headers = {}
    for name in depfile_names(text):
        if name.startswith("/"):
            continue  # the toolchain's own headers
        full = os.path.normpath(os.path.join(work, name))
        if not full.startswith(root):
            project = drv.data["project"]["name"]
            raise ActionFailed(f"{project}: {action.label} includes '{name}', which "
                               "lies outside the project's declared files", "",
                               "declare the file in headers: of a project of the plan")
        rel = full[len(root):]  # relative to the build folder, as digests are keyed
        if rel != source and (digest := _digest(rel, digests, staging)) is not None:
            headers[rel] = digest
    return headers
