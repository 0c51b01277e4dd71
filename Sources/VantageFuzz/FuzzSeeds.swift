import Foundation
import VantageProtocol

/// The seed inputs of each target: valid documents and messages that reach deep into each parser, so that
/// mutations start from something the parser mostly accepts. `vantage-fuzz --write-seeds DIR` writes them to
/// `DIR/<target>/`; Tests/FuzzCorpus holds them with the crashers found since.
public enum FuzzSeeds {
    /// File name → bytes, for the target called `name`.
    public static func seeds(for name: String) -> [String: [UInt8]] {
        switch name {
        case "protocol": protocolSeeds()
        case "graph":
            text([
                "scratch-project": ScratchProject.files[ScratchProject.graph]!, "overrides-in-graph": overridesInGraph,
            ])
        case "package":
            text([
                "code-package": ScratchProject.files[ScratchProject.codePackage]!,
                "camera-package": ScratchProject.files[ScratchProject.cameraPackage]!,
                "model-package-shape": ScratchProject.files[ScratchProject.modelPackage]!,
            ])
        case "descriptor":
            text([
                "model-descriptor": ScratchProject.files[ScratchProject.modelDescriptor]!,
                "neo-descriptor": neoDescriptor, "yolo-descriptor": yoloDescriptor,
            ])
        case "overrides":
            text(["replace-camera": OverridesDocumentTarget.example, "with-outputs": overridesWithOutputs])
        case "arguments": text(["all-kinds": arguments])
        case "outputs": text(["full": outputsFull, "sinks": outputsSinks, "events-only": outputsEvents])
        default: [:]
        }
    }

    private static func text(_ files: [String: String]) -> [String: [UInt8]] {
        files.mapValues { Array($0.utf8) }
    }

    // MARK: App protocol

