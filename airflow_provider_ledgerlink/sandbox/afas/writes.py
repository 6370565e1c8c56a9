"""AFAS UpdateConnectors: their metainfo and the validation of request bodies and DELETE keys."""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from airflow_provider_ledgerlink.sandbox.afas.data import _CONTROL_TYPES
from airflow_provider_ledgerlink.sandbox.afas.errors import VALUE_ERROR_NUMBER, AfasError
from airflow_provider_ledgerlink.sandbox.afas.query import _as_list
from airflow_provider_ledgerlink.sandbox.data import (
    parse_wallclock,
)


# ==================================================================================================
# UpdateConnectors
# ==================================================================================================
@dataclass(frozen=True)
class UpdateField:
    id: str
    label: str
    data_type: str = "string"
    length: int = 0
    mandatory: bool = False
    primary_key: bool = False

    def metainfo(self) -> dict[str, Any]:
        return {
            "fieldId": self.id,
            "primaryKey": self.primary_key,
            "dataType": self.data_type,
            "label": self.label,
            "mandatory": self.mandatory,
            "length": self.length,
            "controlType": _CONTROL_TYPES[self.data_type],
            "decimals": 2 if self.data_type == "decimal" else 0,
            "decimalsFieldId": "",
            "notzero": False,
            "values": [],
        }


@dataclass(frozen=True)
class UpdateObject:
    """An object of an UpdateConnector (``FiEntryPar`` with its sub-object ``FiEntries``)."""

    name: str
    description: str
    fields: tuple[UpdateField, ...]
    objects: tuple[UpdateObject, ...] = ()

    def field(self, name: str) -> UpdateField | None:
        for item in self.fields:
            if item.id.lower() == name.lower():
                return item
        return None

    def metainfo(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "fields": [item.metainfo() for item in self.fields],
            "objects": [item.metainfo() for item in self.objects],
        }


@dataclass(frozen=True)
class UpdateConnectorSpec:
    id: str
    root: UpdateObject
    methods: tuple[str, ...]
    key_fields: tuple[str, ...]


def _u(
    id: str,
    label: str,
    data_type: str = "string",
    length: int = 0,
    mandatory: bool = False,
    key: bool = False,
) -> UpdateField:
    if not length:
        length = {"int": 9, "decimal": 15, "date": 10, "boolean": 1}.get(data_type, 80)
    return UpdateField(id, label, data_type, length, mandatory, key)


