"""Load and validate ``config.json``: the one place the configuration is read.

Paths are resolved against the config file's folder (absolute paths are kept), defaults are filled in,
unknown top-level keys are tolerated, and a missing or wrong key raises :class:`ConfigError` naming the key and
what it should be. The API's address is ``api_url``; course configs that say ``url`` (the course's starter) or
``api_port`` instead are honoured when ``api_url`` is absent (:func:`choose_api_url`).

Standard library only: the cron tick loads this before deciding whether there is any work to do.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit

CODE_DIR = Path(__file__).resolve().parents[1]  # the project folder: the course scripts and config.json
DEFAULT_CONFIG_NAME = "config.json"
DRIFT_TESTS = ("significant", "raw", "parametric", "nonparametric")  # risk/drift.py; significant is the default
INGESTION_READERS = ("fast", "plain")  # risk/fastread.py: the same result, the fast one in less memory
PENALTY_L1_RATIO = {"l2": 0.0, "l1": 1.0}
SOLVER_PENALTIES = {  # which penalties each LogisticRegression solver supports
    "liblinear": ("l1", "l2"),
    "saga": ("l1", "l2"),
    "lbfgs": ("l2",),
    "newton-cg": ("l2",),
    "newton-cholesky": ("l2",),
    "sag": ("l2",),
}
METRICS_TEXTFILE_NAME = "risk.prom"  # node_exporter's textfile collector reads *.prom
API_TOKEN_ENV = "RISK_API_TOKEN"  # when set, the API wants this bearer token (apicalls.py sends it)
MIN_DRIFT_HISTORY = 10  # past batch scores the parametric and nonparametric rules need (else they use raw)
DEFAULT_API_URL = "http://127.0.0.1:8000/"
API_URL_KEYS = ("api_url", "url", "api_port")  # where the API's address may come from, the first given wins


class ConfigError(ValueError):
    """The config file is missing, unreadable, or has a missing or invalid key."""


class ModelParams(NamedTuple):
    """Hyperparameters of the course's LogisticRegression."""

    C: float = 1.0
    penalty: str = "l2"
    solver: str = "liblinear"
    random_state: int | None = 0
    max_iter: int = 100
    tol: float = 1e-4

    def as_sklearn_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for LogisticRegression; ``penalty`` (deprecated since 1.8) becomes ``l1_ratio``."""
        return {
            "C": self.C,
            "l1_ratio": PENALTY_L1_RATIO[self.penalty],
            "solver": self.solver,
            "random_state": self.random_state,
            "max_iter": self.max_iter,
            "tol": self.tol,
        }

    def as_config(self) -> dict[str, Any]:
        """The settings as written in config.json (recorded with each trained model)."""
        return self._asdict()


class Settings(NamedTuple):
    """Everything the scripts read from config, with paths already resolved."""

    config_path: Path
    input_folder_path: Path
    output_folder_path: Path
    test_data_path: Path
    output_model_path: Path
    prod_deployment_path: Path
    records_db_path: Path
    log_folder_path: Path
    requirements_path: Path
    model: ModelParams = ModelParams()
    drift_test: str = "significant"
    drift_history_size: int = 20
    drift_alpha: float = 0.05
    drift_min_rows: int = 100
    drift_min_positives: int = 10
    training_window_rows: int | None = None  # None: the rows since the last deployment (risk/gate.py)
    client_book_path: Path | None = None  # the clients to rank (risk/risklist.py); None: no risk list
    metrics_textfile_path: Path | None = None  # the Prometheus textfile (risk/notify.py); set by load_config
    alert_webhook_url: str | None = None
    alert_webhook_timeout_seconds: float = 3.0
    ingestion_reader: str = "fast"
    api_url: str = DEFAULT_API_URL
    api_url_key: str | None = None  # the config key api_url came from (API_URL_KEYS); None: the default
    api_url_ignored: tuple[str, ...] = ()  # other keys of API_URL_KEYS the config gives, overruled by api_url_key
    api_timeout_seconds: float = 5.0
    package_index_url: str = "https://pypi.org/pypi"
    dependency_check_timeout_seconds: float = 3.0
    data_drift_ks_alpha: float = 0.05
    data_drift_psi_watch: float = 0.1
    data_drift_psi_drift: float = 0.2
    data_drift_psi_bins: int = 10
    data_drift_ks_max_reference_rows: int = 1000
    data_drift_min_rows: int = 20
    data_drift_feature_share: float = 0.5
    data_drift_triggers_retrain: bool = False
    api_workers: int = 2
    api_max_upload_bytes: int = 10 * 1024 * 1024
    api_data_folders: tuple[Path, ...] = ()
    raw: dict[str, Any] = {}  # the config file as read (never modified)

    @property
    def project_dir(self) -> Path:
        """The folder holding the config file; relative paths start here."""
        return self.config_path.parent

    @property
    def test_data_file(self) -> Path:
        """The test CSV: ``test_data_path`` itself, or ``testdata.csv`` inside it when it is a folder."""
        if self.test_data_path.suffix.lower() == ".csv":
            return self.test_data_path
        return self.test_data_path / "testdata.csv"

    def shown_path(self, path: Path) -> str:
        """``path`` as the user knows it: relative to the project folder when inside it, else absolute."""
        try:
            return str(path.relative_to(self.project_dir))
        except ValueError:
            return str(path)

    @property
    def api_bind(self) -> tuple[str, int]:
        """Host and port the API listens on: those of ``api_url`` (127.0.0.1 and 8000 when not given)."""
        parts = urlsplit(self.api_url)
        return parts.hostname or "127.0.0.1", parts.port or 8000

    def api_url_line(self) -> str:
        """Which key the API's address came from, for the servers' and apicalls.py's log."""
        config = self.shown_path(self.config_path)
        if self.api_url_key is None:
            return f"API url {self.api_url} (the default: {config} sets none of {', '.join(API_URL_KEYS)})"
        ignored = f"; ignored {', '.join(repr(k) for k in self.api_url_ignored)}" if self.api_url_ignored else ""
        return f"API url {self.api_url} from {self.api_url_key!r} in {config}{ignored}"

    @property
    def lock_path(self) -> Path:
        """The run lock shared by every script that writes pipeline state."""
        return self.prod_deployment_path / ".run.lock"


