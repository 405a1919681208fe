"""Bad input fails early, in one line, with exit code 2, and loses nothing; a bug keeps its traceback.

Every command that would do work (open a device, load or evaluate the model, capture a workload) has
that step replaced by a tripwire here: a bad option must be refused before it.
"""

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from realm_hil.abft.abft_profile import load_abft_profile
from realm_hil.cli.main import UserError, cli

# sysfs takes no new directories from any user, root included (permission bits would not stop root)
READ_ONLY_DIR = Path("/sys/realm-hil-test")


class WorkStarted(AssertionError):
    """A command got past its checks and began real work."""


@pytest.fixture
def no_work(monkeypatch):
    def tripwire(*_args, **_kwargs):
        raise WorkStarted("work began before the bad input was refused")

    for target in (
        "realm_hil.experiment.open_accelerator",
        "realm_hil.experiment.load_model",
        "realm_hil.abft.characterization_sweep.load_sweep",
        "realm_hil.campaign.executors.InProcess.run",
        "realm_hil.campaign.pool.Pool.run",
        "realm_hil.sweep.open_accelerator",
        "realm_hil.compare.jobs.open_accelerator",
        "realm_hil.llm.capture.llm_workload",
        "realm_hil.gemm_check.open_accelerator",
        "realm_hil.cli.resources.measure",
    ):
        monkeypatch.setattr(target, tripwire)


