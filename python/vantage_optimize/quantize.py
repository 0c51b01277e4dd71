"""INT8 post-training quantization of one model with NNCF, and its check against the original (FP32).

Steps (each reported on standard error as `optimize: …`):
1. Frames: FFmpeg reads the video file (evenly spread over its length) or camera URL (`--sample-fps` frames a second)
   and scales them as the runtime does: swscale, bilinear, straight to the model input's size, in its colour order.
   The first `--frames` are the calibration set; the `--held-out` after them (later in the video) check the result.
2. Each frame becomes the model's input as the runtime's fused pre-processing makes it: the layout (NHWC or NCHW),
   the element type of the model's input and the descriptor's `(pixel - mean) / scale`.
3. `nncf.quantize` on the calibration frames; the result is saved as OpenVINO IR (`--output`, `.xml` + `.bin`).
4. The original and the INT8 model run on the held-out frames: detections (the `ssd` and `yolo` decoders) are matched
   per class at IoU >= `--iou` among those scoring >= `--min-score`, and the INT8 model's recall and precision against
   the original's are reported; `classification` reports top-1 agreement, `raw` the outputs' cosine similarity.
5. Both run for `--bench-seconds` each, in short runs alternating between them, with OpenVINO's THROUGHPUT hint:
   inferences per second on this CPU in the same run (the median of each model's runs), with the CPU's INT8
   instructions and the kernels OpenVINO chose.

The result (the report, or `{"error": "..."}` with what to do) is written as JSON to `--result`; exit status 0 or 2.
"""

import argparse
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import time


class OptimizeError(Exception):
    """A failure the user can act on; its message says what to do."""


def progress(message):
    print(f"optimize: {message}", file=sys.stderr, flush=True)


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python3 -m vantage_optimize", description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="the model file (.pb, .onnx, .tflite, .xml, .pdmodel)")
    parser.add_argument("--spec", required=True, help="the model's vantage block (JSON), its frame input resolved")
    parser.add_argument("--video", required=True, help="a video file or camera URL")
    parser.add_argument("--frames", type=int, default=300, help="calibration frames")
    parser.add_argument("--held-out", type=int, default=100, help="frames after them that check the result")
    parser.add_argument("--output", required=True, help="the INT8 model's .xml (its .bin goes beside it)")
    parser.add_argument("--result", required=True, help="where the JSON report (or error) is written")
    parser.add_argument("--min-score", type=float, default=0.5)
    parser.add_argument("--iou", type=float, default=0.5)
    parser.add_argument("--bench-seconds", type=float, default=3.0)
    parser.add_argument("--sample-fps", type=float, default=2.0, help="frames a second taken from a camera URL")
    parser.add_argument("--preset", choices=["performance", "mixed"], default="mixed")
    parser.add_argument("--device", default="CPU")
    return parser.parse_args(argv)


def main(argv):
    args = parse_args(argv)
    try:
        report = run(args)
        result = {"report": report}
        status = 0
    except OptimizeError as error:
        result = {"error": str(error)}
        status = 2
    with open(args.result, "w") as f:
        json.dump(result, f, indent=2)
    return status


# MARK: - Frames


LIVE = re.compile(r"^(rtsp|rtsps|rtmp|http|https|udp|tcp|srt)://", re.IGNORECASE)


def redact(source):
    return re.sub(r"://[^/@]*@", "://***@", source)


