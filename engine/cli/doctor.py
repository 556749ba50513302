"""recipe doctor [PLAN]: what recipe finds on this machine and uses, one line each, with the
command that fixes what is missing. Exit 0 when everything needed is there (the plan's
compilers, zig, runners and Rust standard libraries; without a plan, gcc and g++), 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from engine.cli.common import print_json, store_dir
from engine.errors import UsageError, display_path

FIXES = {
    "gcc": "apt-get install gcc", "g++": "apt-get install g++",
    "rustc": "apt-get install rustc (or rustup: https://rustup.rs)",
    "zig": "pip install ziglang", "qemu": "apt-get install qemu-user",
    "wine64": "apt-get install wine64", "wasmtime": "pip install -e '.[cross]' (PyPI wasmtime)",
}


@dataclass
class Check:
    name: str
    ok: bool | None  # None: neither (informative: a server not running, no store yet)
    version: str = ""
    path: str = ""
    detail: str = ""
    fix: str = ""
    needed: bool = False


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    parser = sub.add_parser("doctor", parents=[parent], help="what recipe finds on this "
                            "machine: compilers, zig, runners, Landlock, the store, a server",
                            description="One line per thing recipe uses, with its version and "
                            "path, or the command that installs it. Exit 1 when something the "
                            "plan needs (without PLAN: gcc and g++) is missing.")
    parser.add_argument("plan", nargs="?", metavar="PLAN",
                        help="check what this plan needs, for every one of its targets")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    plan = None
    if args.plan:
        from engine.documents.cached import load_plan

        plan = load_plan(Path(args.plan))
    needs = plan_needs(plan) if plan is not None else {"gcc", "g++"}
    try:
        store = store_dir(args, plan.file if plan else None, plan.store if plan else None)
    except UsageError:  # no plan, no --store, no $RECIPE_STORE: nothing to say of a store
        store = None
    checks = machine_checks(needs, store)
    missing = [c.name for c in checks if c.needed and not c.ok]
    whose = display_path(plan.file) if plan is not None else "recipe"
    verdict = (f"{whose} needs what is missing: {', '.join(missing)}" if missing
               else f"everything {whose} needs is here")
    if args.json:
        print_json({"checks": [asdict(c) for c in checks], "missing": missing,
                    "ok": not missing})
    else:
        from tabulate import tabulate

        # "missing" only for what is needed (and makes the exit code 1); "-" for the rest
        rows = [("ok" if c.ok else "missing" if c.needed else "-", c.name, c.version or "-",
                 _where(c)) for c in checks]
        sys.stdout.write(tabulate(rows, tablefmt="plain", disable_numparse=True) + "\n")
        print(verdict)
    return 1 if missing else 0


def _where(check: Check) -> str:
    """``path (detail)``, then ``fix: ...`` when it is not there."""
    text = check.path
    if check.detail:
        text = f"{text} ({check.detail})" if text else check.detail
    if check.fix and not check.ok:
        text = f"{text}; fix: {check.fix}" if text else f"fix: {check.fix}"
    return text


def plan_needs(plan: Any) -> set[str]:
    """The programs (and ``rust-std <triple>``) the plan's projects need on its targets."""
    from engine.toolchain.machine import runner_for
    from engine.toolchain.rust_cross import rust_triple

    languages = {p.language for p in plan.projects.values()}
    needs: set[str] = set()
    for spec in plan.targets.values():
        chain = spec.toolchain
        if spec.uses_zig:
            needs.add("zig")
            if "rust" in languages and isinstance(chain, dict):
                needs.add(chain.get("rustc", "rustc"))
        else:
            named = chain if isinstance(chain, dict) else {}
            if languages & {"c", "rust"}:  # rustc links with the target's C compiler
                needs.add(named.get("cc", "gcc"))
            if "c++" in languages:
                needs.add(named.get("cxx", "g++"))
            if "rust" in languages:
                needs.add(named.get("rustc", "rustc"))
        if "rust" in languages and spec.triple != "host":  # of the rustc the target names
            rustc = chain.get("rustc", "rustc") if isinstance(chain, dict) else "rustc"
            needs.add(f"rust-std {rust_triple(spec.triple)} {rustc}")
        runner = getattr(spec, "runner", None)  # a spec field once cross targets land
        if isinstance(runner, list | tuple) and runner:
            needs.add(str(runner[0]))
        elif runner != "none" and (found := runner_for(spec.triple)):
            needs.add(found)
    return needs


