"""The AFAS Profit REST app: credentials, routes on the shared router, authentication, OTP flow."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from airflow_provider_ledgerlink.sandbox.afas.data import (
    _ACCOUNT_NAMES,
    _DOSSIER_TYPES,
    _GENERATORS,
    _JOURNAL_CODES,
    _UNITS,
    _USERS,
    ANCHOR,
    APP_NAME,
    AUTHORIZATION_GROUP,
    ENVIRONMENT_ID,
    ENVIRONMENT_NAME,
    GET_CONNECTORS,
    PROFIT_VERSION,
    _Dataset,
    _DossierItems,
    _Inserted,
    _Transactions,
    _World,
)
from airflow_provider_ledgerlink.sandbox.afas.errors import (
    _XML,
    UPDATE_NOT_SUPPORTED_ERROR_NUMBER,
    VALUE_ERROR_NUMBER,
    AfasError,
    _error_response,
    _unauthorized,
    _unexpected,
)
from airflow_provider_ledgerlink.sandbox.afas.query import (
    MAX_QUERY_LENGTH,
    _parse_json_filters,
    _parse_order,
    _parse_simple_filters,
    _run_get_connector,
)
from airflow_provider_ledgerlink.sandbox.afas.writes import (
    SUB_OBJECT_POSTS,
    UPDATE_CONNECTORS,
    _body_elements,
    _check_fields,
    _delete_key,
    _money,
    _sub_objects,
    _update_spec,
)
from airflow_provider_ledgerlink.sandbox.data import (
    AMSTERDAM,
    format_day,
    wallclock_z,
)
from airflow_provider_ledgerlink.sandbox.faults import FaultRule, status_fault
from airflow_provider_ledgerlink.sandbox.server import Emulator, Request, Response, Router


# ==================================================================================================
# Credentials
# ==================================================================================================
def _hex(seed: int | str, label: str, length: int) -> str:
    return hashlib.sha256(f"ledgerlink-sandbox:{seed}:{label}".encode()).hexdigest().upper()[:length]


def sandbox_afas_token_data(seed: int | str = 42) -> str:
    """The 64-hex ``data`` part of the sandbox's valid token for environment 12345."""
    return _hex(seed, "afas-token", 64)


def sandbox_afas_token(seed: int | str = 42) -> str:
    """The full token XML, as an AFAS administrator would hand it out."""
    return f"<token><version>1</version><data>{sandbox_afas_token_data(seed)}</data></token>"


def sandbox_afas_api_key(seed: int | str = 42) -> str:
    """The App connector's API key (API-sleutel) used by the OTP flow."""
    return _hex(seed, "afas-api-key", 32)


def sandbox_afas_environment_key(seed: int | str = 42) -> str:
    """The App connector's environment key (Omgevingssleutel), sent as ``apiToken`` in the OTP flow."""
    return _hex(seed, "afas-environment-key", 32)


def afas_authorization_header(token_xml: str) -> str:
    """``AfasToken <base64(token XML)>``, the value of the ``Authorization`` header."""
    return "AfasToken " + base64.b64encode(token_xml.encode()).decode()


def afas_maintenance_fault(
    retry_after: int = 7200,
    *,
    path: str | None = None,
    method: str | None = None,
    nth: Iterable[int] | None = None,
    every: int | None = None,
    times: int | None = None,
    probability: float | None = None,
) -> FaultRule:
    """A fault rule answering AFAS requests with the 503 scheduled-maintenance body."""
    body = {
        "error": {
            "code": "503",
            "message": "Service temporarily unavailable due to scheduled maintenance. "
            "Please check afasstatus.nl for details.",
        },
        "retry_after": retry_after,
    }
    return status_fault(
        503,
        body,
        vendor="afas",
        path=path,
        method=method,
        nth=nth,
        every=every,
        times=times,
        probability=probability,
        name="afas-maintenance",
    )


