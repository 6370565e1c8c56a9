"""LedgerLink: Apache Airflow provider for AFAS Profit, Tripletex, Alasco, CASH and CloudPOS."""

from __future__ import annotations

__version__ = "0.1.0"
