"""The few Airflow names whose import path moved between Airflow 3.0 and 3.3.

Everything else is imported from ``airflow.sdk`` directly. Kept tiny on purpose: each name is tried
at its newest home first, then at the older one.
"""

from __future__ import annotations

from typing import Any

try:  # Airflow 3.1+
    from airflow.sdk import BaseHook
except ImportError:  # Airflow 3.0
    from airflow.hooks.base import BaseHook  # type: ignore[no-redef,attr-defined]

try:  # Airflow 3.1+
    from airflow.sdk.log import mask_secret
except ImportError:  # Airflow 3.0
    from airflow.sdk.execution_time.secrets_masker import mask_secret  # type: ignore[no-redef]

try:  # Airflow 3.2+
    from airflow.sdk import conf
except ImportError:  # Airflow 3.0 and 3.1
    from airflow.configuration import conf  # type: ignore[no-redef,assignment]

try:  # Airflow 3.1+
    from airflow.sdk.exceptions import AirflowException
except ImportError:  # Airflow 3.0
    from airflow.exceptions import AirflowException  # type: ignore[no-redef,assignment]

from airflow.sdk import Asset, BaseOperator, BaseSensorOperator, ObjectStoragePath

__all__ = [
    "AirflowException",
    "Asset",
    "BaseHook",
    "BaseOperator",
    "BaseSensorOperator",
    "ObjectStoragePath",
    "conf",
    "default_deferrable",
    "mask_secret",
]


def default_deferrable() -> bool:
    """``[operators] default_deferrable``, read when an operator is built (never at import time)."""
    value: Any = conf.getboolean("operators", "default_deferrable", fallback=False)
    return bool(value)
