"""Why a derivation is not valid: how it differs from the last valid path of its project x
target (``recipe why``).

The previous path is the one realise last printed for this plan (its root
``realise:<plan>/<project>/<target>``), else the most recently registered valid path whose
derivation names the same project and target. The two derivation objects (see
``derivation.py``) are compared field by field; each difference becomes one ``Change``
``{what, key, old, new}`` (``old`` None: added; ``new`` None: removed):

  what          key                 from
  source        path in project     inputs (a path that is not a header)
  header        path in project     inputs (.h .hh .hpp .hxx .h++ .inc .ipp .tcc)
  public header path in project     public (where it lands under include/)
  project       field               project (version, language, standard)
  target        field               target.spec (opt, lto, cpu, ...)
  toolchain     field               toolchain (drivers, version, programs, digests.<program>)
  rust          field               rust (rustc's identity)
  dependency    project             depends (a dependency's store path name)
  define        macro               -D/-U arguments of the actions that are in both
  flag          the flag            the other options of those actions
  action        kind output         only when nothing above explains the difference
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.derive.derivation import FORMAT, Derivation

HEADER_SUFFIXES = (".h", ".hh", ".hpp", ".hxx", ".h++", ".inc", ".ipp", ".tcc")

UP_TO_DATE, CHANGED, NEVER_BUILT = "up to date", "changed", "never built"


@dataclass(frozen=True)
class Change:
    what: str
    key: str
    old: Any
    new: Any

    def as_json(self) -> dict[str, Any]:
        return {"what": self.what, "key": self.key, "old": self.old, "new": self.new}


@dataclass
class Explanation:
    """One selected derivation: its status, the path it was compared with, the changes."""

    project: str
    target: str
    name: str
    status: str
    previous: str | None = None
    changes: list[Change] = field(default_factory=list)


def explain(drvs: Iterable[Derivation], history: Iterable[tuple[str, str]],
            roots: Mapping[str, str], valid: Iterable[str], plan_file: str) -> list[Explanation]:
    """Explain each of ``drvs`` against the store's ``history`` ((name, derivation), newest
    first), its ``roots`` and its ``valid`` names."""
    valid = set(valid)
    latest: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}
    recorded: dict[str, dict[str, Any]] = {}
    for name, text in history:
        data = _load(text)
        if data is not None:
            recorded[name] = data
            latest.setdefault((data["project"]["name"], data["target"]["name"]), (name, data))
    result = []
    for drv in drvs:
        project, target = drv.key
        if drv.name in valid:
            result.append(Explanation(project, target, drv.name, UP_TO_DATE))
            continue
        printed = roots.get(f"realise:{plan_file}/{project}/{target}")
        if printed in recorded:
            previous: tuple[str, dict[str, Any]] | None = (printed, recorded[printed])
        else:
            previous = latest.get(drv.key)
        if previous is None:
            result.append(Explanation(project, target, drv.name, NEVER_BUILT))
        else:
            result.append(Explanation(project, target, drv.name, CHANGED, previous[0],
                                      changes(previous[1], drv.data)))
    return result


def _load(text: str) -> dict[str, Any] | None:
    """A recorded derivation, or None when it is not one this version can compare."""
    try:
        data = json.loads(text)
        if data.get("format") == FORMAT and isinstance(data["project"]["name"], str) and \
                isinstance(data["target"]["name"], str):
            return data
    except (ValueError, KeyError, TypeError, AttributeError):
        pass
    return None


def changes(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    """Every difference between two derivation objects, in the order of the table above."""
    found: list[Change] = []
    for path, before, after in _diff(old.get("inputs", {}), new.get("inputs", {})):
        found.append(Change("header" if path.endswith(HEADER_SUFFIXES) else "source",
                            path, before, after))
    found += [Change("public header", *d) for d in _diff(old.get("public", {}),
                                                         new.get("public", {}))]
    for what, key in (("project", "project"), ("target", "target"), ("toolchain", "toolchain"),
                      ("rust", "rust")):
        before, after = old.get(key) or {}, new.get(key) or {}
        if key == "target":
            before, after = before.get("spec", {}), after.get("spec", {})
        found += [Change(what, *d) for d in _diff(_flat(before), _flat(after))]
    found += [Change("dependency", *d) for d in _diff(old.get("depends", {}),
                                                      new.get("depends", {}))]
    actions = _action_changes(_placed(old), _placed(new))
    found += [c for c in actions if c.what in ("define", "flag")]
    if not found:  # nothing the documents name: say which commands differ
        found = [c for c in actions if c.what == "action"] or \
            [Change("derivation", "", None, None)]
    return found


def _diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    return [(key, old.get(key), new.get(key)) for key in sorted({*old, *new})
            if old.get(key) != new.get(key)]


def _flat(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested objects as dotted keys (``digests.cc1``); lists stay values."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _placed(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The actions with each dependency's store path name replaced by ``@<project>@``: a
    rebuilt dependency is named once, not again in every rpath that spells its name."""
    actions = data.get("actions", [])
    depends = data.get("depends", {})
    if not depends:
        return actions
    def place(arg: str) -> str:
        for project, name in depends.items():
            arg = arg.replace(name, f"@{project}@")
        return arg
    return [{**a, "argv": [place(arg) for arg in a.get("argv", [])]} for a in actions]