def machine_checks(needs: set[str], store: Path | None) -> list[Check]:
    from engine.toolchain import machine

    def program(name: str, args: tuple[str, ...] = ("--version",), fix: str = "") -> Check:
        found = machine.program(name, args)
        return Check(name, found.path is not None, found.version or "", found.path or "",
                     fix=fix or FIXES.get(name, f"install {name}, or fix PATH"),
                     needed=name in needs)

    checks = [Check("python", True, sys.version.split()[0], sys.executable)]
    checks += [program("gcc", ("-dumpfullversion",)), program("g++", ("-dumpfullversion",))]
    rustc = program("rustc")
    std = machine.rust_std_targets(rustc.path) if rustc.path else []
    rustc.detail = f"std: {', '.join(std) or 'none'}" if rustc.path else ""
    checks.append(rustc)
    # programs a plan names itself (toolchain: {cc: ...}, a runner command)
    named = sorted(n for n in needs if not n.startswith(("rust-std ", "qemu-"))
                   and n not in ("gcc", "g++", "rustc", "zig", "wine64", "wasmtime"))
    checks += [program(n) for n in named]
    for need in sorted(n for n in needs if n.startswith("rust-std ")):
        _, triple, named = need.split(" ", 2)
        found = rustc.path if named == "rustc" else machine.program(named).path
        has = triple in (std if named == "rustc" else
                         machine.rust_std_targets(found) if found else [])
        checks.append(Check(f"rust-std {triple}", has, path=found or named, needed=True,
                            fix=f"rustup target add {triple}, or Debian's libstd-rust-dev-* "
                                "for /usr/bin/rustc"))
    zig = machine.zig()
    checks.append(Check("zig", zig.path is not None, zig.version or "", zig.path or "",
                        fix=FIXES["zig"], needed="zig" in needs))
    qemus = machine.qemu_runners()
    wanted = sorted(n for n in needs if n.startswith("qemu-"))
    checks += [program(n, fix=FIXES["qemu"]) for n in wanted]
    if not wanted:
        more = f" and {len(qemus) - 3} more" if len(qemus) > 3 else ""
        checks.append(Check("qemu-user", bool(qemus), detail=", ".join(qemus[:3]) + more,
                            fix=FIXES["qemu"]))
    checks += [_wine("wine64" in needs), _wasmtime("wasmtime" in needs)]
    checks += [_landlock(), _store(store), _server()]
    return checks


def _wine(needed: bool) -> Check:
    """wine64 where the runner finds it (Debian's wine64 package: /usr/lib/wine/wine64)."""
    from engine.toolchain import machine
    from engine.verify.runners import wine

    found = wine.find()
    return Check("wine64", found is not None,
                 (machine.version_of([found, "--version"]) or "") if found else "",
                 found or "", fix=FIXES["wine64"], needed=needed)


def _wasmtime(needed: bool) -> Check:
    """wasmtime as the runner uses it: PyPI's module, in a child Python."""
    import importlib.util

    spec = importlib.util.find_spec("wasmtime")
    origin = str(Path(spec.origin).parent) if spec is not None and spec.origin else ""
    return Check("wasmtime", spec is not None, "", origin, fix=FIXES["wasmtime"],
                 needed=needed)


def _landlock() -> Check:
    from engine.verify import landlock

    abi = landlock.abi()
    return Check("landlock", abi > 0, f"ABI {abi}" if abi else "",
                 detail="cases may write only their scratch folder" if abi else
                 "without it, writes into the store are found after a case",
                 fix="Linux 5.13 or later with landlock in the kernel's lsm= list")


def _store(root: Path | None) -> Check:
    from engine.store.peek import describe

    if root is None:
        return Check("store", None, detail="none named (pass PLAN, --store or $RECIPE_STORE)")
    facts = describe(root)
    if facts is None:
        return Check("store", None, path=display_path(root),
                     detail="not made yet: the first build makes it")
    size = facts["bytes"]
    shown = next(f"{size / 1024 ** i:.1f} {unit}" for i, unit in
                 ((3, "GiB"), (2, "MiB"), (1, "KiB"), (0, "B")) if size >= 1024 ** i or i == 0)
    return Check("store", True, f"schema {facts['schema']}", display_path(root),
                 detail=f"{facts['paths']} paths, {shown}")


def _server() -> Check:
    from engine import server

    pid = server.running()
    return Check("server", None if pid is None else True,
                 path=f"pid {pid}" if pid else "", detail="" if pid else "not running",
                 fix="" if pid else "recipe server start (optional: faster commands)")


