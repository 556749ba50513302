"""The scenarios of issues 4 and 16 and the runs that measure them, interleaved tool by tool.

One repetition runs every scenario in order, and inside each scenario every tool once (the
order of the tools rotates from one repetition to the next, to spread the machine's noise):

  cold      recipe: a fresh store; make: ``make clean``; ccache: ``make clean`` and an empty cache
  noop      again, nothing changed
  edit_c    one unit gets a new constant in a function (a new value every time)
  edit_h    the hot header (included by 30 of 100 units) gets a new constant
  warm      recipe: the path is deleted, the action cache kept (see ``Recipe.drop_outputs``);
            ccache: ``make clean``, the cache kept
  noop_200  the plan of 200 one-file projects, realised once beforehand; make: the same over
            one Makefile of 200 folders

Each timed run is checked, untimed: make's ``make -n`` must list exactly the expected units
before and ``make -q`` must find nothing to do after; recipe's path must change after an edit
(and stay after a no-op), and its build log says which units it compiled.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench import corpus
from bench.process import BenchError, Sample, remove_tree
from bench.tools import Make, Recipe

TOOLS = ("recipe", "make", "ccache")
#: Scenarios also run through ``recipe server`` and the native client (tool ``served``), each
#: right after recipe's in-process run, from the state that left.
SERVED = ("cold", "noop", "edit_c", "edit_h", "warm", "noop_200")


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    tools: tuple[str, ...]  # the tools measured in it
    reference: str  # what the ratio recipe / reference is taken against: a tool or "nix"
    limit: float  # the target: a ratio, or (absolute) seconds
    absolute: bool = False  # the target is recipe's median in seconds, not the ratio
    cpu_limit: float | None = None  # also: recipe's CPU seconds / the reference's, at most


SCENARIOS = (  # the targets of issue 16
    Scenario("cold", "cold build", TOOLS, "make", 1.0, cpu_limit=1.05),
    Scenario("noop", "no-op", TOOLS, "make", 1.0),
    Scenario("edit_c", "one .c edited", TOOLS, "make", 1.1),
    Scenario("edit_h", "hot header edited", TOOLS, "make", 1.0),
    Scenario("warm", "warm rebuild", ("recipe", "ccache"), "ccache", 0.25),
    Scenario("noop_200", "no-op, 200 projects", ("recipe", "make"), "make", 1.0),
)


@dataclass
class Results:
    samples: dict[str, dict[str, list[Sample]]] = field(default_factory=dict)
    compiled: dict[str, dict[str, list[int]]] = field(default_factory=dict)

    def add(self, scenario: str, tool: str, sample: Sample, compiled: int) -> None:
        self.samples.setdefault(scenario, {}).setdefault(tool, []).append(sample)
        self.compiled.setdefault(scenario, {}).setdefault(tool, []).append(compiled)


class Bench:
    """The corpus in ``work`` and the state of every tool between scenarios."""

    def __init__(self, work: Path, units: int, projects: int, seed: int, jobs: int,
                 log: Callable[[str], None]) -> None:
        if units < 2:
            raise BenchError("--units must be 2 or more (unit 0 holds main)")
        self.work, self.units, self.log = work, units, log
        self.trees = {tool: work / tool for tool in TOOLS}
        for tree in self.trees.values():
            self.layout = corpus.write_app(tree, units, seed)
        corpus.write_many(work / "many-recipe", projects, seed)
        corpus.write_many(work / "many-make", projects, seed)
        self.edited_unit = corpus.unit_name(units // 2)
        self.hot_units = [corpus.unit_name(u) for u in self.layout.users(0)]
        self.all_units = [corpus.unit_name(u) for u in range(units)]
        self.recipe = Recipe(jobs, work / "venv")
        self.plan = self.trees["recipe"] / "plan.yaml"
        self.many_plan = work / "many-recipe" / "plan.yaml"
        self.stores = work / "stores"
        self.cc = self.recipe.compiler(self.plan, self.stores / "probe")
        remove_tree(self.stores / "probe")
        self.make = Make(self.trees["make"] / "app", self.cc, jobs)
        self.ccache = Make(self.trees["ccache"] / "app", self.cc, jobs, work / "ccache-dir")
        self.many_make = Make(work / "many-make", self.cc, jobs)
        self.store = self.stores / "app-0"
        self.path = ""  # recipe's current store path of the app
        self.edits = 0
        self.results = Results()

    def prepare_many(self) -> None:
        """Build the 200-project plan once with recipe and make (not measured)."""
        self.recipe.realise(self.many_plan, self.stores / "many")
        if not all(d["valid"] for d in self.recipe.show(self.many_plan, self.stores / "many")):
            raise BenchError("the 200-project plan is not valid after realise")
        self.many_make.build()
        if not self.many_make.up_to_date():
            raise BenchError("make left work undone in the 200-project tree")

    def repetition(self, rep: int, reps: int) -> None:
        shift = rep % len(TOOLS)
        order = TOOLS[shift:] + TOOLS[:shift]
        for scenario in SCENARIOS:
            self._change(scenario.name)
            for tool in (t for t in order if t in scenario.tools):
                if tool == "recipe":
                    sample, compiled = self._recipe(scenario.name, rep)
                else:
                    sample, compiled = self._make(scenario.name, tool)
                self.results.add(scenario.name, tool, sample, compiled)
                self.log(f"rep {rep + 1}/{reps}  {scenario.name:<8}  {tool:<6}  "
                         f"{sample.seconds:8.3f} s  cpu {sample.cpu:7.3f} s  "
                         f"compiled {compiled}")
            if scenario.name in SERVED and self.recipe.client:
                sample, compiled = self._served(scenario.name)
                self.results.add(scenario.name, "served", sample, compiled)
                self.log(f"rep {rep + 1}/{reps}  {scenario.name:<8}  served  "
                         f"{sample.seconds:8.3f} s  cpu {sample.cpu:7.3f} s  "
                         f"compiled {compiled}")

    def instructions(self) -> dict[str, int]:
        """recipe's own instruction counts (callgrind) for a no-op and for one .c edited (in
        recipe's tree alone: run after the repetitions); empty without valgrind."""
        counts = {}
        noop = self.recipe.instructions(self.plan, self.store, self.work / "callgrind.noop")
        if noop is None:
            return {}
        counts["no-op"] = noop
        self.edits += 1
        corpus.edit(self.trees["recipe"] / "app" / self.edited_unit, self.edits)
        edit = self.recipe.instructions(self.plan, self.store, self.work / "callgrind.edit")
        if edit is not None:
            counts["one .c edited"] = edit
        return counts

    def _change(self, scenario: str) -> None:
        """The edit of a scenario, made the same in every tree: a value never used before."""
        if scenario not in ("edit_c", "edit_h"):
            return
        self.edits += 1
        rel = self.edited_unit if scenario == "edit_c" else corpus.header_name(0)
        for tree in self.trees.values():
            corpus.edit(tree / "app" / rel, self.edits)

    def expected(self, scenario: str) -> list[str]:
        """The units a correct incremental build compiles in a scenario."""
        return {"cold": self.all_units, "warm": self.all_units, "edit_c": [self.edited_unit],
                "edit_h": self.hot_units}.get(scenario, [])

    # -- recipe -----------------------------------------------------------------------------

    def _recipe(self, scenario: str, rep: int) -> tuple[Sample, int]:
        if scenario == "noop_200":
            return self.recipe.realise(self.many_plan, self.stores / "many"), 0
        before = self.path
        if scenario == "cold":
            remove_tree(self.store)
            self.store = self.stores / f"app-{rep}"
        elif scenario == "warm":
            self.recipe.drop_outputs(self.plan, self.store)
            if self.recipe.path(self.plan, self.store)[1]:
                raise BenchError("warm: the path is still valid after store gc")
        sample = self.recipe.realise(self.plan, self.store)
        self.path, valid = self.recipe.path(self.plan, self.store)
        if not valid:
            raise BenchError(f"{scenario}: recipe realise left {self.path} invalid")
        if scenario == "noop":
            if self.path != before:
                raise BenchError(f"no-op: the path changed from {before} to {self.path}")
            return sample, 0
        if scenario.startswith("edit") and self.path == before:
            raise BenchError(f"{scenario}: the store path did not change after the edit")
        if scenario == "warm" and self.path != before:
            raise BenchError(f"warm: rebuilt {self.path}, not {before}")
        compiled = self.recipe.compiled(self.store, self.path)
        missing = set(self.expected(scenario)) - {c.removeprefix("w/") for c in compiled}
        if scenario != "warm" and missing:
            raise BenchError(f"{scenario}: recipe did not compile {sorted(missing)[:5]}")
        if scenario == "warm" and compiled:
            raise BenchError(f"warm: recipe compiled {len(compiled)} units: the action cache "
                             "was not kept, so this was no warm rebuild")
        return sample, len(compiled)

    def _served(self, scenario: str) -> tuple[Sample, int]:
        """The scenario again, by the native client and the server: a no-op; another new
        value in the edited unit or the hot header (recipe's tree alone); the path dropped
        again."""
        if scenario == "noop_200":
            return self.recipe.realise(self.many_plan, self.stores / "many", served=True), 0
        before = self.path
        edit = scenario.startswith("edit")
        if scenario == "cold":  # a store of its own, new: the path is the in-process run's
            self.store = self.stores / f"{self.store.name}-served"
            remove_tree(self.store)
            before = ""
        if edit:
            self.edits += 1
            rel = self.edited_unit if scenario == "edit_c" else corpus.header_name(0)
            corpus.edit(self.trees["recipe"] / "app" / rel, self.edits)
        elif scenario == "warm":
            self.recipe.drop_outputs(self.plan, self.store)
        sample = self.recipe.realise(self.plan, self.store, served=True)
        self.path, valid = self.recipe.path(self.plan, self.store)
        if not valid or (self.path == before) == (edit or scenario == "cold"):
            raise BenchError(f"{scenario}, served: the path went from {before} to "
                             f"{self.path} ({'valid' if valid else 'invalid'})")
        if scenario == "noop":
            return sample, 0
        compiled = [c.removeprefix("w/") for c in self.recipe.compiled(self.store, self.path)]
        if (set(self.expected(scenario)) - set(compiled)) if edit or scenario == "cold" \
                else compiled:
            raise BenchError(f"{scenario}, served: recipe compiled {compiled[:5]}")
        return sample, len(compiled)

    # -- make, plain and with ccache --------------------------------------------------------

    def _make(self, scenario: str, tool: str) -> tuple[Sample, int]:
        make = self.many_make if scenario == "noop_200" else getattr(self, tool)
        if scenario in ("cold", "warm"):
            make.untimed("clean")
        if tool == "ccache" and scenario == "cold":
            remove_tree(make.ccache_dir)
        if tool == "ccache":
            make.ccache_zero()
        pending = make.pending()
        if pending != sorted(self.expected(scenario)):
            raise BenchError(f"{scenario}: {tool} would compile {len(pending)} units "
                             f"({pending[:5]}...), not {len(self.expected(scenario))}")
        sample = make.build()
        if not make.up_to_date():
            raise BenchError(f"{scenario}: {tool} left work undone")
        if tool == "ccache" and scenario == "warm":
            stats = make.ccache_stats()
            hits = stats.get("direct_cache_hit", 0) + stats.get("preprocessed_cache_hit", 0)
            if hits != self.units or stats.get("cache_miss", 0):
                raise BenchError(f"warm: ccache hit {hits} of {self.units} units")
            return sample, 0  # every unit came from the cache: none was compiled
        return sample, len(pending)