def _action_key(action: dict[str, Any]) -> str:
    """What an action makes, which stays the same when its command changes."""
    outputs = action.get("outputs") or ["?"]
    return f"{action.get('kind', '?')} {outputs[0]}"


def _action_changes(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[Change]:
    """Defines and flags that differ between actions making the same output (gathered over
    all of them: a project's flag reaches every compile), and the actions whose commands
    differ, appear or go."""
    before = {_action_key(a): a.get("argv", []) for a in old}
    after = {_action_key(a): a.get("argv", []) for a in new}
    removed: dict[str, None] = {}  # dicts: ordered sets, in the order of the commands
    added: dict[str, None] = {}
    differ = []
    for key, before_argv, after_argv in _diff(before, after):
        differ.append(Change("action", key, before_argv, after_argv))
        if before_argv is None or after_argv is None:
            continue
        # argv[0] is the driver (a toolchain change); words without '-' are files.
        old_opts = [a for a in before_argv[1:] if a.startswith("-")]
        new_opts = [a for a in after_argv[1:] if a.startswith("-")]
        removed.update(dict.fromkeys(a for a in old_opts if a not in new_opts))
        added.update(dict.fromkeys(a for a in new_opts if a not in old_opts))
    return [*_defines(removed, added), *_flags(removed, added), *differ]


def _defines(removed: dict[str, None], added: dict[str, None]) -> list[Change]:
    """``-DNAME[=VALUE]`` and ``-UNAME`` as macros: ``{NAME: VALUE}`` (``-U``: undefined)."""
    def macros(options: dict[str, None]) -> dict[str, str]:
        found = {}
        for option in list(options):
            if option.startswith(("-D", "-U")) and len(option) > 2:
                del options[option]
                name, _, value = option[2:].partition("=")
                found[name] = ("1" if "=" not in option else value) if option[1] == "D" \
                    else "(undefined)"
        return found
    return [Change("define", *d) for d in _diff(macros(removed), macros(added))]


def _stem(option: str) -> str:
    """What two values of one setting share: ``-O2``/``-O3``, ``-std=c11``/``-std=c17``."""
    if "=" in option:
        return option.split("=", 1)[0]
    return option[:2] if option[:2] in ("-O", "-g") else option


def _flags(removed: dict[str, None], added: dict[str, None]) -> list[Change]:
    found = []
    pending = dict(added)
    for option in removed:
        match = next((a for a in pending if _stem(a) == _stem(option)), None)
        if match is not None:
            del pending[match]
        found.append(Change("flag", option, option, match))
    found += [Change("flag", option, None, option) for option in pending]
    return found


# -- words ------------------------------------------------------------------------------------

def _short(value: Any) -> str:
    """A value as one short word: a digest's first 12 hex digits, a text's first line."""
    if isinstance(value, str):
        if value.startswith("sha256:"):
            return f"sha256 {value[7:19]}…"
        lines = value.strip().splitlines()
        return lines[0] if lines else "''"
    return json.dumps(value)


def words(change: Change, plan: str, target: str) -> str:
    """One change as one line a person reads."""
    what, key, old, new = change.what, change.key, change.old, change.new
    if what == "derivation":
        return f"the derivation differs in a way this version cannot name; compare " \
               f"'recipe show --json {plan}' with 'recipe store ls --json'"
    if what == "flag":
        return f"flag {old} → {new}" if old and new else \
            f"flag {old or new} {'added' if new else 'removed'}"
    if what == "action":
        if old is None or new is None:
            return f"action {key} {'added' if new else 'removed'}"
        return f"command of {key} changed: {' '.join(old)} → {' '.join(new)}"
    if what == "define":
        return f"define {key}={new} added" if old is None else \
            f"define {key} removed (was {old})" if new is None else \
            f"define {key}: {old} → {new}"
    label = {"project": "project field", "target": "target field",
             "rust": "rust toolchain"}.get(what, what)
    if old is None:
        return f"{label} {key} added" + ("" if what in ("source", "header")
                                          else f" ({_short(new)})")
    if new is None:
        return f"{label} {key} removed" + ("" if what in ("source", "header")
                                            else f" (was {_short(old)})")
    if what in ("source", "header"):
        return f"{what} {key} changed ({_short(old)} → {_short(new)})"
    if what == "toolchain" and key.startswith("digests."):
        return f"toolchain program {key[8:]} changed ({_short(old)} → {_short(new)})"
    if what == "dependency":
        return f"dependency {key}: {old} → {new} (itself rebuilt: run " \
               f"'recipe why {plan} -p {key} -t {target}')"
    return f"{label} {key}: {_short(old)} → {_short(new)}"
