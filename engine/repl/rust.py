"""The REPL scope of a ``language: rust`` project: the scope is a list of ``use`` paths, a
submission is the body of ``fn main``.

A runner is compiled by the project's rustc and edition against the crate's rlib in the
project's store path (``lib/lib<crate>.rlib``) and its whole crate closure, as cargo compiles
a binary of the package: ``--extern`` for the crate itself, the Rust projects it depends on and
the registry crates it names (``crates:``), ``-L dependency=`` over every Rust project and
registry crate of the closure, the libraries of its C and C++ dependencies as link arguments.
It is content-addressed as the C runners are (``engine.repl.runner``): its key is the sha256 of
the canonical JSON of the argument template (store paths as ``@STORE@/<name>``), the scope,
the source template, the rustc and toolchain identities and the submission.

A new submission is one rustc run, made short where it costs the submission nothing:

- ``-C opt-level=0``: a submission is a few lines calling the library, whose code is compiled
  (optimised, with the target's flags) in its rlib; what the runner itself compiles is the
  submission and the generics it instantiates. The target's ``debug-assertions`` and
  ``overflow-checks`` are kept (``-C debug-assertions=…``), so arithmetic behaves as in the
  target's programs.
- ``-C prefer-dynamic``: the standard library is linked as the toolchain's ``libstd-*.so``
  (found by an rpath into the sysroot) instead of statically from its rlibs: the link, most of
  a small runner's compile, is a fraction of its time.
- the lld rustup's rustc ships, run by rustc itself (``direct_link``: ``-C linker=rust-lld``
  with the start files and library folders the C compiler would give it) rather than through
  the C compiler, collect2 and lld's wrapper as the project's own links are; where a library's
  link argument is one for a C compiler, through the C compiler with that lld
  (``engine.toolchain.rust.lld_args``); without it, ``-fuse-ld=gold`` where gold is installed
  (not under LTO), as for C runners.

In a ``recipe repl`` session, the next submission's rustc is started before it comes
(``engine.repl.ahead``), and the lld that links it (``engine.repl.prelink``): their start-up is
not part of a new submission's time.

On a foreign target the runner is what the target's programs are: ``--target`` and zig as the
linker (``engine.toolchain.rust_cross.linker``), the standard library linked statically (the
runner runs under the target's runner, which has no sysroot of rustc's), zig's cache the one
the target's builds filled.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.build import zig_cache
from engine.derive.actions import STORE
from engine.derive.derivation import Derivation
from engine.derive.rust_actions import DEFAULT_EDITION, crate_name
from engine.documents.models import Plan, Project, TargetSpec
from engine.repl import source
from engine.repl.runner import Spec
from engine.store import Store
from engine.toolchain import rust_cross
from engine.toolchain.rust import FAST_LINK, lld_args

FORMAT = "recipe-repl-rust-3"  # 3: rustup's lld run by rustc itself


@dataclass
class RustScope:
    """A Rust project x target ready for submissions (the shape of ``scope.Scope`` that a
    session and ``recipe eval``'s record use)."""

    project: Project
    target: TargetSpec
    library: str  # store path name of the project, which runners are attached to
    template: list[str]  # rustc and its flags, store paths as @STORE@/<name>
    identity: dict[str, Any]  # the rustc's and the C toolchain's (the linker's)
    env: dict[str, str]
    store_root: Path
    paths: tuple[str, ...] = ()  # the project's store path name and its dependencies'
    closure: tuple[str, ...] = ()
    roots: dict[str, str] = field(default_factory=dict)
    language = "rust"

    @property
    def title(self) -> str:
        return f"{self.project.name} ({self.target.name})"

    def spec(self) -> Spec:
        uses = tuple(self.project.repl_scope)
        key = {"format": FORMAT, "kind": "repl-runner", "template": self.template,
               "uses": list(uses), "source": source.RUNNER_RUST_TEMPLATE,
               "toolchain": self.identity, "title": self.title}
        root = str(self.store_root)
        return Spec(key=key, language="rust", title=self.title, folder="",
                    compile=[rust_cross.concrete(a.replace(STORE, root))
                             for a in self.template],
                    link=[], env={k: rust_cross.concrete(v) for k, v in self.env.items()},
                    library=self.library, uses=uses)


def prepare(plan: Plan, store: Store, project: str, target: str, reporter: Any = None,
            cache: Any = None) -> RustScope:
    """Realise the project for ``target`` (rooted as ``repl:<plan>/<project>/<target>``) and
    make the runner's argument template from its derivation."""
    from engine.build.realise import realise

    result = realise(plan, store, [target], [project], reporter=reporter,
                     root_prefix=f"repl:{plan.file}", cache=cache)
    drv = result.derivations[0]
    env = {"PATH": os.pathsep.join([os.path.dirname(drv.toolchain.cc), "/usr/bin", "/bin"]),
           "LC_ALL": "C", "TZ": "UTC", "HOME": "/homeless-shelter"}
    if drv.target.triple != "host":  # zig links it: its wrapper's variables and zig's cache
        env.update(rust_cross.linker(drv.target, drv.toolchain.cc)[1])
        if "RECIPE_ZIG" in env:
            env.update(zig_cache.env(store, {"toolchain": {"family": "zig"}}))
    return RustScope(
        project=drv.project, target=drv.target, library=drv.name,
        template=runner_template(drv),
        identity={"rust": drv.data["rust"], "toolchain": drv.data["toolchain"]},
        env=env, store_root=store.root, paths=(drv.name, *(d.name for d in drv.deps)),
        closure=tuple(result.closure), roots=dict(result.roots))


def runner_template(drv: Derivation) -> list[str]:
    """rustc's arguments for a runner of ``drv`` (without ``-o`` and the source)."""
    spec, project = drv.target, drv.project
    rustc = drv.data["rust"]["rustc"]
    crate = crate_name(project.name)
    depends = drv.data["depends"]

    def stored(arg: str) -> str:  # ../d/<folder>/... of a staged action -> @STORE@/<name>/...
        head, sep, rest = arg.partition("../d/")
        if not sep:
            return arg
        folder, _, below = rest.partition("/")
        return f"{head}{STORE}/{depends[folder]}/{below}"

    rlib_action = next(a for a in drv.actions if f"out/lib/lib{crate}.rlib" in a.outputs)
    found, links = [], []
    argv = rlib_action.argv
    for i, arg in enumerate(argv):  # the crates the rlib was compiled against
        if arg == "--extern":
            found += ["--extern", stored(argv[i + 1])]
        elif arg.startswith("-Ldependency="):
            found.append(stored(arg))
    for action in drv.actions:  # the C and C++ libraries its programs link
        for i, arg in enumerate(action.argv[:-1]):
            if arg == "-C" and action.argv[i + 1].startswith("link-arg="):
                links.append(stored(action.argv[i + 1]))
    checks = "on" if spec.opt == "debug" else "off"
    sysroot = Path(rustc).parent.parent
    host = next(line.split(": ", 1)[1] for line in drv.data["rust"]["version"].splitlines()
                if line.startswith("host: "))
    stdlib = sysroot / "lib" / "rustlib" / host
    lld = lld_args(drv.data["rust"])
    own = set(lld[1::2] + FAST_LINK[1::2])  # how the project's own links find lld, not a library
    links = [link for link in dict.fromkeys(links) if link not in own]
    if spec.triple == "host":
        linking = direct_link(drv.toolchain.cc, drv.toolchain.env_path, stdlib, links) \
            if lld else None
        if linking is None:  # through the target's C compiler, with the fastest linker at hand
            # the lld rustup's rustc ships (lld_args), else gold where it is installed (ld.bfd
            # is slower)
            fast = lld + FAST_LINK if lld else []  # the runner is opt-level=0 code
            if not fast and not spec.lto and shutil.which("ld.gold",
                                                          path=drv.toolchain.env_path):
                fast = ["-C", "link-arg=-fuse-ld=gold"]
            linking = ["-C", "prefer-dynamic", "-C", f"link-arg=-Wl,-rpath,{stdlib}/lib",
                       "-C", f"linker={drv.toolchain.cc}", *fast]
    else:
        linking = rust_cross.linker(spec, drv.toolchain.cc)[0]
    return [rustc, "--edition", project.standard or DEFAULT_EDITION,
            "--crate-name", "runner", "--crate-type", "bin",
            "-C", "opt-level=0", "-C", f"debug-assertions={checks}",
            "-C", f"overflow-checks={checks}",
            *(["-C", f"target-cpu={spec.cpu}"] if spec.cpu else []),
            *linking,
            "--extern", f"{crate}={STORE}/{drv.name}/lib/lib{crate}.rlib",
            *found, *(a for link in links for a in ("-C", link))]


def direct_link(cc: str, path: str, stdlib: Path, links: list[str]) -> list[str] | None:
    """rustc's flags to run rustup's lld itself (``stdlib``: the host's folder of the sysroot),
    given what the C compiler would give it (``startfiles``), instead of running it through the
    C compiler: cc, collect2 and lld's wrapper are three programs fewer (~3 ms of a ~45 ms
    runner). None where the C compiler's link cannot be read, or a library's link argument is
    one for a C compiler (only files, ``-l`` and ``-L`` mean the same to lld)."""
    for link in links:
        arg = link.removeprefix("link-arg=")
        if arg.startswith("-") and not arg.startswith(("-l", "-L")):
            return None
    around = startfiles(cc, path)
    if around is None:
        return None
    return ["-C", f"linker={stdlib}/bin/rust-lld", "-C", "linker-flavor=ld.lld",
            "-C", "prefer-dynamic", "-C", f"link-arg=-rpath={stdlib}/lib", "-C", "link-arg=-O0",
            *(a for arg in around for a in ("-C", f"link-arg={arg}"))]


def startfiles(cc: str, path: str) -> list[str] | None:
    """What the C compiler ``cc`` adds to a position-independent executable's link, as rustc
    runs it (``-pie -nodefaultlibs``): the linker's flags, its C runtime start and end files,
    its library folders (what ``cc -###`` says it passes to collect2 or ld, without the LTO
    plugin, the output and the input); None when it cannot be read. They follow rustc's own
    arguments, which lld reads in any order: its objects have no ``.init`` code to come
    between crti.o and crtn.o."""
    probe = "recipe-runner.o"
    try:
        said = subprocess.run([cc, "-###", "-pie", "-nodefaultlibs", probe, "-o", "a.out"],
                              capture_output=True, text=True, timeout=60,
                              env={"PATH": path, "LC_ALL": "C"}).stderr
        words = next(w for w in map(shlex.split, reversed(said.splitlines())) if probe in w)
    except (OSError, subprocess.SubprocessError, ValueError, StopIteration):
        return None
    out: list[str] = []
    skip = 0
    for word in words[1:]:
        if skip:
            skip -= 1
        elif word in ("-plugin", "-o"):
            skip = 1
        elif not (word == probe or word.startswith(("-plugin-opt", "-fuse-ld"))):
            out.append(word)
    return out
