"""Products: the list (filtered on number and name) and single products; read-only."""

from __future__ import annotations

from airflow_provider_ledgerlink.sandbox.tripletex.query import AddRoute, TripletexQuery

__all__ = ["ProductHandlers"]


class ProductHandlers(TripletexQuery):
    def _add_product_routes(self, add: AddRoute) -> None:
        add("GET", r"/product", self._list_of("product", self._register_items))
        add("GET", r"/product/(?P<ident>\d+)", self._get_one("product"))
