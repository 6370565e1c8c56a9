"""The extract operator every vendor's extract operator is built on.

A vendor subclass says *what* to read (``extract_pages``); this base decides *where* it goes and
*when* it counts as done:

* the window defaults to the DAG run's data interval (templated), so reruns and backfills of a run
  read exactly the same slice and replace exactly the same folder;
* rows stream into gzip JSON Lines parts under ``destination`` (any ``ObjectStoragePath`` URI) and
  a manifest is written last (see :mod:`~airflow_provider_ledgerlink.core.sinks`);
* long runs log progress (rows, pages, rate) every ``progress_interval`` seconds;
* the return value (XCom) is a small summary: counts and paths, never data;
* an Asset outlet is declared, and its event carries the summary.
"""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_provider_ledgerlink.core.compat import Asset, BaseOperator, ObjectStoragePath
from airflow_provider_ledgerlink.core.errors import ConfigurationError
from airflow_provider_ledgerlink.core.hook import xcom_result
from airflow_provider_ledgerlink.core.sinks import JsonLinesSink

if TYPE_CHECKING:
    from airflow.sdk import Context

# A manual run of an unscheduled DAG has no data interval: Airflow 3 leaves the names out of the
# context, and rendering them as such fails. Rendered empty, the extract reads everything.
DEFAULT_WINDOW_START = "{{ data_interval_start if data_interval_start is defined else '' }}"
DEFAULT_WINDOW_END = "{{ data_interval_end if data_interval_end is defined else '' }}"


class Window:
    """A half-open time window ``[start, end)`` in UTC."""

    def __init__(self, start: datetime, end: datetime) -> None:
        self.start = start
        self.end = end

    @property
    def folder_name(self) -> str:
        return f"{self.start:%Y%m%dT%H%M%SZ}_{self.end:%Y%m%dT%H%M%SZ}"

    def as_dict(self) -> dict[str, str]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat()}

    def __repr__(self) -> str:
        return f"[{self.start.isoformat()}, {self.end.isoformat()})"


def parse_instant(value: Any, *, name: str, vendor: str) -> datetime | None:
    """A rendered template value as an aware UTC datetime; empty or ``None`` gives ``None``."""
    if value is None or (isinstance(value, str) and value.strip() in ("", "None")):
        return None
    if isinstance(value, datetime):
        moment = value
    else:
        import pendulum

        try:
            moment = pendulum.parse(str(value).strip())  # type: ignore[assignment]
        except Exception:
            raise ConfigurationError(
                vendor, "resolving the extract window", f"{name}={value!r} is not a date or datetime"
            ) from None
        if not isinstance(moment, datetime):
            raise ConfigurationError(
                vendor, "resolving the extract window", f"{name}={value!r} is not a date or datetime"
            )
    if not 1900 <= moment.year <= 2999:
        raise ConfigurationError(
            vendor,
            "resolving the extract window",
            f"{name}={value!r} is in the year {moment.year}",
            hint=f"Give {name} a date between 1900 and 2999 (it is usually the run's data interval)",
        )
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return datetime.fromtimestamp(moment.timestamp(), tz=timezone.utc)


@contextlib.contextmanager
def _long_lived_objects_frozen() -> Iterator[None]:
    """Keep the objects that exist before the extract out of the garbage collector's full passes.

    A task process holds Airflow's hundreds of thousands of long-lived objects. The pages of an
    extract are allocated so fast that the collector soon runs a full pass over all of them (about
    80 ms, during which no thread of the process runs); the rows themselves never form cycles.
    :func:`gc.freeze` moves the existing objects aside for the duration of the extract, and they
    rejoin the collector afterwards. When something else already froze objects it is left alone.
    """
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


class _Progress:
    def __init__(self, log: Any, label: str, interval: float) -> None:
        self.log = log
        self.label = label
        self.interval = interval
        self.rows = 0
        self.pages = 0
        self.started = time.monotonic()
        self._last = self.started

    def add(self, rows: int) -> None:
        self.rows += rows
        self.pages += 1
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            self.log.info("%s: %s", self.label, self.describe())

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.started

    def describe(self) -> str:
        rate = self.rows / self.seconds if self.seconds > 0 else 0.0
        return f"{self.rows:,} rows in {self.pages:,} pages, {self.seconds:.1f} s ({rate:,.0f} rows/s)"


