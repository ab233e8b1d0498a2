"""The diagnostics snapshot: one document per diagnostics run, written once and read by everything that shows it.

``diagnostics.run_diagnostics`` builds it; it is saved as ``diagnostics.json`` (SNAPSHOT_NAME) and in the records
store; the API (``/summarystats``, ``/diagnostics``, ``/missingdata``, ...), ``apicalls.py``, the PDF report and the
dashboard read it. Nothing recomputes it in a GET. The JSON document, written down once:

=======================  ===================================================================================
``timestamp``            when the diagnostics ran (ISO 8601 UTC)
``model_version``        the deployed version they describe (null when nothing is deployed), ``model_sha256``
``data_rows``            rows of ``finaldata.csv``
``summary_statistics``   per numeric column: ``mean``, ``median``, ``std`` (the course's), ``p10``, ``p25``,
                         ``p75``, ``p90`` (the plots' bands); null for a column with no values
``missing_data_percent`` per column: percent of missing values
``execution_time_seconds`` ``ingestion_seconds``, ``training_seconds``: each step on a scratch copy (null: it failed)
``dependencies``         per requirement: ``package``, ``installed``, ``latest``, ``status``
``test_predictions``     ``rows`` and ``predicted_positive_rate`` on the test file (null without a model)
``data_drift``           the latest data drift check (diagnostics.data_drift), or null
=======================  ===================================================================================
"""

from __future__ import annotations

from typing import Any, NamedTuple


class DiagnosticsSnapshot(NamedTuple):
    """One diagnostics run (see the module docstring for each field's document)."""

    timestamp: str
    model_version: str | None
    model_sha256: str | None
    data_rows: int
    summary_statistics: dict[str, dict[str, float | None]]
    missing_data_percent: dict[str, float]
    execution_time_seconds: dict[str, float | None]
    dependencies: list[dict[str, str | None]]
    test_predictions: dict[str, Any] | None
    data_drift: dict[str, Any] | None

    def as_json(self) -> dict[str, Any]:
        return self._asdict()

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DiagnosticsSnapshot:
        return cls(**{name: data.get(name) for name in cls._fields})

    @property
    def outdated_packages(self) -> int:
        return sum(row.get("status") == "outdated" for row in self.dependencies)
