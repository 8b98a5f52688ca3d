"""The one results table (terminal and markdown) and the description of the machine."""

from __future__ import annotations

import datetime as dt
import os
import platform
import shutil
import subprocess
from dataclasses import dataclass, field
from importlib import metadata

import psutil

PACKAGES = ("Flask", "Werkzeug", "pymongo", "pillow", "gunicorn", "SecantusDB", "Flask-PyMongo",
            "psutil")


def machine() -> list[tuple[str, str]]:
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    versions = []
    for name in PACKAGES:
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{name} -")
    tools = []
    for argv in (["nginx", "-v"], ["wrk", "-v"], ["curl", "--version"]):
        if shutil.which(argv[0]) is None:
            tools.append(f"{argv[0]} -")
            continue
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
            words = (proc.stdout + proc.stderr).replace("nginx version: ", "").split()
            tools.append(" ".join(words[:2]))
        except (OSError, subprocess.TimeoutExpired, IndexError):
            tools.append(f"{argv[0]} ?")
    return [
        ("date", dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")),
        ("cpu", f"{cpu}, {os.cpu_count()} cores"),
        ("memory", f"{psutil.virtual_memory().total / 2**30:.1f} GiB"),
        ("os", f"{platform.system()} {platform.release()}"),
        ("python", platform.python_version()),
        ("packages", ", ".join(versions)),
        ("tools", ", ".join(tools)),
    ]


@dataclass
class Row:
    measurement: str
    who: str
    value: str
    vs: str = ""  # app ÷ this row's figure
    target: str = ""
    verdict: str = ""


@dataclass
class Report:
    mode: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    verdicts: list[tuple[str, str]] = field(default_factory=list)  # (target, verdict text)

    def add(self, measurement: str, who: str, value: str, vs: str = "", target: str = "",
            verdict: str = "") -> None:
        self.rows.append(Row(measurement, who, value, vs, target, verdict))

    def note(self, text: str) -> None:
        self.notes.append(text)

    def table_lines(self) -> list[str]:
        header = ("measurement", "server / method", "value", "app ÷ this", "target", "result")
        data = [header]
        previous = None
        for r in self.rows:
            data.append((r.measurement if r.measurement != previous else "", r.who, r.value,
                         r.vs, r.target, r.verdict))
            previous = r.measurement
        widths = [max(len(row[i]) for row in data) for i in range(len(header))]

        def fmt(row):
            return "  ".join(cell.ljust(widths[i]) if i != 2 else cell.rjust(widths[i])
                             for i, cell in enumerate(row)).rstrip()

        lines = [fmt(header), "  ".join("-" * w for w in widths)]
        previous = None
        for r in self.rows:
            if previous is not None and r.measurement != previous:
                lines.append("")
            lines.append(fmt((r.measurement if r.measurement != previous else "", r.who,
                              r.value, r.vs, r.target, r.verdict)))
            previous = r.measurement
        return lines

    def text(self, info: list[tuple[str, str]]) -> str:
        out = [f"Avenue media benchmark ({self.mode} mode)"]
        out += [f"  {k:9} {v}" for k, v in info]
        out.append("")
        out += self.table_lines()
        if self.notes:
            out.append("")
            out += [f"* {n}" for n in self.notes]
        return "\n".join(out)

    def markdown(self, info: list[tuple[str, str]], command: str) -> str:
        out = [f"# Avenue media benchmark — {self.mode} mode", "",
               f"Command: `{command}`", "", "| machine | |", "| --- | --- |"]
        out += [f"| {k} | {v} |" for k, v in info]
        out += ["", "| measurement | server / method | value | app ÷ this | target | result |",
                "| --- | --- | ---: | ---: | --- | --- |"]
        previous = None
        for r in self.rows:
            cells = [r.measurement if r.measurement != previous else "", r.who, r.value, r.vs,
                     r.target, r.verdict]
            out.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
            previous = r.measurement
        if self.notes:
            out += ["", "Notes:", ""] + [f"- {n}" for n in self.notes]
        return "\n".join(out) + "\n"


def num(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def ratio(app: float | None, base: float | None) -> str:
    if not app or not base:
        return ""
    return f"{app / base:.2f}x"