# ==================================================================================================
# The emulator
# ==================================================================================================
class AfasEmulator(Emulator):
    """AFAS Profit REST for environment 12345. See the package docstring for what it covers.

    ``token_xml`` is the valid token; ``authorization_header`` the matching header value;
    ``api_key`` and ``environment_key`` are what the OTP flow needs.
    """

    name = "afas"
    prefix = "/afas"

    def __init__(
        self,
        seed: int = 42,
        scale: Mapping[str, int] | None = None,
        anchor: datetime = ANCHOR,
    ) -> None:
        self.seed = seed
        self.anchor = anchor
        self.environment_id = ENVIRONMENT_ID
        self.token_data = sandbox_afas_token_data(seed)
        self.token_xml = sandbox_afas_token(seed)
        self.authorization_header = afas_authorization_header(self.token_xml)
        self.api_key = sandbox_afas_api_key(seed)
        self.environment_key = sandbox_afas_environment_key(seed)
        self._lock = threading.RLock()
        self._anchor_utc = anchor.replace(tzinfo=AMSTERDAM).astimezone(timezone.utc)
        self._started = time.monotonic()
        self._counts = {connector_id: spec.default_rows for connector_id, spec in GET_CONNECTORS.items()}
        self._datasets: dict[str, _Dataset] = {}
        self._build(scale or {})
        self._tokens: dict[str, str] = {}
        self._otp: dict[str, tuple[str, int]] = {}
        self._otp_requests: dict[str, int] = {}
        self.updates: list[dict[str, Any]] = []
        self.reset_state()
        self._router = Router()
        self._routes()

    # -- set-up ------------------------------------------------------------------------------------
    @property
    def api_token(self) -> str:
        """Alias of ``environment_key``: the OTP requests call it ``apiToken``."""
        return self.environment_key

    def apply_scale(self, scale: dict[str, int]) -> list[str]:
        known = {key: value for key, value in scale.items() if key in GET_CONNECTORS}
        if known:
            self._build(known)
            self.reset_state()
        return list(known)

    def _build(self, scale: Mapping[str, int]) -> None:
        unknown = sorted(set(scale) - set(GET_CONNECTORS))
        if unknown:
            raise ValueError(f"unknown AFAS GetConnector(s) in scale: {', '.join(unknown)}")
        for connector_id, rows in scale.items():
            if int(rows) < 0:
                raise ValueError(f"row count for {connector_id} must not be negative")
            self._counts[connector_id] = int(rows)
        world = _World(self.seed, self._counts, self.anchor)
        # Generators look each other up only when producing rows (open items and dossier items
        # refer to relations, the changed entry dates to the transactions), so order is free here.
        for connector_id, factory in _GENERATORS.items():
            world.generators[connector_id] = factory(world, self._counts[connector_id])
        self._datasets = {cid: _Dataset(GET_CONNECTORS[cid], world.generators[cid]) for cid in GET_CONNECTORS}
        self._datasets_ci = {cid.lower(): dataset for cid, dataset in self._datasets.items()}

    def reset_state(self) -> None:
        with self._lock:
            self._tokens = {self.token_xml: f"{ENVIRONMENT_ID}.LEDGERLINK"}
            self._otp.clear()
            self._otp_requests.clear()
            self.updates.clear()
            for dataset in self._datasets.values():
                dataset.inserted.clear()
                dataset.hidden.clear()
            transactions = self._datasets["Profit_Transactions"].generator
            assert isinstance(transactions, _Transactions)
            self._next_entry = transactions.entry_base + transactions.entries
            self._next_dossier_item = _DossierItems.id_base + self._datasets["Profit_DossierItems"].count

    def row_count(self, connector_id: str) -> int:
        """How many generated rows a GetConnector has (inserted records not included)."""
        return self._datasets[connector_id].count

    def rows(self, connector_id: str, start: int = 0, stop: int | None = None) -> list[dict[str, Any]]:
        """Generated rows as dicts, exactly as the GetConnector returns them (for tests)."""
        dataset = self._datasets[connector_id]
        stop = dataset.count if stop is None else min(stop, dataset.count)
        return [json.loads(dataset.encode(dataset.row(i))) for i in range(start, stop)]

    def inserted_rows(self, connector_id: str) -> list[dict[str, Any]]:
        """Rows that UpdateConnectors added or changed, as the GetConnector returns them (for tests:
        what the environment holds, whatever a client was told)."""
        dataset = self._datasets[connector_id]
        with self._lock:
            return [json.loads(dataset.encode(row)) for row in dataset.inserted]

    def register_token(self, token_xml: str, user: str = f"{ENVIRONMENT_ID}.LEDGERLINK") -> None:
        with self._lock:
            self._tokens[token_xml.strip()] = user

    def revoke_token(self, token: str) -> bool:
        """Delete a token, as an administrator would in the App connector. Accepts XML or data part."""
        token = token.strip()
        with self._lock:
            for known in list(self._tokens):
                if token in (known, _token_data(known)):
                    del self._tokens[known]
                    return True
        return False

    def now(self) -> str:
        """The sandbox clock (starts at the anchor) as AFAS renders it: Amsterdam wall clock + Z."""
        elapsed = timedelta(seconds=time.monotonic() - self._started)
        return wallclock_z(self._anchor_utc + elapsed)

    # -- routing -----------------------------------------------------------------------------------
    def _routes(self) -> None:
        add = self._router.add
        add("GET", r"/connectors/(?P<connector>[^/]+)", self._authenticated(self._get_connector))
        add(("POST", "PUT"), r"/connectors/(?P<connector>[^/]+)", self._authenticated(self._update))
        add("POST", r"/connectors/(?P<connector>[^/]+)/(?P<sub>[^/]+)", self._authenticated(self._update_sub))
        add(
            "DELETE",
            r"/connectors/(?P<connector>[^/]+)/(?P<obj>[^/]+)/(?P<keys>.+)",
            self._authenticated(self._delete),
        )
        add("GET", r"/metainfo", self._authenticated(self._metainfo))
        add(
            "GET",
            r"/metainfo/(?P<kind>get|update)/(?P<connector>[^/]+)",
            self._authenticated(self._metainfo_of),
        )
        add("GET", r"/profitversion", self._authenticated(self._version))
        add("POST", r"/otprequest", self._otp_request)
        add("POST", r"/otpvalidation", self._otp_validation)

    def handle(self, request: Request) -> Response:
        match = re.fullmatch(r"/profitrestservices(/.*)?", request.subpath, re.IGNORECASE)
        if match is None:
            return Response.empty(404, _XML)
        if len(request.query_string) > MAX_QUERY_LENGTH:
            return Response.empty(404, _XML)
        path = (match.group(1) or "/").rstrip("/") or "/"
        try:
            response = self._router.dispatch(request, path)
        except AfasError as error:
            return error.response()
        if response is None:
            return Response.empty(404, _XML)
        return response

    def _authenticated(self, handler: Callable[..., Response]) -> Callable[..., Response]:
        def guarded(request: Request, **kwargs: str) -> Response:
            failure = self._check_token(request)
            return failure if failure is not None else handler(request, **kwargs)

        return guarded

    def _check_token(self, request: Request) -> Response | None:
        header = request.header("authorization")
        if not header:
            return _unauthorized()
        scheme, _, value = header.strip().partition(" ")
        if scheme.lower() != "afastoken" or not value.strip():
            return _unauthorized()
        value = value.strip()
        if value.startswith("<"):
            return _error_response(
                "The token in the Authorization header is not Base64-encoded. "
                "Send 'AfasToken ' followed by the Base64 encoding of the complete token XML."
            )
        try:
            token = base64.b64decode(value, validate=True).decode("utf-8").strip()
        except (binascii.Error, ValueError):
            return _unauthorized()
        with self._lock:
            known = token in self._tokens
        return None if known else _unauthorized()

    # -- GetConnectors -----------------------------------------------------------------------------
    def _dataset(self, connector: str) -> _Dataset | None:
        return self._datasets_ci.get(connector.lower())

    def _get_connector(self, request: Request, connector: str) -> Response:
        dataset = self._dataset(connector)
        if dataset is None:
            return _unauthorized()
        skip_text = request.param("skip")
        take_text = request.param("take")
        try:
            skip = int(skip_text) if skip_text not in (None, "") else 0
        except ValueError:
            skip = 0
        if skip < -1:
            skip = 0
        take: int | None
        try:
            take = int(take_text) if take_text not in (None, "") else None
        except ValueError:
            if skip != -1:
                raise _unexpected() from None
            take = -1
        if skip == -1:
            # Everything; take is not even validated. The response echoes what was asked for.
            echo_take = -1 if take is None else take
            take = None
        else:
            take = 100 if take is None else take
            if take <= 0:
                raise _unexpected()
            echo_take = take
        filter_json = request.param("filterjson")
        if filter_json:
            groups = _parse_json_filters(dataset, filter_json)
        else:
            groups = _parse_simple_filters(dataset, request)
        order = _parse_order(dataset, request.param("orderbyfieldids"))
        rows = _run_get_connector(dataset, groups, order, max(skip, 0), take)
        encode = dataset.encode
        body = f'{{"skip":{skip},"take":{echo_take},"rows":[{",".join([encode(row) for row in rows])}]}}'
        return Response.raw_json(body)

    # -- metainfo ----------------------------------------------------------------------------------
    def _metainfo(self, request: Request) -> Response:
        return Response.json(
            {
                "updateConnectors": [
                    {"id": spec.id, "description": spec.root.description}
                    for spec in UPDATE_CONNECTORS.values()
                ],
                "getConnectors": [
                    {"id": spec.id, "description": spec.description} for spec in GET_CONNECTORS.values()
                ],
                "info": {
                    "envid": ENVIRONMENT_NAME,
                    "appName": APP_NAME,
                    "group": AUTHORIZATION_GROUP,
                    "tokenExpiry": "0",
                },
            }
        )

    def _metainfo_of(self, request: Request, kind: str, connector: str) -> Response:
        if kind.lower() == "get":
            dataset = self._dataset(connector)
            if dataset is None:
                return _unauthorized()
            spec = dataset.spec
            return Response.json(
                {
                    "name": spec.id,
                    "description": spec.description,
                    "fields": [item.metainfo(n) for n, item in enumerate(spec.fields, start=1)],
                }
            )
        update = _update_spec(connector)
        if update is None:
            return _unauthorized()
        return Response.json(update.root.metainfo())

    def _version(self, request: Request) -> Response:
        return Response.json({"version": PROFIT_VERSION})

    # -- UpdateConnectors --------------------------------------------------------------------------
    def _update(self, request: Request, connector: str) -> Response:
        spec = _update_spec(connector)
        if spec is None:
            return _unauthorized()
        try:
            body = request.json()
        except (ValueError, UnicodeDecodeError):
            return self._log(request, spec.id, Response.json({"message": "Invalid json"}, 400), None)
        try:
            if request.method not in spec.methods:
                raise AfasError(
                    f"Deze UpdateConnector ondersteunt geen {request.method} ({spec.id}).",
                    UPDATE_NOT_SUPPORTED_ERROR_NUMBER,
                )
            elements = _body_elements(body, spec.root.name)
            with self._lock:
                if spec.id == "FiEntries":
                    prepared = [self._prepare_entry(element) for element in elements]
                    results = [self._book_entry(entry) for entry in prepared]
                else:
                    results = self._apply_subjects(elements, request.method)
        except AfasError as error:
            return self._log(request, spec.id, error.response(), body)
        payload = {"results": {spec.id: results[0] if len(results) == 1 else results}}
        return self._log(request, spec.id, Response.json(payload, 201), body)

    def _update_sub(self, request: Request, connector: str, sub: str) -> Response:
        """AFAS's "POST on SubObject": update the main record named by its key, insert the sub-object.

        Offered where AFAS documents the endpoint (``SUB_OBJECT_POSTS``); others are refused."""
        spec = _update_spec(connector)
        if spec is None:
            return _unauthorized()
        try:
            body = request.json()
        except (ValueError, UnicodeDecodeError):
            return self._log(request, spec.id, Response.json({"message": "Invalid json"}, 400), None)
        try:
            documented = next(
                (name for name in SUB_OBJECT_POSTS.get(spec.id, ()) if name.lower() == sub.lower()), None
            )
            if documented is None:
                raise AfasError(
                    f"Deze UpdateConnector ondersteunt geen POST op subobject '{sub}' ({spec.id}).",
                    UPDATE_NOT_SUPPORTED_ERROR_NUMBER,
                )
            elements = _body_elements(body, spec.root.name)
            with self._lock:
                results = self._apply_subjects(elements, "POST", sub_object=documented)
        except AfasError as error:
            return self._log(request, spec.id, error.response(), body)
        payload = {"results": {spec.id: results[0] if len(results) == 1 else results}}
        return self._log(request, spec.id, Response.json(payload, 201), body)

    def _delete(self, request: Request, connector: str, obj: str, keys: str) -> Response:
        spec = _update_spec(connector)
        if spec is None:
            return _unauthorized()
        try:
            key = _delete_key(spec, obj, keys)
            with self._lock:
                if spec.id == "FiEntries":
                    self._delete_entry(key)
                else:
                    self._delete_subject(key)
        except AfasError as error:
            return self._log(request, spec.id, error.response(), None)
        return self._log(request, spec.id, Response.empty(200, _XML), None)

    def _log(self, request: Request, connector: str, response: Response, body: Any) -> Response:
        with self._lock:
            self.updates.append(
                {
                    "method": request.method,
                    "path": request.subpath,
                    "connector": connector,
                    "request": body,
                    "status": response.status,
                    "response": json.loads(response.body) if response.body else None,
                }
            )
            del self.updates[:-1000]
        return response

    # FiEntries ----------------------------------------------------------------------------------
    def _prepare_entry(self, element: dict[str, Any]) -> dict[str, Any]:
        root = UPDATE_CONNECTORS["FiEntries"].root
        header = _check_fields(root, element)
        if header["UnId"] not in _UNITS:
            raise AfasError(
                f"The entered value for 'Administration number' does not exist: {header['UnId']}.",
                VALUE_ERROR_NUMBER,
            )
        if str(header["JoCo"]) not in _JOURNAL_CODES:
            raise AfasError(
                f"The entered value for 'Journal' does not exist: {header['JoCo']}.", VALUE_ERROR_NUMBER
            )
        if not 1 <= header["Peri"] <= 13:
            raise AfasError(
                f"The entered value for 'Period' does not exist: {header['Peri']}.", VALUE_ERROR_NUMBER
            )
        line_object = root.objects[0]
        lines = [_check_fields(line_object, line) for line in _sub_objects(element, "FiEntries")]
        if not lines:
            raise AfasError("A journal entry needs at least one line (object 'FiEntries').")
        debit = credit = Decimal(0)
        for line in lines:
            if str(line["VaAs"]) not in ("1", "2", "3"):
                raise AfasError(
                    f"The entered value for 'Account feature' does not exist: {line['VaAs']}.",
                    VALUE_ERROR_NUMBER,
                )
            if str(line["VaAs"]) == "1" and line["AcNr"] not in _ACCOUNT_NAMES:
                raise AfasError(
                    f"The entered value for 'Account number' does not exist: {line['AcNr']}.",
                    VALUE_ERROR_NUMBER,
                )
            debit += line.get("AmDe") or Decimal(0)
            credit += line.get("AmCr") or Decimal(0)
        if debit != credit:
            raise AfasError(
                f"The journal entry is not in balance: debit {_money(debit)} and credit {_money(credit)} "
                f"differ by {_money(abs(debit - credit))}."
            )
        numbers = {line["EnNo"] for line in lines if line.get("EnNo") not in (None, "")}
        if len(numbers) > 1:
            raise AfasError("All lines of one journal entry must have the same 'EnNo'.")
        return {"header": header, "lines": lines, "number": numbers.pop() if numbers else None}

    def _book_entry(self, entry: dict[str, Any]) -> dict[str, str]:
        header, lines = entry["header"], entry["lines"]
        number = entry["number"]
        transactions = self._datasets["Profit_Transactions"]
        if number is None:
            number = self._next_entry
        elif number < self._next_entry or any(
            row[0] == header["UnId"] and row[1] == number for row in transactions.inserted
        ):
            raise AfasError(f"Journal entry number {number} is already in use.", VALUE_ERROR_NUMBER)
        self._next_entry = max(self._next_entry, number) + 1
        stamp = self.now()
        days: set[int] = set()
        for seq, line in enumerate(lines, start=1):
            day = line["EnDa"] // 86400
            days.add(day)
            voucher_day = (line.get("BpDa") or line["EnDa"]) // 86400
            row = (
                header["UnId"],
                number,
                seq,
                header["Year"],
                header["Peri"],
                str(header["JoCo"]),
                str(line["AcNr"]),
                float(line.get("AmDe") or 0),
                float(line.get("AmCr") or 0),
                format_day(day),
                line.get("InId") or None,
                format_day(voucher_day),
                line.get("BpNr") or None,
                line.get("VaId") or None,
                None,
                line.get("Ds") or None,
                stamp,
                stamp,
            )
            transactions.inserted.append(_Inserted(row))
        changed = self._datasets["Profit_Fin_ChangedEntrydate"]
        for day in sorted(days):
            changed.inserted.append(_Inserted((format_day(day), stamp)))
        invoice = next((str(line["InId"]) for line in lines if line.get("InId")), "")
        return {"EnNo": str(number), "UnId": str(header["UnId"]), "InID": invoice}

    def _delete_entry(self, key: dict[str, str]) -> None:
        try:
            unit, number = int(key["unid"]), int(key["enno"])
        except KeyError as missing:
            raise AfasError(f"Key field '{missing.args[0]}' is missing in the URL.") from None
        except ValueError:
            raise AfasError("The key in the URL is not valid.") from None
        transactions = self._datasets["Profit_Transactions"]
        year = key["year"]
        matching = [
            row
            for row in transactions.inserted
            if row[0] == unit and row[1] == number and str(row[3]) == year
        ]
        if not matching:
            generated = transactions.generator
            assert isinstance(generated, _Transactions)
            if generated.entry_base <= number < generated.entry_base + generated.entries:
                raise AfasError(f"Journal entry {number} cannot be deleted: the period is closed.")
            raise AfasError(f"Journal entry {number} does not exist in administration {unit}.")
        transactions.inserted[:] = [row for row in transactions.inserted if row not in matching]
        changed = self._datasets["Profit_Fin_ChangedEntrydate"]
        stamp = self.now()
        for day in sorted({row[9] for row in matching}):
            changed.inserted.append(_Inserted((day, stamp)))

    # KnSubject ----------------------------------------------------------------------------------
    def _dossier_item(self, item_id: Any) -> tuple[Any, ...] | None:
        """The current row of dossier item ``item_id``: changed or inserted, else generated."""
        items = self._datasets["Profit_DossierItems"]
        for row in items.inserted:
            if row[0] == item_id:
                return row
        index = item_id - _DossierItems.id_base if isinstance(item_id, int) else -1
        if 0 <= index < items.count and item_id not in items.hidden:
            return items.row(index)
        return None

    def _store_dossier_item(self, row: tuple[Any, ...]) -> None:
        """Keep ``row`` as the item's current version, in place of an inserted or generated one."""
        items = self._datasets["Profit_DossierItems"]
        items.inserted[:] = [other for other in items.inserted if other[0] != row[0]]
        if 0 <= row[0] - _DossierItems.id_base < items.count:
            items.hidden.add(row[0])
        items.inserted.append(_Inserted(row))

    def _apply_subjects(
        self, elements: list[dict[str, Any]], method: str, sub_object: str | None = None
    ) -> list[dict[str, str]]:
        """KnSubject: POST inserts; PUT updates an existing item (generated or inserted) named by
        ``@SbId``; POST on the sub-object ``sub_object`` updates the item and inserts the sub-object."""
        root = UPDATE_CONNECTORS["KnSubject"].root
        prepared = []
        for element in elements:
            fields = _check_fields(root, element, require=method == "POST" and sub_object is None)
            links = [
                _check_fields(root.objects[0], link, require=False)
                for link in _sub_objects(element, "KnSubjectLink")
            ]
            files = [
                _check_fields(root.objects[1], item, require=False)
                for item in _sub_objects(element, "KnSubjectAttachment")
            ]
            if sub_object is not None and not _sub_objects(element, sub_object):
                raise AfasError(f"The request contains no '{sub_object}' to insert.")
            if "StId" in fields and fields["StId"] not in _DOSSIER_TYPES:
                raise AfasError(
                    f"The entered value for 'Type dossier item' does not exist: {fields['StId']}.",
                    VALUE_ERROR_NUMBER,
                )
            existing = method == "PUT" or sub_object is not None
            if existing:
                if fields.get("SbId") in (None, ""):
                    raise AfasError(
                        "Mandatory field 'SbId' (Dossier item) of object 'KnSubject' is not filled in."
                    )
                if self._dossier_item(fields["SbId"]) is None:
                    raise AfasError(f"Dossier item {fields['SbId']} does not exist or cannot be changed.")
            prepared.append((fields, links[-1] if links else {}, files[-1] if files else {}, existing))
        results = []
        stamp = self.now()
        for fields, link, attachment, existing in prepared:
            previous = self._dossier_item(fields["SbId"]) if existing else None
            if previous is None:
                item_id = self._next_dossier_item
                self._next_dossier_item += 1
                previous = (
                    item_id,
                    1,
                    _DOSSIER_TYPES[1],
                    "",
                    1,
                    None,
                    None,
                    None,
                    _USERS[0],
                    stamp,
                    stamp,
                    None,
                )
            item_id = previous[0]
            type_id = fields.get("StId", previous[1])
            destination_type = link.get("SfTp")
            row = (
                item_id,
                type_id,
                _DOSSIER_TYPES[type_id],
                fields.get("Ds", previous[3]),
                link.get("UnId", previous[4]),
                link.get("SfId") if destination_type == 2 else previous[5],
                link.get("SfId") if destination_type == 3 else previous[6],
                link.get("InId", previous[7]),
                fields.get("EmId") or previous[8],
                previous[9],
                stamp,
                attachment.get("FileName", previous[11]),
            )
            self._store_dossier_item(row)
            results.append({"SbId": str(item_id)})
        return results

    def _delete_subject(self, key: dict[str, str]) -> None:
        items = self._datasets["Profit_DossierItems"]
        try:
            item_id = int(key["sbid"])
        except ValueError:
            raise AfasError("The key in the URL is not valid.") from None
        if self._dossier_item(item_id) is None:
            raise AfasError(f"Dossier item {key['sbid']} does not exist or cannot be deleted.")
        items.inserted[:] = [row for row in items.inserted if row[0] != item_id]
        if 0 <= item_id - _DossierItems.id_base < items.count:
            items.hidden.add(item_id)

    # -- one-time passwords ------------------------------------------------------------------------
    def _otp_fields(self, request: Request) -> dict[str, str] | Response:
        try:
            body = request.json()
        except (ValueError, UnicodeDecodeError):
            return Response.json({"message": "Invalid json"}, 400)
        if not isinstance(body, dict):
            return Response.json({"message": "Invalid json"}, 400)
        lowered = {str(key).lower(): "" if value is None else str(value) for key, value in body.items()}
        return lowered

    def _otp_request(self, request: Request) -> Response:
        fields = self._otp_fields(request)
        if isinstance(fields, Response):
            return fields
        user = fields.get("userid", "").strip()
        keys_ok = fields.get("apikey") == self.api_key and fields.get("apitoken") == self.environment_key
        if user and keys_ok:
            # The real service e-mails the code; tests read it from GET /_sandbox/afas/otp.
            with self._lock:
                count = self._otp_requests.get(user.lower(), 0) + 1
                self._otp_requests[user.lower()] = count
                code = str(
                    int(_hex(self.seed, f"afas-otp:{user.lower()}:{count}", 12), 16) % 100_000_000
                ).zfill(8)
                self._otp[user.lower()] = (code, count)
        # 200 and an empty body whether or not the keys were right, like the real service.
        return Response.empty(200, _XML)

    def _otp_validation(self, request: Request) -> Response:
        fields = self._otp_fields(request)
        if isinstance(fields, Response):
            return fields
        user = fields.get("userid", "").strip()
        for name in ("apikey", "apitoken", "userid", "otp"):
            if not fields.get(name, "").strip():
                return _error_response(f"Mandatory field '{name}' is missing.")
        if fields["apikey"] != self.api_key or fields["apitoken"] != self.environment_key:
            return _error_response("The API key or environment key is not valid.")
        with self._lock:
            pending = self._otp.get(user.lower())
            if pending is None or pending[0] != fields["otp"].strip():
                return _error_response("The one-time password is not valid or has expired.")
            del self._otp[user.lower()]
            data = _hex(self.seed, f"afas-otp-token:{user.lower()}:{pending[1]}", 64)
            token = f"<token><version>1</version><data>{data}</data></token>"
            self._tokens[token] = user
        return Response.json({"token": token + "\r\n"})

    # -- sandbox control ---------------------------------------------------------------------------
    def handle_control(self, request: Request, path: str) -> Response:
        path = path.strip("/").lower()
        if path == "otp" and request.method == "GET":
            user = (request.param("user") or "").strip().lower()
            with self._lock:
                pending = self._otp.get(user)
            if pending is None:
                return Response.json({"error": f"no one-time password was sent to {user!r}"}, 404)
            return Response.json({"user": user, "otp": pending[0]})
        if path == "updates" and request.method == "GET":
            with self._lock:
                return Response.json(list(self.updates))
        if path == "credentials" and request.method == "GET":
            return Response.json(
                {
                    "environment_id": self.environment_id,
                    "token": self.token_xml,
                    "token_data": self.token_data,
                    "authorization": self.authorization_header,
                    "api_key": self.api_key,
                    "environment_key": self.environment_key,
                }
            )
        if path == "datasets" and request.method == "GET":
            return Response.json(
                {cid: {"rows": ds.count, "inserted": len(ds.inserted)} for cid, ds in self._datasets.items()}
            )
        if path == "tokens/revoke" and request.method == "POST":
            try:
                token = str(request.json()["token"])
            except (ValueError, KeyError, TypeError):
                return Response.json({"error": "expected {'token': '<token XML or data part>'}"}, 400)
            return Response.json({"revoked": self.revoke_token(token)})
        return super().handle_control(request, path)


def _token_data(token_xml: str) -> str:
    match = re.search(r"<data>([^<]*)</data>", token_xml)
    return match.group(1) if match else token_xml
