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
            {
                "integration-name": "CASH",
                "external-doc-url": "https://www.cashweb.nl/",
                "tags": ["service"],
            },
            {
                "integration-name": "CloudPOS",
                "external-doc-url": "https://www.cloudpos.be/site/api?get",
                "tags": ["service"],
            },
            {
                "integration-name": "Alasco",
                "external-doc-url": "https://developer.alasco.de/",
                "tags": ["service"],
            },
            {
                "integration-name": "Tripletex",
                "external-doc-url": "https://tripletex.no/v2-docs/",
                "tags": ["service"],
            },
        ],
        "hooks": [
            {
                "integration-name": "AFAS Profit",
                "python-modules": ["airflow_provider_ledgerlink.hooks.afas"],
            },
            {
                "integration-name": "CASH",
                "python-modules": ["airflow_provider_ledgerlink.hooks.cash"],
            },
            {
                "integration-name": "CloudPOS",
                "python-modules": ["airflow_provider_ledgerlink.hooks.cloudpos"],
            },
            {
                "integration-name": "Alasco",
                "python-modules": ["airflow_provider_ledgerlink.hooks.alasco"],
            },
            {
                "integration-name": "Tripletex",
                "python-modules": ["airflow_provider_ledgerlink.hooks.tripletex"],
            },
        ],
        "operators": [
            {
                "integration-name": "AFAS Profit",
                "python-modules": ["airflow_provider_ledgerlink.operators.afas"],
            },
            {
                "integration-name": "CASH",
                "python-modules": ["airflow_provider_ledgerlink.operators.cash"],
            },
            {
                "integration-name": "CloudPOS",
                "python-modules": ["airflow_provider_ledgerlink.operators.cloudpos"],
            },
            {
                "integration-name": "Alasco",
                "python-modules": ["airflow_provider_ledgerlink.operators.alasco"],
            },
            {
                "integration-name": "Tripletex",
                "python-modules": ["airflow_provider_ledgerlink.operators.tripletex"],
            },
        ],
        "sensors": [
            {
                "integration-name": "CASH",
                "python-modules": ["airflow_provider_ledgerlink.sensors.cash"],
            },
            {
                "integration-name": "CloudPOS",
                "python-modules": ["airflow_provider_ledgerlink.sensors.cloudpos"],
            },
        ],
        "triggers": [
            {
                "integration-name": "CASH",
                "python-modules": ["airflow_provider_ledgerlink.triggers.cash"],
            },
            {
                "integration-name": "CloudPOS",
                "python-modules": ["airflow_provider_ledgerlink.triggers.cloudpos"],
            },
        ],
        "connection-types": [
            {
                "hook-class-name": "airflow_provider_ledgerlink.hooks.tripletex.TripletexHook",
                "hook-name": "Tripletex (LedgerLink)",
                "connection-type": "ledgerlink_tripletex",
                "ui-field-behaviour": {
                    "hidden-fields": ["login", "schema", "port"],
                    "relabeling": {"password": "Employee token", "host": "Base URL override (optional)"},
                    "placeholders": {
                        "host": "leave empty for https://tripletex.no/v2 (or the test environment)",
                        "environment": "production or test",
                        "company_id": "0 = the employee's own company",
                        "rate_limit_reserve": "20",
                        "credential_store": "variable (default), airflow_api, none, or a class path",
                    },
                },
                "conn-fields": {
                    "consumer_token": {
                        "label": "Consumer token",
                        "description": "The integration's consumer token, issued by Tripletex with the API registration.",
                        "schema": {"type": ["string", "null"], "format": "password"},
                    },
                    "environment": {
                        "label": "Environment",
                        "description": "production (tripletex.no/v2) or test (api-test.tripletex.tech/v2).",
                        "schema": {"type": "string", "enum": ["production", "test"], "default": "production"},
                    },
                    "company_id": {
                        "label": "Client company id",
                        "description": "0 for the employee's own company; an accountant's client company id for proxy access.",
                        "schema": {"type": ["integer", "null"], "minimum": 0, "default": 0},
                    },
                    "rate_limit_reserve": {
                        "label": "Rate-limit reserve",
                        "description": "Requests of each rate-limit period left for the people using Tripletex (default 20).",
                        "schema": {"type": ["integer", "null"], "minimum": 0},
                    },
                    "credential_store": {
                        "label": "Credential store",
                        "description": "Where rotated credentials live: variable (default), airflow_api, none, or a class path.",
                        "schema": {"type": ["string", "null"]},
                    },
                    "credential_store_conn_id": {
                        "label": "Airflow API connection",
                        "description": "With credential_store airflow_api: the connection to Airflow's REST API (default ledgerlink_airflow_api).",
                        "schema": {"type": ["string", "null"]},
                    },
                    "employee_token_expires_on": {
                        "label": "Employee token expires on",
                        "description": "The expiry date Tripletex showed for the employee token (for expiry warnings).",
                        "schema": {"type": ["string", "null"], "format": "date"},
                    },
                },
            },
            {
                "hook-class-name": "airflow_provider_ledgerlink.hooks.alasco.AlascoHook",
                "hook-name": "Alasco (LedgerLink)",
                "connection-type": "ledgerlink_alasco",
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port"],
                    "relabeling": {
                        "login": "API key",
                        "password": "API token",
                        "host": "Host override (optional)",
                    },
                    "placeholders": {
                        "login": "the 40-character API key",
                        "password": "the 64-character API token (shown once when created)",
                        "host": "leave empty for https://api.alasco.de",
                        "api": "fincon, capex or esg",
                    },
                },
                "conn-fields": {
                    "credential_store": {
                        "label": "Credential store",
                        "description": "Where rotated credentials live: variable (default), airflow_api, none, or a class path.",
                        "schema": {"type": ["string", "null"]},
                    },
                    "credential_store_conn_id": {
                        "label": "Airflow API connection",
                        "description": "With credential_store airflow_api: the connection to Airflow's REST API (default ledgerlink_airflow_api).",
                        "schema": {"type": ["string", "null"]},
                    },
                    "staged_password": {
                        "label": "Staged credential",
                        "description": "With credential_store airflow_api: a new credential for TokenRotationOperator to verify and promote.",
                        "schema": {"type": ["string", "null"], "format": "password"},
                    },
                    "api": {
                        "label": "API",
                        "description": "Which Alasco API the credentials are for: fincon (default), capex or esg.",
                        "schema": {"type": "string", "enum": ["fincon", "capex", "esg"], "default": "fincon"},
                    },
                },
            },
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
                    "credential_store": {
                        "label": "Credential store",
                        "description": "Where rotated credentials live: variable (default), airflow_api, none, or a class path.",
                        "schema": {"type": ["string", "null"]},
                    },
                    "credential_store_conn_id": {
                        "label": "Airflow API connection",
                        "description": "With credential_store airflow_api: the connection to Airflow's REST API (default ledgerlink_airflow_api).",
                        "schema": {"type": ["string", "null"]},
                    },
                    "environment_id": {
                        "label": "Environment code",
                        "description": "The environment code from Profit's top bar (O12345AA production, T12345AA test, A12345AA accept) or just its number (12345)",
                        "schema": {
                            "type": ["string", "null"],
                            "pattern": "^\\s*([OTAota][0-9]{5,6}([A-Za-z]{2})?|[0-9]{5,6})\\s*$",
                        },
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
            {
                "hook-class-name": "airflow_provider_ledgerlink.hooks.cash.CashHook",
                "hook-name": "CASH (LedgerLink)",
                "connection-type": "ledgerlink_cash",
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port"],
                    "relabeling": {
                        "login": "API user e-mail",
                        "password": "API user password",
                        "host": "Service description (WSDL)",
                    },
                    "placeholders": {
                        "login": "api-user@example.nl",
                        "host": "https://www.cashweb.nl/?api/3.0/wsdl",
                        "relation_number": "your CASH relation number, e.g. 25583",
                        "administration_code": "e.g. x001",
                        "administration_map": "e.g. 1571",
                    },
                },
                "conn-fields": {
                    "credential_store": {
                        "label": "Credential store",
                        "description": "Where rotated credentials live: variable (default), airflow_api, none, or a class path.",
                        "schema": {"type": ["string", "null"]},
                    },
                    "credential_store_conn_id": {
                        "label": "Airflow API connection",
                        "description": "With credential_store airflow_api: the connection to Airflow's REST API (default ledgerlink_airflow_api).",
                        "schema": {"type": ["string", "null"]},
                    },
                    "staged_password": {
                        "label": "Staged credential",
                        "description": "With credential_store airflow_api: a new credential for TokenRotationOperator to verify and promote.",
                        "schema": {"type": ["string", "null"], "format": "password"},
                    },
                    "relation_number": {
                        "label": "Relation number",
                        "description": "Your CASH relation (customer) number, not the CASHWin licence number.",
                        "schema": {"type": ["string", "null"], "pattern": "^[0-9]+$"},
                    },
                    "administration_code": {
                        "label": "Administration code",
                        "description": "The administration's code (admCode), e.g. x001.",
                        "schema": {"type": ["string", "null"]},
                    },
                    "administration_map": {
                        "label": "Administration map",
                        "description": "The administration's map (admMap), e.g. 1571.",
                        "schema": {"type": ["string", "null"]},
                    },
                    "requests_per_minute": {
                        "label": "Requests per minute",
                        "description": "LedgerLink's budget per worker process; CASH accepts at most 100.",
                        "schema": {"type": ["integer", "null"], "minimum": 1, "maximum": 100},
                    },
                },
            },
            {
                "hook-class-name": "airflow_provider_ledgerlink.hooks.cloudpos.CloudPosHook",
                "hook-name": "CloudPOS (LedgerLink)",
                "connection-type": "ledgerlink_cloudpos",
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port"],
                    "relabeling": {
                        "login": "Licence name",
                        "password": "Token",
                        "host": "API URL override (optional)",
                    },
                    "placeholders": {
                        "login": "the licence name CloudPOS gave you",
                        "host": "leave empty for https://cloudpos.be/api/",
                        "daily_request_limit": "500",
                        "on_budget_exhausted": "fail or wait",
                        "bad_login_cooldown_minutes": "0 (only after the token is changed)",
                    },
                },
                "conn-fields": {
                    "credential_store": {
                        "label": "Credential store",
                        "description": "Where rotated credentials live: variable (default), airflow_api, none, or a class path.",
                        "schema": {"type": ["string", "null"]},
                    },
                    "credential_store_conn_id": {
                        "label": "Airflow API connection",
                        "description": "With credential_store airflow_api: the connection to Airflow's REST API (default ledgerlink_airflow_api).",
                        "schema": {"type": ["string", "null"]},
                    },
                    "staged_password": {
                        "label": "Staged credential",
                        "description": "With credential_store airflow_api: a new credential for TokenRotationOperator to verify and promote.",
                        "schema": {"type": ["string", "null"], "format": "password"},
                    },
                    "daily_request_limit": {
                        "label": "Daily request limit",
                        "description": "Requests a day CloudPOS allows this licence (500 unless CloudPOS raised it); shared by every task.",
                        "schema": {"type": ["integer", "null"], "minimum": 1, "default": 500},
                    },
                    "on_budget_exhausted": {
                        "label": "When the budget is spent",
                        "description": "fail: a task that would cross the daily budget fails; wait: it waits (deferred) for the next day.",
                        "schema": {"type": "string", "enum": ["fail", "wait"], "default": "fail"},
                    },
                    "bad_login_cooldown_minutes": {
                        "label": "Retry after a failed login (minutes)",
                        "description": "0: after a rejected token nothing is sent until the token is changed. N: one new attempt after N minutes (doubling).",
                        "schema": {"type": ["integer", "null"], "minimum": 0, "default": 0},
                    },
                    "budget_block_size": {
                        "label": "Requests reserved at a time",
                        "description": "How many requests a task reserves from the shared budget at once (unused ones are given back).",
                        "schema": {"type": ["integer", "null"], "minimum": 1, "default": 10},
                    },
                    "sensor_reserve_percent": {
                        "label": "Budget kept from sensors (%)",
                        "description": "Share of the daily budget weborder sensors never use, kept for extracts and other integrations.",
                        "schema": {"type": ["integer", "null"], "minimum": 0, "maximum": 100, "default": 20},
                    },
                },
            },
        ],
    }
