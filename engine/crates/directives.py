"""What a build script prints: Cargo's ``cargo:`` / ``cargo::`` directives, parsed in one place.

Grammar (one directive per line of the script's stdout; every other line is ignored, as Cargo
ignores it)::

    line      := ("cargo::" | "cargo:") key "=" value
    key       := "rustc-cfg" | "rustc-check-cfg" | "rustc-env" | "rustc-link-lib"
                 | "rustc-link-search" | "rustc-link-arg" | "rustc-flags" | "warning"
                 | "error" | "metadata" | "rerun-if-changed" | "rerun-if-env-changed"
                 | other
    rustc-cfg       value := ident | ident "=" '"' text '"'      -> --cfg value
    rustc-env       value := NAME "=" text                       -> NAME in rustc's environment
    rustc-link-lib  value := [kind "="] name                     -> -l value
    rustc-link-search value := [kind "="] path                   -> -L value
    rustc-link-arg  value := text                                -> -C link-arg=text
    rustc-flags     value := ("-l" lib | "-L" path)*             -> -l / -L
    metadata        value := KEY "=" text     (``cargo::metadata=``; ``cargo:KEY=text`` in the
                                               one-colon form, for any other key)
                                              -> DEP_<LINKS>_<KEY> for dependents' scripts

``rustc-check-cfg`` is kept but not passed (rustc 1.63 has no ``--check-cfg`` without ``-Z``;
it only silences a lint). ``rerun-if-*`` mean nothing here: a build script reruns exactly when
its action key changes. ``warning`` lines are kept for the log; ``error`` fails the build.
"""

from __future__ import annotations

from dataclasses import dataclass, field

KNOWN = {"rustc-cfg", "rustc-check-cfg", "rustc-env", "rustc-link-lib", "rustc-link-search",
         "rustc-link-arg", "rustc-link-arg-bins", "rustc-link-arg-cdylib",
         "rustc-cdylib-link-arg", "rustc-flags", "warning", "error", "metadata",
         "rerun-if-changed", "rerun-if-env-changed"}


class DirectiveError(ValueError):
    """A directive a build script printed that cannot be honoured."""


@dataclass
class Directives:
    cfgs: list[str] = field(default_factory=list)
    check_cfgs: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    link_libs: list[str] = field(default_factory=list)
    link_search: list[str] = field(default_factory=list)
    link_args: list[str] = field(default_factory=list)
    metadata: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def rustc_args(self) -> list[str]:
        """What the crate's own compile gets, in Cargo's order."""
        args = [a for cfg in self.cfgs for a in ("--cfg", cfg)]
        args += [a for path in self.link_search for a in ("-L", path)]
        args += [a for lib in self.link_libs for a in ("-l", lib)]
        args += [a for arg in self.link_args for a in ("-C", f"link-arg={arg}")]
        return args

    def as_json(self) -> dict[str, object]:
        return {"cfgs": self.cfgs, "check_cfgs": self.check_cfgs, "env": self.env,
                "link_libs": self.link_libs, "link_search": self.link_search,
                "link_args": self.link_args, "metadata": self.metadata,
                "warnings": self.warnings, "errors": self.errors}


def parse(stdout: str) -> Directives:
    out = Directives()
    for line in stdout.splitlines():
        if line.startswith("cargo::"):
            body, new_form = line[len("cargo::"):], True
        elif line.startswith("cargo:"):
            body, new_form = line[len("cargo:"):], False
        else:
            continue
        key, sep, value = body.partition("=")
        if not sep:
            raise DirectiveError(f"'{line}' has no '='")
        _one(out, key.strip(), value.strip() if key != "warning" else value, new_form, line)
    return out


def _one(out: Directives, key: str, value: str, new_form: bool, line: str) -> None:
    if key == "rustc-cfg":
        out.cfgs.append(value)
    elif key == "rustc-check-cfg":
        out.check_cfgs.append(value)
    elif key == "rustc-env":
        name, sep, text = value.partition("=")
        if not sep or not name:
            raise DirectiveError(f"'{line}': rustc-env needs NAME=VALUE")
        out.env[name] = text
    elif key == "rustc-link-lib":
        out.link_libs.append(value)
    elif key == "rustc-link-search":
        out.link_search.append(value)
    elif key in ("rustc-link-arg", "rustc-link-arg-bins", "rustc-link-arg-cdylib",
                 "rustc-cdylib-link-arg"):
        out.link_args.append(value)
    elif key == "rustc-flags":
        _flags(out, value, line)
    elif key == "warning":
        out.warnings.append(value)
    elif key == "error":
        out.errors.append(value)
    elif key in ("rerun-if-changed", "rerun-if-env-changed"):
        pass
    elif key == "metadata" and new_form:
        name, sep, text = value.partition("=")
        if not sep:
            raise DirectiveError(f"'{line}': metadata needs KEY=VALUE")
        out.metadata[name] = text
    elif not new_form:
        out.metadata[key] = value  # the one-colon form: any other key is metadata
    else:
        raise DirectiveError(f"'{line}': unknown directive '{key}'")


def _flags(out: Directives, value: str, line: str) -> None:
    words = value.split()
    i = 0
    while i < len(words):
        word = words[i]
        flag, rest = word[:2], word[2:]
        if flag not in ("-l", "-L"):
            raise DirectiveError(f"'{line}': rustc-flags allows only -l and -L")
        if not rest:
            i += 1
            if i == len(words):
                raise DirectiveError(f"'{line}': {flag} needs a value")
            rest = words[i]
        (out.link_libs if flag == "-l" else out.link_search).append(rest)
        i += 1
