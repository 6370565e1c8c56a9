"""Each vendor's wire protocol, apart from Airflow: one module per vendor.

A module here holds what a vendor's API looks like on the wire, in the same order in every module:
the data shapes, building requests, reading answers, mapping errors. Nothing here imports Airflow,
the hooks, operators, sensors or triggers; only core modules that are themselves free of Airflow
(errors, redaction, paging, the HTTP helpers). The hooks import these names back, so the hook modules'
import paths keep working.
"""
