"""Operators for Tripletex: land ledger and master data incrementally; feed customers, orders,
invoices and vouchers in without ever creating one twice."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow_provider_ledgerlink.core.errors import ConfigurationError, LedgerLinkError, ValidationError
from airflow_provider_ledgerlink.core.extract import LedgerLinkExtractOperator, Window
from airflow_provider_ledgerlink.core.sinks import latest_manifest
from airflow_provider_ledgerlink.core.writes import LedgerLinkWriteOperator
from airflow_provider_ledgerlink.hooks.tripletex import (
    DEFAULT_MAX_IN_FLIGHT,
    DEFAULT_MAX_WINDOW_DAYS,
    DEFAULT_PAGE_SIZE,
    DEFAULT_RECHECK_DELAY,
    OWN_CUSTOMER_SERIES_START,
    SHOP_INVOICE_SERIES_START,
    SUGGESTED_INVOICE_SERIES_START,
    VENDOR,
    Page,
    TripletexHook,
    last_change,
    oslo_today,
    window_dates,
    with_changes,
)

if TYPE_CHECKING:
    from airflow.sdk import Context


# ------------------------------------------------------------------------------------------------
# Extract
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TripletexResource:
    """How one kind of Tripletex object is read incrementally.

    ``mode``: ``dates`` (a date window on the object's own date), ``changes`` (``changedSince``
    plus each row's ``changes``), ``snapshot`` (no server-side filter: the whole list, skipped when
    its checksum says it did not change).
    """

    path: str
    mode: str
    both_activity_states: bool = False
    """The list leaves out inactive objects unless asked (``isInactive`` defaults to false)."""


RESOURCES: dict[str, TripletexResource] = {
    "postings": TripletexResource("/ledger/posting", "dates"),
    "vouchers": TripletexResource("/ledger/voucher", "dates"),
    "invoices": TripletexResource("/invoice", "dates"),
    "orders": TripletexResource("/order", "dates"),
    "customers": TripletexResource("/customer", "changes", both_activity_states=True),
    "suppliers": TripletexResource("/supplier", "changes", both_activity_states=True),
    "products": TripletexResource("/product", "snapshot"),
    "accounts": TripletexResource("/ledger/account", "snapshot"),
}


def resource_for(name: str) -> TripletexResource:
    """A known resource by name, or any list endpoint by path (``/department``), read as a snapshot."""
    key = name.strip()
    if key in RESOURCES:
        return RESOURCES[key]
    if key.startswith("/"):
        known = next((r for r in RESOURCES.values() if r.path == key), None)
        return known or TripletexResource(key, "snapshot")
    raise ConfigurationError(
        VENDOR,
        f"extract {name}",
        f"unknown resource {name!r}",
        hint=f"Use one of {', '.join(RESOURCES)}, or a list endpoint's path such as /department",
    )


def _in_window(row: Mapping[str, Any], window: Window) -> bool:
    stamp = last_change(row)
    return stamp is None or window.start <= stamp < window.end


class TripletexExtractOperator(LedgerLinkExtractOperator):
    """Land a Tripletex list in object storage, incrementally over the window.

    What "the window" means depends on the resource (see :data:`RESOURCES`):

    * ``postings``, ``vouchers``, ``invoices``, ``orders``: the Oslo dates of the window (a date
      belongs to the window holding its midnight in Oslo), sent as Tripletex's date window with its
      exclusive end and cut into windows of ``max_window_days`` (and halves, when Tripletex says a
      result is too large). A full load (``incremental=False``) needs ``full_load_start``.
    * ``customers``, ``suppliers``: ``changedSince`` the window's start, and then exactly the rows
      whose last change (``changes``) falls in the window, active and inactive ones alike. A rerun of
      an old window keeps each object in the window of its latest change.
    * ``products``, ``accounts`` and any other path: a full copy into ``full/`` (Tripletex offers
      no filter for them). With ``skip_unchanged`` a run first asks Tripletex whether every page's
      checksum still matches the last copy, and keeps that copy when it does. With
      ``incremental=True`` the rows changed in the window are kept instead.

    :param resource: what to read (templated): a name from :data:`RESOURCES` or a path.
    :param fields: Tripletex ``fields`` (templated), e.g. ``id,date,amount,account(number)``.
    :param filters: extra query parameters (templated), e.g. ``{"accountNumberFrom": 3000}``.
    :param sorting: Tripletex ``sorting``; ``id`` by default, so parallel pages cannot shift.
    :param page_size: rows per request.
    :param max_in_flight: requests at once (always within the rate limit and its reserve).
    :param rate_limit_reserve: requests per rate-limit period left for people (default: the
        connection's, else 20).
    :param max_window_days: the longest date window sent in one request series.
    :param skip_unchanged: for full copies, keep the last copy when its checksums still match.
    :param full_load_start: first date (``YYYY-MM-DD``) of a full load of a date-window resource.
    :param tripletex_conn_id: the Airflow connection.
    """

    vendor = VENDOR
    asset_vendor = "tripletex"  # pinned: part of every default Asset URI of this operator
    template_fields: Sequence[str] = (
        *LedgerLinkExtractOperator.template_fields,
        "resource",
        "fields",
        "filters",
        "sorting",
        "full_load_start",
        "tripletex_conn_id",
    )
    template_fields_renderers = {"filters": "json"}

    def __init__(
        self,
        *,
        resource: str,
        fields: str | None = None,
        filters: Mapping[str, Any] | None = None,
        sorting: str | None = "id",
        page_size: int = DEFAULT_PAGE_SIZE,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        rate_limit_reserve: int | None = None,
        max_window_days: int = DEFAULT_MAX_WINDOW_DAYS,
        skip_unchanged: bool = True,
        full_load_start: str | None = None,
        tripletex_conn_id: str = TripletexHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        if "{{" not in resource:
            kwargs.setdefault("incremental", resource_for(resource).mode != "snapshot")
        object_name = resource.strip("/").replace("/", "_") or "resource"
        super().__init__(object_name=object_name, conn_id=tripletex_conn_id, **kwargs)
        self.resource = resource
        self.fields = fields
        self.filters = dict(filters) if filters else None
        self.sorting = sorting
        self.page_size = page_size
        self.max_in_flight = max_in_flight
        self.rate_limit_reserve = rate_limit_reserve
        self.max_window_days = max_window_days
        self.skip_unchanged = skip_unchanged
        self.full_load_start = full_load_start
        self.tripletex_conn_id = tripletex_conn_id
        self._dates: tuple[date, date] | None = None
        self._digests: list[str | None] | None = None

    @cached_property
    def hook(self) -> TripletexHook:
        return TripletexHook(
            self.tripletex_conn_id,
            page_size=self.page_size,
            max_in_flight=self.max_in_flight,
            rate_limit_reserve=self.rate_limit_reserve,
        )

    @property
    def spec(self) -> TripletexResource:
        return resource_for(self.resource)

    def object_label(self) -> str:
        return self.resource

    def _passes(self) -> list[dict[str, Any]]:
        params = dict(self.filters or {})
        if self.spec.both_activity_states and "isInactive" not in params:
            return [{**params, "isInactive": "false"}, {**params, "isInactive": "true"}]
        return [params]

    def extract_pages(self, window: Window | None) -> Iterator[list[dict[str, Any]]]:
        spec = self.spec
        hook = self.hook
        if spec.mode == "dates":
            yield from self._date_pages(hook, spec, window)
        elif window is not None:
            changed_since = window.start if spec.mode == "changes" else None
            for params in self._passes():
                pages = hook.get_pages(
                    spec.path,
                    params=params,
                    fields=with_changes(self.fields),
                    sorting=self.sorting,
                    changed_since=changed_since,
                )
                for page in pages:
                    kept = [row for row in page if _in_window(row, window)]
                    if kept:
                        yield kept
        else:
            single = spec.mode == "snapshot" and len(self._passes()) == 1
            self._digests = [] if single else None
            for params in self._passes():
                yield from hook.get_pages(
                    spec.path,
                    params=params,
                    fields=self.fields,
                    sorting=self.sorting,
                    digests=self._digests,
                )

    def _date_pages(
        self, hook: TripletexHook, spec: TripletexResource, window: Window | None
    ) -> Iterator[Page]:
        if window is not None:
            day_from, day_to = window_dates(window.start, window.end)
        elif self.full_load_start:
            try:
                day_from = date.fromisoformat(str(self.full_load_start).strip())
            except ValueError:
                raise ConfigurationError(
                    VENDOR, f"extract {self.resource}", f"full_load_start {self.full_load_start!r} is not a date",
                    hint="Give it as YYYY-MM-DD",
                ) from None  # fmt: skip
            day_to = oslo_today(datetime.now(timezone.utc)) + timedelta(days=1)
        else:
            raise ConfigurationError(
                VENDOR,
                f"extract {self.resource}",
                f"{spec.path} is only readable by date window, and there is none",
                hint="Run it on a schedule (the data interval is the window), or give full_load_start",
            )
        self._dates = (day_from, day_to)
        if day_from >= day_to:
            self.log.info("The window %s holds no whole Oslo date: nothing to read", window)
            return
        self.log.info("Reading %s dated %s up to (not including) %s", spec.path, day_from, day_to)
        for params in self._passes():
            yield from hook.get_pages(
                spec.path,
                params=params,
                fields=self.fields,
                sorting=self.sorting,
                window=(day_from, day_to),
                max_window_days=self.max_window_days,
            )

    def source_details(self) -> dict[str, Any]:
        details: dict[str, Any] = {
            "resource": self.resource,
            "path": self.spec.path,
            "fields": self.fields,
            "sorting": self.sorting,
            "filters": self.filters,
            "page_size": self.page_size,
        }
        try:
            details["environment"] = self.hook.environment
            details["company_id"] = self.hook.company_id
        except LedgerLinkError:
            pass
        if self._dates is not None:
            details["dates"] = {
                "from": self._dates[0].isoformat(),
                "to_exclusive": self._dates[1].isoformat(),
            }
        if self._digests is not None:
            details["page_digests"] = list(self._digests)
        return details

    def extract(self, context: Context) -> dict[str, Any]:
        kept = self._unchanged_copy()
        if kept is not None:
            self._annotate_outlets(context, kept)
            return kept
        return super().extract(context)

    def _unchanged_copy(self) -> dict[str, Any] | None:
        """The last full copy's summary, when Tripletex's checksums say it is still current."""
        if not self.skip_unchanged or self.spec.mode != "snapshot" or self.resolve_window() is not None:
            return None
        folder = self.output_folder(None)
        try:
            found = latest_manifest(folder)
        except (OSError, ValueError):
            return None
        path, manifest = found if found else (None, None)
        source = (manifest or {}).get("source") or {}
        digests = source.get("page_digests")
        same_request = all(
            source.get(key) == value
            for key, value in (
                ("path", self.spec.path),
                ("fields", self.fields),
                ("sorting", self.sorting),
                ("filters", self.filters),
                ("page_size", self.page_size),
            )
        )
        if not manifest or not digests or not same_request:
            return None
        unchanged = self.hook.pages_unchanged(
            self.spec.path,
            digests,
            params=self.filters,
            fields=self.fields,
            sorting=self.sorting,
            page_size=self.page_size,
        )
        if not unchanged:
            return None
        self.log.info(
            "%s is unchanged since %s (Tripletex checksums match): keeping that copy",
            self.resource,
            manifest.get("written_at"),
        )
        return {
            "vendor": VENDOR,
            "object": self.resource,
            "rows": manifest["rows"],
            "pages": len(digests),
            "parts": [str(folder / p["path"]) for p in manifest["parts"]],
            "folder": str(folder),
            "manifest": str(path),
            "window": manifest.get("window"),
            "seconds": 0.0,
            "unchanged": True,
        }


# ------------------------------------------------------------------------------------------------
# Writing: from records to Tripletex bodies
# ------------------------------------------------------------------------------------------------
CUSTOMER_MATCHES = {"number": "customerNumber", "email": "email", "organization_number": "organizationNumber"}


def _text(record: Mapping[str, Any], key: str) -> str | None:
    value = record.get(key)
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def customer_body(
    customer: Mapping[str, Any],
    *,
    own_series_start: int = OWN_CUSTOMER_SERIES_START,
    match: str = "number",
) -> tuple[dict[str, Any], str]:
    """A Tripletex customer body from a shop's customer record, and the field to match it on.

    The record: ``key`` (the shop's customer number; required), ``name`` (required), ``email``,
    ``organization_number``, ``phone``, ``mobile``, ``private`` (a person rather than a company),
    ``address`` (``line1``, ``line2``, ``postal_code``, ``city``). With ``match="number"`` the
    Tripletex customer number *is* the shop's: the webshop set-up moves Tripletex's own customer
    numbers to ``own_series_start`` (100000), so the shop's customers keep their numbers below it.
    """
    if not isinstance(customer, Mapping):
        raise ValueError("customer must be an object")
    if match not in CUSTOMER_MATCHES:
        raise ValueError(f"customer_match must be one of {', '.join(CUSTOMER_MATCHES)}, not {match!r}")
    name = _text(customer, "name")
    if not name:
        raise ValueError("customer.name is missing")
    body: dict[str, Any] = {"name": name, "isCustomer": True}
    for source, target in (
        ("email", "email"),
        ("email", "invoiceEmail"),
        ("organization_number", "organizationNumber"),
        ("phone", "phoneNumber"),
        ("mobile", "phoneNumberMobile"),
    ):
        value = _text(customer, source)
        if value is not None:
            body[target] = value.replace(" ", "") if source == "organization_number" else value
    if customer.get("private") is not None:
        body["isPrivateIndividual"] = bool(customer["private"])
    key = _text(customer, "key")
    if match == "number":
        if key is None or not key.isdigit() or not 0 < int(key) < own_series_start:
            raise ValueError(
                f"customer.key {key!r} must be the shop's customer number, a whole number from 1 to "
                f"{own_series_start - 1}: Tripletex's own customer numbers start at {own_series_start} "
                "(or match customers on email or organization_number)"
            )
        body["customerNumber"] = int(key)
    address = customer.get("address")
    if isinstance(address, Mapping):
        postal = {
            target: value
            for source, target in (
                ("line1", "addressLine1"),
                ("line2", "addressLine2"),
                ("postal_code", "postalCode"),
                ("city", "city"),
            )
            if (value := _text(address, source)) is not None
        }
        if postal:
            body["postalAddress"] = postal
    field = CUSTOMER_MATCHES[match]
    if body.get(field) in (None, ""):
        raise ValueError(f"the customer has no {field} to match on")
    return body, field


def _quantity(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{where} must be a number")
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{where} must be a number") from None
    if number <= 0:
        raise ValueError(f"{where} must be more than 0")
    return number


def order_lines(lines: Any, *, vat_type_id: int) -> list[dict[str, Any]]:
    """Tripletex order lines from a shop's lines (``description``, ``quantity``, ``unit_price``
    excluding VAT or ``unit_price_incl_vat``, optional ``vat_type_id`` and ``product_id``)."""
    if not isinstance(lines, list) or not lines:
        raise ValueError("the order has no lines")
    result = []
    for index, line in enumerate(lines):
        where = f"lines[{index}]"
        if not isinstance(line, Mapping):
            raise ValueError(f"{where} must be an object")
        body: dict[str, Any] = {
            "description": _text(line, "description") or "",
            "count": _quantity(line.get("quantity", 1), f"{where}.quantity"),
            "vatType": {"id": int(line.get("vat_type_id") or vat_type_id)},
        }
        if line.get("unit_price") is not None:
            body["unitPriceExcludingVatCurrency"] = _quantity(line["unit_price"], f"{where}.unit_price")
        elif line.get("unit_price_incl_vat") is not None:
            body["unitPriceIncludingVatCurrency"] = _quantity(
                line["unit_price_incl_vat"], f"{where}.unit_price_incl_vat"
            )
        else:
            raise ValueError(f"{where} has no unit_price (excluding VAT) or unit_price_incl_vat")
        if line.get("product_id") is not None:
            body["product"] = {"id": int(line["product_id"])}
        result.append(body)
    return result


def _record_date(record: Mapping[str, Any], key: str, default: date | None = None) -> date:
    value = record.get(key)
    if value is None or value == "":
        if default is None:
            raise ValueError(f"{key} is missing")
        return default
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip()[:10])
    except ValueError:
        raise ValueError(f"{key} {value!r} is not a date (YYYY-MM-DD)") from None


@dataclass(frozen=True)
class ShopOrder:
    """A shop's order, checked and turned into Tripletex bodies."""

    key: str
    customer: dict[str, Any]
    customer_match: str
    order: dict[str, Any]
    order_date: date
    invoice_date: date


def shop_order(
    record: Mapping[str, Any],
    *,
    own_series_start: int = OWN_CUSTOMER_SERIES_START,
    customer_match: str = "number",
    vat_type_id: int = 3,
) -> ShopOrder:
    """Check one shop order record and build its Tripletex customer and order bodies.

    The record: ``order_key`` (the shop's order number; required, stored as the order's
    ``reference``), ``order_date`` (required), ``delivery_date`` and ``invoice_date`` (default: the
    order date, so a rerun on another day looks in the same place), ``customer`` (see
    :func:`customer_body`), ``lines`` (see :func:`order_lines`), ``comment``,
    ``prices_include_vat``.
    """
    if not isinstance(record, Mapping):
        raise ValueError("the record must be an object")
    key = _text(record, "order_key")
    if not key:
        raise ValueError("order_key is missing")
    order_date = _record_date(record, "order_date")
    customer, match = customer_body(
        record.get("customer") or {}, own_series_start=own_series_start, match=customer_match
    )
    order: dict[str, Any] = {
        "orderDate": order_date.isoformat(),
        "deliveryDate": _record_date(record, "delivery_date", order_date).isoformat(),
        "orderLines": order_lines(record.get("lines"), vat_type_id=vat_type_id),
    }
    if record.get("prices_include_vat"):
        order["isPrioritizeAmountsIncludingVat"] = True
    comment = _text(record, "comment")
    if comment:
        order["invoiceComment"] = comment
    return ShopOrder(
        key, customer, match, order, order_date, _record_date(record, "invoice_date", order_date)
    )


# ------------------------------------------------------------------------------------------------
# Write operators
# ------------------------------------------------------------------------------------------------
class _TripletexRecordsOperator(LedgerLinkWriteOperator):
    """Shared by the Tripletex write operators: the write base (records in, one result per record
    out, see :mod:`~airflow_provider_ledgerlink.core.writes`) with a Tripletex hook."""

    template_fields: Sequence[str] = (*LedgerLinkWriteOperator.template_fields, "tripletex_conn_id")
    vendor = VENDOR

    def __init__(
        self,
        *,
        recheck_delay: float = DEFAULT_RECHECK_DELAY,
        tripletex_conn_id: str = TripletexHook.default_conn_name,
        own_customer_series_start: int = OWN_CUSTOMER_SERIES_START,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.own_customer_series_start = own_customer_series_start
        self.recheck_delay = recheck_delay
        self.tripletex_conn_id = tripletex_conn_id

    @cached_property
    def hook(self) -> TripletexHook:
        return TripletexHook(
            self.tripletex_conn_id,
            recheck_delay=self.recheck_delay,
            own_customer_series_start=self.own_customer_series_start,
        )

    def write_one(self, hook: TripletexHook, record: Mapping[str, Any], index: int) -> dict[str, Any]:
        return self.write_record(record, index)

    def write_record(self, record: Any, index: int) -> dict[str, Any]:
        """Write one record; return its result (``status`` and ids, never personal data)."""
        raise NotImplementedError


class TripletexCreateInvoicesOperator(_TripletexRecordsOperator):
    """Shop orders in, Tripletex invoices out: customer, order and invoice for each, exactly once.

    For every order record (see :func:`shop_order` for its shape):

    1. the customer is created, or updated where its fields differ, matched on the shop's customer
       number (kept as the Tripletex customer number, below Tripletex's own series, which the
       webshop set-up moves to 100000), e-mail or organisation number; a customer LedgerLink did
       not create is never changed (see :meth:`TripletexHook.upsert_customer`);
    2. the order is created with its lines, its ``reference`` set to the shop's ``order_key``, unless
       the customer already has an order of that date with that reference;
    3. the order is invoiced (``PUT /order/{id}/:invoice``) on its invoice date, unless an invoice of
       that order already exists; ``sendToCustomer`` is off unless ``send_to_customer=True``.

    Tripletex has no idempotency key, so every step looks before it writes, and a write whose answer
    was lost is looked for again before it is ever sent again. Running the task twice, or retrying
    it after a timeout, creates nothing twice.

    :param records: the order records (templated; a list or an upstream XCom).
    :param records_path: or a landed file with them (templated): JSON Lines (``.gz`` too), a JSON
        list, or a LedgerLink extract folder.
    :param own_customer_series_start: where Tripletex's own customer numbers start (100000 after
        the webshop set-up); the shop's customer numbers must be below it.
    :param customer_match: ``number`` (the shop's number), ``email`` or ``organization_number``.
    :param invoice: also invoice the orders (``False``: orders only).
    :param send_to_customer: let Tripletex send the invoice to the customer.
    :param vat_type_id: the Tripletex VAT type of lines that name none (3: 25 % output VAT).
    :param tripletex_invoice_series_start: where Tripletex's invoice series starts (the set-up
        suggests 50000); an invoice numbered below it is reported, as it may collide with the
        shop's own invoice numbers (from ``shop_invoice_series_start``, 6000 by default).
    :param continue_on_error: write the remaining records after a failure (the task still fails).
    :param recheck_delay: seconds before looking for a write whose answer was lost.
    :param tripletex_conn_id: the Airflow connection.
    :return: the write summary (see :mod:`~airflow_provider_ledgerlink.core.writes`): an order is
        ``created`` when any of its steps created something, else ``already_done``; each result has
        the order key and the customer, order and invoice ids and what was done to each.
    """

    record_noun = "order"

    def __init__(
        self,
        *,
        customer_match: str = "number",
        invoice: bool = True,
        send_to_customer: bool = False,
        vat_type_id: int = 3,
        tripletex_invoice_series_start: int = SUGGESTED_INVOICE_SERIES_START,
        shop_invoice_series_start: int = SHOP_INVOICE_SERIES_START,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if customer_match not in CUSTOMER_MATCHES:
            raise ValueError(f"customer_match must be one of {', '.join(CUSTOMER_MATCHES)}")
        if tripletex_invoice_series_start <= shop_invoice_series_start:
            raise ValueError(
                "tripletex_invoice_series_start must lie above shop_invoice_series_start, so the two "
                "invoice series cannot meet"
            )
        self.tripletex_invoice_series_start = tripletex_invoice_series_start
        self.shop_invoice_series_start = shop_invoice_series_start
        self.customer_match = customer_match
        self.invoice = invoice
        self.send_to_customer = send_to_customer
        self.vat_type_id = vat_type_id

    def write_record(self, record: Any, index: int) -> dict[str, Any]:
        order = shop_order(
            record,
            own_series_start=self.own_customer_series_start,
            customer_match=self.customer_match,
            vat_type_id=self.vat_type_id,
        )
        hook = self.hook
        customer = hook.upsert_customer(order.customer, match=order.customer_match)
        customer_id = customer.id
        if customer_id is None:
            raise ValidationError(
                VENDOR, f"order {order.key}", "Tripletex returned the customer without an id"
            )
        made = hook.create_order({**order.order, "customer": {"id": customer_id}}, reference=order.key)
        result: dict[str, Any] = {
            "order_key": order.key,
            "customer_id": customer_id,
            "customer_number": customer.value.get("customerNumber"),
            "customer": customer.action,
            "order_id": made.id,
            "order": made.action,
        }
        created = made.action == "created"
        if self.invoice:
            if made.id is None:
                raise ValidationError(
                    VENDOR, f"order {order.key}", "Tripletex returned the order without an id"
                )
            invoice = hook.invoice_order(
                made.id,
                customer_id=customer_id,
                invoice_date=order.invoice_date,
                send_to_customer=self.send_to_customer,
            )
            number = invoice.value.get("invoiceNumber")
            result.update(invoice_id=invoice.id, invoice_number=number, invoice=invoice.action)
            if isinstance(number, int) and number < self.tripletex_invoice_series_start:
                self.log.warning(
                    "Tripletex numbered invoice %s below %d: its invoice series may run into the shop's, "
                    "which starts at %d. In Tripletex, Regnskap – Regnskapsinnstillinger – "
                    "Bilagstyper/nummerserier, set the invoice series to %d",
                    number, self.tripletex_invoice_series_start, self.shop_invoice_series_start,
                    self.tripletex_invoice_series_start,
                )  # fmt: skip
            created = created or invoice.action == "created"
        result["status"] = "created" if created else "already_done"
        return result


class TripletexUpsertCustomersOperator(_TripletexRecordsOperator):
    """Create or update customers from a shop's customer records (see :func:`customer_body`),
    matched on the shop's customer number, e-mail or organisation number; safe to rerun. A customer
    LedgerLink did not create is never changed (the record fails and names it).

    :param own_customer_series_start: where Tripletex's own customer numbers start (100000 after
        the webshop set-up); the shop's customer numbers must be below it.
    :param customer_match: ``number``, ``email`` or ``organization_number``.
    :return: the write summary (see :mod:`~airflow_provider_ledgerlink.core.writes`); per record
        ``status`` (``created``, ``updated``, ``unchanged``), id and number.
    """

    record_noun = "customer"

    def __init__(
        self,
        *,
        customer_match: str = "number",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if customer_match not in CUSTOMER_MATCHES:
            raise ValueError(f"customer_match must be one of {', '.join(CUSTOMER_MATCHES)}")
        self.customer_match = customer_match

    def write_record(self, record: Any, index: int) -> dict[str, Any]:
        body, match = customer_body(
            record, own_series_start=self.own_customer_series_start, match=self.customer_match
        )
        result = self.hook.upsert_customer(body, match=match)
        status = "unchanged" if result.action in ("existing", "unchanged") else result.action
        return {
            "status": status,
            "customer_id": result.id,
            "customer_number": result.value.get("customerNumber"),
        }


class TripletexCreateVouchersOperator(_TripletexRecordsOperator):
    """Post vouchers (Tripletex's body: ``date``, ``description``, ``externalVoucherNumber``,
    balanced ``postings``) exactly once each, keyed on ``externalVoucherNumber``.

    A posting may name its account by number (``{"account": {"number": 1920}}``); it is looked up.

    :param send_to_ledger: Tripletex's ``sendToLedger`` (``None``: Tripletex's default).
    :return: the write summary (see :mod:`~airflow_provider_ledgerlink.core.writes`); per record
        ``status`` (``created``, or ``already_done`` when the voucher exists), the voucher id and number.
    """

    record_noun = "voucher"

    def __init__(self, *, send_to_ledger: bool | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.send_to_ledger = send_to_ledger
        self._accounts: dict[int, int] = {}

    def _account_id(self, number: int) -> int:
        if number not in self._accounts:
            found = list(self.hook.get_all("/ledger/account", params={"number": number}, fields="id,number"))
            match = next((row for row in found if row.get("number") == number), None)
            if match is None:
                raise ValueError(f"Tripletex has no account {number}")
            self._accounts[number] = int(match["id"])
        return self._accounts[number]

    def write_record(self, record: Any, index: int) -> dict[str, Any]:
        if not isinstance(record, Mapping):
            raise ValueError("the voucher must be an object")
        voucher = dict(record)
        postings = []
        for posting in voucher.get("postings") or []:
            account = posting.get("account") if isinstance(posting, Mapping) else None
            if isinstance(account, Mapping) and "id" not in account and account.get("number") is not None:
                posting = {**posting, "account": {"id": self._account_id(int(account["number"]))}}
            postings.append(posting)
        voucher["postings"] = postings
        result = self.hook.create_voucher(voucher, send_to_ledger=self.send_to_ledger)
        return {
            "status": "created" if result.action == "created" else "already_done",
            "external_voucher_number": voucher.get("externalVoucherNumber"),
            "voucher_id": result.id,
            "voucher_number": result.value.get("number"),
        }
