"""Project-wide pytest options: hardware tests run only with --board NAME."""

import pytest


def pytest_addoption(parser):
    parser.addoption("--board", default=None, help="run hw tests on this PYNQ board (e.g. pynq-z2)")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--board"):
        return
    skip = pytest.mark.skip(reason="needs a PYNQ board: pass --board NAME")
    for item in items:
        if "hw" in item.keywords:
            item.add_marker(skip)
