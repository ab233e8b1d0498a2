"""What the tests share besides fixtures: a throwaway copy of the project, and ways to run what users run
(the scripts as subprocesses, the real servers on a free loopback port)."""

from __future__ import annotations

import contextlib
import fcntl
import importlib
import io
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests

from risk.config import Settings, load_config
from risk.store import RecordsStore

if TYPE_CHECKING:
    import pytest

REPO = Path(__file__).resolve().parents[1]
DATA_FOLDERS = ("practicedata", "sourcedata", "testdata", "clientbook")
COLUMNS = "corporation,lastmonth_activity,lastyear_activity,number_of_employees,exited"
SCRIPT_TIMEOUT = 300
AMBIENT_VARIABLES = (
    "RISK_CONFIG",
    "RISK_API_TOKEN",
    "PROMETHEUS_MULTIPROC_DIR",
    "WEB_CONCURRENCY",
)  # tests set their own


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Project:
    """A project copy in a temp folder: data copied from the repo, configs pointing there."""

    root: Path
    config: Path
    practice_config: Path

    def settings(self, config: Path | None = None) -> Settings:
        return load_config(config or self.config)

    def store(self, config: Path | None = None) -> RecordsStore:
        return RecordsStore(self.settings(config).records_db_path)

    def edit_config(self, config: Path | None = None, **changes: Any) -> Path:
        """Change keys of a config file in place (None deletes the key)."""
        path = config or self.config
        data = json.loads(path.read_text())
        for key, value in changes.items():
            if value is None:
                data.pop(key, None)
            else:
                data[key] = value
        path.write_text(json.dumps(data, indent=2))
        return path

    def run(
        self,
        script: str,
        *args: str,
        config: Path | None = None,
        check: bool = True,
        timeout: float = SCRIPT_TIMEOUT,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run a repo script as its own process, from an unrelated working directory, on this project's config.

        ``env`` adds environment variables (e.g. RISK_API_TOKEN) for this run.
        """
        command = [sys.executable, str(REPO / script), "--config", str(config or self.config), *args]
        env = {**{k: v for k, v in os.environ.items() if k not in AMBIENT_VARIABLES}, **(env or {})}
        result = subprocess.run(command, cwd=self.root.parent, capture_output=True, text=True, timeout=timeout, env=env)
        return checked(result, check)

    def run_in_process(
        self,
        script: str,
        *args: str,
        config: Path | None = None,
        check: bool = True,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run a repo script's ``main()`` in this process, as :meth:`run` runs it in its own: the same command line,
        working directory and environment (``env`` added); its exit code, stdout and stderr come back the same way.

        For tests of what a run decides. It spares each run the interpreter's start and the imports of pandas,
        scikit-learn and matplotlib (seconds). Each script keeps tests with :meth:`run` for its command line as users
        run it.
        """
        module = importlib.import_module(Path(script).stem)
        argv = [str(REPO / script), "--config", str(config or self.config), *args]
        stdout, stderr = io.StringIO(), io.StringIO()
        with _script_environment(self.root.parent, argv, env or {}, stdout, stderr):
            try:
                module.main()
                code = 0
            except SystemExit as exit_:
                code = exit_.code if isinstance(exit_.code, int) else int(exit_.code is not None)
        return checked(subprocess.CompletedProcess(argv, code, stdout.getvalue(), stderr.getvalue()), check)

    def copy_to(self, root: Path) -> Project:
        """A copy of this project (data, configs, models, deployed versions, records) at ``root``.

        Symlinks are copied as symlinks (the deployment's relative pointers keep working in the copy).
        """
        shutil.copytree(self.root, root, symlinks=True)
        return Project(root=root, config=root / self.config.name, practice_config=root / self.practice_config.name)

    @classmethod
    def at(cls, root: Path) -> Project:
        """The project :func:`make_project` made at ``root`` (its two configs)."""
        return cls(root=root, config=root / "config.json", practice_config=root / "config_practice.json")

    def write_data(self, folder: str, name: str, rows: list[str], header: str = COLUMNS) -> Path:
        """Write a CSV into one of the project's folders."""
        path = self.root / folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join([header, *rows]) + "\n")
        return path


def checked(result: subprocess.CompletedProcess[str], check: bool) -> subprocess.CompletedProcess[str]:
    """``result``, or an AssertionError with its output when ``check`` and it exited non-zero."""
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(result.args[1:])} exited {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        )
    return result


