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
        # Connection forms. Airflow 3.2+ draws them from "conn-fields" and "ui-field-behaviour" (3.0 and
        # 3.1 from the same declarations, through the hooks' form methods in core/hook.py). In each form:
        # what is needed to connect first, tuning next, the credential store (rotation) last. The UIs show
        # "placeholders" for the standard fields only, so an extra field's example is in its description.
        # "port" stays visible: Airflow 3.3.0-3.3.2's Test button refuses a connection stored without a
        # port (fixed after 3.3.2, apache/airflow#73298); 443 is the port every vendor answers on.
        "connection-types": [
            {
                "hook-class-name": "airflow_provider_ledgerlink.hooks.afas.AfasHook",
                "hook-name": "AFAS Profit (LedgerLink)",
                "connection-type": "ledgerlink_afas",
                "ui-field-behaviour": {
                    "hidden-fields": ["login", "schema"],
                    "relabeling": {
                        "password": "User token",
                        "host": "Base URL override (optional)",
                        "port": "HTTPS port",
                    },
                    "placeholders": {
                        "password": "<token><version>1</version><data>…</data></token>",
                        "host": "leave empty for https://<environment>.rest.afas.online",
                        "port": "443 (Airflow 3.3.0-3.3.2 need it for Test)",
                    },
                },
                "conn-fields": {
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
                        "description": "Optional, for renewing the token by one-time password: the AFAS user, e.g. 12345.jdoe or an e-mail address.",
                        "schema": {"type": ["string", "null"]},
                    },
                    "otp_api_key": {
                        "label": "OTP API key",
                        "description": "Optional, for token renewal: the App connector's API key.",
                        "schema": {"type": ["string", "null"], "format": "password"},
                    },
                    "otp_environment_token": {
                        "label": "OTP environment key",
                        "description": "Optional, for token renewal: the App connector's environment key.",
                        "schema": {"type": ["string", "null"], "format": "password"},
                    },
                    "credential_store": {
                        "label": "Credential store",
                        "description": "Optional, for rotation: where renewed credentials live. variable (the default), airflow_api, none, or a class path.",
                        "schema": {"type": ["string", "null"]},
                    },
                    "credential_store_conn_id": {
                        "label": "Airflow API connection",
                        "description": "Optional, with the airflow_api credential store: the connection to Airflow's REST API (default ledgerlink_airflow_api).",
                        "schema": {"type": ["string", "null"]},
                    },
                },
            },
            {
                "hook-class-name": "airflow_provider_ledgerlink.hooks.tripletex.TripletexHook",
                "hook-name": "Tripletex (LedgerLink)",
                "connection-type": "ledgerlink_tripletex",
                "ui-field-behaviour": {
                    "hidden-fields": ["login", "schema"],
                    "relabeling": {
                        "password": "Employee token",
                        "host": "Base URL override (optional)",
                        "port": "HTTPS port",
                    },
                    "placeholders": {
                        "password": "the employee token (the consumer token goes below)",
                        "host": "leave empty for https://tripletex.no/v2 (or the test environment)",
                        "port": "443 (Airflow 3.3.0-3.3.2 need it for Test)",
                    },
                },
                "conn-fields": {
                    "consumer_token": {
                        "label": "Consumer token",
                        "description": "The integration's consumer token, issued by Tripletex with the API registration; used with the employee token above.",
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
                        "description": "Requests of each rate-limit period left for the people using Tripletex, e.g. 20 (the default).",
                        "schema": {"type": ["integer", "null"], "minimum": 0},
                    },
                    "employee_token_expires_on": {
                        "label": "Employee token expires on",
                        "description": "Optional: the expiry date Tripletex showed for the employee token (for expiry warnings).",
                        "schema": {"type": ["string", "null"], "format": "date"},
                    },
                    "credential_store": {
                        "label": "Credential store",
                        "description": "Optional, for rotation: where session tokens and renewed credentials live. variable (the default), airflow_api, none, or a class path.",
                        "schema": {"type": ["string", "null"]},
                    },
                    "credential_store_conn_id": {
                        "label": "Airflow API connection",
                        "description": "Optional, with the airflow_api credential store: the connection to Airflow's REST API (default ledgerlink_airflow_api).",
                        "schema": {"type": ["string", "null"]},
                    },
                },
            },
            {
                "hook-class-name": "airflow_provider_ledgerlink.hooks.alasco.AlascoHook",
                "hook-name": "Alasco (LedgerLink)",
                "connection-type": "ledgerlink_alasco",
                "ui-field-behaviour": {
                    "hidden-fields": ["schema"],
                    "relabeling": {
                        "login": "API key",
                        "password": "API token",
                        "host": "Host override (optional)",
                        "port": "HTTPS port",
                    },
                    "placeholders": {
                        "login": "the 40-character API key",
                        "password": "the 64-character API token (shown once when created)",
                        "host": "leave empty for https://api.alasco.de",
                        "port": "443 (Airflow 3.3.0-3.3.2 need it for Test)",
                    },
                },
                "conn-fields": {
                    "api": {
                        "label": "API",
                        "description": "Which Alasco API the key and token are for: fincon (the default), capex or esg.",
                        "schema": {"type": "string", "enum": ["fincon", "capex", "esg"], "default": "fincon"},
                    },
                    "staged_password": {
                        "label": "Staged credential",
                        "description": "Optional, with the airflow_api credential store: a new API token for TokenRotationOperator to verify and promote.",
                        "schema": {"type": ["string", "null"], "format": "password"},
                    },
                    "credential_store": {
                        "label": "Credential store",
                        "description": "Optional, for rotation: where renewed credentials live. variable (the default), airflow_api, none, or a class path.",
                        "schema": {"type": ["string", "null"]},
                    },
                    "credential_store_conn_id": {
                        "label": "Airflow API connection",
                        "description": "Optional, with the airflow_api credential store: the connection to Airflow's REST API (default ledgerlink_airflow_api).",
                        "schema": {"type": ["string", "null"]},
                    },
                },
            },
            {
                "hook-class-name": "airflow_provider_ledgerlink.hooks.cash.CashHook",
                "hook-name": "CASH (LedgerLink)",
                "connection-type": "ledgerlink_cash",
                "ui-field-behaviour": {
                    "hidden-fields": ["schema"],
                    "relabeling": {
                        "login": "API user e-mail",
                        "password": "API user password",
                        "host": "Service description (WSDL)",
                        "port": "HTTPS port",
                    },
                    "placeholders": {
                        "login": "api-user@example.nl",
                        "host": "https://www.cashweb.nl/?api/3.0/wsdl",
                        "port": "443 (Airflow 3.3.0-3.3.2 need it for Test)",
                    },
                },
                "conn-fields": {
                    "relation_number": {
                        "label": "Relation number",
                        "description": "Your CASH relation (customer) number, e.g. 25583; not the CASHWin licence number.",
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
                    "staged_password": {
                        "label": "Staged credential",
                        "description": "Optional, with the airflow_api credential store: a new API user password for TokenRotationOperator to verify and promote.",
                        "schema": {"type": ["string", "null"], "format": "password"},
                    },
                    "credential_store": {
                        "label": "Credential store",
                        "description": "Optional, for rotation: where renewed credentials live. variable (the default), airflow_api, none, or a class path.",
                        "schema": {"type": ["string", "null"]},
                    },
                    "credential_store_conn_id": {
                        "label": "Airflow API connection",
                        "description": "Optional, with the airflow_api credential store: the connection to Airflow's REST API (default ledgerlink_airflow_api).",
                        "schema": {"type": ["string", "null"]},
                    },
                },
            },
            {
                "hook-class-name": "airflow_provider_ledgerlink.hooks.cloudpos.CloudPosHook",
                "hook-name": "CloudPOS (LedgerLink)",
                "connection-type": "ledgerlink_cloudpos",
                "ui-field-behaviour": {
                    "hidden-fields": ["schema"],
                    "relabeling": {
                        "login": "Licence name",
                        "password": "Token",
                        "host": "API URL override (optional)",
                        "port": "HTTPS port",
                    },
                    "placeholders": {
                        "login": "the licence name CloudPOS gave you",
                        "password": "the licence's API token",
                        "host": "leave empty for https://cloudpos.be/api/",
                        "port": "443 (Airflow 3.3.0-3.3.2 need it for Test)",
                    },
                },
                "conn-fields": {
                    "daily_request_limit": {
                        "label": "Daily request limit",
                        "description": "Requests a day CloudPOS allows this licence: 500 unless CloudPOS raised it. Shared by every task.",
                        "schema": {"type": ["integer", "null"], "minimum": 1, "default": 500},
                    },
                    "on_budget_exhausted": {
                        "label": "When the budget is spent",
                        "description": "fail: a task that would cross the daily budget fails; wait: it waits (deferred) for the next day.",
                        "schema": {"type": "string", "enum": ["fail", "wait"], "default": "fail"},
                    },
                    "bad_login_cooldown_minutes": {
                        "label": "Retry after a failed login (minutes)",
                        "description": "0 (the default): after a rejected token nothing is sent until the token is changed. N: one new attempt after N minutes (doubling).",
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
                    "staged_password": {
                        "label": "Staged credential",
                        "description": "Optional, with the airflow_api credential store: a new token for TokenRotationOperator to verify and promote.",
                        "schema": {"type": ["string", "null"], "format": "password"},
                    },
                    "credential_store": {
                        "label": "Credential store",
                        "description": "Optional, for rotation: where renewed credentials live. variable (the default), airflow_api, none, or a class path.",
                        "schema": {"type": ["string", "null"]},
                    },
                    "credential_store_conn_id": {
                        "label": "Airflow API connection",
                        "description": "Optional, with the airflow_api credential store: the connection to Airflow's REST API (default ledgerlink_airflow_api).",
                        "schema": {"type": ["string", "null"]},
                    },
                },
            },
        ],
    }
