import Foundation
import Testing

@testable import VantageApp

@Suite("JSON forms of the manifest model")
struct ModelCodingTests {
    @Test("parameter values are coded as plain JSON literals")
    func parameterValues() throws {
        let values: [ParameterValue] = [.string("dock-3"), .int32(5), .float32(0.5), .boolean(true)]
        let data = try JSONEncoder().encode(values)
        #expect(String(decoding: data, as: UTF8.self) == "[\"dock-3\",5,0.5,true]")
        #expect(try JSONDecoder().decode([ParameterValue].self, from: data) == values)
    }

    @Test("the example graph survives encoding and decoding")
    func graphRoundTrip() throws {
        let project = try ApplicationProject.load(peopleCounter)
        let data = try JSONEncoder().encode(project.graph)
        let decoded = try JSONDecoder().decode(NodeGraph.self, from: data)
        #expect(decoded == project.graph)
        #expect(decoded.node(named: "min_score")?.kind == .parameter(.float32(0.5)))
        #expect(decoded.node(named: "camera_node")?.overrideMandatory == true)
    }

    @Test("JSON strings with escapes and non-ASCII text are read exactly")
    func escapes() throws {
        let json = try JSONParser.parse(Data(#"{"a": "caf\u00e9 \ud83d\ude00 \"q\" \\ \n", "b": "Zürich"}"#.utf8))
        guard case .object(let members) = json.kind else {
            Issue.record("not an object")
            return
        }
        #expect(members.map(\.key) == ["a", "b"])
        #expect(members[0].value.stringValue == "café 😀 \"q\" \\ \n")
        #expect(members[1].value.stringValue == "Zürich")
    }

    @Test("a key given twice is refused, with its position")
    func duplicateKey() {
        let error = #expect(throws: JSONSyntaxError.self) {
            try JSONParser.parse(Data("{\n \"a\": 1,\n \"a\": 2}".utf8))
        }
        #expect(error?.message.contains("\"a\" appears twice") == true)
        #expect(error?.position == SourcePosition(line: 3, column: 2))
    }

    @Test("numbers keep whether they are whole")
    func numbers() throws {
        for (text, whole) in [("5", 5), ("5.0", 5), ("-3", -3), ("1e2", 100)] as [(String, Int)] {
            #expect(try JSONParser.parse(Data(text.utf8)).integerValue == whole)
        }
        #expect(try JSONParser.parse(Data("0.5".utf8)).integerValue == nil)
        #expect(throws: JSONSyntaxError.self) { try JSONParser.parse(Data("01".utf8)) }
    }
}
