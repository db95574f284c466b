"""`ccpulse history import`: native events and interval CSV into real SQL rows (SQLite, migrated
by Alembic), equal to a recount, idempotent, all or nothing, with bad lines named."""

from __future__ import annotations

import asyncio
import csv
import gzip
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from aggregator import importer
from aggregator.rebuild import Totals
from services import database, intervals, keys, kpis
from services.settings import DEFAULT_SL_THRESHOLDS_SECONDS, Settings
from simulator.scenario import Day, generate
from tests import oracle
from tests.clock import clock
from tests.harness import ROOT

DAY_S = 86400


def settings_for(tmp_path: Path) -> Settings:
    settings = Settings(auth="off", data_dir=tmp_path, database_url=f"sqlite:///{tmp_path}/h.db")
    database.upgrade(settings)
    return settings


def rows(settings: Settings) -> list[dict[str, Any]]:
    async def read() -> list[dict[str, Any]]:
        db = database.make_engine(settings)
        try:
            async with db.connect() as conn:
                table = intervals.interval_counters
                found = await conn.execute(select(table).order_by(table.c.start_s, table.c.scope))
                return [dict(r) for r in found.mappings()]
        finally:
            await db.dispose()

    return asyncio.run(read())


def figures(found: list[dict[str, Any]], scope: str, channel: str) -> dict[str, Any]:
    sums: dict[str, int] = {}
    for row in found:
        if row["scope"] == scope:
            kpis.add_counters(sums, intervals.counters_of(row))
    threshold = DEFAULT_SL_THRESHOLDS_SECONDS[channel]
    return kpis.figures(sums, kpis.ReadOptions(sl_threshold_s=threshold))


