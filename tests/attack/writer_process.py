"""A separate process writing one extract folder, steered through files (no timing involved).

``python writer_process.py FOLDER FIRST_ID ROWS CONTROL_DIR NAME``: writes ``ROWS`` rows (ids from
``FIRST_ID``) into ``FOLDER`` in small parts, creates ``CONTROL_DIR/NAME.written``, waits for
``CONTROL_DIR/NAME.go`` when ``CONTROL_DIR/NAME.hold`` exists, then commits. Exit code 0: committed;
3: lost to a newer attempt (``ConcurrentWriteError``); anything else: a bug.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path


def main() -> int:
    folder_uri, first, count, control, name = sys.argv[1:6]
    from airflow_provider_ledgerlink.core.compat import ObjectStoragePath
    from airflow_provider_ledgerlink.core.errors import ConcurrentWriteError
    from airflow_provider_ledgerlink.core.sinks import JsonLinesSink

    control_dir = Path(control)
    folder = ObjectStoragePath(folder_uri)
    with JsonLinesSink(folder, part_max_bytes=2_000, vendor="Attack") as sink:
        start = int(first)
        for offset in range(0, int(count), 50):
            sink.write_rows(
                [
                    {"id": i, "writer": name}
                    for i in range(start + offset, start + min(offset + 50, int(count)))
                ]
            )
        (control_dir / f"{name}.written").touch()
        if (control_dir / f"{name}.hold").exists():
            while not (control_dir / f"{name}.go").exists():
                time.sleep(0.01)
        try:
            sink.commit(vendor="Attack", object="rows")
        except ConcurrentWriteError as exc:
            print(exc, file=sys.stderr)
            return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
