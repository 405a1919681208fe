"""--no-skips (what `make test` passes): any skip but a hw test's fails, at run time and at import."""

from pathlib import Path

pytest_plugins = "pytester"

CASES = """
import shutil
import pytest

@pytest.mark.skipif(shutil.which("no-such-tool") is None, reason="no-such-tool is not installed")
def test_needs_a_tool():
    pass

def test_skips_itself():
    pytest.skip("not today")

@pytest.mark.hw
def test_on_a_board():
    pytest.skip("needs a PYNQ board")

@pytest.mark.xfail(reason="known")
def test_expected_failure():
    assert False

def test_runs():
    pass
"""


MODULE_SKIP = """
import pytest
pytest.importorskip("no_such_module")
"""


def _session(pytester, **modules):
    pytester.makeconftest((Path(__file__).parent / "conftest.py").read_text())
    pytester.makeini("[pytest]\nmarkers =\n    hw: needs a board\n")
    pytester.makepyfile(**modules)


def test_skips_fail_under_no_skips_except_hw(pytester):
    _session(pytester, test_cases=CASES)
    result = pytester.runpytest("-p", "no:cacheprovider", "--no-skips", "-rA")
    result.assert_outcomes(passed=1, failed=1, errors=1, skipped=1, xfailed=1)  # a skipif fails in setup
    result.stdout.fnmatch_lines(["*skipped under --no-skips*no-such-tool is not installed*"])
    result.stdout.fnmatch_lines(["*skipped under --no-skips*not today*"])
    result.stdout.fnmatch_lines(["SKIPPED *needs a PYNQ board*"])


def test_module_skipped_at_import_fails_the_session_under_no_skips(pytester):
    _session(pytester, test_cases=CASES, test_module_skip=MODULE_SKIP)
    result = pytester.runpytest("-p", "no:cacheprovider", "--no-skips")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*skipped under --no-skips*no_such_module*"])
    assert result.ret != 0


def test_skips_stay_skips_without_the_option(pytester):
    _session(pytester, test_cases=CASES, test_module_skip=MODULE_SKIP)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, skipped=4, xfailed=1)
