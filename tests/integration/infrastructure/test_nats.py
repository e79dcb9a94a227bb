"""The JetStream adapter against a real NATS server: the stream, the subject, the body, the id, the ack."""

import nats
import pytest

from infrastructure.nats import JetStreamPublisher, encode, subject_for
from tests.jetstream import JetStreamTarget
from tests.servers import free_port


def _publisher(target: JetStreamTarget) -> JetStreamPublisher:
    return JetStreamPublisher(url=target.url, stream=target.stream, subject_prefix=target.subject_prefix)


def test_an_event_type_maps_to_a_subject_under_the_prefix():
    assert subject_for("shop", "shop.order.created") == "shop.order.created"
    assert subject_for("acme.shop", "shop.product.updated") == "acme.shop.product.updated"


async def test_the_stream_is_created_when_missing_and_an_event_lands_with_its_subject_body_and_id(jetstream):
    publisher = _publisher(jetstream)
    body = encode({"id": "e-1", "type": "shop.order.created", "data": {"total": "19.90", "name": "Räke"}})
    try:
        await publisher.open()
        duplicate = await publisher.publish(event_id="e-1", event_type="shop.order.created", body=body)
    finally:
        await publisher.close()

    (message,) = await jetstream.messages()
    assert duplicate is False
    assert message.subject == f"{jetstream.subject_prefix}.order.created"
    assert message.msg_id == "e-1"
    assert message.body == {"id": "e-1", "type": "shop.order.created", "data": {"total": "19.90", "name": "Räke"}}
    client = await nats.connect(jetstream.url)
    try:
        config = (await client.jetstream().stream_info(jetstream.stream)).config
    finally:
        await client.close()
    assert config.subjects == [f"{jetstream.subject_prefix}.>"]


async def test_publishing_one_event_id_twice_leaves_one_message_and_the_second_ack_says_duplicate(jetstream):
    publisher = _publisher(jetstream)
    try:
        await publisher.open()
        first = await publisher.publish(event_id="same", event_type="shop.user.updated", body=b'{"n":1}')
        again = await publisher.publish(event_id="same", event_type="shop.user.updated", body=b'{"n":1}')
    finally:
        await publisher.close()

    assert (first, again) == (False, True)
    assert [message.msg_id for message in await jetstream.messages()] == ["same"]


async def test_an_existing_stream_keeps_the_configuration_its_operators_gave_it(jetstream):
    client = await nats.connect(jetstream.url)
    try:
        manager = client.jetstream()
        await manager.add_stream(
            name=jetstream.stream, subjects=[f"{jetstream.subject_prefix}.>"], max_msgs=1000, duplicate_window=600
        )
        publisher = _publisher(jetstream)
        try:
            await publisher.open()
            await publisher.publish(event_id="kept", event_type="shop.product.created", body=b"{}")
        finally:
            await publisher.close()
        config = (await manager.stream_info(jetstream.stream)).config
    finally:
        await client.close()

    assert (config.max_msgs, config.duplicate_window) == (1000, 600)
    assert len(await jetstream.messages()) == 1


async def test_a_stream_that_does_not_take_our_subjects_refuses_the_publish(jetstream):
    client = await nats.connect(jetstream.url)
    try:
        await client.jetstream().add_stream(name=jetstream.stream, subjects=[f"{jetstream.subject_prefix}-other.>"])
    finally:
        await client.close()
    publisher = _publisher(jetstream)
    try:
        await publisher.open()
        with pytest.raises(Exception):  # noqa: B017, PT011 (whichever error nats-py raises: no ack is the point)
            await publisher.publish(event_id="lost", event_type="shop.product.created", body=b"{}")
    finally:
        await publisher.close()


async def test_an_unreachable_server_fails_the_open_at_once_and_a_publish_without_connection_fails():
    publisher = JetStreamPublisher(url=f"nats://127.0.0.1:{free_port()}", stream="s", subject_prefix="p")
    with pytest.raises(Exception):  # noqa: B017, PT011 (nats-py's NoServersError or an OSError)
        await publisher.open()
    assert not publisher.connected
    with pytest.raises(ConnectionError):
        await publisher.publish(event_id="x", event_type="shop.user.updated", body=b"{}")