@contextlib.contextmanager
def _script_environment(
    cwd: Path, argv: list[str], env: dict[str, str], stdout: io.StringIO, stderr: io.StringIO
) -> Iterator[None]:
    """What a script's process would have, for the length of an in-process run: ``argv``, ``cwd``, the environment
    without the ambient variables plus ``env``, stdout and stderr into the buffers, and the root logger to itself
    (a script sets up its own handlers: they are closed afterwards and the test's own are put back)."""
    import pytest

    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    with pytest.MonkeyPatch.context() as patch:
        for name in AMBIENT_VARIABLES:
            patch.delenv(name, raising=False)
        for name, value in env.items():
            patch.setenv(name, value)
        patch.chdir(cwd)
        patch.setattr(sys, "argv", argv)
        patch.setattr(sys, "stdout", stdout)
        patch.setattr(sys, "stderr", stderr)
        for handler in saved_handlers:
            root.removeHandler(handler)
        try:
            yield
        finally:
            for handler in list(root.handlers):
                root.removeHandler(handler)
                handler.close()
            for handler in saved_handlers:
                root.addHandler(handler)
            root.setLevel(saved_level)


def make_project(root: Path) -> Project:
    """Copy the repo's data and configs into ``root``; point the API and package index at closed local ports."""
    root.mkdir(parents=True)
    for folder in DATA_FOLDERS:
        shutil.copytree(REPO / folder, root / folder)
    shutil.copy(REPO / "requirements.txt", root / "requirements.txt")
    overrides = {
        "api_url": f"http://127.0.0.1:{free_port()}/",
        "package_index_url": f"http://127.0.0.1:{free_port()}/pypi",
        "dependency_check_timeout_seconds": 1,
        "requirements_path": "requirements.txt",
    }
    for name in ("config.json", "config_practice.json"):
        data = {**json.loads((REPO / name).read_text()), **overrides}
        (root / name).write_text(json.dumps(data, indent=2))
    return Project.at(root)