    private static func protocolSeeds() -> [String: [UInt8]] {
        let ref = FrameRef(camera: 0, slot: 1, sequence: 42)
        let overlays = [
            OverlayItem.rect(0.1, 0.2, 0.3, 0.4, color: 0xFF0000), OverlayItem.label("person 0.91", 0.1, 0.18),
        ]
        let tensors = AppInferRequest.Input.tensors([
            AppTensorInput(
                name: "images", elementType: .f32, shape: [1, 3, 64, 64], slot: 0, byteCount: 4 * 3 * 64 * 64,
                arenaOffset: 0),
            AppTensorInput(name: "scale", elementType: .i64, shape: [1], slot: 1, byteCount: 8, arenaOffset: 0),
        ])
        let requests: [String: AppRequest] = [
            "hello": .hello(protocolVersion: appProtocolVersion, node: "code_node"),
            "get": .get(AppGetRequest(port: "video_in", timeoutMillis: 5000, wantsImages: true)),
            "get-forever": .get(AppGetRequest(port: "video_in", timeoutMillis: nil, wantsImages: false)),
            "put": .put(
                AppPutRequest(
                    port: "video_out",
                    frames: [
                        AppFrameOverlays(ref: ref, overlays: 0..<2),
                        AppFrameOverlays(ref: FrameRef(camera: 1, slot: 0, sequence: 7), overlays: 2..<2),
                    ], overlays: overlays)),
            "infer-frame": .infer(AppInferRequest(model: "model_node", wants: [.decoded], input: .frame(ref))),
            "infer-tensors": .infer(AppInferRequest(model: "model_node", wants: [.decoded, .tensors], input: tensors)),
            "event": .event(AppEventRequest(json: #"{"type":"count","people":3}"#, snapshot: nil, overlays: [])),
            "event-snapshot": .event(
                AppEventRequest(json: #"{"type":"crowd","people":9}"#, snapshot: ref, overlays: overlays)),
            "bye": .bye,
        ]
        var seeds: [String: [UInt8]] = [:]
        for (name, request) in requests {
            seeds[name] = AppRequestEncoding.message(request)
        }
        // A session: hello, then one of each, in order, as one stream.
        seeds["session"] = ["hello", "get", "put", "infer-frame", "infer-tensors", "event-snapshot", "bye"].enumerated()
            .flatMap { index, name in AppRequestEncoding.message(requests[name]!, requestId: UInt32(index + 1)) }
        return seeds
    }

    // MARK: Manifests

    private static let overridesInGraph = """
        {"nodeGraphOverrides": {"envelopeVersion": "2021-01-01", "nodeOverrides": []}}
        """

    private static let neoDescriptor = """
        {
            "mlModelDescriptor": {
                "envelopeVersion": "2021-01-01",
                "framework": "PYTORCH",
                "frameworkVersion": "1.8",
                "precisionMode": "FP16",
                "inputs": [{"name": "x", "shape": [4, 3, 224, 224]}]
            }
        }
        """

    private static let yoloDescriptor = """
        {
            "mlModelDescriptor": {
                "envelopeVersion": "2021-01-01",
                "framework": "ONNX",
                "inputs": [{"name": "images", "shape": [1, 3, 640, 640]}]
            },
            "vantage": {
                "file": "models/yolo.onnx",
                "inputs": [{"name": "images", "layout": "NCHW", "elementType": "f32", "colorOrder": "RGB",
                            "width": 640, "height": 640, "scale": 0.00392156862745098, "mean": [0, 0, 0]}],
                "decoder": {"type": "yolo", "minScore": 0.25, "iouThreshold": 0.45, "labels": ["person", "car"]}
            }
        }
        """

    private static let overridesWithOutputs = """
        {
            "nodeGraphOverrides": {
                "envelopeVersion": "2021-01-01",
                "nodes": [{"name": "threshold", "interface": "float32", "value": 0.7}],
                "nodeOverrides": [{"replace": "min_score", "with": [{"name": "threshold"}]}],
                "edges": [],
                "networkRoutingRules": [{"node": "code_node", "containerPort": 8081}],
                "outputs": {"sinks": {"alerts": {"type": "webhook", "url": "https://example.com/hook"}}}
            }
        }
        """

    private static let arguments = """
        c camera_node=rtsp://admin:secret@192.168.1.20:554/stream1
        c camera_node=file:/dev/null
        c lobby=rtsps://cam.example.com/live?user=admin&pwd=hunter22
        p min_score=0.75
        p max_people=12
        p verbose=true
        p model_name=model_node
        m model_node=/tmp/model.onnx
        192.168.1.20:554/stream
        http://cam.example.com/mjpeg
        """

    // MARK: Outputs

    private static let outputsFull = """
        {
          "description": "people at the dock",
          "events": {"maxAge": "7d", "maxSize": "2GB", "clips": {"preRoll": 5, "postRoll": "3s"},
                     "snapshotOverlays": true},
          "analytics": [{
            "name": "people", "camera": "camera_node", "model": "model_node", "classes": ["person", 1],
            "minScore": 0.1,
            "tracker": {"highScore": 0.5, "lowScore": 0.1, "newTrackScore": 0.6, "matchIoU": 0.2, "confirmFrames": 3,
                        "maxLostSeconds": 1.5},
            "zones": [{"name": "dock", "polygon": [[0.1, 0.5], [0.5, 0.5], [0.5, 1], [0.1, 1]], "classes": [1],
                       "dwell": "30s"}],
            "lines": [{"name": "door", "from": [0.0, 0.6], "to": [1.0, 0.6], "classes": [1]}],
            "objectEvents": true
          }],
          "sinks": {
            "alerts": {"type": "mqtt", "url": "mqtts://broker:8883", "topic": "vantage/{device}/{camera}/{type}",
                       "qos": 1, "username": "edge", "password": "${MQTT_PASSWORD}", "keepAlive": 30}
          },
          "rules": [{"name": "dock", "when": {"type": ["zone.*", "line.cross"], "camera": "camera_node",
                     "payload": {"zone": "dock", "box.score": {">=": 0.5}, "label": {"in": ["person"]}}},
                     "send": ["alerts"], "snapshot": true, "clip": false, "atMostEvery": "5m"}]
        }
        """

    private static let outputsSinks = """
        {
          "sinks": {
            "images": {"type": "s3", "bucket": "defects", "region": "eu-west-1", "prefix": "{application}/{date}/",
                       "accessKeyId": "${S3_KEY}", "secretAccessKey": "${S3_SECRET}", "pathStyle": true,
                       "partSize": 8388608},
            "quality": {"type": "webhook", "url": "https://hooks.example.com/vantage", "secret": "${S3_SECRET}",
                        "timeout": "10s", "headers": {"Authorization": "${MQTT_PASSWORD}"}},
            "list_headers": {"type": "webhook", "url": "https://hooks.example.com/b",
                             "headers": ["X-Token: ${S3_KEY}"]}
          },
          "rules": [{"send": "images"}, {"send": ["quality", "list_headers"], "atMostEvery": 2.5}]
        }
        """

    private static let outputsEvents = """
        {"events": {"maxAge": 86400, "maxSize": 1073741824, "clips": {"preRoll": "500ms", "postRoll": 10}}}
        """
}
