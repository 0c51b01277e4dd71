"""publish: Vantage's event output."""

import threading

import numpy as np
import pytest

import panoramasdk
from conftest import EVENT, OK


def test_publish_waits_for_ok(fake):
    gate = threading.Event()
    answered = threading.Event()

    def slow_ok(fake, msg):
        def later():
            gate.wait(5)
            answered.set()
            fake.reply(OK, msg.rid)
        threading.Thread(target=later).start()

    fake.on_event = slow_ok
    n = panoramasdk.node()
    done = threading.Event()

    def publish():
        n.publish({"type": "crowd", "count": 7})
        done.set()

    t = threading.Thread(target=publish)
    t.start()
    fake.wait_for(lambda r: any(m.kind == EVENT for m in r))
    assert not done.wait(0.2)  # still waiting for the runtime
    gate.set()
    assert done.wait(5) and answered.is_set()
    t.join()
    (event,) = fake.messages(EVENT)
    assert event.event == {"type": "crowd", "count": 7} and event.snapshot is None


def test_publish_with_snapshot_sends_frame_and_overlays(fake):
    fake.get_replies.append([fake.frame(0, 1, sequence=12), fake.frame(1, 0)])
    n = panoramasdk.node()
    stream = n.inputs.video_in.get()[0]
    stream.add_rect(0.25, 0.25, 0.75, 0.75, color=0xFF0000)
    n.publish({"score": np.float32(0.5), "ids": np.arange(3), "where": stream.stream_id}, snapshot=stream)
    (event,) = fake.messages(EVENT)
    assert event.event == {"score": 0.5, "ids": [0, 1, 2], "where": "cam_a"}
    ref, overlays = event.snapshot
    assert ref == (0, 1, 12)
    assert overlays[0]["kind"] == 1 and overlays[0]["color"] == 0xFF0000


def test_rejected_event_raises_the_runtime_message(fake):
    fake.on_event = lambda fake, msg: fake.error_reply(msg.rid, 6, "the disk is full: the event was not stored")
    n = panoramasdk.node()
    with pytest.raises(RuntimeError) as e:
        n.publish({"type": "x"})
    assert "the disk is full" in str(e.value)


def test_publish_needs_a_dict(fake):
    n = panoramasdk.node()
    with pytest.raises(TypeError):
        n.publish(["not", "an", "object"])
    with pytest.raises(ValueError):
        n.publish({"bad": float("nan")})