UPDATE_CONNECTORS: dict[str, UpdateConnectorSpec] = {
    spec.id: spec
    for spec in (
        UpdateConnectorSpec(
            "FiEntries",
            UpdateObject(
                "FiEntryPar",
                "Financiële mutatie",
                (
                    _u("Year", "Financial year", "int", 4, mandatory=True),
                    _u("Peri", "Period", "int", 3, mandatory=True),
                    _u("UnId", "Administration number", "int", 3, mandatory=True),
                    _u("JoCo", "Journal", "string", 6, mandatory=True),
                    _u("AdDc", "Maak verbijzonderingscode", "boolean"),
                    _u("AdDa", "Maak verbijzonderingstoewijzing", "boolean"),
                    _u("PrTp", "Entry type", "int"),
                    _u("AuNu", "Autonummering factuur", "boolean"),
                ),
                (
                    UpdateObject(
                        "FiEntries",
                        "Boekingsregels",
                        (
                            _u("EnNo", "Journal entry number", "int"),
                            _u("VaAs", "Account feature", "string", 10, mandatory=True),
                            _u("AcNr", "Account number", "string", 16, mandatory=True),
                            _u("EnDa", "Date entry", "date", mandatory=True),
                            _u("BpDa", "Voucher date", "date"),
                            _u("BpNr", "Entry number", "string", 32),
                            _u("InId", "Invoice number", "string", 12),
                            _u("Ds", "Description entry", "string", 255),
                            _u("AmDe", "Amount debit", "decimal"),
                            _u("AmCr", "Amount credit", "decimal"),
                            _u("VaId", "VAT code", "string", 3),
                            _u("CoVc", "VAT reclaim", "string", 16),
                            _u("CuId", "Currency", "string", 3),
                            _u("Rate", "Exchange rate", "decimal"),
                            _u("AmDc", "Debit currency amount", "decimal"),
                            _u("AmCc", "Credit currency amount", "decimal"),
                            _u("DaEx", "Expiry date", "date"),
                            _u("PaId", "Payment reference", "string", 32),
                            _u("Judg", "Reviewer", "string", 15),
                            _u("BlPa", "Block for payment", "boolean"),
                            _u("PaCd", "Payment condition", "string", 5),
                            _u("AuPa", "Automatic payment/collection", "boolean"),
                            _u("OrNu", "Sales order number", "string", 12),
                            _u("Mref", "Reconciliation reference", "string", 32),
                            _u("Fref", "Invoice reference", "string", 32),
                            _u("PrId", "Project", "string", 15),
                        ),
                        (
                            UpdateObject(
                                "FiDimEntries",
                                "Verbijzondering",
                                (
                                    *(
                                        _u(f"DiC{n}", f"Exception axis code {n}", "string", 16)
                                        for n in range(1, 6)
                                    ),
                                    _u("AmDe", "Amount debit", "decimal"),
                                    _u("AmCr", "Amount credit", "decimal"),
                                ),
                            ),
                        ),
                    ),
                ),
            ),
            methods=("POST",),
            key_fields=("Year", "UnId", "EnNo"),
        ),
        UpdateConnectorSpec(
            "KnSubject",
            UpdateObject(
                "KnSubject",
                "Dossieritem",
                (
                    _u("SbId", "Dossier item", "int", key=True),
                    _u("StId", "Type dossier item", "int", 4, mandatory=True),
                    _u("Ds", "Subject", "string", 255, mandatory=True),
                    _u("SbTx", "Comment", "string", 4000),
                    _u("Da", "Date", "date"),
                    _u("EmId", "Employee", "string", 15),
                    _u("St", "Done", "boolean"),
                ),
                (
                    UpdateObject(
                        "KnSubjectLink",
                        "Bestemming",
                        (
                            _u("UnId", "Administration", "int", 3),
                            _u("SfTp", "Destination type (2 = debtor, 3 = creditor)", "int", 2),
                            _u("SfId", "Destination", "string", 16),
                            _u("InId", "Invoice number", "string", 12),
                        ),
                    ),
                    UpdateObject(
                        "KnSubjectAttachment",
                        "Bijlage",
                        (
                            _u("FileName", "File name", "string", 255),
                            _u("FileStream", "File (base64)", "string", 0),
                        ),
                    ),
                ),
            ),
            methods=("POST", "PUT"),
            key_fields=("SbId",),
        ),
    )
}


#: The sub-objects an UpdateConnector takes a POST on (``/connectors/{id}/{SubObject}``), as AFAS's
#: OAS lists them: ``POST /connectors/KnSubject/KnSubjectAttachment`` (Dossiers, bijlagen en workflows).
#: FiEntries has none: Mutaties.json lists only ``POST /connectors/FiEntries`` and the delete.
SUB_OBJECT_POSTS: dict[str, tuple[str, ...]] = {"KnSubject": ("KnSubjectAttachment",)}


def _elements(container: Any, where: str) -> list[dict[str, Any]]:
    """``{"Element": {...}}`` or ``{"Element": [...]}`` as a list of element objects."""
    if not isinstance(container, dict) or "Element" not in container:
        raise AfasError(f"Object '{where}' has no 'Element'.")
    elements = _as_list(container["Element"])
    if not elements or not all(isinstance(item, dict) for item in elements):
        raise AfasError(f"Object '{where}' has no valid 'Element'.")
    return elements


def _body_elements(body: Any, root_name: str) -> list[dict[str, Any]]:
    """The elements of an UpdateConnector body ``{"<root>": {"Element": ...}}`` (name in any case)."""
    root = None
    if isinstance(body, dict):
        root = next((value for key, value in body.items() if key.lower() == root_name.lower()), None)
    if root is None:
        raise AfasError(f"The body must contain object '{root_name}'.")
    return _elements(root, root_name)


def _sub_objects(element: dict[str, Any], name: str) -> list[dict[str, Any]]:
    """Elements of sub-object ``name``; ``Objects`` may be an object or a list of objects."""
    found: list[dict[str, Any]] = []
    for holder in _as_list(element.get("Objects")):
        if not isinstance(holder, dict):
            raise AfasError("'Objects' must contain objects.")
        for key, value in holder.items():
            if key.lower() == name.lower():
                found.extend(_elements(value, key))
    return found


