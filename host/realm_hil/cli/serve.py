"""`realm-hil serve`: expose this machine's accelerator to a workstation over TCP."""

from __future__ import annotations

import logging
import math
import os
import signal
import stat
import threading
from collections.abc import Callable
from pathlib import Path

import click
from click.core import ParameterSource

from .. import BACKENDS, open_accelerator
from ..errors import RealmError
from ..remote.protocol import MAX_TIMEOUT_S, TOKEN_ENV, normalize_token, parse_address
from ..remote.server import MAX_ELEMENTS, RemoteServer, ServerConfig
from ..sim.overlay import BOARD_NAMES, SimBoardConfig, write_sim_overlay
from ..toolchain import cache_dir

log = logging.getLogger("realm_hil.remote")


def _check_bind(ctx, param, value: str) -> str:
    try:
        parse_address(value, listen=True)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    return value


def _check_seconds(ctx, param, value: float) -> float:
    if math.isnan(value):
        raise click.BadParameter("nan is not a number of seconds")
    return value


def _read_token(token_file: Path | None) -> bytes:
    if token_file is None:
        token = normalize_token(os.environ.get(TOKEN_ENV, ""))
        if not token:
            raise click.UsageError(f"no token: pass --token-file FILE or set {TOKEN_ENV}")
        return token
    token = normalize_token(token_file.read_bytes())
    if not token:
        raise click.BadParameter(f"{token_file} is empty", param_hint="--token-file")
    return token


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


# the options of each mode, keyed by --pynq-remote
_OWN_OPTIONS = {False: ("backend", "token_file", "max_elements", "idle_timeout", "allow_force"),
                True: ("board_name", "array_n", "seed", "overlay_dir")}


def _check_mode(ctx: click.Context, pynq_remote: bool) -> None:
    stray = [f"--{name.replace('_', '-')}" for name in _OWN_OPTIONS[not pynq_remote]
             if ctx.get_parameter_source(name) is not ParameterSource.DEFAULT]
    if stray:
        mode = "a realm-hil server" if pynq_remote else "--pynq-remote"
        raise click.UsageError(f"{', '.join(stray)} only applies to {mode}")


def _serve_pynq_remote(bind: str, config: SimBoardConfig, overlay_dir: Path | None) -> None:
    from ..sim.pynq_remote_server import PynqRemoteServer, SimBoard

    logging.basicConfig(level=logging.INFO, format="realm-hil: %(message)s")
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


@click.command()
@click.option("--bind", required=True, metavar="ADDR:PORT", callback=_check_bind,
              help="address to listen on, e.g. 192.168.2.99:5555 (no default: choose the interface)")
@click.option("--backend", default="board", show_default=True, type=click.Choice(BACKENDS),
              help="the accelerator to serve")
@click.option("--token-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help=f"file holding the shared token [default: ${TOKEN_ENV}]")
@click.option("--max-elements", default=ServerConfig.max_elements, show_default=True,
              type=click.IntRange(1, MAX_ELEMENTS), help="largest M*K, K*N and M*N accepted")
@click.option("--idle-timeout", default=ServerConfig.idle_timeout_s, show_default=True, callback=_check_seconds,
              type=click.FloatRange(0, MAX_TIMEOUT_S, min_open=True),
              help="seconds before an idle client is disconnected")
@click.option("--allow-force", is_flag=True,
              help="let clients force clocks past the board's safety ceiling (refused by default)")
@click.option("--pynq-remote", is_flag=True,
              help="instead, simulate a ZU board running the PYNQ.remote image (the Verilated accelerator) for "
                   "`realm-hil run --board pynq://...`; like PYNQ.remote it takes no token")
@click.option("--board-name", default=SimBoardConfig.board, show_default=True, type=click.Choice(BOARD_NAMES),
              help="--pynq-remote: the board to simulate")
@click.option("--array-n", default=SimBoardConfig.array_n, show_default=True, type=click.IntRange(4, 32),
              help="--pynq-remote: array size of the simulated overlay")
@click.option("--seed", default=SimBoardConfig.seed, show_default=True, type=click.IntRange(0),
              help="--pynq-remote: per-PE variation map of the modeled array clock")
@click.option("--overlay-dir", type=click.Path(file_okay=False, path_type=Path),
              help="--pynq-remote: where the simulated board's overlay and manifest go [cache]")
def serve(bind: str, backend: str, token_file: Path | None, max_elements: int, idle_timeout: float,
          allow_force: bool, pynq_remote: bool, board_name: str, array_n: int, seed: int,
          overlay_dir: Path | None) -> None:
    """Serve GEMMs, statistics and clock control to one remote client at a time.

    The clock goes back to nominal whenever a client leaves, however it leaves. With --pynq-remote,
    simulate a ZU board for pynq's own PYNQ.remote client instead.
    """
    _check_mode(click.get_current_context(), pynq_remote)
    if pynq_remote:
        _serve_pynq_remote(bind, SimBoardConfig(board_name, array_n, seed), overlay_dir)
        return
    token = _read_token(token_file)
    logging.basicConfig(level=logging.INFO, format="realm-hil: %(message)s")
    if token_file is not None and stat.S_IMODE(token_file.stat().st_mode) & 0o077:
        log.warning("token file %s is readable by other users; chmod 600 it", token_file)
    config = ServerConfig(max_elements=max_elements, idle_timeout_s=idle_timeout, allow_force=allow_force)
    with _StopSignals() as signals, open_accelerator(backend) as acc:
        with RemoteServer(acc, token, bind, config) as server:
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


COMMANDS = [serve]
