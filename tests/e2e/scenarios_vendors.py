"""Per-vendor end-to-end scenarios: the requests each platform would send, and the exact figures.

Each function returns the HTTP requests `(path, headers, body)` a platform sends for four contacts
(answered, abandoned in the IVR, abandoned in the queue, timed out), including a vendor retry
and a callback that arrives out of order, plus the figures `/api/v1/live` must then show per
channel. Post them in order to the ingest (base URL `Secrets.base_url`, which Twilio's signature
covers) on a fresh pipeline, or sum the figures of the vendors that share a channel.
Chat and e-mail platforms have no IVR or queue timeout of their own: Chatwoot's bot stage plays
the IVR, and Zendesk tickets neither abandon nor time out.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlencode

Request = tuple[str, dict[str, str], bytes]
Figures = dict[str, dict[str, Any]]


@dataclass(frozen=True)
class Secrets:
    """What the ingest under test is configured with (None: that source is unsigned)."""

    base_url: str = "http://testserver"
    twilio_auth_token: str | None = None
    chatwoot_secret: str | None = None
    zendesk_secret: str | None = None
    amazon_connect_token: str | None = None
    asterisk_token: str | None = None
    cloudevents_token: str | None = None


@dataclass
class Scenario:
    vendor: str
    requests: list[Request] = field(default_factory=list)
    expected: Figures = field(default_factory=dict)


def figures(
    offered: int, answered: int, by_stage: dict[str, int], timed_out: int
) -> dict[str, Any]:
    return {
        "offered": offered,
        "answered": answered,
        "abandoned": sum(by_stage.values()),
        "abandoned_by_stage": by_stage,
        "timed_out": timed_out,
    }


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


def _json(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()


def _bearer(token: str | None) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"} if token else {}


# --- Twilio: number status callbacks + TaskRouter workspace events ---


def _twilio_request(path: str, params: dict[str, str], secrets: Secrets) -> Request:
    headers = {"content-type": "application/x-www-form-urlencoded"}
    if secrets.twilio_auth_token:
        data = (
            secrets.base_url.rstrip("/") + path + "".join(k + v for k, v in sorted(params.items()))
        )
        digest = hmac.new(secrets.twilio_auth_token.encode(), data.encode(), hashlib.sha1).digest()
        headers["x-twilio-signature"] = base64.b64encode(digest).decode()
    return path, headers, urlencode(params).encode()


def _call_completed(sid: str, end: float, duration: int, caller: str) -> dict[str, str]:
    return {
        "AccountSid": "AC00000000000000000000000000000001",
        "ApiVersion": "2010-04-01",
        "CallSid": sid,
        "CallStatus": "completed",
        "Direction": "inbound",
        "From": caller,
        "To": "+18005551212",
        "Caller": caller,
        "Called": "+18005551212",
        "CallDuration": str(duration),
        "CallbackSource": "call-progress-events",
        "SequenceNumber": "0",
        "Timestamp": format_datetime(datetime.fromtimestamp(end, UTC)),
    }


def _task(kind: str, task: str, call: str, at: float, **extra: str) -> dict[str, str]:
    return {
        "EventType": kind,
        "AccountSid": "AC00000000000000000000000000000001",
        "WorkspaceSid": "WS0000000000000000000000000000001",
        "ResourceType": "Task",
        "ResourceSid": task,
        "TaskSid": task,
        "Timestamp": str(int(at)),
        "TimestampMs": str(int(at * 1000)),
        "TaskChannelUniqueName": "voice",
        "TaskAttributes": json.dumps({"call_sid": call, "from": "+14155550100"}),
        "TaskQueueSid": "WQ0000000000000000000000000000001",
        "TaskQueueName": "support",
        **extra,
    }


def twilio(now: float, tag: str = "", secrets: Secrets = Secrets()) -> Scenario:
    voice, tr = "/webhooks/twilio/voice", "/webhooks/twilio/taskrouter"
    a, b, c, d, e = now - 1800, now - 1500, now - 1200, now - 900, now - 600
    call = {k: f"CA{tag}{k}" for k in "abcde"}
    task = {k: f"WT{tag}{k}" for k in "abcde"}
    accepted = _task(
        "reservation.accepted",
        task["a"],
        call["a"],
        a + 20,
        ReservationSid=f"WR{tag}a",
        WorkerName="alice",
    )
    sends: list[tuple[str, dict[str, str]]] = [
        (
            voice,
            _call_completed(call["a"], a + 130, 130, "+14155550101"),
        ),  # before its task: out of order
        (tr, _task("task.created", task["a"], call["a"], a + 5)),
        (tr, _task("task-queue.entered", task["a"], call["a"], a + 5)),
        (
            tr,
            _task("reservation.created", task["a"], call["a"], a + 18, ReservationSid=f"WR{tag}a"),
        ),
        (tr, accepted),
        (tr, accepted),  # Twilio's retry
        (tr, _task("task.completed", task["a"], call["a"], a + 140)),
        (voice, _call_completed(call["b"], b + 15, 15, "+14155550102")),  # IVR only
        (tr, _task("task.created", task["c"], call["c"], c + 8)),
        (tr, _task("task-queue.entered", task["c"], call["c"], c + 8)),
        (tr, _task("task.canceled", task["c"], call["c"], c + 40, TaskCanceledReason="hangup")),
        (voice, _call_completed(call["c"], c + 41, 41, "+14155550103")),
        (tr, _task("task.created", task["d"], call["d"], d + 8)),
        (tr, _task("task-queue.entered", task["d"], call["d"], d + 8)),
        (tr, _task("workflow.timeout", task["d"], call["d"], d + 128)),
        (voice, _call_completed(call["d"], d + 200, 200, "+14155550104")),  # then voicemail
        # e: only the answer reached us (task.created filtered): TaskAge restates the offer
        (
            tr,
            {
                **_task("reservation.accepted", task["e"], call["e"], e + 25),
                "TaskAge": "25",
                "ReservationSid": f"WR{tag}e",
                "WorkerName": "alice",
            },
        ),
        (
            tr,
            {
                "EventType": "worker.activity.update",
                "WorkerSid": f"WK{tag}1",
                "WorkerName": "alice",
                "WorkerActivityName": "Available",
                "TimestampMs": str(int(d * 1000)),
            },
        ),
    ]
    requests = [_twilio_request(path, params, secrets) for path, params in sends]
    return Scenario("twilio", requests, {"voice": figures(5, 2, {"ivr": 1, "queue": 1}, 1)})


# --- Amazon Connect: EventBridge contact events + a Firehose delivery of contact records ---


def _connect_event(kind: str, contact: str, detail: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": "0",
        "id": f"{contact}-{kind}",
        "detail-type": "Amazon Connect Contact Event",
        "source": "aws.connect",
        "account": "111122223333",
        "time": detail.get("time", ""),
        "region": "us-west-2",
        "resources": [],
        "detail": {
            "eventType": kind,
            "contactId": contact,
            "channel": "VOICE",
            "initiationMethod": "INBOUND",
            **{k: v for k, v in detail.items() if k != "time"},
        },
    }


QUEUE_ARN = "arn:aws:connect:us-west-2:111122223333:instance/i-1/queue/q-support"
AGENT_ARN = "arn:aws:connect:us-west-2:111122223333:instance/i-1/agent/a-jdoe"


def _connect_contact(
    contact: str, t0: float, queued: float | None, agent: float | None, end: float, reason: str
) -> list[dict[str, Any]]:
    base = {"initiationTimestamp": iso(t0), "connectedToSystemTimestamp": iso(t0 + 1)}
    events = [
        _connect_event("INITIATED", contact, {"initiationTimestamp": iso(t0)}),
        _connect_event("CONNECTED_TO_SYSTEM", contact, base),
    ]
    queue = (
        {"queueInfo": {"queueArn": QUEUE_ARN, "enqueueTimestamp": iso(queued)}} if queued else {}
    )
    if queued:
        events.append(_connect_event("QUEUED", contact, {**base, **queue}))
    answer = (
        {"agentInfo": {"agentArn": AGENT_ARN, "connectedToAgentTimestamp": iso(agent)}}
        if agent
        else {}
    )
    if agent:
        events.append(_connect_event("CONNECTED_TO_AGENT", contact, {**base, **queue, **answer}))
    end_detail = {
        **base,
        **queue,
        **answer,
        "disconnectTimestamp": iso(end),
        "disconnectReason": reason,
    }
    events.append(_connect_event("DISCONNECTED", contact, end_detail))
    return events


def _ctr(contact: str, t0: float, updated: float) -> dict[str, Any]:
    return {
        "ContactId": contact,
        "Channel": "VOICE",
        "InitiationMethod": "INBOUND",
        "InitiationTimestamp": iso(t0),
        "ConnectedToSystemTimestamp": iso(t0 + 1),
        "Queue": {"ARN": QUEUE_ARN, "Name": "q-support", "EnqueueTimestamp": iso(t0 + 20)},
        "Agent": {
            "ARN": AGENT_ARN,
            "Username": "a-jdoe",
            "ConnectedToAgentTimestamp": iso(t0 + 35),
            "AfterContactWorkEndTimestamp": iso(updated),
        },
        "CustomerEndpoint": {"Address": "+14155550111", "Type": "TELEPHONE_NUMBER"},
        "DisconnectTimestamp": iso(t0 + 300),
        "DisconnectReason": "CUSTOMER_DISCONNECT",
        "LastUpdateTimestamp": iso(updated),
    }


def amazon_connect(now: float, tag: str = "", secrets: Secrets = Secrets()) -> Scenario:
    path = "/webhooks/amazon-connect"
    headers = {"content-type": "application/json"}
    if secrets.amazon_connect_token:
        headers["x-amz-firehose-access-key"] = secrets.amazon_connect_token
    a, b, c, d, e = now - 1800, now - 1500, now - 1200, now - 900, now - 600
    ids = {k: f"{tag}{k}0000000-0000-0000-0000-000000000000" for k in "abcdef"}
    answered = _connect_contact(ids["a"], a, a + 20, a + 35, a + 300, "AGENT_DISCONNECT")
    answered = [answered[-1], *answered[:-1]]  # the disconnect arrives first
    answered.insert(3, answered[2])  # EventBridge delivers QUEUED twice
    ivr = _connect_contact(ids["b"], b, None, None, b + 25, "CUSTOMER_DISCONNECT")
    queue = _connect_contact(ids["c"], c, c + 15, None, c + 60, "CUSTOMER_DISCONNECT")
    timeout = _connect_contact(ids["d"], d, d + 15, None, d + 315, "CONTACT_FLOW_DISCONNECT")
    outbound = _connect_event("INITIATED", f"{tag}outbound", {"initiationTimestamp": iso(d)})
    outbound["detail"]["initiationMethod"] = "OUTBOUND"
    records = [_ctr(ids["a"], a, a + 320), _ctr(ids["a"], a, a + 330)]  # at least once, updated
    firehose = {
        "requestId": f"{tag}req-1",
        "timestamp": int(now * 1000),
        "records": [{"data": base64.b64encode(_json(r)).decode()} for r in records],
    }
    # e: only CONNECTED_TO_AGENT arrives (the rule filtered the rest): it restates offer and queue
    answer_only = _connect_contact(ids["e"], e, e + 10, e + 30, e + 90, "AGENT_DISCONNECT")[3]
    # f: a DISCONNECTED with no queueInfo, agentInfo or reason: offered, then it just ends
    bare = {"initiationTimestamp": iso(e), "disconnectTimestamp": iso(e + 5)}
    ends = _connect_event("DISCONNECTED", ids["f"], bare)
    bodies: list[Any] = [*answered, *ivr, *queue, *timeout, outbound, answer_only, ends, firehose]
    requests = [(path, dict(headers), _json(body)) for body in bodies]
    return Scenario("amazon_connect", requests, {"voice": figures(6, 2, {"ivr": 1, "queue": 1}, 1)})


# --- Asterisk: queue_log lines, as the follower posts them ---


def asterisk(now: float, tag: str = "", secrets: Secrets = Secrets()) -> Scenario:
    path = "/webhooks/asterisk/queue-log"
    headers = {"content-type": "text/plain; charset=utf-8", **_bearer(secrets.asterisk_token)}
    a, b, c, d = (int(now - s) for s in (1800, 1500, 1200, 900))

    def q(
        t: int, call: str, event: str, *data: str, agent: str = "NONE", queue: str = "support"
    ) -> str:
        return "|".join([str(t), f"{call}.{tag}", queue, agent, event, *data])

    lines = [
        q(a - 60, "NONE", "ADDMEMBER", agent="SIP/8008"),
        q(a, "1001", "ENTERQUEUE", "", "4155550121", "1"),
        q(a + 15, "1001", "RINGNOANSWER", "15000", agent="SIP/8007"),  # milliseconds
        q(a + 20, "1001", "CONNECT", "20", "1001.9", "5", agent="SIP/8008"),
        q(a + 200, "1001", "COMPLETEAGENT", "20", "180", "1", agent="SIP/8008"),
        q(b, "1002", "IVR", "menu", queue="NONE"),
        q(b + 12, "1002", "IVRABANDON", "menu", queue="NONE"),
        q(c, "1003", "ENTERQUEUE", "", "4155550123", "1"),
        q(c + 45, "1003", "ABANDON", "1", "1", "45"),
        q(d, "1004", "ENTERQUEUE", "", "4155550124", "1"),
        q(d + 300, "1004", "EXITWITHTIMEOUT", "1", "1", "300"),
        q(d + 310, "NONE", "PAUSE", "lunch", agent="SIP/8008"),
    ]
    batches = [[lines[4]], lines, lines]  # a completion first; then the whole log, twice
    requests = [(path, dict(headers), ("\n".join(x) + "\n").encode()) for x in batches]
    return Scenario("asterisk", requests, {"voice": figures(4, 1, {"menu": 1, "queue": 1}, 1)})


# --- Chatwoot ---


def _chatwoot_request(body: dict[str, Any], secrets: Secrets, now: float) -> Request:
    raw = _json(body)
    headers = {"content-type": "application/json"}
    if secrets.chatwoot_secret:
        stamp = str(int(now))
        mac = hmac.new(secrets.chatwoot_secret.encode(), f"{stamp}.".encode() + raw, hashlib.sha256)
        headers.update(
            {"x-chatwoot-timestamp": stamp, "x-chatwoot-signature": "sha256=" + mac.hexdigest()}
        )
    return "/webhooks/chatwoot", headers, raw


def _conversation(event: str, conv: str, status: str, at: float, **extra: Any) -> dict[str, Any]:
    return {
        "event": event,
        "id": conv,
        "inbox_id": 1,
        "channel": "Channel::WebWidget",
        "status": status,
        "created_at": int(at),
        "timestamp": int(at),
        "meta": {"sender": {"email": f"{conv}@example.com", "name": "jane", "type": "contact"}},
        **extra,
    }


def chatwoot(now: float, tag: str = "", secrets: Secrets = Secrets()) -> Scenario:
    a, b, c = now - 1800, now - 1500, now - 1200
    conv = {k: f"{tag}{n}" for n, k in enumerate("abc", start=1)}
    reply = {
        "event": "message_created",
        "id": f"{tag}9001",
        "message_type": "outgoing",
        "private": False,
        "created_at": iso(a + 40),
        "content": "Hello!",
        "sender": {"id": 1, "name": "John", "type": "user"},
        "conversation": {"id": conv["a"], "inbox_id": 1, "channel": "Channel::WebWidget"},
    }
    resolved_a = _conversation("conversation_status_changed", conv["a"], "resolved", a + 300)
    resolved_a["timestamp"] = int(a + 300)
    bodies = [
        _conversation("conversation_created", conv["a"], "open", a),
        resolved_a,  # the resolution arrives before the reply: out of order
        reply,
        reply,  # retried delivery
        _conversation("conversation_created", conv["b"], "pending", b),  # with the bot
        {
            **_conversation("conversation_status_changed", conv["b"], "resolved", b),
            "timestamp": int(b + 60),
        },
        _conversation("conversation_created", conv["c"], "open", c),
        {
            **_conversation("conversation_status_changed", conv["c"], "resolved", c),
            "timestamp": int(c + 500),
        },
        {"event": "webwidget_triggered", "id": 12},  # well-formed, unused
    ]
    requests = [_chatwoot_request(body, secrets, now) for body in bodies]
    return Scenario("chatwoot", requests, {"chat": figures(3, 1, {"bot": 1, "queue": 1}, 0)})


# --- Zendesk ---


def _zendesk_request(body: dict[str, Any], secrets: Secrets, now: float) -> Request:
    raw = _json(body)
    headers = {"content-type": "application/json"}
    if secrets.zendesk_secret:
        stamp = iso(int(now))
        mac = hmac.new(
            secrets.zendesk_secret.encode(), stamp.encode() + raw, hashlib.sha256
        ).digest()
        headers.update(
            {
                "x-zendesk-webhook-signature-timestamp": stamp,
                "x-zendesk-webhook-signature": base64.b64encode(mac).decode(),
            }
        )
    return "/webhooks/zendesk", headers, raw


def _ticket_event(
    kind: str, ticket: str, event_id: str, at: float, event: dict[str, Any]
) -> dict[str, Any]:
    return {
        "type": f"zen:event-type:ticket.{kind}",
        "account_id": 1,
        "id": event_id,
        "time": iso(at),
        "zendesk_event_version": "2022-11-06",
        "subject": f"zen:ticket:{ticket}",
        "detail": {
            "id": ticket,
            "status": "OPEN",
            "via": {"channel": "email"},
            "group_id": "7",
            "created_at": iso(at),
            "updated_at": iso(at),
        },
        "event": event,
    }


def zendesk(now: float, tag: str = "", secrets: Secrets = Secrets()) -> Scenario:
    a, b, c = now - 5400, now - 5000, now - 4800
    ta, tb, tc = f"{tag}1", f"{tag}2", f"{tag}3"
    comment = {
        "comment": {
            "id": "1",
            "is_public": True,
            "author": {"id": "9", "is_staff": True, "name": "Agent Smith"},
        }
    }
    replied = _ticket_event("comment_added", ta, f"{tag}ev-a2", a + 1800, comment)
    trigger = {
        "ticket_id": tc,
        "created_at": iso(c),
        "updated_at": iso(c),
        "via": "Mail",
        "group": "Billing",
        "requester_email": "customer@example.com",
        "assignee": "",
    }
    bodies = [
        _ticket_event(
            "status_changed", ta, f"{tag}ev-a3", a + 3000, {"current": "SOLVED"}
        ),  # early
        _ticket_event("created", ta, f"{tag}ev-a1", a, {"current": {"status": "NEW"}}),
        replied,
        replied,  # retried delivery
        _ticket_event("created", tb, f"{tag}ev-b1", b, {"current": {"status": "NEW"}}),
        _ticket_event("status_changed", tb, f"{tag}ev-b2", b + 100, {"current": "CLOSED"}),
        {**trigger, "event": "created"},
        {
            **trigger,
            "event": "agent_replied",
            "assignee": "Agent Smith",
            "updated_at": iso(c + 1800),
        },
    ]
    requests = [_zendesk_request(body, secrets, now) for body in bodies]
    return Scenario("zendesk", requests, {"email": figures(3, 2, {}, 0)})


# --- CloudEvents ---


def cloudevents(now: float, tag: str = "", secrets: Secrets = Secrets()) -> Scenario:
    path = "/v1/cloudevents"
    auth = _bearer(secrets.cloudevents_token)
    a, b, c, d = now - 1800, now - 1500, now - 1200, now - 900

    def ce(n: str, kind: str, contact: str, at: float, **data: Any) -> dict[str, Any]:
        return {
            "specversion": "1.0",
            "id": f"{tag}{n}",
            "source": "/ccpulse/tests",
            "type": kind,
            "subject": f"ce-{tag}-{contact}",
            "time": iso(at),
            "datacontenttype": "application/json",
            "data": {"channel": "sms", "queue": "sms", **data},
        }

    answered = [
        ce("a1", "contact.offered", "a", a),
        ce("a2", "contact.queued", "a", a + 2),
        ce("a3", "contact.answered", "a", a + 30, agent="alice"),
        ce("a4", "contact.completed", "a", a + 400),
    ]
    batch = ("application/cloudevents-batch+json", answered)
    structured = "application/cloudevents+json"
    binary = {
        **auth,
        "content-type": "application/json",
        "ce-specversion": "1.0",
        "ce-id": f"{tag}b1",
        "ce-source": "/ccpulse/tests",
        "ce-type": "contact.offered",
        "ce-subject": f"ce-{tag}-b",
        "ce-time": iso(b),
    }
    requests: list[Request] = [
        (
            path,
            {**auth, "content-type": structured},
            _json(answered[2]),
        ),  # the answer arrives first
        (path, {**auth, "content-type": batch[0]}, _json(batch[1])),
        (path, {**auth, "content-type": batch[0]}, _json(batch[1])),  # re-sent batch
        (path, binary, _json({"channel": "sms", "queue": "sms"})),
        (
            path,
            {**auth, "content-type": batch[0]},
            _json(
                [
                    ce("b2", "contact.ivr", "b", b + 1, stage="menu"),
                    ce("b3", "contact.abandoned", "b", b + 20, stage="menu"),
                    ce("c1", "contact.offered", "c", c),
                    ce("c2", "contact.queued", "c", c + 3),
                    ce("c3", "contact.abandoned", "c", c + 50, stage="queue"),
                    ce("d1", "contact.offered", "d", d),
                    ce("d2", "contact.queued", "d", d + 3),
                    ce("d3", "contact.timed_out", "d", d + 303),
                    ce("x1", "com.example.unrelated", "x", d),
                ]
            ),
        ),
    ]
    return Scenario("cloudevents", requests, {"sms": figures(4, 1, {"menu": 1, "queue": 1}, 1)})


ALL: tuple[Callable[[float, str, Secrets], Scenario], ...] = (
    twilio,
    amazon_connect,
    asterisk,
    chatwoot,
    zendesk,
    cloudevents,
)
