"""The pure parts of crate support: build-script directives, platform conditions, feature
resolution against a registry written here (no compiler)."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.crates.cfg import CfgError, applies
from engine.crates.directives import DirectiveError, parse
from engine.crates.registry import DepSpec, Registry
from engine.crates.resolve import ResolveError, Root, resolve
from engine.errors import Pos
from engine.semver import Requirement
from tests.conftest import write_tree

LINUX = frozenset({"unix", 'target_os="linux"', 'target_arch="x86_64"', 'target_env="gnu"'})


def test_directives_in_both_forms() -> None:
    out = parse("hello\ncargo:rustc-cfg=has_x\ncargo::rustc-cfg=feature=\"y\"\n"
                "cargo:rustc-check-cfg=cfg(has_x)\ncargo::rustc-env=A=b=c\n"
                "cargo:rustc-link-lib=static=z\ncargo:rustc-link-search=native=/opt\n"
                "cargo:rustc-flags=-l m -L/usr/lib\ncargo:rustc-link-arg=-Wl,-z,now\n"
                "cargo:warning=  spaced\ncargo:root=/x\ncargo::metadata=include=/inc\n"
                "cargo:rerun-if-changed=build.rs\n")
    assert out.cfgs == ["has_x", 'feature="y"'] and out.check_cfgs == ["cfg(has_x)"]
    assert out.env == {"A": "b=c"} and out.link_libs == ["static=z", "m"]
    assert out.link_search == ["native=/opt", "/usr/lib"] and out.warnings == ["  spaced"]
    assert out.metadata == {"root": "/x", "include": "/inc"}
    assert out.rustc_args() == ["--cfg", "has_x", "--cfg", 'feature="y"', "-L", "native=/opt",
                                "-L", "/usr/lib", "-l", "static=z", "-l", "m",
                                "-C", "link-arg=-Wl,-z,now"]


@pytest.mark.parametrize("line", ["cargo:rustc-cfg", "cargo::nonsense=1",
                                  "cargo:rustc-env=NOVALUE", "cargo:rustc-flags=-O"])
def test_bad_directives_are_refused(line: str) -> None:
    with pytest.raises(DirectiveError):
        parse(line + "\n")


@pytest.mark.parametrize(("spec", "expected"), [
    (None, True), ("cfg(unix)", True), ("cfg(windows)", False),
    ('cfg(target_os = "linux")', True), ('cfg(not(target_os = "linux"))', False),
    ('cfg(any(windows, all(unix, target_arch = "x86_64"),))', True),
    ("x86_64-unknown-linux-gnu", True), ("i686-pc-windows-msvc", False),
])
def test_platform_conditions(spec: str | None, expected: bool) -> None:
    assert applies(spec, "x86_64-unknown-linux-gnu", LINUX) is expected


@pytest.mark.parametrize("spec", ["cfg(", "cfg(not(a, b))", "cfg(a = b)", "cfg(a b)"])
def test_bad_platform_conditions(spec: str) -> None:
    with pytest.raises(CfgError):
        applies(spec, "x", LINUX)


def _crate(registry: Path, name: str, version: str, toml: str = "") -> None:
    write_tree(registry / f"{name}-{version}", {
        "Cargo.toml": f'[package]\nname = "{name}"\nversion = "{version}"\n{toml}',
        "src/lib.rs": ""})


def test_features_unify_and_build_dependencies_resolve_apart(tmp_path: Path) -> None:
    reg = tmp_path / "reg"
    _crate(reg, "base", "1.0.0", "[features]\ndefault = ['std']\nstd = []\nextra = []\n")
    _crate(reg, "base", "1.1.0", "[features]\ndefault = ['std']\nstd = []\nextra = []\n")
    _crate(reg, "base", "2.0.0")
    _crate(reg, "opt", "0.3.1")
    _crate(reg, "mid", "0.2.0", "[dependencies.base]\nversion = '1.0'\n"
           "default-features = false\n[dependencies.opt]\nversion = '0.3'\noptional = true\n"
           "[build-dependencies.base]\nversion = '1'\nfeatures = ['extra']\n"
           "[target.'cfg(windows)'.dependencies.nowhere]\nversion = '1'\n"
           "[features]\nwith-opt = ['dep:opt', 'base?/extra']\n")
    roots = [Root("p", DepSpec("mid", "mid", Requirement.parse("0.2"), ("with-opt",)),
                  Pos(tmp_path / "p.yaml", 1, 1)),
             Root("q", DepSpec("base", "base", Requirement.parse("2")), Pos(tmp_path, 2, 1))]
    graph = resolve(Registry(reg), roots, "x86_64-unknown-linux-gnu", LINUX)
    assert sorted(graph.nodes) == ["base-1.1.0", "base-1.1.0-host", "base-2.0.0", "mid-0.2.0",
                                   "opt-0.3.1"]
    # The weak base?/extra applies (base is a normal dependency anyway); the build
    # dependency's features stay on the host node.
    assert graph.nodes["base-1.1.0"].features == {"extra"}
    assert graph.nodes["base-1.1.0-host"].features == {"default", "std", "extra"}
    assert graph.roots == {"p": {"mid": "mid-0.2.0"}, "q": {"base": "base-2.0.0"}}
    with pytest.raises(ResolveError, match="crate opt-0.3.1 has no feature 'x'"):
        resolve(Registry(reg), [Root("p", DepSpec("opt", "opt", Requirement.parse("*"),
                                                  ("x",)), Pos(tmp_path, 1, 1))],
                "x86_64-unknown-linux-gnu", LINUX)


def _resolve(reg: Path, tmp_path: Path, **crates: str) -> dict[str, str]:
    """Resolve ``crates`` (name -> requirement) as one project's entries; {name: version}."""
    roots = [Root("p", DepSpec(name, name, Requirement.parse(req)), Pos(tmp_path / "p.yaml", i, 3))
             for i, (name, req) in enumerate(crates.items(), 1)]
    graph = resolve(Registry(reg), roots, "x86_64-unknown-linux-gnu", LINUX)
    return {n.manifest.name: str(n.manifest.version) for n in graph.nodes.values()}