def past_day() -> float:
    """Midnight UTC ten days ago: inside the retention, far outside the live window."""
    return (clock.now() // DAY_S - 10) * DAY_S


def write_events(path: Path, events: list[dict[str, Any]]) -> None:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt", encoding="utf-8") as out:
        for e in events:
            out.write(json.dumps(e) + "\n")


def test_native_events_import_equals_the_recount_and_twice_changes_nothing(
    tmp_path: Path,
) -> None:
    settings = settings_for(tmp_path)
    start = past_day()
    events = generate(Day(seed=11), start + 8 * 3600, 300, 0.05)
    path = tmp_path / "events.jsonl.gz"  # a rotated, gzipped export
    write_events(path, events)
    first = asyncio.run(importer.main(settings, [path], []))
    assert first.events == len(events) and first.written == first.rows > 0
    stored = rows(settings)
    want = oracle.recount(events, int(start), int(start) + 3 * DAY_S, DEFAULT_SL_THRESHOLDS_SECONDS)
    for channel, expected in want["channels"].items():
        got = figures(stored, keys.channel_scope(channel), channel)
        for name in (
            "offered",
            "queued",
            "answered",
            "abandoned",
            "abandoned_queue",
            "handled",
            "timed_out",
            "resolved",
        ):
            assert got[name] == expected[name], (channel, name)
        for name in ("asa_seconds", "aht_seconds", "service_level", "abandon_rate"):
            assert got[name] == pytest.approx(expected[name]), (channel, name)
    again = asyncio.run(importer.main(settings, [path], []))
    assert (again.written, again.unchanged) == (0, first.rows)
    assert rows(settings) == stored  # not even updated_s moved


CSV_HEADER = [
    "start",
    "channel",
    "queue",
    "offered",
    "answered",
    "abandoned",
    "answered_within_sl",
    "handle_seconds",
    "answer_wait_seconds",
    "abandoned_short",
]


def write_csv(path: Path, lines: list[list[object]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(CSV_HEADER)
        writer.writerows(lines)


def iso(epoch: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, UTC).isoformat()


def test_interval_csv_gives_the_figures_it_states(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    t = past_day() + 9 * 3600
    path = tmp_path / "acd.csv"
    write_csv(
        path,
        [
            [iso(t), "voice", "sales", 100, 80, 20, 60, 24000, 1600, 5],
            [iso(t), "voice", "support", 50, 45, 5, 45, 9000, 450, 0],
            [iso(t + 900), "voice", "sales", 10, 10, 0, 10, 3000, 100, 0],
        ],
    )
    asyncio.run(importer.main(settings, [], [path]))
    stored = rows(settings)
    voice = figures(stored, keys.channel_scope("voice"), "voice")
    assert (voice["offered"], voice["answered"], voice["abandoned"]) == (160, 135, 25)
    assert voice["asa_seconds"] == pytest.approx(2150 / 135)
    assert voice["aht_seconds"] == pytest.approx(36000 / 135)
    # service level at the 20 s threshold: 115 met / (135 answered + 25 abandons - 5 short)
    assert voice["service_level"] == pytest.approx(115 / 155)
    sales = figures(stored, keys.queue_scope("voice", "sales"), "voice")
    assert (sales["offered"], sales["answered"], sales["short_abandoned"]) == (110, 90, 5)
    assert {r["start_s"] for r in stored} == {int(t), int(t) + 900}


def test_bad_lines_are_named_and_nothing_is_imported(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    t = past_day() + 9 * 3600
    table = tmp_path / "acd.csv"
    write_csv(
        table,
        [
            [iso(t), "voice", "sales", 100, 80, 20, 60, 24000, 1600, 5],
            [iso(t + 60), "voice", "sales", 1, 1, 0, 1, 1, 1, 0],  # not on a 15-minute boundary
            [iso(t), "fax", "sales", 1, 1, 0, 1, 1, 1, 0],
            [iso(t + 900), "voice", "sales", 10, 5, 0, 9, 1, 1, 0],  # more within SL than answered
        ],
    )
    events = tmp_path / "events.jsonl"
    good = {
        "id": "e1",
        "type": "contact.offered",
        "time": iso(t),
        "contact": "c1",
        "channel": "voice",
    }
    too_old = {
        **good,
        "id": "e2",
        "type": "contact.answered",
        "time": iso(clock.now() - 500 * DAY_S),
    }
    events.write_text(f"{json.dumps(good)}\n{{not json\n{json.dumps(too_old)}\n")
    with pytest.raises(importer.ImportRefused) as refused:
        asyncio.run(importer.main(settings, [events], [table]))
    where = [p.split(": ", 1)[0] for p in refused.value.problems]
    assert where == [f"{events}:2", f"{events}:3", f"{table}:3", f"{table}:4", f"{table}:5"]
    assert "retention" in refused.value.problems[1]
    assert rows(settings) == []


def test_other_figures_in_history_refuse_the_import_unless_replaced(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    t = past_day() + 9 * 3600
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    write_csv(first, [[iso(t), "voice", "", 10, 8, 2, 8, 800, 80, 0]])
    write_csv(second, [[iso(t), "voice", "", 12, 8, 4, 8, 800, 80, 0]])
    asyncio.run(importer.main(settings, [], [first]))
    with pytest.raises(importer.ImportRefused) as refused:
        asyncio.run(importer.main(settings, [], [second]))
    assert "--replace" in refused.value.problems[0]
    assert figures(rows(settings), "ch|voice", "voice")["offered"] == 10
    asyncio.run(importer.main(settings, [], [second], replace=True))
    assert figures(rows(settings), "ch|voice", "voice")["offered"] == 12


def test_the_cli_imports_by_extension_and_reports_bad_lines(tmp_path: Path) -> None:
    settings_for(tmp_path)
    t = past_day() + 9 * 3600
    path = tmp_path / "acd.csv"
    write_csv(path, [[iso(t), "voice", "", 10, 8, 2, 8, 800, 80, 0]])
    env = {
        "PATH": "/usr/bin:/bin",
        "CCPULSE_DATA_DIR": str(tmp_path),
        "CCPULSE_AUTH": "off",
        "CCPULSE_DATABASE_URL": f"sqlite:///{tmp_path}/h.db",
        "CCPULSE_CLOCK_OFFSET_SECONDS": str(clock.offset_s),
    }
    cmd = [sys.executable, "-m", "ccpulse", "history", "import", str(path)]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "imported 1 interval rows (1 written" in done.stdout
    bad = tmp_path / "bad.csv"
    write_csv(bad, [[iso(t), "voice", "", "ten", 8, 2, 8, 800, 80, 0]])
    done = subprocess.run(
        [*cmd[:-1], str(bad)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1 and f"{bad}:2: offered: not a number" in done.stderr


def run_cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "CCPULSE_DATA_DIR": str(tmp_path),
        "CCPULSE_AUTH": "off",
        "CCPULSE_DATABASE_URL": f"sqlite:///{tmp_path}/h.db",
        "CCPULSE_CLOCK_OFFSET_SECONDS": str(clock.offset_s),
    }
    cmd = [sys.executable, "-m", "ccpulse", "history", "import", *args]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def ctr(n: int, t0: float, outcome: str, updated: float) -> dict[str, Any]:
    """A contact record as Connect writes it (PascalCase), answered or abandoned."""
    record: dict[str, Any] = {
        "ContactId": f"{n:08d}-0000-0000-0000-000000000000",
        "Channel": "VOICE",
        "InitiationMethod": "INBOUND",
        "InitiationTimestamp": iso(t0),
        "ConnectedToSystemTimestamp": iso(t0 + 1),
        "DisconnectTimestamp": iso(t0 + 400),
        "DisconnectReason": "CUSTOMER_DISCONNECT",
        "LastUpdateTimestamp": iso(updated),
        "CustomerEndpoint": {"Address": f"+1415555{n % 10000:04d}", "Type": "TELEPHONE_NUMBER"},
    }
    if outcome != "ivr":
        record["Queue"] = {"Name": "support", "EnqueueTimestamp": iso(t0 + 10)}
    if outcome == "answered":
        record["Agent"] = {
            "Username": "jdoe",
            "ConnectedToAgentTimestamp": iso(t0 + 25),
            "AfterContactWorkEndTimestamp": iso(t0 + 430),
        }
    return record


def test_a_90_day_connect_ctr_export_equals_its_count_and_twice_changes_nothing(
    tmp_path: Path,
) -> None:
    """300 contacts over 90 days, as Firehose writes to S3 (documents back to back, gzipped),
    with 30 records re-sent after an update: 100 answered (waited 15 s, handled 435 s), 100
    queue abandons, 100 IVR abandons."""
    settings_for(tmp_path)
    first_day = past_day() - 90 * DAY_S
    outcomes = ("answered", "queue", "ivr")
    records = [ctr(n, first_day + n * 0.3 * DAY_S + 3600, outcomes[n % 3], 0) for n in range(300)]
    for r in records:
        r["LastUpdateTimestamp"] = r["DisconnectTimestamp"]
    resent = [dict(r, LastUpdateTimestamp=iso(clock.now() - DAY_S)) for r in records[:30]]
    path = tmp_path / "connect-ctr-2026.gz"
    with gzip.open(path, "wt", encoding="utf-8") as out:
        out.write("".join(json.dumps(r) for r in [*records, *resent]))
    done = run_cli(tmp_path, "--format", "connect-ctr", str(path))
    assert done.returncode == 0, done.stderr
    voice = figures(rows(settings_for(tmp_path)), "ch|voice", "voice")
    assert (voice["offered"], voice["queued"], voice["answered"]) == (300, 200, 100)
    assert (voice["abandoned_queue"], voice["abandoned_ivr"], voice["handled"]) == (100, 100, 100)
    assert voice["asa_seconds"] == 15.0 and voice["aht_seconds"] == 405.0
    stored = rows(settings_for(tmp_path))
    again = run_cli(tmp_path, "--format", "connect-ctr", str(path))
    assert again.returncode == 0 and "(0 written" in again.stdout, again.stdout
    assert rows(settings_for(tmp_path)) == stored


def test_rotated_gzipped_queue_logs_import_whole_calls(tmp_path: Path) -> None:
    """Calls split across a rotation: the older file is gzipped. 3 answered after 20 s and talked
    180 s, 2 abandoned after 45 s, 1 timed out; agent lines along the way."""
    settings_for(tmp_path)
    base = int(past_day() + 10 * 3600)
    lines: list[str] = [f"{base - 60}|NONE|support|SIP/8008|ADDMEMBER|"]
    for n in range(6):
        t, call = base + n * 600, f"17000{n}.{n}"
        lines.append(f"{t}|{call}|support|NONE|ENTERQUEUE||41555501{n:02d}|1")
        if n < 3:
            lines.append(f"{t + 20}|{call}|support|SIP/8008|CONNECT|20|{call}9|3")
            lines.append(f"{t + 200}|{call}|support|SIP/8008|COMPLETECALLER|20|180|1")
        elif n < 5:
            lines.append(f"{t + 45}|{call}|support|NONE|ABANDON|1|1|45")
        else:
            lines.append(f"{t + 300}|{call}|support|NONE|EXITWITHTIMEOUT|1|1|300")
    rotated, current = tmp_path / "queue_log.1.gz", tmp_path / "queue_log"
    with gzip.open(rotated, "wt", encoding="utf-8") as out:
        out.write("\n".join(lines[:6]) + "\n")  # the rotation splits call 2 between the files
    current.write_text("\n".join(lines[6:]) + "\n")
    done = run_cli(tmp_path, str(rotated), str(current))
    assert done.returncode == 0, done.stderr
    voice = figures(rows(settings_for(tmp_path)), "ch|voice", "voice")
    assert (voice["offered"], voice["answered"], voice["abandoned"], voice["timed_out"]) == (
        6,
        3,
        2,
        1,
    )
    assert voice["asa_seconds"] == 20.0 and voice["aht_seconds"] == 180.0


def test_large_files_show_a_progress_bar_on_a_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "big.jsonl"
    path.write_bytes(b"\n" * (2 << 20))  # 2 MiB of blank lines
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    reader = importer.Reader(settings_for(tmp_path), clock.now())
    importer.read_native(reader, path, Totals(0, 1, reader.settings))
    shown = capsys.readouterr().err
    assert "big.jsonl [####################] 100%" in shown and not reader.problems


def test_an_answer_without_its_offer_counts_as_answered_in_history_not_in_asa(
    tmp_path: Path,
) -> None:
    """Its own column (migration 0002), summed by the volume reader: answered, not in ASA."""
    from api.planning.sums import Cell
    from api.planning.sums import figures as volume_figures
    from services.kpis import ReadOptions

    settings = settings_for(tmp_path)
    at = past_day() + 9 * 3600
    timed = generate(Day(seed=12), at, 20, 0.05)
    untimed = [
        {
            "id": "u1",
            "type": "contact.answered",
            "time": iso(at + 60),
            "contact": "u1",
            "channel": "voice",
            "queue": "sales",
            "agent": "a1",
        },
        {"id": "u2", "type": "contact.completed", "time": iso(at + 300), "contact": "u1"},
    ]
    path = tmp_path / "events.jsonl"
    write_events(path, timed + untimed)
    asyncio.run(importer.main(settings, [path], []))
    stored = [r for r in rows(settings) if r["scope"] == keys.channel_scope("voice")]
    assert sum(r["answered_untimed"] for r in stored) == 1 and all(
        "answered_untimed" not in r["extra"] for r in stored
    )
    cell = Cell(0, 1)
    for row in stored:
        cell.add("voice", "", intervals.counters_of(row))
    got = volume_figures(cell, lambda channel, queue: ReadOptions(sl_threshold_s=20))
    want = oracle.recount(timed, int(at) - 3600, int(at) + DAY_S, DEFAULT_SL_THRESHOLDS_SECONDS)
    voice = want["channels"]["voice"]
    assert got["answered"] == voice["answered"] + 1  # the untimed answer counts
    assert got["asa_seconds"] == pytest.approx(voice["asa_seconds"])  # and stays out of ASA
