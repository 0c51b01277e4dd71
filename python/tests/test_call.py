"""Model calls: argument orders, input forms, the tensor arena, results, errors, threads."""

import threading
import time

import numpy as np
import pytest

import panoramasdk
from conftest import INFER, INFER_RESULT


def last_infer(fake):
    return fake.messages(INFER)[-1]


def test_dict_input_samples_order(fake):
    n = panoramasdk.node()
    x = np.arange(12, dtype=np.float32).reshape(1, 3, 2, 2)
    scores, echo = n.call({"data": x}, "model_node")
    msg = last_infer(fake)
    assert msg.model == "model_node" and msg.wants == 2 and msg.input_kind == 1
    (t,) = msg.tensors
    assert (t["name"], t["type"], t["shape"], t["bytes"]) == ("data", 2, [1, 3, 2, 2], 48)
    assert scores.dtype == np.float32 and scores.shape == (1,) and scores[0] == 66.0
    assert echo.dtype == np.float32 and echo.shape == (1, 3, 2, 2)
    np.testing.assert_array_equal(echo, x)


def test_reference_order_and_keywords(fake):
    n = panoramasdk.node()
    x = np.ones((2, 2), dtype=np.float32)
    assert n.call("model_node", {"data": x})[0][0] == 4.0
    assert n.call("model_node", {"data": x}, 5.0)[0][0] == 4.0
    assert n.call({"data": x}, "model_node", time_out=5.0)[0][0] == 4.0
    assert n.call(name="model_node", input={"data": x})[0][0] == 4.0


def test_bare_array_uses_the_models_first_input(fake):
    n = panoramasdk.node()
    scores, echo = n.call(np.full((3,), 2, dtype=np.int32), "model_node")
    (t,) = last_infer(fake).tensors
    assert t["name"] == "data" and t["type"] == 3 and t["shape"] == [3]
    assert echo.dtype == np.int32 and echo.tolist() == [2, 2, 2]
    assert scores[0] == 6.0


def test_several_inputs_each_get_a_slot(fake):
    n = panoramasdk.node()
    (total,) = n.call({"a": np.ones(4, np.float32), "b": np.full(2, 3, np.int64)}, "two_inputs")[:1]
    a, b = last_infer(fake).tensors
    assert (a["name"], b["name"]) == ("a", "b") and a["slot"] != b["slot"]
    assert b["type"] == 4
    assert total[0] == 10.0


def test_float64_is_sent_as_float32_and_non_contiguous_is_fine(fake):
    n = panoramasdk.node()
    x = np.arange(24, dtype=np.float64).reshape(2, 3, 4).transpose(2, 0, 1)  # not contiguous
    _, echo = n.call({"data": x}, "model_node")
    (t,) = last_infer(fake).tensors
    assert t["type"] == 2 and t["shape"] == [4, 2, 3] and t["bytes"] == 24 * 4
    assert echo.dtype == np.float32
    np.testing.assert_array_equal(echo, x.astype(np.float32))


def test_uint8_nhwc_as_samples_send_it(fake):
    n = panoramasdk.node()
    x = np.random.RandomState(0).randint(0, 255, size=(1, 30, 30, 3)).astype(np.uint8)
    _, echo = n.call({"data": x}, "model_node")
    assert last_infer(fake).tensors[0]["type"] == 1
    np.testing.assert_array_equal(echo, x)