def invoke(args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def assert_one_line(result, *words):
    assert result.exit_code == 2, (result.output, result.exception)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("realm-hil: error: "), result.stderr
    assert "Traceback" not in result.output and not result.stdout
    for word in words:
        assert word in lines[0], lines[0]


@pytest.mark.parametrize("args, words", [
    (["gemm", "--m", "0"], ["Invalid value for '--m'", "--help"]),
    (["gemm", "--bogus"], ["No such option", "--bogus"]),
    (["run", "--stages", "sometimes"], ["'sometimes' is not one of"]),
    (["run", "--clock-mhz"], ["requires an argument"]),
    (["no-such-command"], ["No such command"]),
    (["bench", "sim", "--array-n", "2"], ["--array-n"]),
    (["characterize", "--array-n", "0"], ["--array-n"]),
    (["resources", "--part", "xc7z045"], ["--part"]),  # was a KeyError once yosys had run for minutes
    (["gemm", "--seed", "-1"], ["--seed"]),  # numpy refuses negative seeds with a plain ValueError
])
def test_usage_errors_are_one_line(no_work, args, words):
    assert_one_line(invoke(args), *words)


def test_help_is_still_help():
    result = invoke(["bench"])
    assert "Usage:" in result.output and "realm-hil: error" not in result.output


@pytest.mark.parametrize("exc", [ValueError("boom"), KeyError("boom")])
def test_a_bug_keeps_its_traceback(monkeypatch, exc):
    def bug(*_args):
        raise exc

    monkeypatch.setattr("realm_hil.cli.gemm.run_gemm_check", bug)
    result = invoke(["gemm", "--backend", "reference"])
    assert result.exception is exc and not isinstance(result.exception, UserError)
    assert result.exit_code == 1 and "realm-hil: error" not in result.output


def test_real_stderr_one_line_for_bad_input_traceback_for_a_bug():
    main = "import sys; from realm_hil.cli.main import cli; cli(sys.argv[1:], prog_name='realm-hil')"
    bad = subprocess.run([sys.executable, "-c", main, "gemm", "--backend", "reference", "--m", "1", "--k", "131072",
                          "--n", "1"], capture_output=True, text=True)
    bug = subprocess.run([sys.executable, "-c", (
        "import realm_hil.cli.gemm as g\n"
        "def bug(*args): raise ValueError('boom')\n"
        "g.run_gemm_check = bug\n"
        "from realm_hil.cli.main import cli\n"
        "cli(['gemm', '--backend', 'reference'], prog_name='realm-hil')\n")], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "K = 131072" in bad.stderr
    assert bug.returncode == 1 and "Traceback" in bug.stderr and bug.stderr.rstrip().endswith("ValueError: boom")


def _bad_outs(tmp_path, as_file):
    afile = tmp_path / "a-file"
    afile.write_text("not a directory")
    return [tmp_path if as_file else afile, afile / "out", READ_ONLY_DIR / "out"]


WRITERS = [
    ["run", "--backend", "reference"],
    ["characterize", "--grid", "msd=20,freq=0"],
    ["sweep-clock"],
    ["compare"],
    ["calibrate"],
]


@pytest.mark.parametrize("command", WRITERS, ids=lambda c: c[0])
@pytest.mark.parametrize("case", range(3), ids=["file-or-dir", "under-a-file", "read-only"])
def test_unwritable_out_is_refused_before_any_work(no_work, tmp_path, command, case):
    out = _bad_outs(tmp_path, as_file=command[0] == "calibrate")[case]
    assert_one_line(invoke([*command, "--out", out]), "--out")


@pytest.mark.parametrize("args, words", [
    (["run", "--backend", "reference", "--layers", "99"], ["layer 99 out of range", "0-29"]),
    (["run", "--backend", "reference", "--layers", "0-x"], ["bad layer pattern"]),
    (["run", "--backend", "reference", "--components", "qk"], ["--attention"]),
    (["run", "--backend", "reference", "--components", "q,nope"], ["unknown component 'nope'"]),
    (["run", "--backend", "reference", "--tokens", "8", "--window", "16"], ["16-token window"]),
    (["run", "--backend", "reference", "--board-name", "zcu104"], ["board name or manifest"]),
    (["run", "--backend", "reference", "--abft-profile", "no-such-profile"], ["unknown ABFT profile"]),
    (["characterize", "--layers", "early=0-99"], ["layer 99 out of range"]),
    (["characterize", "--layers", "a=0;a=1"], ["defined twice"]),
    (["characterize", "--layers", "a/b=0"], ["without '/'"]),
    (["characterize", "--text", "/nonexistent/text.txt"], ["text file not found"]),
    (["run", "--backend", "reference", "--text", "/nonexistent/text.txt"], ["text file not found"]),
    (["compare", "--gemms", "61"], ["60 GEMMs"]),
    (["compare", "--profile", "no-such-board"], ["--profile", "unknown device profile"]),
    (["calibrate", "--start", "pynq-z2", "--profile", "no-such-board"], ["--profile"]),
    (["compare", "--tokens", "1"], ["--tokens"]),
    (["calibrate", "--clock-mhz", "120", "--clock-mhz", "130", "--clock-mhz", "120"], ["3 or more distinct"]),
    (["calibrate", "--junction-c", "25", "--junction-c", "25"], ["2 or more distinct junction"]),
    (["calibrate", "--backend", "board", "--junction-c", "25", "--junction-c", "60"], ["not set from the host"]),
    (["calibrate", "--junction-c", "nan", "--junction-c", "60"], ["--junction-c", "not a finite number"]),
])
def test_options_are_checked_before_the_model_loads(no_work, tmp_path, args, words):
    out = [] if args[0] == "calibrate" else ["--out", tmp_path / "out"]
    assert_one_line(invoke([*args, *out]), *words)


def test_profile_that_does_not_cover_the_model_is_refused_before_it_loads(no_work, tmp_path):
    import dataclasses

    shipped = load_abft_profile("smollm2-135m")
    short = dataclasses.replace(shipped, approx={c: t[:2] for c, t in shipped.approx.items()})
    short.save(tmp_path / "short.yaml")
    result = invoke(["run", "--backend", "reference", "--abft", "approx", "--layers", "0-3",
                     "--abft-profile", tmp_path / "short.yaml"])
    assert_one_line(result, "layer 2 out of range", "layers 0-1")


@pytest.mark.parametrize("args, words", [
    (["gemm", "--m", "100000000000"], ["GiB"]),
    (["gemm", "--backend", "reference", "--m", "1", "--k", "131072", "--n", "1"], ["K = 131072", "131071"]),
    (["characterize", "--grid", "msd=40,freq=40"], ["2^40", "freq <= 17"]),
    (["characterize", "--grid", "msd=0:1000000000000:1,freq=0"], ["[0, 63]"]),
    (["characterize", "--grid", "msd=0:1e12:1,freq=0"], ["bad msd axis"]),
    (["characterize", "--grid", "msd=40,freq=0"], ["no feasible point"]),
    (["characterize", "--tolerance", "nan"], ["--tolerance", "finite"]),
    (["characterize", "--tolerance", "inf"], ["--tolerance", "finite"]),
    (["run", "--backend", "reference", "--clock-mhz", "inf"], ["--clock-mhz", "finite"]),
    (["run", "--backend", "reference", "--clock-mhz", "nan"], ["--clock-mhz", "finite"]),
    (["run", "--backend", "twin", "--clock-mhz", "-5"], ["--clock-mhz"]),
    (["sweep-clock", "--start", "0"], ["--start"]),
    (["sweep-clock", "--start", "-5"], ["--start"]),
    (["sweep-clock", "--stop", "inf"], ["--stop", "finite"]),
    (["sweep-clock", "--start", "120", "--stop", "110"], ["start < stop"]),
    (["compare", "--clock-mhz", "nan"], ["--clock-mhz"]),
    (["calibrate", "--clock-mhz", "inf"], ["--clock-mhz"]),
])
def test_huge_or_meaningless_values_are_refused_from_their_size(no_work, tmp_path, args, words):
    out = ["--out", tmp_path / "out"] if args[0] in ("characterize", "sweep-clock", "compare") else []
    assert_one_line(invoke([*args, *out]), *words)


def test_resume_from_a_campaign_file_that_is_not_one(no_work, tmp_path):
    (tmp_path / "campaign.json").write_text("[1, 2]\n")
    assert_one_line(invoke(["characterize", "--resume", "--out", tmp_path]), "campaign.json is not a campaign's")
