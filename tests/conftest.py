"""Project-wide pytest options.

--board NAME runs the hw tests on that real board (tests/hw/conftest.py); without it they run on a
simulated board. --no-skips (make test) turns any skip of a test not marked hw into a failure, so a
missing tool can never silently hide a test.
"""

import pytest


def pytest_addoption(parser):
    parser.addoption("--board", default=None,
                     help="run the hw tests on this PYNQ board (e.g. pynq-z2); without it, on a simulated board")
    parser.addoption("--no-skips", action="store_true", help="fail every skipped test not marked hw")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    report = (yield).get_result()
    # an expected failure (xfail) is reported as skipped too, but it ran
    if report.skipped and not hasattr(report, "wasxfail") and "hw" not in item.keywords:
        _fail_skip(item.config, report)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    report = (yield).get_result()
    if report.skipped:  # a whole module skipped at import, e.g. by pytest.importorskip
        _fail_skip(collector.config, report)


def _fail_skip(config, report) -> None:
    if config.getoption("--no-skips"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped under --no-skips (make test), which allows only hw tests to skip: {reason}"