def shared_template(tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], None]) -> Project:
    """The template project ``name``, built once per test run by ``build(root)`` (never change it: copy it).

    Under pytest-xdist the workers share the run's temporary folder (the parent of each worker's own): the first
    worker to ask builds the template there under an exclusive lock; the others wait on the lock, then reuse it.
    """
    if "PYTEST_XDIST_WORKER" not in os.environ:
        root = tmp_path_factory.mktemp(name) / "project"
        build(root)
        return Project.at(root)
    shared = tmp_path_factory.getbasetemp().parent / "templates"
    shared.mkdir(exist_ok=True)
    root, built = shared / name / "project", shared / f"{name}.built"
    with open(shared / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, also if the build fails
        if not built.exists():
            shutil.rmtree(root.parent, ignore_errors=True)  # what a failed build left
            build(root)
            built.touch()
    return Project.at(root)


def next_second() -> None:
    """Sleep into the next second of the clock: the store's timestamps have whole seconds, so what a run records
    after this comes after what the previous run recorded (in-process runs can follow each other within one)."""
    time.sleep(1 - time.time() % 1 + 0.01)


def flipped_rows(path: Path, id_prefix: str) -> list[str]:
    """The data rows of a CSV with every ``exited`` label flipped and new ids: a batch the model gets wrong."""
    rows = []
    for number, line in enumerate(path.read_text().splitlines()[1:]):
        _, *features, label = line.split(",")
        rows.append(",".join([f"{id_prefix}{number}", *features, str(1 - int(label))]))
    return rows


def gunicorn_command(port: int, workers: int) -> list[str]:
    """gunicorn serving ``wsgi:app`` with the project's gunicorn.conf.py on a loopback ``port`` (the config comes
    from $RISK_CONFIG)."""
    config = str(REPO / "gunicorn.conf.py")
    bind = f"127.0.0.1:{port}"
    return [sys.executable, "-m", "gunicorn", "--config", config, "--bind", bind, "--workers", str(workers), "wsgi:app"]


@contextlib.contextmanager
def serve(
    project: Project,
    server: str = "gunicorn",
    env: dict[str, str] | None = None,
    workers: int = 1,
    config: Path | None = None,
) -> Iterator[str]:
    """Start the real API (``gunicorn`` via wsgi.py and gunicorn.conf.py, or ``flask`` via ``python app.py``)
    on a free loopback port, for the project's ``config`` (default: its config.json). One gunicorn worker unless
    a test needs more (each loads the model, scikit-learn and all: seconds of CPU).

    Yields the base URL once ``/health`` answers; stops the server afterwards. The server's output goes to
    ``server-<port>.log`` beside the project (a pipe nobody reads would fill up and stall the server).
    """
    port = free_port()
    inherited = {k: v for k, v in os.environ.items() if k not in AMBIENT_VARIABLES}
    config = config or project.config
    environment = {**inherited, "RISK_CONFIG": str(config), **(env or {})}
    if server == "gunicorn":
        command = [*gunicorn_command(port, workers), "--chdir", str(REPO)]  # options may follow the app
    else:
        command = [sys.executable, str(REPO / "app.py"), "--config", str(config), "--port", str(port)]
    with running_server(
        command, port, project.root.parent / f"server-{port}.log", project.root.parent, environment
    ) as url:
        yield url


@contextlib.contextmanager
def running_server(command: list[str], port: int, log_path: Path, cwd: Path, env: dict[str, str]) -> Iterator[str]:
    """Start ``command`` (a server listening on loopback ``port``, its output to ``log_path``), yield its base URL
    once ``/health`` answers, and stop it afterwards (killed if it ignores SIGTERM for 15 s)."""
    with open(log_path, "w") as log_file:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=log_file, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/health", process, log_path)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_for_http(url: str, process: subprocess.Popen[str], log_path: Path | None = None, timeout: float = 60) -> None:
    """Poll ``url`` until it answers; fail with the server's output (``log_path``, else its stdout pipe) if it
    exits or never answers."""

    def output() -> str:
        if log_path is not None:
            return log_path.read_text()
        return process.stdout.read() if process.stdout else ""

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited with {process.returncode}:\n{output()}")
        try:
            requests.get(url, timeout=1)
            return
        except (requests.ConnectionError, requests.Timeout):  # not listening yet, or a worker still booting
            time.sleep(0.1)
    process.kill()
    raise AssertionError(f"server did not answer {url} within {timeout}s:\n{output()}")


# --- the API in-process, spoken to with requests ---

IN_PROCESS_BASE = "http://risk-api.test"


class WsgiAdapter(requests.adapters.BaseAdapter):
    """A requests transport that hands each prepared request to a WSGI app in this process.

    Tests keep writing ``requests.post(url, json=..., files=...)``: requests encodes the request exactly as it
    does on the wire (JSON, forms, multipart, query strings, headers), the real app answers, and no server or
    port is involved. What needs a real socket (chunked bodies, stalled clients, several workers) runs on the
    real servers instead.
    """

    def __init__(self, app: Any) -> None:
        super().__init__()
        self.app = app

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        from urllib.parse import urlsplit

        from requests.structures import CaseInsensitiveDict
        from requests.utils import get_encoding_from_headers
        from werkzeug.test import EnvironBuilder, run_wsgi_app

        parts = urlsplit(request.url)
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode("utf-8")
        elif not isinstance(body, bytes):  # a file or a generator
            body = body.read() if hasattr(body, "read") else b"".join(body)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("content-length", "host")}
        environ = EnvironBuilder(
            path=parts.path, query_string=parts.query, method=request.method, headers=headers, data=body
        ).get_environ()
        app_iter, status, response_headers = run_wsgi_app(self.app, environ, buffered=True)
        response = requests.Response()
        response.status_code = int(status.split(" ", 1)[0])
        response.reason = status.split(" ", 1)[1] if " " in status else ""
        response.headers = CaseInsensitiveDict(response_headers.items())
        response._content = b"".join(app_iter)
        response.encoding = get_encoding_from_headers(response.headers)
        response.url = request.url
        response.request = request
        return response

    def close(self) -> None:
        pass


@contextlib.contextmanager
def in_process(app: Any) -> Iterator[str]:
    """Route requests to ``IN_PROCESS_BASE`` into ``app`` while inside; yields that base URL."""
    import pytest

    adapter = WsgiAdapter(app)
    original = requests.Session.get_adapter

    def get_adapter(session: requests.Session, url: str) -> requests.adapters.BaseAdapter:
        return adapter if url.startswith(IN_PROCESS_BASE) else original(session, url)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(requests.Session, "get_adapter", get_adapter)
        yield IN_PROCESS_BASE
