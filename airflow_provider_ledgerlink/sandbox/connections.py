"""Airflow connections that point LedgerLink's hooks at a running sandbox.

    env = airflow_connection_env(sandbox)      # {"AIRFLOW_CONN_AFAS_DEFAULT": "{...}", ...}
    monkeypatch.setenv(...) / subprocess.run(..., env={**os.environ, **env})

Each vendor's default connection id is used, so example DAGs run unchanged against the sandbox.
"""

from __future__ import annotations

import json
from typing import Any

from airflow_provider_ledgerlink.sandbox.afas import (
    ENVIRONMENT_NAME,
    OTP_USER_ID,
    sandbox_afas_api_key,
    sandbox_afas_environment_key,
    sandbox_afas_token,
)
from airflow_provider_ledgerlink.sandbox.alasco import alasco_connection_definition
from airflow_provider_ledgerlink.sandbox.cash import cash_connection_definition
from airflow_provider_ledgerlink.sandbox.cloudpos import cloudpos_connection_definition
from airflow_provider_ledgerlink.sandbox.tripletex import tripletex_connection_definition


def sandbox_connections(url: str, seed: int = 42) -> dict[str, dict[str, Any]]:
    """Connection definitions (Airflow's JSON form) by connection id, for a sandbox at ``url``."""
    url = url.rstrip("/")
    return {
        "afas_default": {
            "conn_type": "ledgerlink_afas",
            "host": f"{url}/afas",
            "password": sandbox_afas_token(seed),
            "extra": {
                # The environment code as Profit shows it in its top bar.
                "environment_id": ENVIRONMENT_NAME,
                "environment_type": "production",
                # For renewing the token by one-time password (TokenRotationOperator).
                "otp_user_id": OTP_USER_ID,
                "otp_api_key": sandbox_afas_api_key(seed),
                "otp_environment_token": sandbox_afas_environment_key(seed),
            },
        },
        "cash_default": cash_connection_definition(f"{url}/cash", seed),
        "alasco_default": alasco_connection_definition(f"{url}/alasco", seed),
        "cloudpos_default": cloudpos_connection_definition(f"{url}/cloudpos", seed),
        "tripletex_default": tripletex_connection_definition(f"{url}/tripletex", seed),
    }


def airflow_connection_env(sandbox: Any) -> dict[str, str]:
    """``AIRFLOW_CONN_<ID>`` environment variables for every vendor's default connection."""
    return {
        f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps(definition)
        for conn_id, definition in sandbox_connections(sandbox.url, sandbox.seed).items()
    }
