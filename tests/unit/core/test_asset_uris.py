"""The default Asset of every extract operator, pinned.

Asset URIs are what other DAGs schedule on: a changed URI silently disconnects them. The vendor key in
the URI is a class attribute of each operator (``asset_vendor``), not derived from where the class
lives, and this table fails loudly on any change to it.
"""

from __future__ import annotations

import pytest

from airflow_provider_ledgerlink.core.compat import Asset
from airflow_provider_ledgerlink.core.extract import LedgerLinkExtractOperator
from airflow_provider_ledgerlink.operators.afas import AfasExtractOperator
from airflow_provider_ledgerlink.operators.alasco import AlascoExtractOperator
from airflow_provider_ledgerlink.operators.cash import CashExtractOperator
from airflow_provider_ledgerlink.operators.cloudpos import CloudPosExtractOperator
from airflow_provider_ledgerlink.operators.tripletex import TripletexExtractOperator

TEMPLATED = "{{ var.value.lake }}/raw"

# (operator, its arguments, the Asset name and URI of a templated destination)
PINNED = [
    (
        AfasExtractOperator,
        {"connector_id": "Profit_Transactions", "afas_conn_id": "afas_prod"},
        "ledgerlink.afas.afas_prod.Profit_Transactions",
        "x-ledgerlink://afas/afas_prod/Profit_Transactions",
    ),
    (
        AlascoExtractOperator,
        {"resource": "reporting/contracts", "alasco_conn_id": "alasco_prod"},
        "ledgerlink.alasco.alasco_prod.reporting_contracts",
        "x-ledgerlink://alasco/alasco_prod/reporting_contracts",
    ),
    (
        CashExtractOperator,
        {"record_code": "0301", "cash_conn_id": "cash_prod"},
        "ledgerlink.cash.cash_prod.R0301",
        "x-ledgerlink://cash/cash_prod/R0301",
    ),
    (
        CloudPosExtractOperator,
        {"function": "orders", "cloudpos_conn_id": "cloudpos_prod"},
        "ledgerlink.cloudpos.cloudpos_prod.orders",
        "x-ledgerlink://cloudpos/cloudpos_prod/orders",
    ),
    (
        TripletexExtractOperator,
        {"resource": "/ledger/posting", "tripletex_conn_id": "tripletex_prod"},
        "ledgerlink.tripletex.tripletex_prod.ledger_posting",
        "x-ledgerlink://tripletex/tripletex_prod/ledger_posting",
    ),
]


def _asset(operator: type[LedgerLinkExtractOperator], arguments: dict, destination: str) -> Asset:
    task = operator(task_id="extract", destination=destination, **arguments)
    (outlet,) = task.outlets
    assert isinstance(outlet, Asset)
    return outlet


@pytest.mark.parametrize(
    ("operator", "arguments", "name", "uri"), PINNED, ids=lambda v: getattr(v, "__name__", "")
)
def test_templated_destination_gives_the_pinned_ledgerlink_asset(operator, arguments, name, uri):
    asset = _asset(operator, arguments, TEMPLATED)
    assert (asset.name, asset.uri) == (name, uri)


@pytest.mark.parametrize(
    ("operator", "arguments", "name", "uri"), PINNED, ids=lambda v: getattr(v, "__name__", "")
)
def test_fixed_destination_is_the_asset(operator, arguments, name, uri):
    assert _asset(operator, arguments, "s3://lake/raw/").uri == "s3://lake/raw"
    assert _asset(operator, arguments, "/data/lake/").uri == "file:///data/lake"


@pytest.mark.parametrize("operator", [row[0] for row in PINNED], ids=lambda v: v.__name__)
def test_the_vendor_key_is_set_on_the_operator_itself(operator):
    # Not inherited from the base, not derived from the module the class lives in.
    assert operator.__dict__.get("asset_vendor")


def test_moving_an_operator_to_another_module_keeps_its_assets():
    moved = type("AfasExtractOperator", (AfasExtractOperator,), {"__module__": "somewhere.else.entirely"})
    asset = _asset(moved, {"connector_id": "Profit_Transactions", "afas_conn_id": "afas_prod"}, TEMPLATED)
    assert asset.uri == "x-ledgerlink://afas/afas_prod/Profit_Transactions"
