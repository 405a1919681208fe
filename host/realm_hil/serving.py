"""`realm-hil serve`: this machine's accelerator for one remote client at a time, or a simulated
PYNQ.remote board, until a signal stops it."""

from __future__ import annotations

import logging
import os
import signal
import stat
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .backends.registry import open_accelerator
from .errors import InputError, RealmError
from .remote.protocol import TOKEN_ENV, normalize_token
from .remote.server import RemoteServer, ServerConfig
from .sim.overlay import SimBoardConfig, write_sim_overlay
from .toolchain import cache_dir

log = logging.getLogger("realm_hil.remote")

# the settings of each mode, keyed by pynq_remote; a setting of the other mode is refused
_MODE_SETTINGS = {False: ("backend", "token_file", "max_elements", "idle_timeout", "allow_force", "manifest"),
                  True: ("board_name", "array_n", "seed", "overlay_dir")}


@dataclass(frozen=True)
class ServeConfig:
    """What to serve, and where. A setting left at None (a flag at False) takes its default."""

    bind: str  # ADDR:PORT to listen on
    pynq_remote: bool = False  # simulate a ZU board running the PYNQ.remote image instead
    # a realm-hil server
    backend: str | None = None  # the accelerator to serve [board]
    token_file: Path | None = None  # the shared token [$REALM_HIL_TOKEN]
    max_elements: int | None = None  # [ServerConfig.max_elements]
    idle_timeout: float | None = None  # seconds [ServerConfig.idle_timeout_s]
    allow_force: bool = False  # let clients force clocks past the board's safety ceiling
    # the board backend's bitstream manifest, the overlay files beside it [bitstreams/manifest.json]; a board
    # that installed the wheel has its copy of bitstreams/ wherever it was put
    manifest: Path | None = None
    # a simulated PYNQ.remote board (SimBoardConfig)
    board_name: str | None = None
    array_n: int | None = None
    seed: int | None = None
    overlay_dir: Path | None = None  # where its overlay and manifest go [cache]

    def __post_init__(self) -> None:
        stray = [f"--{name.replace('_', '-')}" for name in _MODE_SETTINGS[not self.pynq_remote]
                 if getattr(self, name) not in (None, False)]
        if stray:
            mode = "a realm-hil server" if self.pynq_remote else "--pynq-remote"
            raise InputError(f"{', '.join(stray)} only applies to {mode}")

    def server_config(self) -> ServerConfig:
        return ServerConfig(**_given(max_elements=self.max_elements, idle_timeout_s=self.idle_timeout,
                                     allow_force=self.allow_force or None))

    def board_config(self) -> SimBoardConfig:
        return SimBoardConfig(**_given(board=self.board_name, array_n=self.array_n, seed=self.seed))

    def token(self) -> bytes:
        if self.token_file is None:
            token = normalize_token(os.environ.get(TOKEN_ENV, ""))
            if not token:
                raise InputError(f"no token: pass --token-file FILE or set {TOKEN_ENV}")
            return token
        token = normalize_token(self.token_file.read_bytes())
        if not token:
            raise InputError(f"the token file {self.token_file} is empty")
        return token


def serve(config: ServeConfig) -> None:
    """Serve until SIGINT or SIGTERM; the nominal clock comes back whenever a client leaves, however it leaves."""
    logging.basicConfig(level=logging.INFO, format="realm-hil: %(message)s")
    if config.pynq_remote:
        _serve_pynq_remote(config.bind, config.board_config(), config.overlay_dir)
    else:
        _serve_accelerator(config)


def _serve_accelerator(config: ServeConfig) -> None:
    token = config.token()
    if config.token_file is not None and stat.S_IMODE(config.token_file.stat().st_mode) & 0o077:
        log.warning("token file %s is readable by other users; chmod 600 it", config.token_file)
    server_config = config.server_config()
    options = {} if config.manifest is None else {"manifest": config.manifest}
    with _StopSignals() as signals, open_accelerator(config.backend or "board", **options) as acc:
        with RemoteServer(acc, token, config.bind, server_config) as server:
            log.info("serving %s on %s, nominal clock %g MHz; Ctrl-C to stop",
                     acc.name, server.address, server.nominal_mhz)
            # a flag serve_forever polls, not an exception that could land anywhere in it
            signals.stop = server.stop
            server.serve_forever()
        # the session has ended: nothing uses the backend any more, and it is still open to ask
        if acc.clock_mhz != server.nominal_mhz:
            raise RealmError(f"stopped, but the clock is at {acc.clock_mhz:g} MHz, not the nominal "
                             f"{server.nominal_mhz:g} MHz; see the log above")
        log.info("stopped; clock restored to %g MHz", server.nominal_mhz)


def _serve_pynq_remote(bind: str, config: SimBoardConfig, overlay_dir: Path | None) -> None:
    from .sim.pynq_remote_server import PynqRemoteServer, SimBoard

    manifest = write_sim_overlay(overlay_dir or cache_dir("pynq-remote", f"{config.board}-n{config.array_n}"), config)
    board = SimBoard(config)
    try:
        with _StopSignals(), PynqRemoteServer(board, bind) as server:
            log.info("simulating a %s (N=%d) for PYNQ.remote clients on %s; Ctrl-C to stop",
                     config.board, config.array_n, server.address)
            log.info("on the workstation: realm-hil run --board pynq://%s --board-name %s --manifest %s",
                     server.address, config.board, manifest)
            try:
                server.wait()
            except KeyboardInterrupt:
                log.info("stopping")
        log.info("stopped")
    finally:
        board.close()


def _given(**values) -> dict:
    """The values that are set; the others keep their dataclass defaults."""
    return {name: value for name, value in values.items() if value is not None}


class _StopSignals:
    """The first SIGINT or SIGTERM (systemd, kill) stops the server: it calls `stop` once one is set,
    else raises KeyboardInterrupt like Ctrl-C. Later ones only say it is still stopping, because
    stopping waits for the request in flight and restores the clock before the backend is freed: a
    second Ctrl-C that cut this short freed the sim's model under a running GEMM (a segfault) and
    could leave a board overclocked."""

    def __init__(self) -> None:
        self.stop: Callable[[], None] | None = None
        self._stopping = False
        self._previous: dict = {}

    def __enter__(self) -> _StopSignals:
        if threading.current_thread() is threading.main_thread():
            signums = [signal.SIGTERM]
            # a server started with Ctrl-C ignored (nohup, a background job) keeps ignoring it
            if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
                signums.append(signal.SIGINT)
            self._previous = {signum: signal.signal(signum, self._handle) for signum in signums}
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum, frame) -> None:
        if self._stopping:
            log.warning("still stopping: waiting for the request in flight (if any), then restoring the clock")
            return
        self._stopping = True
        if self.stop is None:
            raise KeyboardInterrupt
        log.info("stopping")
        self.stop()
