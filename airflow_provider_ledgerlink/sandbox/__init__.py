"""Offline emulators of the vendors LedgerLink talks to, served on localhost.

    from airflow_provider_ledgerlink.sandbox import Sandbox

    with Sandbox(seed=42, scale={"Profit_Transactions": 1_000_000}) as sandbox:
        base_url = sandbox.afas_url + "/ProfitRestServices"
        header = sandbox.afas.authorization_header      # "AfasToken <base64>"
        sandbox.faults.add(afas_maintenance_fault(retry_after=60, nth=[2]))
        ...
        print(sandbox.stats["afas"]["max_in_flight"])

The same server runs as a process with ``python -m airflow_provider_ledgerlink.sandbox``; other
processes control it over HTTP (``/_sandbox/faults``, ``/_sandbox/stats``, ``/_sandbox/reset``).
Everything is standard library: the sandbox adds no dependencies.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any

from airflow_provider_ledgerlink.sandbox.afas import AfasEmulator, afas_maintenance_fault
from airflow_provider_ledgerlink.sandbox.alasco import AlascoEmulator
from airflow_provider_ledgerlink.sandbox.cash import CashEmulator
from airflow_provider_ledgerlink.sandbox.cloudpos import CloudPosEmulator
from airflow_provider_ledgerlink.sandbox.faults import FaultPlan, FaultRule
from airflow_provider_ledgerlink.sandbox.server import Emulator, SandboxServer
from airflow_provider_ledgerlink.sandbox.tripletex import TripletexEmulator

__all__ = ["AfasEmulator", "Emulator", "FaultPlan", "FaultRule", "Sandbox", "afas_maintenance_fault"]


def build_emulators(seed: int, scale: Mapping[str, int] | None = None) -> list[Emulator]:
    """One emulator per vendor, with the row counts from ``scale`` given to whichever knows them."""
    emulators: list[Emulator] = [AfasEmulator(seed=seed)]
    emulators.append(CashEmulator(seed=seed))
    emulators.append(CloudPosEmulator(seed=seed))
    emulators.append(TripletexEmulator(seed=seed))
    emulators.append(AlascoEmulator(seed=seed))
    remaining = dict(scale or {})
    for emulator in emulators:
        for key in emulator.apply_scale(dict(remaining)):
            remaining.pop(key, None)
    if remaining:
        raise ValueError(f"no emulator has a dataset named: {', '.join(sorted(remaining))}")
    return emulators


class Sandbox:
    """All emulators behind one local HTTP server, running in a background thread.

    ``port=0`` picks a free port; ``url`` tells which. ``latency_ms`` delays every vendor request.
    ``faults`` is the live :class:`FaultPlan`; ``stats`` a snapshot of the request counters.
    """

    def __init__(
        self,
        seed: int = 42,
        port: int = 0,
        host: str = "127.0.0.1",
        scale: Mapping[str, int] | None = None,
        latency_ms: int = 0,
        faults: Iterable[FaultRule | Mapping[str, Any]] = (),
    ) -> None:
        self.seed = seed
        self.host = host
        self.port = port
        self.emulators = build_emulators(seed, scale)
        self.faults = FaultPlan(faults, seed=seed)
        self._latency_ms = latency_ms
        self._server: SandboxServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> Sandbox:
        if self._server is not None:
            return self
        server = SandboxServer((self.host, self.port), self.emulators, self.faults, self._latency_ms)
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="ledgerlink-sandbox", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    # -- addresses ---------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """``http://host:port`` of the running server."""
        if self._server is None:
            raise RuntimeError("the sandbox is not running; call start() first")
        return self._server.url

    @property
    def afas_url(self) -> str:
        """Where AFAS is mounted; the Profit REST base URL is ``afas_url + "/ProfitRestServices"``."""
        return self.url + AfasEmulator.prefix

    @property
    def afas(self) -> AfasEmulator:
        return self.emulator(AfasEmulator)

    @property
    def cash_url(self) -> str:
        """Where CASH is mounted; the WSDL is ``cash_url + "/?api/3.0/wsdl"``."""
        return self.url + CashEmulator.prefix

    @property
    def cloudpos_url(self) -> str:
        """Where CloudPOS is mounted; the API base URL is ``cloudpos_url + "/api/"``."""
        return self.url + CloudPosEmulator.prefix

    @property
    def cloudpos(self) -> CloudPosEmulator:
        return self.emulator(CloudPosEmulator)

    @property
    def cash(self) -> CashEmulator:
        """The CASH emulator; ``sandbox.cash.cashwin`` is its simulated CASHWin process."""
        return self.emulator(CashEmulator)

    @property
    def tripletex_url(self) -> str:
        """Where Tripletex is mounted; the API base URL is ``tripletex_url + "/v2"``."""
        return self.url + TripletexEmulator.prefix

    @property
    def tripletex(self) -> TripletexEmulator:
        return self.emulator(TripletexEmulator)

    @property
    def alasco_url(self) -> str:
        """Where Alasco is mounted; the FinCon base URL is ``alasco_url + "/fincon/v1"``."""
        return self.url + AlascoEmulator.prefix

    @property
    def alasco(self) -> AlascoEmulator:
        return self.emulator(AlascoEmulator)

    def emulator(self, kind: type[Any]) -> Any:
        for emulator in self.emulators:
            if isinstance(emulator, kind):
                return emulator
        raise LookupError(f"no {kind.__name__} in this sandbox")

    # -- knobs and counters ------------------------------------------------------------------------
    @property
    def latency_ms(self) -> int:
        return self._server.latency_ms if self._server is not None else self._latency_ms

    @latency_ms.setter
    def latency_ms(self, value: int) -> None:
        self._latency_ms = value
        if self._server is not None:
            self._server.latency_ms = value

    @property
    def stats(self) -> dict[str, dict[str, Any]]:
        """Per vendor: ``requests``, ``in_flight``, ``max_in_flight`` and ``by_path`` status counts."""
        if self._server is None:
            return {}
        return self._server.stats.snapshot()

    def reset_stats(self) -> None:
        if self._server is not None:
            self._server.stats.reset()

    def reset(self, state: bool = True) -> None:
        """A clean slate for the next test: no stats, no faults and (unless ``state=False``) no
        inserted records, one-time passwords or tokens issued at runtime. Generated data never changes.
        ``POST /_sandbox/reset`` does the same, but keeps state unless called with ``?state=true``."""
        self.reset_stats()
        self.faults.clear()
        if state:
            for emulator in self.emulators:
                emulator.reset_state()
