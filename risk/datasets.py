"""The project's own data files, read and checked: ``finaldata.csv`` (what ingestion merged) and the test file."""

from __future__ import annotations

import pandas as pd

from risk.artifacts import FINAL_DATA_NAME
from risk.config import Settings
from risk.errors import UserFacingError
from risk.schema import TARGET, DataFileError, check_schema, read_data_file


def read_final_data(settings: Settings) -> pd.DataFrame:
    """``finaldata.csv``, schema-checked; UserFacingError if it is missing or unusable."""
    path = settings.output_folder_path / FINAL_DATA_NAME
    if not path.exists():
        raise UserFacingError(f"{path} does not exist; run ingestion.py first")
    try:
        return check_schema(pd.read_csv(path))
    except DataFileError as err:
        raise UserFacingError(f"{path} {err}") from None


def read_training_data(settings: Settings) -> pd.DataFrame:
    """``finaldata.csv`` as training needs it: both classes present."""
    frame = read_final_data(settings)
    if frame[TARGET].nunique() < 2:
        path = settings.output_folder_path / FINAL_DATA_NAME
        raise UserFacingError(f"{path} holds only {TARGET}={frame[TARGET].iloc[0]}; training needs both 0 and 1")
    return frame


def read_test_data(settings: Settings) -> pd.DataFrame:
    """The test CSV, schema-checked; UserFacingError naming the file otherwise."""
    path = settings.test_data_file
    try:
        return read_data_file(path)
    except FileNotFoundError:
        raise UserFacingError(f"test data {path} does not exist; check test_data_path in the config") from None
    except DataFileError as err:
        raise UserFacingError(f"test data {path} {err}") from None
