"""Frames: get, the shared-memory image, timeouts, the end of the sources, put and overlays."""

import numpy as np
import pytest

import panoramasdk
from conftest import GET, PUT


def test_get_returns_one_media_per_camera_in_config_order(fake):
    fake.get_replies.append([
        fake.frame(0, 1, micros=1700000000123456),
        fake.frame(1, 2, micros=1700000001000001, cached=True),
    ])
    n = panoramasdk.node()
    streams = n.inputs.video_in.get()
    assert isinstance(streams, list) and len(streams) == 2
    a, b = streams
    assert isinstance(a, panoramasdk.media)
    assert (a.stream_id, a.stream_uri) == ("cam_a", "rtsp://10.0.0.5/stream1")
    assert (b.stream_id, b.stream_uri) == ("cam_b", "file:///videos/b.mp4")
    assert a.time_stamp == (1700000000, 123456)
    assert b.time_stamp == (1700000001, 1)
    assert all(type(v) is int for v in a.time_stamp)
    assert a.is_cached is False and b.is_cached is True
    (get,) = fake.messages(GET)
    assert (get.port, get.timeout_millis, get.images) == ("video_in", -1, True)
    assert get.rid != 0


def test_image_is_a_writable_view_of_shared_memory(fake):
    stride = 64 * 3 + 16  # padded rows
    fake.get_replies.append([fake.frame(0, 2, width=64, height=48, stride=stride), fake.frame(1, 0)])
    pixels = fake.cameras[0].pixels(2, 64, 48, stride)
    pixels[...] = 0
    pixels[10, 20] = (1, 2, 3)  # B, G, R
    n = panoramasdk.node()
    stream = n.inputs.video_in.get()[0]
    img = stream.image
    assert img.shape == (48, 64, 3) and img.dtype == np.uint8
    assert img.strides == (stride, 3, 1)
    assert tuple(img[10, 20]) == (1, 2, 3)
    pixels[5, 5] = (9, 9, 9)  # the runtime writes: the SDK sees it (no copy)
    assert tuple(img[5, 5]) == (9, 9, 9)
    img[0:2, 0:4] = 255  # the application draws: the runtime sees it
    assert (pixels[0:2, 0:4] == 255).all()
    assert stream.image is img


def test_replaced_image_is_copied_into_the_frame_on_put(fake):
    fake.get_replies.append([fake.frame(0, 0), fake.frame(1, 0)])
    n = panoramasdk.node()
    streams = n.inputs.video_in.get()
    streams[0].image = np.full((48, 64, 3), 7, dtype=np.uint8)
    n.outputs.video_out.put(streams)
    fake.wait_for(lambda r: any(m.kind == PUT for m in r))
    assert (fake.cameras[0].pixels(0, 64, 48, 64 * 3) == 7).all()


def test_timeout_raises_timeout_error(fake):
    fake.get_replies.append("timeout")
    n = panoramasdk.node()
    with pytest.raises(TimeoutError):
        n.inputs.video_in.get(timeout=0.25)
    (get,) = fake.messages(GET)
    assert get.timeout_millis == 250


def test_end_of_sources_exits_zero(fake, capsys):
    fake.get_replies.append("end")
    n = panoramasdk.node()
    with pytest.raises(SystemExit) as e:
        n.inputs.video_in.get()
    assert e.value.code == 0
    assert "every source of video_in has ended; exiting" in capsys.readouterr().err


def test_put_empty_list_is_a_value_error(fake):
    n = panoramasdk.node()
    with pytest.raises(ValueError) as e:
        n.outputs.video_out.put([])
    assert "get()" in str(e.value)


def test_put_on_a_non_media_output_is_a_type_error(fake):
    fake.get_replies.append([fake.frame(0, 0), fake.frame(1, 0)])
    n = panoramasdk.node()
    streams = n.inputs.video_in.get()
    with pytest.raises(TypeError):
        n.outputs.count_out.put(streams)


