"""Project-wide pytest options: --board NAME runs the hw tests on that real board (tests/hw/conftest.py)."""


def pytest_addoption(parser):
    parser.addoption("--board", default=None,
                     help="run the hw tests on this PYNQ board (e.g. pynq-z2); without it, on a simulated board")