def _check_fields(obj: UpdateObject, element: dict[str, Any], require: bool = True) -> dict[str, Any]:
    """Validate one element's ``Fields`` (and ``@Key`` attributes) against the metainfo."""
    values: dict[str, Any] = {}
    for key, value in element.items():
        if key.startswith("@"):
            values[key[1:]] = value
    raw_fields = element.get("Fields", {})
    if not isinstance(raw_fields, dict):
        raise AfasError(f"'Fields' of object '{obj.name}' must be an object.")
    values.update(raw_fields)
    checked: dict[str, Any] = {}
    for key, value in values.items():
        if key == "@Action":
            continue
        spec_field = obj.field(key)
        if spec_field is None:
            raise AfasError(f"Field '{key}' does not exist in object '{obj.name}'.")
        checked[spec_field.id] = _convert_update_value(spec_field, value)
    if require:
        for spec_field in obj.fields:
            if spec_field.mandatory and checked.get(spec_field.id) in (None, ""):
                raise AfasError(
                    f"Mandatory field '{spec_field.id}' ({spec_field.label}) of object '{obj.name}' is not filled in.",
                    VALUE_ERROR_NUMBER,
                )
    return checked


def _convert_update_value(spec_field: UpdateField, value: Any) -> Any:
    if value is None or value == "":
        return value
    text = str(value).strip()
    try:
        if spec_field.data_type == "int":
            if isinstance(value, bool):
                raise ValueError(text)
            return int(text)
        if spec_field.data_type == "decimal":
            if isinstance(value, bool):
                raise ValueError(text)
            return Decimal(text.replace(",", "."))
        if spec_field.data_type == "boolean":
            if isinstance(value, bool):
                return value
            if text.lower() in ("1", "true", "-1"):
                return True
            if text.lower() in ("0", "false"):
                return False
            raise ValueError(text)
        if spec_field.data_type == "date":
            seconds = parse_wallclock(text)
            if seconds is None:
                raise ValueError(text)
            return seconds
    except (ValueError, InvalidOperation):
        raise AfasError(
            f"The value '{value}' is not valid for field '{spec_field.id}' ({spec_field.label}).",
            VALUE_ERROR_NUMBER,
        ) from None
    return text


def _money(value: Decimal) -> str:
    return f"{value.quantize(Decimal('0.01'))}"


def _delete_key(spec: UpdateConnectorSpec, obj: str, path: str) -> dict[str, str]:
    """The record key of a DELETE URL ``/connectors/{id}/{Object}/@Key/value[/@Key/value…]``.

    AFAS's OAS writes the key fields with ``@`` (``/connectors/FiEntries/FiEntryPar/@Year/{Year}``,
    ``/connectors/KnCustomK01/KnCustomK01/@SqNo/{SqNo}``); its UpdateConnector page and help pages
    write them without (``/connectors/KnAppointment/KnAppointment/ApId/123``,
    ``…/FbSalesQuotation/FbSalesQuotation/OrNu/50000004/FbSalesQuotationLines/GuLi/{…}``): both are
    read. The main object's full key is required ("include the full key of the main element"); a
    sub-object segment after it addresses a nested row.
    """
    if obj.lower() != spec.root.name.lower():
        raise AfasError(f"Object '{obj}' does not exist in UpdateConnector '{spec.id}'.")
    parts = [urllib.parse.unquote(part) for part in path.split("/")]
    if any(not part for part in parts):
        raise AfasError("The URL contains an empty segment.")
    key_names = {name.lower(): name for name in spec.key_fields}
    key: dict[str, str] = {}
    position = 0
    while position < len(parts):
        name = parts[position]
        bare = name[1:] if name.startswith("@") else name
        sub = next((o for o in spec.root.objects if o.name.lower() == bare.lower()), None)
        if sub is not None and not name.startswith("@"):
            # A nested row: none of the emulated sub-objects has key fields of its own.
            raise AfasError(
                f"Object '{sub.name}' of '{spec.root.name}' cannot be deleted separately; "
                "delete the whole record."
            )
        if bare.lower() not in key_names:
            raise AfasError(f"'{bare}' is not a key field of object '{spec.root.name}'.")
        if position + 1 >= len(parts):
            raise AfasError(f"Key field '{bare}' has no value in the URL.")
        canonical = key_names[bare.lower()]
        if canonical.lower() in key:
            raise AfasError(f"Key field '{canonical}' appears twice in the URL.")
        key[canonical.lower()] = parts[position + 1]
        position += 2
    missing = [name for name in spec.key_fields if name.lower() not in key]
    if missing:
        raise AfasError(
            f"Key field '{missing[0]}' is missing in the URL: give the full key of '{spec.root.name}' "
            f"({', '.join('@' + name for name in spec.key_fields)})."
        )
    return key


def _update_spec(connector: str) -> UpdateConnectorSpec | None:
    return next((spec for spec in UPDATE_CONNECTORS.values() if spec.id.lower() == connector.lower()), None)
