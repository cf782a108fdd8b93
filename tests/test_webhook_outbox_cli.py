"""`runstep-watcher outbox purge` as a process, on a state file on disk."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.cli import run_cli
from tests.fakes import FakeClock
from tests.test_webhook_outbox_store import OTHER, record
from watcher.delivery.webhook import SINK
from watcher.state.store import Store

SECRET = "whsec_bmV3LXNlY3JldC1uZXctc2VjcmV0LTEyMzQ1Njc4OTA="


def test_purge_drops_dead_letters_before_a_time_then_all(tmp_path):
    clock = FakeClock(wall=1_780_000_000.0)  # 2026-05-28T20:26:40Z
    store = Store(tmp_path / "s.db")
    old = record(store, clock, "run_1", 1)
    clock.t += 3600
    new = record(store, clock, "run_2", 1)
    live = record(store, clock, "run_3", 1)
    store.mark_delivered(OTHER, [old, new, live])
    for seq in (old, new):
        store.mark_dead(SINK, seq, error="HTTP 400: the endpoint refused the event")
    store.close()
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        f'[state]\npath = "{tmp_path / "s.db"}"\n'
        f'[webhook]\nurl = "http://127.0.0.1:9/hook"\nsecret = "{SECRET}"\n'
    )
    between = datetime.fromtimestamp(1_780_001_800, UTC).isoformat()

    bad = run_cli("outbox", "purge", "--before", "yesterday", "--config", str(cfg))
    assert bad.returncode == 2 and "--before: 'yesterday'" in bad.stderr  # a usage error

    first = run_cli("outbox", "purge", "--before", between, "--config", str(cfg))
    assert first.returncode == 0, first.stderr
    assert "1 dead letter(s) purged" in first.stderr
    listed = run_cli("outbox", "list", "--config", str(cfg))
    assert "1 pending, 1 dead" in listed.stderr

    rest = run_cli("outbox", "purge", "--config", str(cfg))
    assert rest.returncode == 0 and "1 dead letter(s) purged" in rest.stderr
    store = Store(tmp_path / "s.db")
    assert [(it.seq, it.state) for it in store.outbox(SINK)] == [(live, "pending")]
    store.close()


def test_the_outbox_of_a_state_file_not_there_is_empty_and_none_is_made(tmp_path):
    """Asked, not created (as `status`): a wrong path must not leave a fresh state file."""
    state = tmp_path / "nowhere" / "s.db"
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[state]\npath = "{state}"\n')
    listed = run_cli("outbox", "list", "--config", str(cfg))
    assert listed.returncode == 0, listed.stderr
    assert "no state file" in listed.stderr and str(state) in listed.stderr
    as_json = run_cli("outbox", "list", "--json", "--config", str(cfg))
    assert (as_json.returncode, as_json.stdout) == (0, "")
    replay = run_cli("outbox", "replay", "evt_1", "--config", str(cfg))
    assert replay.returncode == 4 and "evt_1" in replay.stderr
    assert run_cli("outbox", "purge", "--config", str(cfg)).returncode == 0
    assert not state.exists() and not state.parent.exists()