def test_a_conflict_with_the_newest_versions_backtracks_to_older_ones(tmp_path: Path) -> None:
    # The newest app-a needs shared ^1.1, but side wants ~1.0 of the same compatible range
    # (one version per range): Cargo falls back to app-a 1.0.0 and shared 1.0.0.
    reg = tmp_path / "reg"
    _crate(reg, "shared", "1.0.0")
    _crate(reg, "shared", "1.1.0")
    _crate(reg, "app-a", "1.0.0", "[dependencies]\nshared = '1.0'\n")
    _crate(reg, "app-a", "1.1.0", "[dependencies]\nshared = '1.1'\n")
    _crate(reg, "side", "1.0.0", "[dependencies]\nshared = '~1.0'\n")
    assert _resolve(reg, tmp_path, **{"app-a": "1", "side": "1"}) == \
        {"app-a": "1.0.0", "shared": "1.0.0", "side": "1.0.0"}


def test_a_missing_feature_or_a_links_clash_backtracks(tmp_path: Path) -> None:
    reg = tmp_path / "reg"
    # The newest tool dropped its feature 'old'; a dependent asking for it gets the older one.
    _crate(reg, "tool", "1.0.0", "[features]\nold = []\n")
    _crate(reg, "tool", "1.1.0", "[features]\nnew = []\n")
    _crate(reg, "user", "0.1.0", "[dependencies.tool]\nversion = '1'\nfeatures = ['old']\n")
    assert _resolve(reg, tmp_path, user="0.1") == {"user": "0.1.0", "tool": "1.0.0"}
    # Only one crate of a graph may declare links = "native": the newest wrap does, and so
    # does sys, so wrap 1.0.0 (which does not) is the one Cargo takes.
    _crate(reg, "wrap", "1.0.0")
    _crate(reg, "wrap", "1.1.0", "links = 'native'\n")
    _crate(reg, "sys", "0.1.0", "links = 'native'\n")
    assert _resolve(reg, tmp_path, wrap="1", sys="0.1") == {"wrap": "1.0.0", "sys": "0.1.0"}
    with pytest.raises(ResolveError, match="matches '=1.1.0' .*; the registry holds 1.1.0, "
                       "1.0.0; sys-0.1.0 already declares links = 'native'"):
        _resolve(reg, tmp_path, sys="0.1", wrap="=1.1.0")


def test_a_graph_without_a_solution_names_the_first_conflict(tmp_path: Path) -> None:
    reg = tmp_path / "reg"
    _crate(reg, "shared", "1.0.0")
    _crate(reg, "shared", "1.1.0")
    for version in ("1.0.0", "1.1.0"):
        _crate(reg, "left", version, "[dependencies]\nshared = '=1.1.0'\n")
        _crate(reg, "right", version, "[dependencies]\nshared = '=1.0.0'\n")
    with pytest.raises(ResolveError) as caught:
        _resolve(reg, tmp_path, left="1", right="1")
    assert caught.value.render() == (
        f"{tmp_path / 'p.yaml'}:2:3: no version of crate 'shared' matches '=1.0.0' (wanted by "
        "crate right-1.1.0); the registry holds 1.1.0, 1.0.0; 1.1.0 is already chosen (and no "
        "older choice of versions avoids it); loosen the requirement, or add a matching "
        "version to the registry")


def test_a_hopeless_graph_ends_after_a_bounded_number_of_tries(tmp_path: Path) -> None:
    # 4^8 combinations of the layers above a conflict no choice avoids: the bound ends it.
    reg = tmp_path / "reg"
    _crate(reg, "pinned", "1.0.0")
    _crate(reg, "pinned", "1.1.0")
    for layer in range(8):
        below = f"[dependencies]\nlayer{layer + 1} = '1'\n" if layer < 7 else \
            "[dependencies]\npinned = '=1.0.0'\n"
        for minor in range(4):
            _crate(reg, f"layer{layer}", f"1.{minor}.0", below)
    with pytest.raises(ResolveError, match=r"matches '=1.0.0' .* \(no combination of versions "
                       r"found in 2000 tries\)"):
        _resolve(reg, tmp_path, pinned="=1.1.0", layer0="1")
    # A project's own entry no version meets is reported at once, whatever the other choices.
    for crates, message in (({"nosuch": "1"}, "unknown crate 'nosuch'"),
                            ({"pinned": "2"}, "no version of crate 'pinned' matches '2'")):
        with pytest.raises(ResolveError) as caught:
            _resolve(reg, tmp_path, layer0="1", **crates)
        assert caught.value.what.startswith(message) and "tries" not in caught.value.what
