"""Asterisk queue_log: the documented line format and event fields, and the file follower."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ingest.adapters.asterisk import map_lines, parse_line
from ingest.adapters.base import PayloadError
from ingest.queue_log import (
    Follower,
    Position,
    PositionFile,
    Rejected,
    backfill,
    complete_lines,
    ship_lines,
)
from services.contract import EventType

# The example line on docs.asterisk.org's Queue Logs page: ring time in milliseconds.
DOC_LINE = "1366720340|1366720340.303267|MYQUEUE|SIP/8007|RINGNOANSWER|1000"
T0 = 1366720340
CALL = "1366720340.303267"


def line(offset: int, event: str, *data: str, agent: str = "NONE", queue: str = "MYQUEUE") -> str:
    return "|".join([str(T0 + offset), CALL, queue, agent, event, *data])


def at(offset: int) -> datetime:
    return datetime.fromtimestamp(T0 + offset, UTC)


def test_the_documented_line_parses_and_ringnoanswer_is_ignored() -> None:
    parsed = parse_line(DOC_LINE)
    assert (parsed.call, parsed.queue, parsed.agent, parsed.event) == (
        CALL,
        "MYQUEUE",
        "SIP/8007",
        "RINGNOANSWER",
    )
    assert parsed.seconds(0, "ringtime", scale=0.001) == 1.0  # 1000 ms
    mapped = map_lines([DOC_LINE])
    assert (mapped.events, mapped.ignored) == ([], 1)


def test_answered_call() -> None:
    mapped = map_lines(
        [
            line(0, "ENTERQUEUE", "", "5551234", "1"),  # ENTERQUEUE(url|callerid|position)
            line(12, "CONNECT", "12", "1366720352.303270", "3", agent="SIP/8007"),  # hold|uid|ring
            line(312, "COMPLETECALLER", "12", "300", "1", agent="SIP/8007"),  # hold|talk|origpos
        ]
    )
    by_type: dict[EventType, set[datetime]] = {}
    for event in mapped.events:
        by_type.setdefault(event.type, set()).add(event.time)
    assert by_type[EventType.OFFERED] == {at(0)}  # every line re-states the same arrival
    assert by_type[EventType.ANSWERED] == {at(12)}
    assert by_type[EventType.COMPLETED] == {at(312)}
    answers = [e for e in mapped.events if e.type is EventType.ANSWERED]
    assert {e.agent for e in answers} == {"SIP/8007"}
    offered = [e for e in mapped.events if e.type is EventType.OFFERED and e.customer]
    assert offered[0].customer == "5551234"


@pytest.mark.parametrize(
    ("text", "outcome", "stage", "entered"),
    [
        (line(45, "ABANDON", "2", "3", "45"), EventType.ABANDONED, "queue", 0),
        (line(300, "EXITWITHTIMEOUT", "1", "1", "300"), EventType.TIMED_OUT, None, 0),
        (line(40, "EXITWITHKEY", "1", "2", "3", "40"), EventType.ABANDONED, "exitkey", 0),
        (line(60, "EXITEMPTY", "1", "1", "60"), EventType.TIMED_OUT, None, 0),
    ],
)
def test_queue_exits(text: str, outcome: EventType, stage: str | None, entered: int) -> None:
    events = map_lines([text]).events
    assert [e.type for e in events] == [EventType.OFFERED, EventType.QUEUED, outcome]
    assert events[0].time == at(entered)
    assert events[2].stage == stage


def test_a_timeout_is_never_an_abandon() -> None:
    events = map_lines([line(300, "EXITWITHTIMEOUT", "1", "1", "300")]).events
    assert EventType.ABANDONED not in {e.type for e in events}


def test_ivr_lines_written_by_the_dialplan() -> None:
    events = map_lines(
        [line(0, "IVR", "menu", queue="NONE"), line(9, "IVRABANDON", "menu", queue="NONE")]
    ).events
    assert [(e.type, e.stage) for e in events if e.type is not EventType.OFFERED] == [
        (EventType.IVR, "menu"),
        (EventType.ABANDONED, "menu"),
    ]


def test_agent_events() -> None:
    events = map_lines(
        [
            "1366720300|NONE|MYQUEUE|SIP/8007|ADDMEMBER|",
            "1366720400|NONE|NONE|SIP/8007|PAUSEALL|lunch",
            "1366720500|NONE|NONE|SIP/8007|UNPAUSEALL|",
            "1366720600|NONE|MYQUEUE|SIP/8007|REMOVEMEMBER|",
        ]
    ).events
    assert [(e.agent, e.state, e.reason) for e in events] == [
        ("SIP/8007", "available", None),
        ("SIP/8007", "not_ready", "lunch"),  # the pause keeps its reason
        ("SIP/8007", "available", None),
        ("SIP/8007", "offline", None),
    ]


def test_rereading_a_line_repeats_its_ids() -> None:
    text = line(45, "ABANDON", "2", "3", "45")
    assert [e.id for e in map_lines([text]).events] == [e.id for e in map_lines([text]).events]


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("garbage", "line 1"),
        ("soon|x|q|a|ABANDON|1|1|1", "line 1.time"),
        (line(45, "ABANDON", "2", "3", "forty"), "line 1.waittime"),
        ("1366720340|NONE|MYQUEUE|NONE|CONNECT|1|x|1", "line 1.callid"),
    ],
)
def test_malformed_lines_name_the_line(text: str, field: str) -> None:
    with pytest.raises(PayloadError) as caught:
        map_lines([text])
    assert caught.value.field == field


# --- the follower ---


class Sink:
    def __init__(self) -> None:
        self.lines: list[str] = []

    async def __call__(self, lines: list[str]) -> None:
        self.lines.extend(lines)


def write(path: Path, *texts: str) -> None:
    with path.open("a") as handle:
        handle.write("".join(t + "\n" for t in texts))


def test_complete_lines_keeps_a_partial_line_for_later() -> None:
    assert complete_lines(b"a\nb\npart") == (["a", "b"], 4)


async def test_follow_resumes_after_restart_without_repeats(tmp_path: Path) -> None:
    log, positions, sink = tmp_path / "queue_log", PositionFile(tmp_path / "pos"), Sink()
    write(log, "l1", "l2")
    follower = Follower(log, positions, sink)
    assert await follower.step() == 2
    with log.open("a") as handle:
        handle.write("l3\nhalf")
    assert await follower.step() == 1
    follower.close()
    with log.open("a") as handle:
        handle.write("-line\n")
    restarted = Follower(log, positions, sink)
    assert await restarted.step() == 1
    restarted.close()
    assert sink.lines == ["l1", "l2", "l3", "half-line"]


async def test_follow_across_rename_rotation(tmp_path: Path) -> None:
    log, positions, sink = tmp_path / "queue_log", PositionFile(tmp_path / "pos"), Sink()
    write(log, "old1")
    follower = Follower(log, positions, sink)
    await follower.step()
    write(log, "old2")  # written before the rotation, not yet read
    os.rename(log, tmp_path / "queue_log.1")
    log.touch()
    assert await follower.step() == 1  # the old file's last line; the new one is still empty
    assert sink.lines == ["old1", "old2"]
    write(log, "new1")
    await follower.step()
    await follower.step()
    follower.close()
    assert sink.lines == ["old1", "old2", "new1"]


async def test_rotation_while_stopped_finishes_the_old_file(tmp_path: Path) -> None:
    log, positions, sink = tmp_path / "queue_log", PositionFile(tmp_path / "pos"), Sink()
    write(log, "a1")
    follower = Follower(log, positions, sink)
    await follower.step()
    follower.close()
    write(log, "a2")
    os.rename(log, tmp_path / "queue_log.1")
    write(log, "b1")
    restarted = Follower(log, positions, sink)
    await restarted.step()
    restarted.close()
    assert sink.lines == ["a1", "a2", "b1"]


async def test_truncation_reads_again_from_the_start(tmp_path: Path) -> None:
    log, positions, sink = tmp_path / "queue_log", PositionFile(tmp_path / "pos"), Sink()
    write(log, "first-long-line", "second-long-line")
    follower = Follower(log, positions, sink)
    await follower.step()
    log.write_text("")  # copytruncate
    await follower.step()
    write(log, "x")
    await follower.step()
    follower.close()
    assert sink.lines == ["first-long-line", "second-long-line", "x"]


async def test_backfill_then_follow_continues_after_it(tmp_path: Path) -> None:
    log, positions, sink = tmp_path / "queue_log", PositionFile(tmp_path / "pos"), Sink()
    write(log, "h1", "h2")
    assert await backfill(log, sink, positions) == 2
    write(log, "n1")
    follower = Follower(log, positions, sink)
    await follower.step()
    follower.close()
    assert sink.lines == ["h1", "h2", "n1"]


async def test_a_refused_line_does_not_hold_up_the_others() -> None:
    accepted: list[str] = []

    async def picky(lines: list[str]) -> None:
        if "bad" in lines:
            raise Rejected("line 1: malformed")
        accepted.extend(lines)

    await ship_lines(picky, ["a", "bad", "c"])
    assert accepted == ["a", "c"]


def test_position_file_round_trip(tmp_path: Path) -> None:
    positions = PositionFile(tmp_path / "deep" / "pos")
    assert positions.load() is None
    positions.save(Position(7, 42))
    assert positions.load() == Position(7, 42)
