"""CreateWorkItemOperator and WorkItemBatchOperator against the emulator."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from airflow_provider_robocorp.exceptions import RobocorpApiError, RobocorpConfigError, RobocorpError
from airflow_provider_robocorp.hooks.robocorp import RobocorpHook
from airflow_provider_robocorp.operators import CreateWorkItemOperator, WorkItemBatchOperator
from tests.operators.helpers import context, posts

pytestmark = pytest.mark.usefixtures("robocorp_conn_env")


@pytest.fixture
def invoice(tmp_path: Path) -> Path:
    path = tmp_path / "invoice-001.csv"
    path.write_text("line,amount\n1,100.00\n2,23.50\n")
    return path


def create(**kwargs: object) -> CreateWorkItemOperator:
    kwargs.setdefault("process_id", "proc-invoices")
    return CreateWorkItemOperator(task_id="create", **kwargs)  # type: ignore[arg-type]


def test_creates_item_with_payload_and_files(robocorp_emulator, invoice, tmp_path):
    scan = tmp_path / "scan.bin"
    scan.write_bytes(bytes(range(256)) * 1000)

    item_id = create(payload={"invoice": "INV-1"}, files=[str(invoice), scan]).execute(context())

    item = RobocorpHook().get_work_item(item_id, include_data=True)
    assert item["payload"] == {"invoice": "INV-1"} and item["state"] == "new"
    files = {f["name"]: f for f in item["files"]}
    assert set(files) == {"invoice-001.csv", "scan.bin"}
    assert RobocorpHook().download_presigned(files["scan.bin"]["download"]["url"]) == scan.read_bytes()


def test_files_can_be_renamed_with_a_mapping(robocorp_emulator, invoice):
    item_id = create(files={"march.csv": str(invoice)}).execute(context())
    (stored,) = RobocorpHook().get_work_item(item_id, include_data=True)["files"]
    assert stored["name"] == "march.csv" and stored["size"] == invoice.stat().st_size


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"payload": {"amount": math.nan}}, "not JSON-serialisable"),
        ({"payload": {"when": {1, 2}}}, "not JSON-serialisable"),
        ({"files": ["/nonexistent/invoice.pdf"]}, "does not exist"),
        ({"files": "{{ missing }}"}, "does not exist"),
        ({"files": {"": "x"}}, "must be a non-empty file name"),
        ({"files": {"../invoice.csv": __file__}}, r"contains '/'; give a plain file name"),
        ({"files": {"a\\b.csv": __file__}}, r"contains '\\\\'"),
        ({"files": {"..": __file__}}, "is a path part"),
        ({"files": {"line\nbreak.csv": __file__}}, r"contains '\\n'"),
        ({"files": {" padded.csv": __file__}}, "white space"),
        ({"process_id": ""}, "process_id must be a non-empty string"),
    ],
)
def test_bad_input_creates_nothing(robocorp_emulator, kwargs, error):
    with pytest.raises(RobocorpConfigError, match=error):
        create(**{"payload": {"ok": True}, **kwargs}).execute(context())
    assert robocorp_emulator.state()["work_items"] == []
    assert robocorp_emulator.requests_log() == []


def test_bad_file_after_a_good_one_creates_nothing(robocorp_emulator, invoice, tmp_path):
    with pytest.raises(RobocorpConfigError, match="used twice"):
        create(files=[invoice, tmp_path / "x" / ".." / invoice.name]).execute(context())
    with pytest.raises(RobocorpConfigError, match="is not a regular file"):
        create(files=[invoice, tmp_path]).execute(context())
    assert robocorp_emulator.state()["work_items"] == []


def test_failed_upload_names_the_created_item(robocorp_emulator, invoice):
    robocorp_emulator.add_fault(kind="status", status=403, method="POST", path="^/_files/uploads", times=1)

    with pytest.raises(RobocorpError, match="attaching 'invoice-001.csv' failed") as failure:
        create(files=[invoice]).execute(context())

    (item,) = robocorp_emulator.state()["work_items"]
    assert f"Work item {item['id']} was created in process proc-invoices" in str(failure.value)
    assert isinstance(failure.value.__cause__, RobocorpApiError) and failure.value.__cause__.status == 403


def run_with(payloads: list[dict[str, object]]) -> str:
    hook = RobocorpHook()
    run_id = hook.start_process_run("proc-invoices", payloads=payloads)["id"]
    hook.wait_for_process_run(run_id, poll_interval=0.1, timeout=10, accepted_states=("completed", "unresolved"))
    return run_id


def batch(**kwargs: object) -> WorkItemBatchOperator:
    return WorkItemBatchOperator(task_id="batch", **kwargs)  # type: ignore[arg-type]


def test_mark_all_failed_items_of_a_run_as_done(robocorp_emulator):
    run_id = run_with([{"n": 1}, {"n": 2, "fail": True}, {"n": 3, "fail": True}])

    done = batch(operation="mark_as_done", process_run_id=run_id).execute(context())

    states = {i["id"]: i["state"] for i in robocorp_emulator.state()["work_items"]}
    assert len(done) == 2 and all(states[i] == "done" for i in done)
    assert RobocorpHook().get_process_run(run_id)["state"] == "completed"


def test_retry_explicit_ids(robocorp_emulator):
    run_id = run_with([{"n": 1, "fail": True}])
    (failed,) = [i["id"] for i in RobocorpHook().list_work_items(process_run_id=run_id, state="failed")]

    assert batch(operation="retry", work_item_ids=[failed]).execute(context()) == [failed]
    assert RobocorpHook().get_process_run(run_id)["state"] in ("in_progress", "unresolved")
    assert len(posts(robocorp_emulator, "/work-items/batch")) == 1


def test_empty_selection_does_nothing(robocorp_emulator):
    run_id = run_with([{"n": 1}])
    assert batch(operation="retry", process_run_id=run_id).execute(context()) == []
    assert posts(robocorp_emulator, "/work-items/batch") == []


def test_batch_argument_validation(robocorp_emulator):
    with pytest.raises(RobocorpConfigError, match="operation"):
        batch(operation="requeue", work_item_ids=["a"])
    with pytest.raises(RobocorpConfigError, match="Pass either"):
        batch(operation="retry", work_item_ids=["a"], process_run_id="r")
    with pytest.raises(RobocorpConfigError, match="Pass either"):
        batch(operation="retry")
    with pytest.raises(RobocorpConfigError, match="state"):
        batch(operation="retry", process_id="p", state="broken")
    op = batch(operation="delete", process_run_id="{{ ti.xcom_pull('nothing') }}")
    op.process_run_id = ""  # the template rendered empty
    with pytest.raises(RobocorpConfigError, match="refusing to act on every failed work item"):
        op.execute(context())
    assert robocorp_emulator.requests_log() == []
