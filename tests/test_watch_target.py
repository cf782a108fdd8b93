"""`watch ID…`: which `[[watch]]` entry the ids on the command line name, and the one-line
usage errors (exit 2) when they name none. Pure: a table of cases."""

from __future__ import annotations

import pytest

from watcher.sources.keys import describe
from watcher.watching.watch_target import TargetError, watch_entry

ENTRIES = [
    ((["thread_1", "run_1"], None, None), {"thread_id": "thread_1", "run_id": "run_1"}),
    ((["resp_1"], None, None), {"response_id": "resp_1"}),
    ((["batch_1"], None, None), {"batch_id": "batch_1"}),
    ((["ftjob-1"], None, None), {"fine_tuning_job_id": "ftjob-1"}),
    ((["x_1"], "batch", None), {"batch_id": "x_1"}),
    ((["vs_1", "vsfb_1"], None, None), {"vector_store_id": "vs_1", "file_batch_id": "vsfb_1"}),
    ((["vs_1", "fb_1"], "file_batch", None), {"vector_store_id": "vs_1", "file_batch_id": "fb_1"}),
    ((["vsfb_1"], None, "vs_1"), {"vector_store_id": "vs_1", "file_batch_id": "vsfb_1"}),
    ((["fb_1"], "file_batch", "vs_1"), {"vector_store_id": "vs_1", "file_batch_id": "fb_1"}),
    ((["thread_1", "resp_1"], None, None), {"thread_id": "thread_1", "run_id": "resp_1"}),
]

GIVE = "watch: give THREAD_ID RUN_ID, one ID (resp_…, batch_…, ftjob-…), or VS_ID VSFB_ID"
ERRORS = [
    (([], None, None), GIVE),
    ((["a", "b", "c"], None, None), GIVE),
    ((["thread_1", "run_1"], "batch", None), "--kind batch: takes one ID, not two"),
    (
        (["mystery"], None, None),
        "watch: cannot tell what 'mystery' is from its prefix; give --kind "
        "response|batch|fine_tuning_job|file_batch (or THREAD_ID RUN_ID for a run)",
    ),
    ((["vsfb_1"], None, None), "watch vsfb_1: a file batch needs --vector-store VS_ID"),
    ((["resp_1"], None, "vs_1"), "--vector-store: only for a file batch"),
]  # fmt: skip


@pytest.mark.parametrize(("args", "entry"), ENTRIES)
def test_the_ids_name_one_watch(args, entry):
    ids, kind, parent = args
    assert watch_entry(ids, kind=kind, parent=parent) == entry


@pytest.mark.parametrize(("args", "message"), ERRORS)
def test_ids_that_name_no_watch_say_why_in_one_line(args, message):
    ids, kind, parent = args
    with pytest.raises(TargetError) as err:
        watch_entry(ids, kind=kind, parent=parent)
    assert str(err.value) == message


DESCRIBED = [
    (("thread_1", "run_1"), "run run_1 of thread thread_1"),
    (("thread_1", None), "thread thread_1"),
    (("response:", "resp_1"), "response resp_1"),
    (("file_batch:vs_1", "vsfb_1"), "file_batch vsfb_1 of vector store vs_1"),
    (("batch:", None), 'discovery of "batches"'),  # as the config's `discover` spells it
    (("fine_tuning_job:", None), 'discovery of "fine_tuning.jobs"'),
]


@pytest.mark.parametrize(("key", "text"), DESCRIBED)
def test_a_watch_is_named_as_log_lines_and_status_name_it(key, text):
    assert describe(*key) == text
