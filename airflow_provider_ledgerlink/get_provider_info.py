"""Provider metadata read by every Airflow component. A plain dict literal: no imports, no I/O."""


def get_provider_info():
    return {
        "package-name": "airflow-provider-ledgerlink",
        "name": "LedgerLink",
        "description": (
            "Connects Airflow to AFAS Profit, Tripletex, Alasco, CASH and CloudPOS: hooks, "
            "incremental extract operators, write operators, sensors and credential rotation."
        ),
        "versions": ["0.1.0"],
        "integrations": [
            {
                "integration-name": "AFAS Profit",
                "external-doc-url": "https://docs.afas.help/profit/en",
                "tags": ["service"],
            },
        ],
        "hooks": [
            {
                "integration-name": "AFAS Profit",
                "python-modules": ["airflow_provider_ledgerlink.hooks.afas"],
            },
        ],
        "operators": [
            {
                "integration-name": "AFAS Profit",
                "python-modules": ["airflow_provider_ledgerlink.operators.afas"],
            },
        ],
        "connection-types": [
            {
                "hook-class-name": "airflow_provider_ledgerlink.hooks.afas.AfasHook",
                "hook-name": "AFAS Profit (LedgerLink)",
                "connection-type": "ledgerlink_afas",
                "ui-field-behaviour": {
                    "hidden-fields": ["login", "schema", "port"],
                    "relabeling": {"password": "User token", "host": "Base URL override (optional)"},
                    "placeholders": {
                        "password": "<token><version>1</version><data>…</data></token>",
                        "host": "leave empty for https://<environment>.rest.afas.online",
                    },
                },
                "conn-fields": {
                    "environment_id": {
                        "label": "Environment number",
                        "description": "The 5-digit AFAS Online environment number; O12345, T12345 or A12345 also work.",
                        "schema": {"type": ["string", "null"], "pattern": "^[OTAota]?[0-9]{5,6}$"},
                    },
                    "environment_type": {
                        "label": "Environment type",
                        "description": "production (rest), test (resttest) or accept (restaccept).",
                        "schema": {
                            "type": "string",
                            "enum": ["production", "test", "accept"],
                            "default": "production",
                        },
                    },
                    "otp_user_id": {
                        "label": "OTP user id",
                        "description": "For token renewal by one-time password: the AFAS user (12345.user or e-mail).",
                        "schema": {"type": ["string", "null"]},
                    },
                    "otp_api_key": {
                        "label": "OTP API key",
                        "description": "For token renewal: the App connector's API key.",
                        "schema": {"type": ["string", "null"], "format": "password"},
                    },
                    "otp_environment_token": {
                        "label": "OTP environment key",
                        "description": "For token renewal: the App connector's environment key.",
                        "schema": {"type": ["string", "null"], "format": "password"},
                    },
                },
            },
        ],
    }
