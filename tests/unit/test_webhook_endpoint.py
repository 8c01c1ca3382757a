"""The change webhook's HTTP POST (app/bulk/endpoint.py) against a local receiver in a thread, and `idgraph serve`
refusing a change webhook it cannot use before it starts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.bulk.endpoint import WebhookEndpoint, batch_body
from app.cli import main as cli
from tests.change_receiver import SECRET, ChangeReceiver
from tests.conftest import free_port

EVENT: dict[str, object] = {"cursor": "7", "type": "MERGE", "profile_ids": ["a", "b"]}


async def test_a_post_is_signed_over_the_exact_body_sent() -> None:
    receiver = ChangeReceiver()
    with receiver.running():
        status = await WebhookEndpoint(receiver.url, SECRET, timeout_s=5.0).post(batch_body([EVENT]))
        wrong = await WebhookEndpoint(receiver.url, "another secret", timeout_s=5.0).post(batch_body([EVENT]))
    assert (status, wrong) == (200, 401)
    [good, bad] = receiver.received
    assert good.signed and not bad.signed
    assert good.cursors == (7,) and good.events == (EVENT,)


async def test_the_answer_status_is_returned_as_it_is() -> None:
    receiver = ChangeReceiver(refuse=lambda n: 302)
    with receiver.running():
        assert await WebhookEndpoint(receiver.url, SECRET, timeout_s=5.0).post(batch_body([EVENT])) == 302


async def test_a_receiver_that_does_not_answer_in_time_is_a_timeout() -> None:
    receiver = ChangeReceiver(hold_s=3.0)
    with receiver.running(), pytest.raises(TimeoutError):
        await WebhookEndpoint(receiver.url, SECRET, timeout_s=0.2).post(batch_body([EVENT]))


async def test_nobody_listening_is_a_refused_connection() -> None:
    endpoint = WebhookEndpoint(f"http://127.0.0.1:{free_port()}/hook", SECRET, timeout_s=5.0)
    with pytest.raises(ConnectionRefusedError):
        await endpoint.post(b'{"events":[]}')


def test_the_body_is_compact_json_of_the_events() -> None:
    assert json.loads(batch_body([EVENT])) == {"events": [EVENT]}
    assert b" " not in batch_body([EVENT])


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"IDGRAPH_CHANGE_WEBHOOK_URL": "http://127.0.0.1:9/h"}, "IDGRAPH_CHANGE_WEBHOOK_SECRET"),
        ({"IDGRAPH_CHANGE_WEBHOOK_URL": "file:///etc/x", "IDGRAPH_CHANGE_WEBHOOK_SECRET": "s"}, "_URL"),
    ],
)
def test_serve_refuses_a_change_webhook_it_cannot_use_in_one_line(
    env: dict[str, str],
    named: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("IDGRAPH_VAR_DIR", str(tmp_path))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert cli.main(["serve", "--port", str(free_port())]) == 2
    err = capsys.readouterr().err
    assert err.startswith("idgraph serve: IDGRAPH_CHANGE_WEBHOOK") and named in err and err.count("\n") == 1
