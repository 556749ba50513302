"""The machine, the medians, the ratios against the issue's targets: a table and a JSON object."""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tabulate import tabulate

from bench import others
from bench.scenarios import SCENARIOS, TOOLS, Results, Scenario
from bench.tools import REPO

HEADS = {"recipe": "recipe", "make": "make -j2", "ccache": "make+ccache"}


def _first_line(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
    except OSError:
        return "not found"
    return (done.stdout or done.stderr).strip().splitlines()[0] if done.stdout or done.stderr \
        else "?"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine(cc: str) -> dict[str, Any]:
    """What the figures were measured on."""
    commit = _first_line(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
    dirty = _first_line(["git", "-C", str(REPO), "status", "--porcelain", "--", "engine"])
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cores": os.cpu_count(),
        "cpu": _cpu_model(),
        "kernel": f"{platform.system()} {platform.release()} {platform.machine()}",
        "python": platform.python_version(),
        "gcc": _first_line([cc, "--version"]),
        "make": _first_line(["make", "--version"]),
        "ccache": _first_line(["ccache", "--version"]),
        "recipe": commit + (" (engine/ modified)" if dirty not in ("", "?") else ""),
        "load_average": list(os.getloadavg()),
    }


def create_cost_us(folder: Path, count: int = 200) -> float:
    """Microseconds to create one empty file in a new folder under ``folder`` (median of
    ``count``). On a shared ext4 file system it ranges from 10 to over 300 µs, by where the
    folder lands (the search for a block group with a free inode), and a cold build creates
    files by the hundred (recipe more than make: its action cache's entries, the inputs' copies
    that become their blobs): a figure to read the wall clocks beside."""
    probe = Path(tempfile.mkdtemp(prefix="create-cost-", dir=folder))
    try:
        times = []
        for n in range(count):
            begun = time.perf_counter()
            os.close(os.open(probe / str(n), os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o644))
            times.append(time.perf_counter() - begun)
        return statistics.median(times) * 1e6
    finally:
        shutil.rmtree(probe, ignore_errors=True)


def summarise(results: Results) -> list[dict[str, Any]]:
    """Per scenario: the samples, each tool's medians (wall and CPU), the ratio and the target;
    then, for a scenario also run through the server (``served``), a row of its own, against
    the same references of the same run."""
    rows = []
    for scenario in SCENARIOS:
        samples = results.samples.get(scenario.name, {})
        median = {t: statistics.median(s.seconds for s in ss) for t, ss in samples.items()}
        cpu = {t: statistics.median(s.cpu for s in ss) for t, ss in samples.items()}
        for tool in ("recipe", "served"):
            if tool == "served" and tool not in median:
                continue
            rows.append(_row(scenario, tool, samples, median, cpu,
                             results.compiled.get(scenario.name, {})))
    return rows


def _row(scenario: Scenario, tool: str, samples: dict[str, list[Any]],
         median: dict[str, float], cpu: dict[str, float],
         compiled: dict[str, list[int]]) -> dict[str, Any]:
    reference = median.get(scenario.reference)
    ratio = median[tool] / reference if tool in median and reference else None
    figure = median.get(tool) if scenario.absolute else ratio
    # A served command's CPU time is the client's, the server's child's with its compilers
    # (the server's ledger) and the server's own (``Recipe.realise``).
    cpu_ratio = cpu[tool] / cpu[scenario.reference] \
        if scenario.cpu_limit and cpu.get(scenario.reference) and tool in cpu else None
    met = None if figure is None else figure <= scenario.limit
    if met is not None and scenario.cpu_limit is not None:
        met = met and cpu_ratio is not None and cpu_ratio <= scenario.cpu_limit
    others = [t for t in TOOLS if t != "recipe"]
    pick = {tool: "recipe", **{t: t for t in others}}  # the served one in recipe's column
    return {
        "scenario": scenario.name if tool == "recipe" else f"{scenario.name}_served",
        "base": scenario.name, "served": tool == "served",
        "title": scenario.title if tool == "recipe" else f"{scenario.title}, served",
        "reference": scenario.reference, "reference_seconds": reference,
        "median_seconds": {pick[t]: v for t, v in median.items() if t in pick},
        "median_cpu_seconds": {pick[t]: v for t, v in cpu.items() if t in pick},
        "ratio": ratio, "cpu_ratio": cpu_ratio,
        "target": {"limit": scenario.limit, "of": "seconds" if scenario.absolute
                   else "ratio", "cpu_limit": scenario.cpu_limit},
        "met": met,
        "samples": {pick[t]: [round(s.seconds, 4) for s in ss]
                    for t, ss in samples.items() if t in pick},
        "cpu_samples": {pick[t]: [round(s.cpu, 4) for s in ss]
                        for t, ss in samples.items() if t in pick},
        "compiled": {pick[t]: v for t, v in compiled.items() if t in pick},
        **({"client_cpu_samples": [round(s.client or 0.0, 4) for s in samples[tool]]}
           if tool == "served" else {}),
    }


def _target(scenario: Scenario) -> str:
    return f"<= {scenario.limit:g} s" if scenario.absolute else f"<= {scenario.limit:g} x"


def _span(counts: list[int]) -> str:
    """Units compiled over the repetitions: one number when they agree, else the range."""
    if not counts:
        return "-"
    low, high = min(counts), max(counts)
    return str(low) if low == high else f"{low}-{high}"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _met(met: bool | None) -> str:
    return {True: "met", False: "missed", None: "-"}[met]


def table(rows: list[dict[str, Any]], other: list[dict[str, Any]] | None = None,
          instructions: dict[str, int] | None = None) -> str:
    """Every target of issue 16 in one table: the make scenarios (medians in seconds,
    recipe / reference), then the others (``bench.others``), then recipe's instruction
    counts (callgrind)."""
    lines = []
    by_name = {scenario.name: scenario for scenario in SCENARIOS}
    for row in rows:
        scenario = by_name[row["base"]]
        med = row["median_seconds"]
        compiled = row["compiled"]
        units = " / ".join(_span(compiled.get(t, [])) for t in ("recipe", scenario.reference))
        met = row["met"]
        if scenario.cpu_limit is not None and row["ratio"] is not None:
            met = row["ratio"] <= scenario.limit  # the CPU part has a row of its own
        lines.append([
            row["title"], *(_seconds(med.get(t)) for t in TOOLS), HEADS[scenario.reference],
            "-" if row["ratio"] is None else f"{row['ratio']:.2f}", _target(scenario),
            _met(met), units,
        ])
        if scenario.cpu_limit is not None:
            cpu = row["median_cpu_seconds"]
            ratio = row["cpu_ratio"]
            lines.append([
                f"{row['title']}, CPU s", *(_seconds(cpu.get(t)) for t in TOOLS),
                HEADS[scenario.reference], "-" if ratio is None else f"{ratio:.2f}",
                f"<= {scenario.cpu_limit:g} x", _met(None if ratio is None
                                                      else ratio <= scenario.cpu_limit), "",
            ])
    for scenario, figure, reference, target, met in others.render(other or []):
        lines.append([scenario, figure, "", "", reference, "", target, met, ""])
    text = tabulate(lines, headers=["scenario", *(f"{HEADS[t]} s" for t in TOOLS),
                                    "reference", "recipe/ref", "target", "met",
                                    "units compiled (recipe / ref)"],
                    disable_numparse=True)
    if instructions:
        text += "\n\n" + tabulate(
            [[name, f"{count:,}"] for name, count in instructions.items()],
            headers=["recipe's own process (callgrind)", "instructions"],
            disable_numparse=True)
    return text


def cpu_table(rows: list[dict[str, Any]]) -> str:
    """Median CPU seconds (user + system of each command and its children): less sensitive to
    a busy machine than wall time."""
    return tabulate([[row["title"], *(_seconds(row["median_cpu_seconds"].get(t)) for t in TOOLS)]
                     for row in rows if not row["served"]],
                    headers=["CPU seconds", *(HEADS[t] for t in TOOLS)], disable_numparse=True)


def header(info: dict[str, Any], config: dict[str, Any]) -> str:
    load = ", ".join(f"{x:.2f}" for x in info["load_average"])
    return "\n".join([
        f"recipe benchmark, {info['date']}  (recipe {info['recipe']})",
        f"machine: {info['cores']} cores, {info['cpu']}, {info['kernel']}, load {load}",
        f"tools:   {info['gcc']}; {info['make']}; {info['ccache']}; Python {info['python']}",
        *([f"files:   creating one in the bench's folder: {info['file_create_us']:.1f} µs "
           "(median of 200)"] if "file_create_us" in info else []),
        f"corpus:  {config['units']} units, 10 headers (hot one in {config['hot']} units), "
        f"{config['projects']} one-file projects; seed {config['seed']}; "
        f"-j {config['jobs']}; {config['reps']} repetition(s), medians",
    ])
