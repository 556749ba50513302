"""``recipe store``: the store's own operations (ls, path, verify, gc, log, roots, why)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from engine.cli.common import print_json, store_dir
from engine.errors import UsageError
from engine.store import Store


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    store = sub.add_parser("store", parents=[parent], help="the store's own operations",
                           description="List, verify and collect the store.")
    store.add_argument("--plan", metavar="FILE", type=Path,
                       help="use the folder 'store' beside this plan (after --store and "
                            "$RECIPE_STORE)")
    # The same options after the verb; SUPPRESS keeps an absent one from overwriting a value
    # given before the verb.
    again = argparse.ArgumentParser(add_help=False)
    again.add_argument("--store", metavar="DIR", default=argparse.SUPPRESS)
    again.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    again.add_argument("--plan", metavar="FILE", type=Path, default=argparse.SUPPRESS)
    verbs = store.add_subparsers(dest="verb", metavar="VERB", parser_class=type(store))
    verbs.required = True
    verbs.add_parser("ls", parents=[again], help="list the valid paths")
    verbs.add_parser("path", parents=[again], help="print the store folder")
    verify = verbs.add_parser("verify", parents=[again],
                              help="check every path against its record")
    verify.add_argument("--repair", action="store_true",
                        help="rebuild each damaged path from its recorded derivation")
    gc = verbs.add_parser("gc", parents=[again], help="delete the paths no root reaches")
    gc.add_argument("--dry-run", action="store_true", help="only say what would be deleted")
    gc.add_argument("--max-size", metavar="SIZE", type=byte_size,
                    help="then evict least recently used action results until they and their "
                         "outputs fit in SIZE (bytes, or with K, M, G: 500M); the sources "
                         "that live paths keep are not counted")
    gc.add_argument("--why", metavar="NAME_OR_PATH",
                    help="with --dry-run: only name the roots that keep this path alive")
    log = verbs.add_parser("log", parents=[again], help="print the build log of a path")
    log.add_argument("target", metavar="NAME_OR_PATH", help="a store path name or a path in it")
    roots = verbs.add_parser("roots", parents=[again], help="list the roots, or remove one")
    roots.add_argument("--remove", metavar="NAME", action="append",
                       help="remove the root NAME and the roots below it (repeatable)")
    why = verbs.add_parser("why", parents=[again],
                           help="name the root chains that keep a path alive")
    why.add_argument("target", metavar="NAME_OR_PATH", help="a store path name or a path in it")
    store.set_defaults(func=run)


def _plan_store(args: argparse.Namespace) -> Path | None:
    """The plan's own ``store:``, when --plan names one (and neither --store nor
    $RECIPE_STORE decides)."""
    if not args.plan or args.store or os.environ.get("RECIPE_STORE"):
        return None
    from engine.documents.cached import load_plan

    return load_plan(Path(args.plan)).store


def run(args: argparse.Namespace) -> int:
    folder = store_dir(args, plan_file=args.plan, plan_store=_plan_store(args))
    if args.verb == "path":
        if args.json:
            print_json({"store": str(folder)})
        else:
            print(folder)
        return 0
    store = Store.open(folder, create=False, use_reserve=args.verb == "gc")
    try:
        return _VERBS[args.verb](store, args)
    finally:
        store.close()


def _ls(store: Store, args: argparse.Namespace) -> int:
    infos = store.paths()
    if args.json:
        print_json([{"name": i.name, "path": str(store.path(i.name)), "derivation": i.derivation,
                     "nar_hash": i.nar_hash, "size": i.size, "references": list(i.references)}
                    for i in infos])
    elif not infos:
        print(f"no valid paths in {store.root}")
    else:
        from tabulate import tabulate  # only when a table is printed: ~50 ms of imports

        print(tabulate([(i.name, i.size, len(i.references)) for i in infos],
                       headers=["path", "size", "references"]))
    return 0


def _verify(store: Store, args: argparse.Namespace) -> int:
    damage = store.verify()
    repaired: list[str] = []
    if damage and args.repair:
        from engine.build.repair import repair

        if not args.json:
            for item in damage:
                print(item)
        repaired = repair(store, damage)
        if not args.json:
            for name in repaired:
                print(f"repaired {store.path(name)}")
        damage = store.verify()
    count = store.count()
    if args.json:
        print_json({"valid": not damage, "paths": count, "repaired": repaired,
                    "damage": [{"name": d.name, "file": d.file, "problem": d.problem}
                               for d in damage]})
    else:
        for item in damage:
            print(item)
        if not damage:
            print(f"store is valid ({count} paths)")
    return 1 if damage else 0


def _gc(store: Store, args: argparse.Namespace) -> int:
    if args.why is not None:
        if not args.dry_run:
            raise UsageError("--why only explains and collects nothing",
                             "add --dry-run, or use 'recipe store why PATH'")
        args.target = args.why
        return _why(store, args)
    report = store.gc(dry_run=args.dry_run, max_size=args.max_size)
    if args.json:
        print_json({"dry_run": args.dry_run, "deleted": report.deleted, "freed": report.freed,
                    "cache": {"actions": report.actions, "blobs": report.blobs,
                              "freed": report.cache_freed}})
        return 0
    for name in report.deleted:
        print(store.path(name))
    verb, freed = ("would delete", "freeing") if args.dry_run else ("deleted", "freed")
    print(f"{verb} {len(report.deleted)} paths, {freed} {_bytes(report.freed)}; "
          f"{report.actions} action results and {report.blobs} blobs, "
          f"{freed} {_bytes(report.cache_freed)}")
    return 0


def _log(store: Store, args: argparse.Namespace) -> int:
    name = _name_of(store, args.target)
    log = store.log(name)
    if args.json:
        print_json({"name": name, "log": log.decode("utf-8", "replace")})
    else:
        sys.stdout.flush()
        sys.stdout.buffer.write(log)
        sys.stdout.buffer.flush()
    return 0


def _roots(store: Store, args: argparse.Namespace) -> int:
    if args.remove:
        existing = store.roots()
        for name in args.remove:  # all checked before any is removed
            if not any(r == name or r.startswith(f"{name}/") for r in existing):
                raise UsageError(f"there is no root '{name}'",
                                 "see 'recipe store roots' for the roots")
        for name in args.remove:
            store.remove_root(name)
        return 0
    roots = store.roots()
    if args.json:
        print_json(roots)
    elif not roots:
        print("no roots")
    else:
        from tabulate import tabulate

        print(tabulate(sorted(roots.items()), headers=["root", "path"]))
    return 0


def _why(store: Store, args: argparse.Namespace) -> int:
    name = _name_of(store, args.target)
    chains = store.why(name)
    if args.json:
        print_json({"path": str(store.path(name)), "alive": bool(chains),
                    "roots": [{"root": c[0], "chain": c[1:]} for c in chains]})
    elif not chains:
        print(f"no root keeps {store.path(name)} alive: 'recipe store gc' deletes it")
    else:
        for root, *chain in chains:
            print(" -> ".join([f"root {root}", *chain]))
    return 0


_VERBS = {"ls": _ls, "verify": _verify, "gc": _gc, "log": _log, "roots": _roots, "why": _why}


def _name_of(store: Store, target: str) -> str:
    """A store path name from a name, or from an absolute path inside the store."""
    if "/" not in target:
        return target
    path = Path(target)
    for base in {store.root, store.root.resolve()}:
        for candidate in (path.absolute(), path.resolve()):
            if candidate.is_relative_to(base) and candidate != base:
                return candidate.relative_to(base).parts[0]
    raise UsageError(f"{target} is not inside the store {store.root}",
                     "give a store path name or a path inside the store")


_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def byte_size(text: str) -> int:
    """``500M`` -> bytes (argparse turns the ValueError into a usage error)."""
    number, unit = text.rstrip("BbIi"), ""
    if number[-1:].upper() in _UNITS:
        number, unit = number[:-1], number[-1].upper()
    value = int(number) * _UNITS[unit]
    if value < 0:
        raise ValueError(text)
    return value


def _bytes(count: int) -> str:
    size, unit = float(count), "bytes"
    for next_unit in ("KiB", "MiB", "GiB", "TiB"):
        if size < 1024:
            break
        size, unit = size / 1024, next_unit
    return f"{count} bytes" if unit == "bytes" else f"{count} bytes ({size:.1f} {unit})"