def test_put_sends_frame_refs_and_overlays(fake):
    fake.get_replies.append([fake.frame(0, 1, sequence=41), fake.frame(1, 2, sequence=42)])
    n = panoramasdk.node()
    a, b = n.inputs.video_in.get()
    a.add_rect(0.1, 0.2, 0.5, 0.75)
    a.add_label("person 93%", 0.1, 0.18)
    a.add_rect(0.0, 0.0, 1.0, 1.0, color=0xFF0000)
    b.add_label("cam b", 0.5, 0.5, color=0x123456)
    n.outputs.video_out.put([a, b])
    fake.wait_for(lambda r: any(m.kind == PUT for m in r))
    (put,) = fake.messages(PUT)
    assert put.port == "video_out" and put.rid != 0
    (ref_a, over_a), (ref_b, over_b) = put.frames
    assert ref_a == (0, 1, 41) and ref_b == (1, 2, 42)
    rect, label, red = over_a
    assert rect["kind"] == 1 and rect["color"] == 0x00FF00 and rect["text"] == ""
    assert (rect["x0"], rect["y0"], rect["x1"], rect["y1"]) == pytest.approx((0.1, 0.2, 0.5, 0.75))
    assert label["kind"] == 2 and label["text"] == "person 93%" and label["color"] == 0xFFFFFF
    assert (label["x0"], label["y0"]) == pytest.approx((0.1, 0.18))
    assert red["color"] == 0xFF0000
    assert over_b == [dict(kind=2, x0=pytest.approx(0.5), y0=pytest.approx(0.5), x1=pytest.approx(0.5),
                           y1=pytest.approx(0.5), color=0x123456, text="cam b")]


def test_put_error_is_printed_and_the_connection_goes_on(fake, capfd):
    def refuse(fake, msg):
        fake.error_reply(msg.rid, 5, "frame 1 of camera 0 is no longer held")

    fake.on_put = refuse
    fake.get_replies.append([fake.frame(0, 0), fake.frame(1, 0)])
    fake.get_replies.append([fake.frame(0, 1), fake.frame(1, 1)])
    n = panoramasdk.node()
    streams = n.inputs.video_in.get()
    n.outputs.video_out.put(streams)
    again = n.inputs.video_in.get()  # reads the put's error on the way
    assert [s.stream_id for s in again] == ["cam_a", "cam_b"]
    err = capfd.readouterr().err
    assert "video_out.put()" in err and "no longer held" in err


def test_get_with_images_false_is_sent_and_image_refuses(fake):
    fake.get_replies.append([fake.frame(0, 0), fake.frame(1, 0)])
    n = panoramasdk.node()
    streams = n.inputs.video_in.get(images=False)
    assert fake.messages(GET)[0].images is False
    with pytest.raises(RuntimeError):
        streams[0].image


def test_bad_overlay_color_is_rejected(fake):
    fake.get_replies.append([fake.frame(0, 0), fake.frame(1, 0)])
    n = panoramasdk.node()
    s = n.inputs.video_in.get()[0]
    with pytest.raises(ValueError):
        s.add_rect(0, 0, 1, 1, color=0x1000000)
    with pytest.raises(TypeError):
        s.add_label("x", 0, 0, color="red")


def test_runtime_closing_the_connection_is_an_error_not_a_hang(fake):
    n = panoramasdk.node()
    original = fake.handle

    def handle(msg):  # the runtime goes away while the application waits for frames
        if msg.kind == GET:
            fake.connection.shutdown(2)
            return
        original(msg)

    fake.handle = handle
    with pytest.raises(RuntimeError) as e:
        n.inputs.video_in.get()
    assert "closed the connection" in str(e.value)
    with pytest.raises(RuntimeError):  # and stays an error, without waiting
        n.call({"data": np.zeros(1, np.float32)}, "model_node")

