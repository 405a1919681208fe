"""The .f source lists: their expansion rules (in Python and in the Vivado Tcl), and that rtl/'s lists say what
the Verilog instantiates."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from realm_hil.filelist import FilelistError, expand, sources
from realm_hil.repo_files import RTL

REPO = Path(__file__).resolve().parents[2]


def write_tree(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


# a/top.f pulls in a/leaf.v through a/sub.f, then b/leaf.v (same name, another folder) through b/lib.f
NESTED = {
    "a/top.f": "top.v\nsub.f\n../b/lib.f\n",
    "a/sub.f": "sub.v leaf.v\n",
    "b/lib.f": "lib.v\n\nleaf.v\n",
    "a/top.v": "",
    "a/sub.v": "",
    "a/leaf.v": "",
    "b/lib.v": "",
    "b/leaf.v": "",
}
# of the two leaf.v the later one wins, at its own place (taxi's uniq_base)
NESTED_EXPANDED = ["a/top.v", "a/sub.v", "b/lib.v", "b/leaf.v"]


def test_nested_lists_expand_relative_to_their_folder_and_the_last_of_a_name_wins(tmp_path):
    write_tree(tmp_path, NESTED)
    assert expand(tmp_path / "a" / "top.f") == [tmp_path / p for p in NESTED_EXPANDED]


def test_modules_without_a_list_are_their_own_file(tmp_path):
    write_tree(tmp_path, {"x.f": "x.v y.v\n", "x.v": "", "y.v": "", "z.v": ""})
    assert sources("z", rtl=tmp_path) == [tmp_path / "z.v"]
    assert sources("x", "y", "z", rtl=tmp_path) == [tmp_path / "x.v", tmp_path / "y.v", tmp_path / "z.v"]
    with pytest.raises(FilelistError, match="module w has neither w.f nor w.v"):
        sources("w", rtl=tmp_path)


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"top.f": "top.v gone.v\n", "top.v": ""}, "lists gone.v, which does not exist"),
        ({"top.f": "top.v gone.f\n", "top.v": ""}, "gone.f does not exist .listed in .*top.f"),
        ({"top.f": "top.v sub.f\n", "sub.f": "top.f\n", "top.v": ""}, "includes itself: top.f -> sub.f -> top.f"),
    ],
)
def test_a_broken_list_fails_in_one_line(tmp_path, files, message):
    write_tree(tmp_path, files)
    with pytest.raises(FilelistError, match=message) as info:
        expand(tmp_path / "top.f")
    assert "\n" not in str(info.value)


def tcl_filelist(filelist: Path) -> list[str]:
    """realm_filelist from fpga/common/filelist.tcl, run in tclsh; raises CalledProcessError with Tcl's error."""
    script = f"source {REPO / 'fpga' / 'common' / 'filelist.tcl'}\nputs [join [realm_filelist {filelist}] \\n]\n"
    with tempfile.TemporaryDirectory() as tmp:  # from a file, not stdin, an error ends tclsh with status 1
        (Path(tmp) / "expand.tcl").write_text(script)
        run = subprocess.run(["tclsh", str(Path(tmp) / "expand.tcl")], capture_output=True, text=True, check=True)
    return run.stdout.split()


@pytest.mark.skipif(shutil.which("tclsh") is None, reason="tclsh is not installed")
def test_tcl_expands_lists_as_the_python_does(tmp_path):
    write_tree(tmp_path, NESTED)
    assert tcl_filelist(tmp_path / "a" / "top.f") == [str(tmp_path / p) for p in NESTED_EXPANDED]
    top = REPO / "rtl" / "realm_accel.f"
    assert tcl_filelist(top) == [str(p.resolve()) for p in expand(top)]


@pytest.mark.skipif(shutil.which("tclsh") is None, reason="tclsh is not installed")
def test_tcl_refuses_a_broken_list(tmp_path):
    write_tree(tmp_path, {"top.f": "top.v sub.f\n", "sub.f": "top.f gone.v\n", "top.v": ""})
    with pytest.raises(subprocess.CalledProcessError) as info:
        tcl_filelist(tmp_path / "top.f")
    assert "top.f includes itself" in info.value.stderr
    (tmp_path / "sub.f").write_text("gone.v\n")
    with pytest.raises(subprocess.CalledProcessError) as info:
        tcl_filelist(tmp_path / "top.f")
    assert "lists gone.v, which does not exist" in info.value.stderr



def instantiated(verilog: str) -> set[str]:
    """Modules a Verilog file instantiates: `realm_x #(` or `realm_x u_name (` at the start of a line."""
    text = re.sub(r"//[^\n]*|/\*.*?\*/", "", verilog, flags=re.S)
    return set(re.findall(r"^\s*(realm_\w+)\s+(?:#\s*\(|\w+\s*\()", text, flags=re.M))


def test_rtl_lists_name_each_module_and_its_direct_dependencies():
    rtl = REPO / "rtl"
    deps = {p.stem: instantiated(p.read_text()) for p in rtl.glob("*.v")}
    assert deps["realm_accel"] >= {"realm_core", "realm_ingress", "realm_async_fifo"}, "the oracle finds nothing"
    for module, direct in deps.items():
        listed = rtl / f"{module}.f"
        if not direct:
            assert not listed.exists(), f"{module} instantiates nothing, so it has no .f"
            continue
        entries = listed.read_text().split()
        expected = {f"{module}.v"} | {f"{d}.f" if deps[d] else f"{d}.v" for d in direct}
        assert set(entries) == expected and len(entries) == len(expected), module
        assert entries[0] == f"{module}.v"


def test_top_list_reaches_every_module_once():
    rtl = REPO / "rtl"
    deps = {p.stem: instantiated(p.read_text()) for p in rtl.glob("*.v")}
    below, todo = set(), ["realm_accel"]
    while todo:
        module = todo.pop()
        if module not in below:
            below.add(module)
            todo += deps[module]
    files = sources("realm_accel", rtl=rtl)
    assert len({p.name for p in files}) == len(files)
    assert {p.stem for p in files} == below == set(deps), "every rtl/*.v belongs to realm_accel"
    # what the package reads is the checkout's rtl/, through realm_hil/repo/rtl
    assert [p.resolve() for p in sources("realm_accel")] == [p.resolve() for p in files]
    assert RTL.resolve() == rtl.resolve()