class LedgerLinkExtractOperator(BaseOperator):
    """Base of the vendor extract operators; not used directly.

    A subclass keeps its hook in a ``hook`` attribute (a cached property); the base closes it when
    the run ends, whatever the outcome, so ``extract_pages`` needs no ``finally`` of its own.

    :param destination: folder URI for the output (templated): a local path, ``file://…``,
        ``s3://…``, ``gs://…`` — anything Airflow's object storage supports. The window's folder
        (``20261120T000000Z_20261121T000000Z``) is created below it, or ``full`` for a full load.
    :param window_start: start of the incremental window (templated; default: the data interval).
    :param window_end: end of the window, exclusive (templated; default: the data interval).
    :param incremental: read only the window (``True``) or everything (``False``).
    :param part_max_bytes: uncompressed bytes per output part before a new part is started.
    :param compresslevel: gzip level of the parts (1 fastest, the default … 9 smallest).
    :param progress_interval: seconds between progress lines in the task log.
    """

    #: Set by subclasses.
    vendor: ClassVar[str] = ""
    #: The vendor's key in the default Asset URI (``x-ledgerlink://<asset_vendor>/…``) and name. Set
    #: explicitly by every LedgerLink extract operator, so that moving a module changes no asset.
    asset_vendor: ClassVar[str] = ""
    template_fields: Sequence[str] = ("destination", "window_start", "window_end")
    ui_color = "#dff3e4"

    def __init__(
        self,
        *,
        destination: str,
        window_start: Any = DEFAULT_WINDOW_START,
        window_end: Any = DEFAULT_WINDOW_END,
        incremental: bool = True,
        part_max_bytes: int = 128 * 1024 * 1024,
        compresslevel: int = 1,
        progress_interval: float = 30.0,
        object_name: str,
        conn_id: str,
        **kwargs: Any,
    ) -> None:
        if "outlets" not in kwargs:
            kwargs["outlets"] = [self.default_asset(destination, conn_id, object_name)]
        super().__init__(**kwargs)
        self.destination = destination
        self.window_start = window_start
        self.window_end = window_end
        # The data interval of a run of an unscheduled DAG is empty (start == end, or absent).
        self._window_from_run = window_start == DEFAULT_WINDOW_START and window_end == DEFAULT_WINDOW_END
        self.incremental = incremental
        self.part_max_bytes = part_max_bytes
        self.compresslevel = compresslevel
        self.progress_interval = progress_interval

    @classmethod
    def default_asset(cls, destination: str, conn_id: str, object_name: str) -> Asset:
        """The destination itself when it is a fixed URI, else a LedgerLink name for the object."""
        # A subclass written elsewhere that sets no key keeps the name of its module, as before.
        vendor_key = cls.asset_vendor or cls.__module__.rsplit(".", 1)[-1]
        destination = str(destination or "").strip()  # an unusable one is refused when the task runs
        if "{{" not in destination and "://" in destination:
            return Asset(uri=destination.rstrip("/"))
        if "{{" not in destination and destination.startswith("/"):
            return Asset(uri=f"file://{destination.rstrip('/')}")
        return Asset(
            name=f"ledgerlink.{vendor_key}.{conn_id}.{object_name}",
            uri=f"x-ledgerlink://{vendor_key}/{conn_id}/{object_name}",
        )

    # -- what subclasses provide ------------------------------------------------------------------
    def object_label(self) -> str:
        """The vendor object being read, for the manifest and logs (``Profit_Transactions``)."""
        raise NotImplementedError

    def extract_pages(self, window: Window | None) -> Iterator[list[dict[str, Any]]]:
        """Pages of rows for ``window`` (``None``: everything), in a stable order."""
        raise NotImplementedError

    def source_details(self) -> dict[str, Any]:
        """Non-secret facts about the source for the manifest (environment, filters …)."""
        return {}

    # -- the run ----------------------------------------------------------------------------------
    def resolve_window(self) -> Window | None:
        if not self.incremental:
            return None
        start = parse_instant(self.window_start, name="window_start", vendor=self.vendor)
        end = parse_instant(self.window_end, name="window_end", vendor=self.vendor)
        if start is None and end is None:
            self.log.info("No window (the run has no data interval): reading everything")
            return None
        if start is None or end is None:
            raise ConfigurationError(
                self.vendor,
                f"extract {self.object_label()}",
                "only one end of the window is set",
                hint="Give both window_start and window_end, or set incremental=False for a full load",
            )
        if end == start and self._window_from_run:
            self.log.info(
                "The run's data interval is empty (a manual run of an unscheduled DAG): reading everything"
            )
            return None
        if end <= start:
            raise ConfigurationError(
                self.vendor,
                f"extract {self.object_label()}",
                f"the window is empty: end {end.isoformat()} is not after start {start.isoformat()}",
                hint="Check window_start/window_end, or the DAG's schedule (a run needs a data interval)",
            )
        return Window(start, end)

    def output_folder(self, window: Window | None) -> Any:
        root = self.destination_root()
        return root / (window.folder_name if window else "full")

    def destination_root(self) -> Any:
        """``destination`` as an ``ObjectStoragePath``, refused when it cannot hold an extract."""
        text = str(self.destination or "").strip()

        def refuse(problem: str, fix: str) -> ConfigurationError:
            return ConfigurationError(self.vendor, f"extract {self.object_label()}", problem, hint=fix)

        fix = "Give destination an absolute folder URI: /data/lake, file:///data/lake, s3://bucket/lake …"
        if not text or text in ("/", "file://", "file:///"):
            raise refuse(f"destination={self.destination!r} names no folder", fix)
        if "://" not in text and not text.startswith("/"):
            raise refuse(
                f"destination={text!r} is relative: it would land in the worker's current directory", fix
            )
        root = ObjectStoragePath(text.rstrip("/"))
        local = text.startswith("/") or text.startswith("file://")
        if local:
            import os
            from pathlib import Path

            path = Path(text.removeprefix("file://"))
            existing = next((p for p in (path, *path.parents) if p.exists()), None)
            if path.exists() and not path.is_dir():
                raise refuse(f"destination {text!r} is a file, not a folder", fix)
            if existing is not None and existing != path and not existing.is_dir():
                raise refuse(f"destination {text!r} lies below the file {existing}", fix)
            if existing is not None and not os.access(existing, os.W_OK | os.X_OK):
                raise refuse(
                    f"destination {text!r} is not writable ({existing} does not allow this user to write)",
                    "Give the worker's user write access to the folder, or choose another destination",
                )
        return root

    def close_hook(self) -> None:
        """Close the operator's hook (its ``hook`` attribute), if the run created one."""
        hook = self.__dict__.get("hook")
        if hook is not None:
            hook.close()

    def execute(self, context: Context) -> dict[str, Any]:
        try:
            return self.extract(context)
        finally:
            self.close_hook()

    def extract(self, context: Context) -> dict[str, Any]:
        """The read and the landing, without the closing of the hook (:meth:`execute` does that)."""
        window = self.resolve_window()
        folder = self.output_folder(window)
        label = f"{self.vendor} {self.object_label()}"
        self.log.info("Extracting %s for window %s into %s", label, window or "(all)", folder)
        progress = _Progress(self.log, label, self.progress_interval)
        with (
            _long_lived_objects_frozen(),
            JsonLinesSink(
                folder,
                part_max_bytes=self.part_max_bytes,
                compresslevel=self.compresslevel,
                vendor=self.vendor,
            ) as sink,
        ):
            for page in self.extract_pages(window):
                sink.write_rows(page)
                progress.add(len(page))
            manifest = sink.commit(
                vendor=self.vendor,
                object=self.object_label(),
                window=window.as_dict() if window else None,
                source=self.source_details(),
                pages=progress.pages,
                seconds=round(progress.seconds, 3),
            )
        summary = {
            "vendor": self.vendor,
            "object": self.object_label(),
            "rows": manifest["rows"],
            "pages": progress.pages,
            "parts": [str(folder / p["path"]) for p in manifest["parts"]],
            "folder": str(folder),
            "manifest": str(sink.manifest_path),
            "window": manifest["window"],
            "seconds": manifest["seconds"],
        }
        self.log.info("Extracted %s: %s; manifest %s", label, progress.describe(), summary["manifest"])
        summary = xcom_result(summary)
        self._annotate_outlets(context, summary)
        return summary

    def _annotate_outlets(self, context: Context, summary: dict[str, Any]) -> None:
        events = context.get("outlet_events")
        if events is None:
            return
        extra = {k: summary[k] for k in ("vendor", "object", "rows", "folder", "window")}
        for outlet in self.outlets or []:
            if isinstance(outlet, Asset):
                try:
                    events[outlet].extra = extra
                except Exception:  # outlet events are informative; never fail the extract for them
                    self.log.debug("Could not annotate outlet %s", outlet, exc_info=True)
