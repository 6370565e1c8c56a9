"""``WriteOnce`` across real processes sharing Airflow Variables in the metadata database.

Each process is a separate Python interpreter that elects itself through ``AirflowVariableState``
(the same Variables every worker of a deployment reads) and, if elected, appends one line to a
"vendor" file. Whatever the interleaving, the file gets exactly one line per write.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

ATTEMPT = textwrap.dedent(
    """
    import json, sys, time
    from airflow_provider_ledgerlink.core.once import WriteOnce

    key, booked, go = sys.argv[1], sys.argv[2], float(sys.argv[3])
    while time.time() < go:  # start together
        time.sleep(0.001)

    def book():
        with open(booked, "a") as handle:
            handle.write("booked\\n")
        return {"id": "B1"}

    outcome = WriteOnce(vendor="Acme", operation="POST", account="a", key=key, settle=1.0, poll=0.05).run(
        book, check_hint="check"
    )
    print(json.dumps({"sent": outcome.sent, "result": outcome.result}))
    """
)


def test_concurrent_processes_book_once(airflow_db: Path, tmp_path: Path) -> None:
    import time

    script = tmp_path / "attempt.py"
    script.write_text(ATTEMPT)
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    for trial in range(3):
        key = f"doc-{uuid.uuid4().hex}"
        booked = tmp_path / f"booked-{trial}.txt"
        go = time.time() + 6.0  # enough for four interpreters to import Airflow on a loaded machine
        processes = [
            subprocess.Popen(
                [sys.executable, str(script), key, str(booked), str(go)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
            for _ in range(4)
        ]
        outputs = [process.communicate(timeout=240) for process in processes]

        failures = [err for process, (_, err) in zip(processes, outputs, strict=True) if process.returncode]
        assert not failures, failures
        results = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
        assert booked.read_text().count("booked") == 1, (trial, results)
        assert sum(r["sent"] for r in results) == 1
        assert all(r["result"] == {"id": "B1"} for r in results)