# --- key checkers: each returns the cleaned value or raises ValueError with what was expected ---
#
# Every number must be finite (JSON's NaN and Infinity pass a plain ``value > 0`` and then break the steps that
# use them), and every count that sizes work or memory has an upper bound, so a typo cannot exhaust the machine.

MAX_TIMEOUT_SECONDS = 3600
MAX_HISTORY_SIZE = 10_000
MAX_PSI_BINS = 1000
MAX_REFERENCE_ROWS = 10_000_000
MAX_MIN_ROWS = 10_000_000
MAX_API_WORKERS = 64
MAX_UPLOAD_BYTES = 1 << 30  # 1 GiB: one request is parsed in memory, several times its size
MAX_ITERATIONS = 1_000_000
MAX_RANDOM_STATE = 2**32 - 1  # scikit-learn's limit for an integer seed


def _is_number(value: Any) -> bool:
    """True for a finite int or float (not a bool, not NaN or Infinity)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return isinstance(value, int) or math.isfinite(value)


def _at_most(maximum: float | None) -> str:
    return "" if maximum is None else f" and at most {maximum}"


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("must be a non-empty string")
    if "\x00" in value:
        raise ValueError("must not contain a NUL byte")
    return value


def _positive(maximum: float | None = None) -> Callable[[Any], float]:
    def check(value: Any) -> float:
        if not _is_number(value) or value <= 0 or (maximum is not None and value > maximum):
            raise ValueError(f"must be a number greater than 0{_at_most(maximum)}")
        return float(value)

    return check


_positive_number = _positive()


def _whole(minimum: int, maximum: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
            qualifier = "greater than 0" if minimum == 1 else f"of at least {minimum}"
            raise ValueError(f"must be a whole number {qualifier}{_at_most(maximum)}")
        return value

    return check


def _optional_int(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_RANDOM_STATE:
        raise ValueError(f"must be a whole number from 0 to {MAX_RANDOM_STATE}, or null")
    return value


MAX_ROWS = 10**9  # row counts in config: no batch or window is larger


def _optional_positive_int(value: Any) -> int | None:
    return None if value is None else _whole(1, MAX_ROWS)(value)


def _probability(value: Any) -> float:
    if not _is_number(value) or not 0 < value < 1:
        raise ValueError("must be a number between 0 and 1 (exclusive)")
    return float(value)


def _share(value: Any) -> float:
    if not _is_number(value) or not 0 < value <= 1:
        raise ValueError("must be a number greater than 0 and at most 1")
    return float(value)


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("must be true or false")
    return value


def _one_of(*choices: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return value

    return check


def _http_url(value: Any) -> str:
    text = _text(value)
    parts = urlsplit(text)
    try:
        port_ok = parts.port is None or parts.port > 0
    except ValueError:  # a port that is not a number or is out of range
        port_ok = False
    if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        raise ValueError("must be an http(s) URL with a valid port, such as http://127.0.0.1:8000/")
    return text if text.endswith("/") else text + "/"


def _optional_http_url(value: Any) -> str | None:
    return None if value is None or value == "" else _http_url(value).rstrip("/")


def _history_size(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < MIN_DRIFT_HISTORY:
        raise ValueError(f"must be at least {MIN_DRIFT_HISTORY} (the statistical drift tests need that many scores)")
    return _whole(1, MAX_HISTORY_SIZE)(value)


MODEL_KEYS: dict[str, Callable[[Any], Any]] = {
    "C": _positive_number,
    "penalty": _one_of(*PENALTY_L1_RATIO),
    "solver": _one_of(*SOLVER_PENALTIES),
    "random_state": _optional_int,
    "max_iter": _whole(1, MAX_ITERATIONS),
    "tol": _positive_number,
}


def _check(config_path: Path, key: str, value: Any, checker: Callable[[Any], Any]) -> Any:
    try:
        return checker(value)
    except ValueError as err:
        raise ConfigError(f"{config_path}: key {key!r} {err} (got {value!r})") from None


def _model_params(config_path: Path, value: Any) -> ModelParams:
    if value is None:
        return ModelParams()
    if not isinstance(value, dict):
        raise ConfigError(f"{config_path}: key 'model' must be an object of LogisticRegression settings")
    unknown = sorted(set(value) - set(MODEL_KEYS))
    if unknown:
        raise ConfigError(
            f"{config_path}: key 'model.{unknown[0]}' is not a supported setting; use {', '.join(MODEL_KEYS)}"
        )
    cleaned = {k: _check(config_path, f"model.{k}", v, MODEL_KEYS[k]) for k, v in value.items()}
    params = ModelParams(**cleaned)
    if params.penalty not in SOLVER_PENALTIES[params.solver]:
        raise ConfigError(
            f"{config_path}: key 'model.solver' {params.solver!r} does not support penalty {params.penalty!r}; "
            f"use one of {', '.join(s for s, allowed in SOLVER_PENALTIES.items() if params.penalty in allowed)}"
        )
    return params


REQUIRED_PATH_KEYS = {
    "input_folder_path": 'the folder new data files arrive in, e.g. "sourcedata"',
    "output_folder_path": 'the folder ingested data is written to, e.g. "ingesteddata"',
    "test_data_path": 'the folder holding testdata.csv, e.g. "testdata"',
    "output_model_path": 'the folder for the trained model and its reports, e.g. "models"',
    "prod_deployment_path": 'the folder for deployed versions, e.g. "production_deployment"',
}

OPTIONAL_KEYS: dict[str, Callable[[Any], Any]] = {
    "drift_test": _one_of(*DRIFT_TESTS),
    "drift_history_size": _history_size,
    "drift_alpha": _probability,
    "drift_min_rows": _whole(1, MAX_ROWS),
    "drift_min_positives": _whole(1, MAX_ROWS),
    "training_window_rows": _optional_positive_int,
    "alert_webhook_url": _optional_http_url,
    "alert_webhook_timeout_seconds": _positive(MAX_TIMEOUT_SECONDS),
    "ingestion_reader": _one_of(*INGESTION_READERS),
    "api_url": _http_url,
    "api_timeout_seconds": _positive(MAX_TIMEOUT_SECONDS),
    "package_index_url": _http_url,
    "dependency_check_timeout_seconds": _positive(MAX_TIMEOUT_SECONDS),
    # feature-level data drift (see README, "Data drift")
    "data_drift_ks_alpha": _probability,
    "data_drift_psi_watch": _positive_number,
    "data_drift_psi_drift": _positive_number,
    "data_drift_psi_bins": _whole(2, MAX_PSI_BINS),
    "data_drift_ks_max_reference_rows": _whole(0, MAX_REFERENCE_ROWS),
    "data_drift_min_rows": _whole(2, MAX_MIN_ROWS),
    "data_drift_feature_share": _share,
    "data_drift_triggers_retrain": _boolean,
    "api_workers": _whole(1, MAX_API_WORKERS),
    # the largest request body or file named by path /prediction reads (413 beyond; see docs/security.md)
    "api_max_upload_bytes": _whole(1, MAX_UPLOAD_BYTES),
}


def api_token(environ: Mapping[str, str] | None = None) -> str | None:
    """The API's bearer token from ``$RISK_API_TOKEN``: None when it is unset (the API is open).

    A set but empty value, or one with blanks around it, is a ConfigError: the first would silently leave the API
    open, the second would refuse every client (they send the token without the blanks).
    """
    value = (os.environ if environ is None else environ).get(API_TOKEN_ENV)
    if value is None:
        return None
    if not value.strip():
        raise ConfigError(
            f"{API_TOKEN_ENV} is set but empty; set it to a secret (e.g. the output of `openssl rand -hex 32`) "
            "or unset it to serve the API without a token"
        )
    if value != value.strip():
        raise ConfigError(
            f"{API_TOKEN_ENV} has blanks or a newline around the token; remove them (clients send the token "
            "without them, so every request would be refused)"
        )
    if not all(" " < char < "\x7f" for char in value):
        raise ConfigError(
            f"{API_TOKEN_ENV} holds characters an HTTP header cannot carry (only visible ASCII, no spaces); "
            "choose another token, e.g. the output of `openssl rand -hex 32`"
        )
    return value


def resolve_config_path(config_path: str | os.PathLike[str] | None) -> Path:
    """The config to use: the given path, else ``$RISK_CONFIG``, else ``config.json`` beside this module."""
    if config_path is None:
        config_path = os.environ.get("RISK_CONFIG") or CODE_DIR / DEFAULT_CONFIG_NAME
    return Path(config_path).expanduser().resolve()


def _read_json(config_path: Path) -> dict[str, Any]:
    try:
        raw = config_path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {config_path} (pass --config PATH)") from None
    except OSError as err:
        raise ConfigError(f"cannot read config file {config_path}: {err.strerror or err}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ConfigError(
            f"{config_path}: not UTF-8 text (byte {err.start}: {raw[err.start : err.start + 1]!r}); re-save it as UTF-8"
        ) from None
    try:
        data = json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as err:
        raise ConfigError(f"{config_path}: not valid JSON at line {err.lineno} column {err.colno}: {err.msg}") from None
    except _NotJsonNumber as err:
        raise ConfigError(f"{config_path}: {err} is not a number in JSON; write a number instead") from None
    except RecursionError:
        raise ConfigError(f"{config_path}: nested too deeply to be a config file") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{config_path}: must hold a JSON object of settings")
    return data


class _NotJsonNumber(ValueError):
    """NaN or Infinity in a config file (Python's json reads them; no other JSON reader does)."""


def _refuse_constant(name: str) -> Any:
    raise _NotJsonNumber(name)


def _check_psi_levels(config_path: Path, optional: dict[str, Any]) -> None:
    """The PSI watch level must sit below the drift level."""
    watch = optional.get("data_drift_psi_watch", Settings._field_defaults["data_drift_psi_watch"])
    drift = optional.get("data_drift_psi_drift", Settings._field_defaults["data_drift_psi_drift"])
    if watch >= drift:
        raise ConfigError(
            f"{config_path}: key 'data_drift_psi_watch' ({watch}) must be below 'data_drift_psi_drift' ({drift})"
        )


class ApiUrlChoice(NamedTuple):
    """The API's address and the config key it came from (None: the default), with the keys it overruled."""

    url: str
    key: str | None
    ignored: tuple[str, ...]


def _port(value: Any) -> int:
    """A TCP port: a whole number (or its digits as a string) from 1 to 65535."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        raise ValueError("must be a port number from 1 to 65535, such as 8000")
    return value


def _api_url_from(config_path: Path, key: str, value: Any) -> str:
    """The API url one of API_URL_KEYS gives: ``api_url`` and ``url`` are URLs, ``api_port`` a port on loopback."""
    if key == "api_port":
        return f"http://127.0.0.1:{_check(config_path, key, value, _port)}/"
    return _check(config_path, key, value, _http_url)


def choose_api_url(config_path: Path, data: dict[str, Any]) -> ApiUrlChoice:
    """``api_url`` if given, else the course's ``url``, else ``api_port`` (on 127.0.0.1), else the default."""
    given = [key for key in API_URL_KEYS if data.get(key) not in (None, "")]
    if not given:
        return ApiUrlChoice(DEFAULT_API_URL, None, ())
    key = given[0]
    return ApiUrlChoice(_api_url_from(config_path, key, data[key]), key, tuple(given[1:]))


def load_config(config_path: str | os.PathLike[str] | None = None) -> Settings:
    """Read, validate and resolve the config file; raise ConfigError naming the first bad key."""
    path = resolve_config_path(config_path)
    data = _read_json(path)
    base = path.parent

    def resolve(key: str, value: Any) -> Path:
        text = _check(path, key, value, _text)
        return (base / Path(text).expanduser()).resolve()

    paths: dict[str, Path] = {}
    for key, meaning in REQUIRED_PATH_KEYS.items():
        if key not in data:
            raise ConfigError(f"{path}: missing key {key!r} ({meaning})")
        paths[key] = resolve(key, data[key])

    optional = {key: _check(path, key, data[key], check) for key, check in OPTIONAL_KEYS.items() if key in data}
    _check_psi_levels(path, optional)
    folders = data.get("api_data_folders", [])
    if not isinstance(folders, list):
        raise ConfigError(f"{path}: key 'api_data_folders' must be a list of folder paths (got {folders!r})")
    records = data.get("records_db_path", Path(data["output_folder_path"]) / "records.sqlite")
    log_folder = resolve("log_folder_path", data.get("log_folder_path", "logs"))
    book = data.get("client_book_path")
    api = choose_api_url(path, data)
    optional.pop("api_url", None)  # checked above; choose_api_url decides which key gives it
    return Settings(
        config_path=path,
        api_url=api.url,
        api_url_key=api.key,
        api_url_ignored=api.ignored,
        records_db_path=resolve("records_db_path", str(records)),
        log_folder_path=log_folder,
        client_book_path=resolve("client_book_path", book) if book not in (None, "") else None,
        metrics_textfile_path=(
            resolve("metrics_textfile_path", data["metrics_textfile_path"])
            if data.get("metrics_textfile_path")
            else log_folder / METRICS_TEXTFILE_NAME
        ),
        requirements_path=(
            resolve("requirements_path", data["requirements_path"])
            if "requirements_path" in data
            else CODE_DIR / "requirements.txt"
        ),
        model=_model_params(path, data.get("model")),
        api_data_folders=tuple(resolve(f"api_data_folders[{i}]", folder) for i, folder in enumerate(folders)),
        raw=data,
        **paths,
        **optional,
    )
