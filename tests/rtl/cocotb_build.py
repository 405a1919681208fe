"""Build a Verilated cocotb testbench once per (sources, parameters, toolchain) hash and run tests on it.

Builds live in the user cache (realm_hil.build_cache), so repeated runs and fresh clones on the
same machine skip Verilator entirely when nothing relevant changed. A testbench's sources come from
its module's .f source list (realm_hil.filelist), as the sim build's, yosys's and Vivado's do.
"""

from __future__ import annotations

import os
from importlib.metadata import version
from pathlib import Path

from cocotb_tools.runner import get_runner

from realm_hil import filelist
from realm_hil.build_cache import build_once, content_key
from realm_hil.toolchain import cache_dir, find_verilator

RTL = Path(__file__).resolve().parents[2] / "rtl"
TB = Path(__file__).resolve().parent
INCLUDES = [RTL]


def rtl_sources(*names: str) -> list[Path]:
    """The files of each named module and of everything it instantiates: rtl/<name>.f, else rtl/<name>.v.

    The regmap include is found through INCLUDES.
    """
    return filelist.sources(*names, rtl=RTL)


def _build_key(sources, toplevel, parameters, build_args) -> str:
    files = sorted(sources) + filelist.headers(RTL)
    settings = (toplevel, sorted(parameters.items()), list(build_args), find_verilator().version, version("cocotb"))
    return content_key(files, *settings)[:16]


def run(
    *,
    toplevel: str,
    sources: list[Path],
    test_module: str,
    test_dir: Path,
    parameters: dict | None = None,
    extra_env: dict | None = None,
    build_args: tuple[str, ...] = (),
    testcase: str | list[str] | None = None,
) -> None:
    """Build (if not cached) and run `test_module` (a file in `test_dir`) on `toplevel`."""
    parameters = dict(parameters or {})
    verilator = find_verilator()
    verilator.apply()
    key = _build_key(sources, toplevel, parameters, build_args)
    build_dir = cache_dir("cocotb", f"{toplevel}-{key}")
    waves = os.environ.get("WAVES") == "1"
    runner = get_runner("verilator")

    def build(stamp: Path) -> None:
        # the runner builds into build_dir itself; the stamp, renamed into place, says the build is whole
        _build(runner, sources, toplevel, parameters, build_dir, build_args, waves)
        stamp.touch()

    build_once(build_dir, ".built", build, rebuild=waves)
    results = build_dir / f"results-{test_module}-{os.getpid()}.xml"
    runner.test(
        hdl_toplevel=toplevel,
        # with a cached build the runner never saw the sources, so it cannot infer the language
        hdl_toplevel_lang="verilog",
        test_module=test_module,
        test_dir=str(test_dir),
        build_dir=str(build_dir),
        extra_env={"PYTHONPATH": os.pathsep.join([str(test_dir), str(TB), os.environ.get("PYTHONPATH", "")]),
                   **(extra_env or {})},
        testcase=testcase,
        results_xml=str(results),
        waves=waves,
    )


def _build(runner, sources, toplevel, parameters, build_dir, build_args, waves) -> None:
    runner.build(
        sources=[str(s) for s in sources],
        hdl_toplevel=toplevel,
        includes=[str(p) for p in INCLUDES],
        parameters=parameters,
        build_dir=str(build_dir),
        build_args=["-Wno-fatal", "--x-assign", "unique", "--x-initial", "unique", *build_args],
        waves=waves,
        always=True,
    )
