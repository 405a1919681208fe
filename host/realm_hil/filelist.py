"""Verilog source lists (.f files, the taxi convention): the files of a module and of everything below it.

A module that instantiates others has <module>.f beside its .v, listing its own file and its direct
dependencies, one path per entry, relative to the list's folder; an entry ending in .f is expanded
in place. Of entries with the same file name the last one wins, at its place (taxi's `uniq_base`), so
a module that two submodules share appears once. The sim build, the cocotb builds, yosys and lint
read the lists through `sources`; the Vivado scripts through the same rules in fpga/common/filelist.tcl.
Include files are not listed: they are found through the include path (`headers`).
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import RealmError
from .repo_files import RTL


class FilelistError(RealmError):
    """A source list names a file that does not exist, or includes itself."""


def expand(filelist: Path) -> list[Path]:
    """The source files a .f lists, nested lists expanded, one per file name (the last one, at its place)."""
    return _unique(_flatten(_normal(filelist), ()))


def sources(*modules: str, rtl: Path = RTL) -> list[Path]:
    """The Verilog files of `modules` and of everything they instantiate, from their .f (or their .v alone)."""
    found: list[Path] = []
    for module in modules:
        listed, own = rtl / f"{module}.f", rtl / f"{module}.v"
        if listed.is_file():
            found += _flatten(_normal(listed), ())
        elif own.is_file():
            found.append(own)
        else:
            raise FilelistError(f"module {module} has neither {listed.name} nor {own.name} in {rtl}")
    return _unique(found)


def headers(rtl: Path = RTL) -> list[Path]:
    """The include files (`include "x.vh") in the include folder `rtl`."""
    return sorted(rtl.glob("*.vh"))


def _normal(path: Path) -> Path:
    # normpath, not resolve: "a/../b" must not leave the symlinked realm_hil/repo/rtl for the checkout's rtl/
    return Path(os.path.normpath(path))


def _flatten(filelist: Path, including: tuple[Path, ...]) -> list[Path]:
    if filelist in including:
        chain = " -> ".join(p.name for p in (*including, filelist))
        raise FilelistError(f"source list {filelist} includes itself: {chain}")
    if not filelist.is_file():
        where = f" (listed in {including[-1]})" if including else ""
        raise FilelistError(f"source list {filelist} does not exist{where}")
    found: list[Path] = []
    for entry in filelist.read_text().split():
        path = _normal(filelist.parent / entry)
        if path.suffix == ".f":
            found += _flatten(path, (*including, filelist))
        elif path.is_file():
            found.append(path)
        else:
            raise FilelistError(f"{filelist} lists {entry}, which does not exist")
    return found


def _unique(paths: list[Path]) -> list[Path]:
    by_name: dict[str, Path] = {}
    for path in paths:
        by_name.pop(path.name, None)  # re-inserting moves the name to this, later, place
        by_name[path.name] = path
    return list(by_name.values())