def test_unsupported_dtype_and_too_large_inputs(fake):
    n = panoramasdk.node()
    with pytest.raises(TypeError) as e:
        n.call({"data": np.zeros(3, dtype=np.complex64)}, "model_node")
    assert "float32" in str(e.value) and "uint8" in str(e.value)
    with pytest.raises(ValueError) as e:
        n.call({"data": np.zeros((1 << 20) // 4 + 1, dtype=np.float32)}, "model_node")
    assert str(1 << 20) in str(e.value)
    assert fake.messages(INFER) == []


def test_media_input_is_a_frame_infer(fake):
    fake.get_replies.append([fake.frame(0, 2, sequence=7), fake.frame(1, 1, sequence=8)])
    n = panoramasdk.node()
    streams = n.inputs.video_in.get()
    boxes, count = n.call(streams[0], "model_node")
    msg = last_infer(fake)
    assert msg.input_kind == 0 and msg.frame_ref == (0, 2, 7) and msg.wants == 2
    assert boxes.shape == (1, 2, 4) and boxes.dtype == np.float32
    assert count.dtype == np.int64 and count.tolist() == [2]
    n.call({"data": streams[1]}, "model_node")
    assert last_infer(fake).frame_ref == (1, 1, 8)


def test_outputs_keep_the_runtimes_order_shape_and_dtype(fake):
    outputs = [
        ("detection_boxes:0", np.random.RandomState(1).rand(1, 100, 4).astype(np.float32)),
        ("detection_classes:0", np.arange(100, dtype=np.float32).reshape(1, 100)),
        ("ids", np.arange(5, dtype=np.int32)),
        ("half", np.ones((2, 2), dtype=np.float16)),
        ("num_detections:0", np.array([3.0], dtype=np.float32)),
    ]
    fake.on_infer = lambda fake, msg: fake.reply(INFER_RESULT, msg.rid, fake.infer_result(outputs))
    n = panoramasdk.node()
    result = n.call({"data": np.zeros(3, np.float32)}, "model_node")
    assert isinstance(result, tuple) and len(result) == 5
    for got, (_, want) in zip(result, outputs):
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(got, want)
    result[0][0, 0, 0] = -1  # results are the application's own arrays
    assert outputs[0][1][0, 0, 0] != -1


def test_large_output_arrives_whole(fake):
    big = np.arange(300000, dtype=np.float32).reshape(3, 100000)  # 1.2 MB, over the SDK's small-buffer size
    fake.on_infer = lambda fake, msg: fake.reply(INFER_RESULT, msg.rid, fake.infer_result([("seg", big)]))
    n = panoramasdk.node()
    (seg,) = n.call({"data": np.zeros(1, np.float32)}, "model_node")
    np.testing.assert_array_equal(seg, big)
    assert seg.flags.writeable


def test_unknown_model_is_a_key_error_naming_the_known_ones(fake):
    n = panoramasdk.node()
    with pytest.raises(KeyError) as e:
        n.call({"data": np.zeros(1, np.float32)}, "modle_node")
    text = str(e.value)
    assert "modle_node" in text and "model_node" in text and "two_inputs" in text and "code_node" in text
    assert fake.messages(INFER) == []


def test_runtime_unknown_model_code_is_a_key_error(fake):
    fake.on_infer = lambda fake, msg: fake.error_reply(msg.rid, 2, "no model node named model_node")
    n = panoramasdk.node()
    with pytest.raises(KeyError) as e:
        n.call({"data": np.zeros(1, np.float32)}, "model_node")
    assert "no model node named model_node" in str(e.value)


def test_runtime_error_is_a_runtime_error_with_its_message(fake):
    text = "model model_node: input data expects [1, 3, 300, 300] f32, got [1] f32"
    fake.on_infer = lambda fake, msg: fake.error_reply(msg.rid, 4, text)
    n = panoramasdk.node()
    with pytest.raises(RuntimeError) as e:
        n.call({"data": np.zeros(1, np.float32)}, "model_node")
    assert str(e.value) == text
    # The arena slot came back: more calls than slots still work.
    fake.on_infer = fake.echo_infer
    for _ in range(6):
        n.call({"data": np.zeros(1, np.float32)}, "model_node")


def test_bad_call_arguments(fake):
    n = panoramasdk.node()
    with pytest.raises(TypeError):
        n.call({"data": np.zeros(1, np.float32)})
    with pytest.raises(TypeError):
        n.call("model_node")


def test_two_threads_get_their_own_replies_out_of_order(fake):
    held = []

    def answer_in_reverse(fake, msg):
        held.append(msg)
        if len(held) == 2:
            for m in reversed(held):
                fake.echo_infer(fake, m)

    fake.on_infer = answer_in_reverse
    n = panoramasdk.node()
    results = {}
    errors = []

    def worker(value):
        try:
            results[value] = n.call({"data": np.full(4, value, np.float32)}, "model_node")
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(v,)) for v in (1.0, 10.0)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert not errors
    assert results[1.0][0][0] == 4.0 and results[10.0][0][0] == 40.0
    np.testing.assert_array_equal(results[10.0][1], np.full(4, 10.0, np.float32))


def test_many_threads_mixing_get_call_and_publish(fake):
    for _ in range(20):
        fake.get_replies.append([fake.frame(0, 0), fake.frame(1, 0)])
    n = panoramasdk.node()
    errors = []

    def caller(k):
        try:
            for i in range(15):
                (s, _) = n.call({"data": np.full(2, k * 100 + i, np.float32)}, "model_node")
                assert s[0] == 2 * (k * 100 + i)
        except Exception as e:
            errors.append(e)

    def getter():
        try:
            for _ in range(20):
                assert len(n.inputs.video_in.get()) == 2
                n.publish({"k": 1})
        except Exception as e:
            errors.append(e)

    threads = [threading.Thread(target=caller, args=(k,)) for k in range(4)] + [threading.Thread(target=getter)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert not errors


def test_time_out_gives_up_waiting_and_the_late_reply_is_dropped(fake):
    held = []
    fake.on_infer = lambda fake, msg: held.append(msg)
    n = panoramasdk.node()
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        n.call({"data": np.ones(2, np.float32)}, "model_node", 0.2)
    assert time.monotonic() - started < 2
    fake.on_infer = fake.echo_infer
    fake.echo_infer(fake, held[0])  # the late reply
    scores, _ = n.call({"data": np.full(2, 3, np.float32)}, "model_node")
    assert scores[0] == 6.0