def read_frames(source, width, height, order, count, sample_fps):
    """Up to `count` frames of `width`×`height`, uint8 HWC in `order` (RGB or BGR), evenly spread over a file."""
    import numpy as np

    if shutil.which("ffmpeg") is None:
        raise OptimizeError("ffmpeg is not installed: run make setup (it installs Debian's ffmpeg)")
    live = LIVE.match(source) is not None
    input_options = []
    if live:
        rate = sample_fps
        if source.lower().startswith("rtsp"):
            input_options = ["-rtsp_transport", "tcp"]
    else:
        duration = probe_duration(source)
        rate = count / duration if duration else sample_fps
    pixel_format = "rgb24" if order == "RGB" else "bgr24"
    filters = f"fps={rate:.6f},scale={width}:{height}:flags=bilinear,format={pixel_format}"
    command = ["ffmpeg", "-nostdin", "-v", "error", *input_options, "-i", source, "-vf", filters,
               "-frames:v", str(count), "-f", "rawvideo", "-pix_fmt", pixel_format, "pipe:1"]
    limit = max(120.0, count / max(rate, 0.1) * 3) if live else None
    try:
        process = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=limit)
    except subprocess.TimeoutExpired:
        raise OptimizeError(
            f"{redact(source)} did not give {count} frames in {limit:.0f} s: check that the camera streams, or ask "
            "for fewer frames (--frames, --held-out) or more a second (--sample-fps)") from None
    size = width * height * 3
    frames = [np.frombuffer(process.stdout, np.uint8, size, i * size).reshape(height, width, 3)
              for i in range(len(process.stdout) // size)]
    if not frames:
        why = process.stderr.decode(errors="replace").strip().splitlines()
        raise OptimizeError(
            f"FFmpeg read no frames from {redact(source)}"
            + (f" ({why[-1].replace(source, redact(source))})" if why else "")
            + ": give a video file FFmpeg can play or a reachable camera URL")
    return frames


def probe_duration(source):
    try:
        out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", source],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=60).stdout.decode().strip()
        return float(out) if out and float(out) > 0 else None
    except (ValueError, subprocess.TimeoutExpired, FileNotFoundError):
        return None


# MARK: - Model inputs


class InputPlan:
    """How a frame becomes the model's input, as the runtime's FramePlan and fused pre-processing make it."""

    def __init__(self, model, spec):
        inputs = model.inputs
        specs = spec.get("inputs") or []
        name = (specs[0].get("name") if specs else None) or inputs[0].get_any_name()
        matches = [i for i, port in enumerate(inputs) if name in port.get_names()]
        if len(inputs) != 1 or not matches:
            names = ", ".join(port.get_any_name() for port in inputs)
            raise OptimizeError(
                f"the model has inputs {names} and a frame fills only one: only models with one image input can be "
                "calibrated on video")
        port = inputs[0]
        entry = specs[0] if specs else {}
        shape = port.get_partial_shape()
        dims = [d.get_length() if d.is_static else None for d in shape] if shape.rank.is_static else [None] * 4
        if len(dims) != 4:
            raise OptimizeError(
                f"input '{name}' has {len(dims)} dimensions, not an image input (NHWC or NCHW): only models with an "
                "image input can be calibrated on video")
        declared = (entry.get("layout") or "").upper()
        self.layout = declared or ("NCHW" if dims[1] == 3 and dims[3] != 3 else "NHWC")
        self.name = name
        self.width = entry.get("width")
        self.height = entry.get("height")
        if not self.width or not self.height:
            h, w = (dims[1], dims[2]) if self.layout == "NHWC" else (dims[2], dims[3])
            if not h or not w:
                raise OptimizeError(
                    f"input '{name}' has a dynamic size: give --descriptor (the model package's descriptor.json) or "
                    "--size WIDTHxHEIGHT")
            self.width, self.height = w, h
        self.order = (entry.get("colorOrder") or "RGB").upper()
        self.mean = entry.get("mean")
        self.scale = entry.get("scale")
        self.element_type = port.get_element_type()
        self.dtype = self.element_type.to_dtype()
        floating = self.element_type.is_real()
        self.convert = self.mean is not None or self.scale is not None or floating

    def tensor(self, frame):
        import numpy as np

        x = frame
        if self.convert:
            x = x.astype(np.float32)
            if self.mean is not None:
                x = x - np.asarray(self.mean if len(self.mean) == 3 else self.mean * 3, np.float32)
            if self.scale is not None:
                x = x / np.asarray(self.scale if len(self.scale) == 3 else self.scale * 3, np.float32)
        if self.layout == "NCHW":
            x = x.transpose(2, 0, 1)
        return np.ascontiguousarray(x[None].astype(self.dtype, copy=False))

    def describe(self):
        return {"name": self.name, "width": self.width, "height": self.height, "colorOrder": self.order,
                "layout": self.layout, "elementType": str(self.element_type.get_type_name())}


# MARK: - Comparing outputs


def output_index(model, name):
    for i, port in enumerate(model.outputs):
        if name in port.get_names():
            return i
    return None


class Comparison:
    """Decodes both models' outputs as the runtime's decoder would and compares the INT8 model with the original."""

    def __init__(self, model, decoder, min_score, iou):
        self.kind = decoder.get("type", "raw")
        self.labels = decoder.get("labels") or []
        self.min_score = min_score
        self.iou = iou
        names = [port.get_names() for port in model.outputs]
        if self.kind == "raw" and any("detection_boxes:0" in n for n in names):
            self.kind = "ssd"  # a TF object-detection API model given without a descriptor
        if self.kind == "ssd":
            wanted = [decoder.get("boxes") or "detection_boxes:0", decoder.get("classes") or "detection_classes:0",
                      decoder.get("scores") or "detection_scores:0", decoder.get("count") or "num_detections:0"]
            self.ssd = [output_index(model, n) for n in wanted]
            if None in self.ssd:
                missing = [n for n, i in zip(wanted, self.ssd) if i is None]
                raise OptimizeError(f"the ssd decoder's outputs {', '.join(missing)} are not in the model: fix the "
                                    "decoder's output names in the descriptor")
        elif self.kind in ("yolo", "classification"):
            named = decoder.get("output")
            self.output = output_index(model, named) if named else 0
            if self.output is None:
                raise OptimizeError(f"the decoder's output '{named}' is not in the model: fix it in the descriptor")
            self.version = decoder.get("version")
            self.nms_iou = decoder.get("iouThreshold") or 0.45  # (softmax does not change the top class)
        self.reference = []
        self.candidate = []

    def add(self, fp32, int8):
        self.reference.append(self.decode(fp32))
        self.candidate.append(self.decode(int8))

    def decode(self, outputs):
        import numpy as np

        if self.kind == "ssd":
            boxes, classes, scores, count = (np.asarray(outputs[i]) for i in self.ssd)
            n = int(count.reshape(-1)[0])
            keep = scores[0, :n] >= self.min_score
            return [(int(c), float(s), tuple(float(v) for v in b))
                    for b, c, s in zip(boxes[0, :n][keep], classes[0, :n][keep], scores[0, :n][keep])]
        if self.kind == "yolo":
            return self.decode_yolo(np.asarray(outputs[self.output], np.float32))
        if self.kind == "classification":
            scores = np.asarray(outputs[self.output], np.float32).reshape(-1)
            return int(scores.argmax())
        return [np.asarray(o, np.float32).reshape(-1) for o in outputs]

    def decode_yolo(self, output):
        import numpy as np

        m = output.reshape(output.shape[-2], output.shape[-1])
        version = self.version or ("v8" if m.shape[0] < m.shape[1] else "v5")
        if version == "v8":
            m = m.T
            class_scores = m[:, 4:]
        else:
            class_scores = m[:, 5:] * m[:, 4:5]
        classes = class_scores.argmax(1)
        scores = class_scores[np.arange(len(m)), classes]
        keep = scores >= self.min_score
        cx, cy, w, h = (m[keep, i] for i in range(4))
        boxes = np.stack([cy - h / 2, cx - w / 2, cy + h / 2, cx + w / 2], 1)
        found = sorted(zip(classes[keep].tolist(), scores[keep].tolist(), map(tuple, boxes.tolist())),
                       key=lambda d: -d[1])
        kept = []
        for d in found:  # per-class NMS, as the runtime's decoder does
            if all(k[0] != d[0] or iou(k[2], d[2]) <= self.nms_iou for k in kept):
                kept.append(d)
        return kept

    def summary(self):
        if self.kind in ("ssd", "yolo"):
            return self.detection_summary()
        if self.kind == "classification":
            agree = sum(a == b for a, b in zip(self.reference, self.candidate))
            return {"kind": "classification", "frames": len(self.reference),
                    "top1Agreement": agree / max(1, len(self.reference))}
        import numpy as np

        sims = []
        for ref, cand in zip(self.reference, self.candidate):
            for a, b in zip(ref, cand):
                denominator = float(np.linalg.norm(a) * np.linalg.norm(b))
                sims.append(float(a @ b) / denominator if denominator else float(np.array_equal(a, b)))
        return {"kind": "raw", "frames": len(self.reference), "cosineSimilarity": sum(sims) / max(1, len(sims))}

    def detection_summary(self):
        summary = compare_detections(self.reference, self.candidate, self.iou, self.labels)
        return {"kind": "detection", "frames": len(self.reference), "minScore": self.min_score, "iou": self.iou,
                **summary}


def compare_detections(reference, candidate, threshold, labels=()):
    """Per class and in all: the original's detections (`reference`, one list per frame of `(class, score, box)`),
    the INT8 model's (`candidate`), how many of these match one of those (same class, IoU >= `threshold`, one to
    one), recall (matched / original) and precision (matched / INT8)."""
    per_class = {}
    for ref, cand in zip(reference, candidate):
        for c in {d[0] for d in ref} | {d[0] for d in cand}:
            r = [d for d in ref if d[0] == c]
            k = sorted((d for d in cand if d[0] == c), key=lambda d: -d[1])
            entry = per_class.setdefault(c, [0, 0, 0])
            entry[0] += len(r)
            entry[1] += len(k)
            entry[2] += match(r, k, threshold)
    classes = []
    for c in sorted(per_class):
        fp32, int8, matched = per_class[c]
        label = labels[c] if 0 <= c < len(labels) else None
        classes.append({"id": c, "label": label, "fp32": fp32, "int8": int8, "matched": matched,
                        "recall": ratio(matched, fp32), "precision": ratio(matched, int8)})
    fp32 = sum(c["fp32"] for c in classes)
    int8 = sum(c["int8"] for c in classes)
    matched = sum(c["matched"] for c in classes)
    return {"fp32": fp32, "int8": int8, "matched": matched, "recall": ratio(matched, fp32),
            "precision": ratio(matched, int8), "classes": classes}


def ratio(a, b):
    return a / b if b else 1.0


def iou(a, b):
    ymin, xmin = max(a[0], b[0]), max(a[1], b[1])
    ymax, xmax = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, ymax - ymin) * max(0.0, xmax - xmin)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def match(reference, candidates, threshold):
    """Greedy one-to-one matching, highest-scoring candidate first, each to its best free reference box."""
    free = list(range(len(reference)))
    matched = 0
    for cand in candidates:
        best, best_iou = None, threshold
        for i in free:
            overlap = iou(reference[i][2], cand[2])
            if overlap >= best_iou:
                best, best_iou = i, overlap
        if best is not None:
            free.remove(best)
            matched += 1
    return matched


# MARK: - CPU, precision, speed


def cpu_features(core, device):
    flags = set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    amx = {"amx_tile", "amx_int8"} <= flags
    vnni512 = "avx512_vnni" in flags
    vnni = "avx_vnni" in flags
    best = ("AMX" if amx else "AVX512-VNNI" if vnni512 else "AVX-VNNI" if vnni
            else "AVX512 (no VNNI)" if "avx512f" in flags else "AVX2 (no VNNI)" if "avx2" in flags else "SSE4.1")
    try:
        capabilities = list(core.get_property(device, "OPTIMIZATION_CAPABILITIES"))
        name = str(core.get_property(device, "FULL_DEVICE_NAME"))
    except Exception:  # noqa: BLE001 - a device without these properties still runs
        capabilities, name = [], device
    return {"name": name, "cores": os.cpu_count(), "amx": amx, "avx512Vnni": vnni512, "avxVnni": vnni,
            "avx512Bf16": "avx512_bf16" in flags, "amxBf16": "amx_bf16" in flags, "int8Instructions": best,
            "openvinoCapabilities": capabilities}


def runtime_precision(compiled):
    """What the compiled model runs in: OpenVINO's execution graph gives each layer its precision and kernel."""
    from collections import Counter

    heavy = {"Convolution", "GroupConvolution", "FullyConnected", "MatMul", "Deconvolution"}
    total, int8, kernels = 0, 0, Counter()
    try:
        for op in compiled.get_runtime_model().get_ops():
            info = op.get_rt_info()
            layer = str(info["layerType"].astype(str)) if "layerType" in info else ""
            if layer not in heavy:
                continue
            total += 1
            precision = str(info["runtimePrecision"].astype(str)).lower() if "runtimePrecision" in info else ""
            if precision in ("i8", "u8"):
                int8 += 1
            if "primitiveType" in info:
                kernels[str(info["primitiveType"].astype(str))] += 1
    except Exception:  # noqa: BLE001 - an older plugin without the execution graph: report no layers
        pass
    try:
        hint = {"f32": "FP32", "bf16": "BF16", "f16": "FP16"}.get(
            compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name(), "unknown")
    except Exception:  # noqa: BLE001
        hint = "unknown"
    return {"inferencePrecision": hint, "layers": total, "int8Layers": int8,
            "kernels": [{"kernel": k, "layers": n} for k, n in kernels.most_common(4)]}


def throughput(compiled, inputs, seconds):
    import openvino as ov

    requests = max(2, int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")))
    queue = ov.AsyncInferQueue(compiled, requests)
    for i in range(requests * 2):  # warm-up
        queue.start_async({0: inputs[i % len(inputs)]})
    queue.wait_all()
    done = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        queue.start_async({0: inputs[done % len(inputs)]})
        done += 1
    queue.wait_all()
    return done / (time.perf_counter() - start), requests


def count_fake_quantize(model):
    return sum(op.get_type_name() == "FakeQuantize" for op in model.get_ops())


# MARK: - The whole run


def run(args):
    started = time.perf_counter()
    try:
        import nncf
        import numpy as np  # noqa: F401
        import openvino as ov
    except ImportError as error:
        raise OptimizeError(
            f"NNCF or OpenVINO for Python is not installed ({error}): run make setup (it installs them into "
            ".deps/nncf), or set VANTAGE_NNCF_PACKAGES to a folder holding nncf and openvino") from None
    import logging

    nncf.set_log_level(logging.WARNING)
    spec = json.loads(args.spec)
    core = ov.Core()
    progress(f"reading {args.model} with OpenVINO {ov.__version__}")
    try:
        model = core.read_model(args.model)
    except Exception as error:  # noqa: BLE001 - OpenVINO's own message follows
        raise OptimizeError(f"OpenVINO cannot read {args.model}: {str(error).splitlines()[0]}") from None
    already = count_fake_quantize(model)
    if already:
        raise OptimizeError(f"{args.model} is already quantized ({already} FakeQuantize operations): optimize the "
                            "original FP32 model instead")
    plan = InputPlan(model, spec)
    comparison = Comparison(model, spec.get("decoder") or {}, args.min_score, args.iou)

    wanted = args.frames + args.held_out
    progress(f"reading {wanted} frames from {redact(args.video)} ({plan.width}x{plan.height} {plan.order}, "
             "scaled as the runtime does)")
    frames = read_frames(args.video, plan.width, plan.height, plan.order, wanted, args.sample_fps)
    if len(frames) < 4:
        raise OptimizeError(f"{redact(args.video)} gave only {len(frames)} frames: calibrate with a longer video")
    calibration_count = len(frames) if args.held_out == 0 else \
        max(1, min(len(frames) - 1, round(len(frames) * args.frames / wanted)))
    if len(frames) < wanted:
        progress(f"the video gave {len(frames)} frames of the {wanted} asked for: {calibration_count} calibrate, "
                 f"{len(frames) - calibration_count} check")
    tensors = [plan.tensor(frame) for frame in frames]
    calibration, held_out = tensors[:calibration_count], tensors[calibration_count:]

    progress(f"quantizing with NNCF {nncf.__version__} on {len(calibration)} frames ({args.preset} preset)")
    quantize_started = time.perf_counter()
    preset = nncf.QuantizationPreset.MIXED if args.preset == "mixed" else nncf.QuantizationPreset.PERFORMANCE
    try:
        quantized = nncf.quantize(model, nncf.Dataset(calibration), subset_size=len(calibration), preset=preset)
    except Exception as error:  # noqa: BLE001 - NNCF's message follows
        raise OptimizeError(f"NNCF could not quantize the model: {str(error).splitlines()[0]}") from None
    quantize_seconds = time.perf_counter() - quantize_started
    output = os.path.abspath(args.output)
    os.makedirs(os.path.dirname(output), exist_ok=True)
    ov.save_model(quantized, output)
    fake_quantize = count_fake_quantize(quantized)
    progress(f"quantized in {quantize_seconds:.1f} s: {fake_quantize} FakeQuantize operations")

    progress(f"comparing INT8 with the original on {len(held_out)} held-out frames")
    properties = {"PERFORMANCE_HINT": "THROUGHPUT"}
    fp32 = core.compile_model(args.model, args.device, properties)
    int8 = core.compile_model(output, args.device, properties)
    fp32_request, int8_request = fp32.create_infer_request(), int8.create_infer_request()
    for tensor in held_out:
        a = [np.copy(v) for v in fp32_request.infer({0: tensor}).values()]
        b = [np.copy(v) for v in int8_request.infer({0: tensor}).values()]
        comparison.add(a, b)
    accuracy = comparison.summary()

    # The original as the runtime compiles it, which on a CPU with BF16 (AVX512-BF16, AMX) already runs in BF16;
    # then also in strict FP32, so the report shows what INT8 gains against each.
    models = {"fp32": fp32, "int8": int8}
    if runtime_precision(fp32)["inferencePrecision"] != "FP32":
        models["fp32Strict"] = core.compile_model(args.model, args.device, {**properties,
                                                                            "INFERENCE_PRECISION_HINT": "f32"})
    # Short runs, alternating between the models, so that both see the same share of whatever else the machine does;
    # each model's figure is the median of its runs.
    rounds = max(3, math.ceil(args.bench_seconds / 0.5))
    per_run = args.bench_seconds / rounds
    progress(f"measuring speed: {args.bench_seconds:g} s per model ({', '.join(models)}), in {rounds} alternating "
             f"runs of {per_run:.2g} s")
    rates = {name: [] for name in models}
    requests = 0
    for _ in range(rounds):
        for name, compiled in models.items():
            rate, requests = throughput(compiled, held_out or calibration, per_run)
            rates[name].append(rate)
    speed = {"device": args.device, "hint": "THROUGHPUT", "requests": requests, "secondsPerRun": per_run}
    for name, compiled in models.items():
        speed[name] = {"inferencesPerSecond": statistics.median(rates[name]), "runs": rates[name],
                       **runtime_precision(compiled)}
    speed["speedup"] = speed["int8"]["inferencesPerSecond"] / max(1e-9, speed["fp32"]["inferencesPerSecond"])

    return {
        "model": os.path.abspath(args.model),
        "output": output,
        "weights": os.path.splitext(output)[0] + ".bin",
        "precision": "INT8",
        "video": redact(args.video),
        "calibrationFrames": len(calibration),
        "heldOutFrames": len(held_out),
        "input": plan.describe(),
        "decoder": comparison.kind,
        "accuracy": accuracy,
        "speed": speed,
        "cpu": cpu_features(core, args.device),
        "fakeQuantize": fake_quantize,
        "preset": args.preset,
        "quantizeSeconds": quantize_seconds,
        "totalSeconds": time.perf_counter() - started,
        "nncf": nncf.__version__,
        "openvino": ov.__version__.split("-")[0],
    }
