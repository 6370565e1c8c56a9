"""An offline CASH API 3.0 (SOAP on CASHWeb) with a simulated CASHWin, for tests and demos.

Mounted at ``/cash``. Like CASHWeb, the service description and the endpoint live on query-string
addresses:

- ``GET  /cash/?api/3.0/wsdl``: the WSDL, describing ``Cash.export`` and ``Cash.import`` (RPC style,
  literal), with the endpoint address of this server. These are the only operations CASH's documents
  and clients show; ``offers_transaction_status = True`` adds ``Cash.getTransaction`` (an operation no
  CASH document names, kept as an option for clients that look for one);
- ``POST /cash/?api/3.0``: the SOAP 1.1 endpoint.

Every call carries the credentials as named parameters (``token``, ``relatie``, ``email``,
``pass``) plus ``administration`` (``admCode``, ``admMap``) and answers with a ``response``
(``code``, ``message``) and the operation's result, shaped exactly like the recorded CASH answers:
``exportResult`` is XML inside a string with the literal ``Content-type: text/xml `` prefix, an import
answers with a ``transaction`` (``id``, ``status`` 1 pending / 2 success / 3 error, ``creation``,
``lastUpdate``, ``administration``, ``initiator``, ``err``), and a failed transaction's ``err`` holds
the ``<cash><errors><error><message/><line/><source/></error></errors></cash>`` document.

Response codes (from the older CASH SOAP API, which 3.0 follows for ``1``): 1 success, 2 login error,
800 export error (e.g. a record not enabled under "Instellen CashWeb API"), 900 import error,
902 transaction does not exist, 903 administration unknown or not enabled for synchronisation.
Going over 100 requests a minute per API user gives HTTP 429 with ``Retry-After`` and a SOAP fault
(CASH does not document what it does; this is the sandbox's choice).

**The simulated CASHWin.** Administration ``DEMO`` (map ``1570``) is kept offline in CASHWin: an
import there returns status 1 (pending). The CASHWin process of the API user ("Inlezen berichten")
looks for instructions every ``cashwin.interval`` seconds (30 by default); a pending import is
validated and applied at the first such moment after it arrived, or never while
``cashwin.running`` is false. Nothing runs in the background: the state of a transaction is worked
out from the clock whenever anything is asked, so the timing is exact and costs no thread.
Administration ``x001`` (map ``1571``, as in the recorded answers) is an online CASHWeb
administration: imports are processed at once and, as recorded, ``lastUpdate`` stays
``0000-00-00 00:00:00``; CASHWin's processing sets it to the moment of processing (our choice). An import is all or nothing: one bad line rejects the whole transaction (status 3).

Data is generated from the seed, never held in memory: relations (0101, with a change date for the
``W|N`` "changed in the last N days" selection), journal lines (0301, balanced sales entries over the
60 days before the anchor 2026-11-20, selectable by booking period with ``T|YYMM|YYMM``), ledger
accounts (0201), journals (0901), and the recorded delivery addresses (2229) of relation 000100.
Records CASHWin (or CASHWeb, online) processed are added to what the exports of their own
administration return, so a client can read an import back.

The modules, from the bottom up:

- :mod:`.records`: CASH's record format (records, exports, import and error documents, amounts);
- :mod:`.data`: the world: API user, administrations, ledger accounts, journals, recorded delivery
  addresses, generated relations and journal lines;
- :mod:`.engine`: login, exports, imports as transactions, the simulated CASHWin;
- :mod:`.app`: the WSDL, the SOAP endpoint, the rate limit and the control endpoints, on the
  sandbox's shared router.
"""

from __future__ import annotations

from airflow_provider_ledgerlink.sandbox.cash.app import CashEmulator, cash_connection_definition
from airflow_provider_ledgerlink.sandbox.cash.data import (
    ADMINISTRATIONS,
    ANCHOR,
    API_EMAIL,
    RELATION_NUMBER,
    sandbox_cash_password,
)
from airflow_provider_ledgerlink.sandbox.cash.engine import CashWinSimulator

__all__ = [
    "ADMINISTRATIONS",
    "ANCHOR",
    "API_EMAIL",
    "RELATION_NUMBER",
    "CashEmulator",
    "CashWinSimulator",
    "cash_connection_definition",
    "sandbox_cash_password",
]
