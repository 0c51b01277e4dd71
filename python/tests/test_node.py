"""Connecting, the two node styles, ports and parameters."""

import pytest

import panoramasdk
from conftest import HELLO


def test_subclass_without_super_init_is_wired(fake):
    class App(panoramasdk.node):
        def __init__(self):  # Panorama apps do not call super().__init__()
            self.threshold = self.inputs.threshold.get()

    app = App()
    assert app.threshold == pytest.approx(0.3)
    assert "video_in" in app.inputs and "video_out" in app.outputs
    fake.wait_for(lambda received: fake.hello is not None)
    assert fake.hello.kind == HELLO
    assert fake.hello.version == 1
    assert fake.hello.node == "code_node"


def test_plain_node_and_one_connection_per_process(fake):
    first = panoramasdk.node()
    second = panoramasdk.node()
    assert first.inputs is second.inputs  # the same session: hello was sent once
    assert first.inputs.site.get() == "dock 4"


def test_subclass_with_arguments_and_super_init(fake):
    class App(panoramasdk.node):
        def __init__(self, name, scale=2):
            super().__init__()
            self.name = name
            self.scale = scale

    app = App("x", scale=3)
    assert (app.name, app.scale) == ("x", 3)
    assert app.inputs.max_people.get() == 5


def test_parameters_have_their_declared_python_types(fake):
    fake.config["inputs"].append({"name": "half", "type": "float32", "value": 0.5})
    fake.config["inputs"].append({"name": "off", "type": "boolean", "value": False})
    n = panoramasdk.node()
    threshold = n.inputs.threshold.get()
    assert type(threshold) is float and threshold == 0.3  # the float32 0.3 reads back as the 0.3 written
    assert type(n.inputs.half.get()) is float and n.inputs.half.get() == 0.5
    value = n.inputs.max_people.get()
    assert type(value) is int and value == 5
    assert n.inputs.draw_boxes.get() is True
    assert n.inputs.off.get() is False
    assert type(n.inputs.site.get()) is str and n.inputs.site.get() == "dock 4"
    assert n.inputs.site.get(timeout=1.0) == "dock 4"


def test_unknown_port_lists_the_ports(fake):
    n = panoramasdk.node()
    with pytest.raises(AttributeError) as e:
        n.inputs.video
    assert "video_in" in str(e.value) and "threshold" in str(e.value)
    with pytest.raises(AttributeError) as e:
        n.outputs.hdmi
    assert "video_out" in str(e.value)
    assert n.inputs["site"].get() == "dock 4"
    with pytest.raises(KeyError):
        n.inputs["nope"]
    assert sorted(n.inputs) == ["draw_boxes", "max_people", "site", "threshold", "video_in"]


def test_missing_socket_says_to_use_vantage_run(vantage_env):
    panoramasdk._reset_for_tests()
    with pytest.raises(RuntimeError) as e:
        panoramasdk.node()
    assert "VANTAGE_SOCKET" in str(e.value)
    assert "vantage run APP_DIR" in str(e.value)


def test_unreachable_socket_is_a_clear_error(vantage_env, monkeypatch, tmp_path):
    panoramasdk._reset_for_tests()
    monkeypatch.setenv("VANTAGE_SOCKET", str(tmp_path / "nothing.sock"))
    with pytest.raises(RuntimeError) as e:
        panoramasdk.node()
    assert "cannot connect" in str(e.value) and "vantage run" in str(e.value)


def test_refused_hello_raises_the_runtime_message(fake):
    fake.hello_error = (1, "no code node named code_node in this application")
    with pytest.raises(RuntimeError) as e:
        panoramasdk.node()
    assert "no code node named code_node" in str(e.value)


def test_get_on_an_output_and_put_on_an_input_are_type_errors(fake):
    n = panoramasdk.node()
    with pytest.raises(TypeError):
        n.outputs.video_out.get()
    with pytest.raises(TypeError):
        n.inputs.video_in.put([])
