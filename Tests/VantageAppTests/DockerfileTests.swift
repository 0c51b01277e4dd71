import Foundation
import Testing

@testable import VantageApp

private let source = URL(fileURLWithPath: "/apps/lobby/packages/123456789012-code-1.0/src")

private func read(_ text: String) -> Dockerfile { Dockerfile(text: text, sourceDirectory: source) }

@Suite("Reading a panorama-cli Dockerfile")
struct DockerfileTests {
    @Test("panorama-cli's Dockerfile: pip installs kept, FROM and COPY src understood, apt-get reported")
    func panoramaCLI() {
        let dockerfile = read(
            """
            FROM public.ecr.aws/panorama/panorama-application
            COPY src /panorama
            RUN pip3 install --no-cache-dir boto3==1.26.0 \\
                opencv-python-headless
            RUN python3 -m pip install -r /panorama/requirements.txt
            RUN apt-get update && apt-get install -y libgl1
            """)
        #expect(
            dockerfile.pipInstalls == [
                PipInstall(line: 3, arguments: ["boto3==1.26.0", "opencv-python-headless"]),
                PipInstall(line: 5, arguments: ["-r", source.path + "/requirements.txt"]),
            ])
        #expect(dockerfile.ignored.count == 1)
        let apt = dockerfile.ignored[0]
        #expect(apt.line == 6)
        #expect(apt.text == "RUN apt-get update && apt-get install -y libgl1")
        #expect(apt.reason == "not a pip install")
        #expect(apt.hint == "install system packages on the host yourself")
        #expect(apt.needsAction)
        #expect(
            apt.description
                == "ignored (not a pip install): RUN apt-get update && apt-get install -y libgl1 — install system "
                + "packages on the host yourself")
    }

    @Test("continuations join lines, skip comments inside them, and report the first line")
    func continuations() {
        let dockerfile = read(
            """
            # syntax=docker/dockerfile:1
            FROM ubuntu:20.04

            # the runtime's packages
            RUN pip install \\
                # pinned for the SDK
                numpy==1.19.5 \\

                pillow
            RUN echo one \\
                two
            """)
        #expect(dockerfile.pipInstalls == [PipInstall(line: 5, arguments: ["numpy==1.19.5", "pillow"])])
        #expect(dockerfile.ignored.map(\.line) == [10])
        #expect(dockerfile.ignored.first?.text == "RUN echo one two")
    }

    @Test("the escape parser directive makes ` the continuation character")
    func escapeDirective() {
        let dockerfile = read("# escape=`\nFROM python:3.8\nRUN pip install `\n    requests\n")
        #expect(dockerfile.pipInstalls == [PipInstall(line: 3, arguments: ["requests"])])
    }

    @Test("exec form, and sh -c in exec form")
    func execForm() {
        let dockerfile = read(
            """
            RUN ["pip", "install", "numpy==1.24.4", "--upgrade"]
            RUN ["/bin/sh", "-c", "pip install flask && python3.8 -m pip install -e /panorama/lib"]
            RUN ["apt-get", "install", "-y", "ffmpeg"]
            """)
        #expect(
            dockerfile.pipInstalls == [
                PipInstall(line: 1, arguments: ["numpy==1.24.4", "--upgrade"]),
                PipInstall(line: 2, arguments: ["flask"]),
                PipInstall(line: 2, arguments: ["-e", source.path + "/lib"]),
            ])
        #expect(dockerfile.ignored.map(\.line) == [3])
    }

    @Test("a pip install chained to another command is ignored whole, and the report says so")
    func chainedWithOtherCommand() {
        let dockerfile = read("RUN pip install requests && apt-get install -y libgl1 && pip install boto3\n")
        #expect(dockerfile.pipInstalls.isEmpty)
        let line = dockerfile.ignored.first
        #expect(line?.reason == "not a pip install")
        #expect(line?.hint.contains("the pip installs chained to it are not done either") == true)
        #expect(line?.hint.contains("give them a RUN line of their own") == true)
    }

    @Test("pip install chained only to pip installs is kept, one install each")
    func chainedPipInstalls() {
        let dockerfile = read("RUN pip3 install -U pip && pip3.8 install --user requests && python -m pip install six")
        #expect(
            dockerfile.pipInstalls == [
                PipInstall(line: 1, arguments: ["-U", "pip"]),
                PipInstall(line: 1, arguments: ["requests"]),
                PipInstall(line: 1, arguments: ["six"]),
            ])
        #expect(dockerfile.ignored.isEmpty)
    }

    @Test(
        "pip and Python spellings",
        arguments: [
            "pip install x", "pip3 install x", "pip3.8 install x", "python -m pip install x",
            "python3 -m pip install x", "python3.8 -m pip install x", "/usr/bin/python3 -m pip install x",
            "pip --no-cache-dir install x", "python3 -m pip --disable-pip-version-check install x",
        ])
    func spellings(command: String) {
        let dockerfile = read("RUN " + command)
        let arguments = dockerfile.pipInstalls.first?.arguments ?? []
        #expect(arguments.last == "x", "\(command)")
        #expect(dockerfile.ignored.isEmpty, "\(command)")
    }

    @Test("/panorama paths become src paths; WORKDIR /panorama makes relative paths src-relative")
    func panoramaPaths() {
        let dockerfile = read(
            """
            RUN pip install -r /panorama/requirements.txt -c/panorama/constraints.txt \\
                --requirement=/panorama/extra.txt /panorama/wheels/tool-1.0-py3-none-any.whl /panorama
            WORKDIR /panorama
            RUN pip install -r requirements.txt ./vendor/lib.tar.gz -e .
            """)
        #expect(
            dockerfile.pipInstalls == [
                PipInstall(
                    line: 1,
                    arguments: [
                        "-r", source.path + "/requirements.txt", "-c", source.path + "/constraints.txt",
                        "--requirement=\(source.path)/extra.txt", source.path + "/wheels/tool-1.0-py3-none-any.whl",
                        source.path,
                    ]),
                PipInstall(
                    line: 4,
                    arguments: [
                        "-r", source.path + "/requirements.txt", source.path + "/vendor/lib.tar.gz", "-e", source.path,
                    ]),
            ])
        // WORKDIR is reported, as something that needs nothing from the user.
        #expect(dockerfile.ignored.map(\.line) == [3])
        #expect(dockerfile.ignored.first?.needsAction == false)
    }

    @Test("a path in the image outside /panorama cannot be installed from, and says why")
    func pathOutsidePanorama() {
        let dockerfile = read(
            """
            COPY requirements.txt /tmp/
            RUN pip install -r /tmp/requirements.txt
            RUN pip install -r requirements.txt
            """)
        #expect(dockerfile.pipInstalls.isEmpty)
        #expect(dockerfile.ignored.map(\.line) == [1, 2, 3])
        #expect(dockerfile.ignored[1].reason.contains("/tmp/requirements.txt"))
        #expect(dockerfile.ignored[1].reason.contains("outside /panorama"))
        #expect(dockerfile.ignored[2].reason.contains("working directory /"))
        #expect(dockerfile.ignored[1].hint.contains("put the file under src/"))
        #expect(dockerfile.ignored.allSatisfy { $0.needsAction })
    }

    @Test("quotes keep specifiers whole; an unquoted > is a redirection, with the fix")
    func quoting() {
        let quoted = read(#"RUN pip install "numpy>=1.2,<2" 'uvicorn[standard]' "it's" pkg\ name"#)
        #expect(quoted.pipInstalls.first?.arguments == ["numpy>=1.2,<2", "uvicorn[standard]", "it's", "pkg name"])
        let redirected = read("RUN pip install numpy>=1.2")
        #expect(redirected.pipInstalls.isEmpty)
        #expect(redirected.ignored.first?.reason.contains("redirects") == true)
        #expect(redirected.ignored.first?.hint.contains("pip install \"numpy>=1.2\"") == true)
    }

    @Test("options that only make sense in the image are dropped")
    func droppedOptions() {
        let dockerfile = read(
            "RUN pip install --user --no-cache-dir --target /opt/libs --prefix=/usr/local --break-system-packages "
                + "-i https://pypi.example/simple requests")
        #expect(dockerfile.pipInstalls.first?.arguments == ["-i", "https://pypi.example/simple", "requests"])
    }

    @Test("shell features Vantage does not reproduce make the line ignored, with the reason")
    func shellFeatures() {
        let cases = [
            ("RUN pip install $PACKAGES", "variables"), ("RUN pip install x; pip install y", "';'"),
            ("RUN pip install x || true", "pipe or ||"), ("RUN pip install /panorama/wheels/*.whl", "wildcard"),
            ("RUN pip download x", "pip download"), ("RUN PIP_INDEX_URL=https://x pip install y", "not a pip install"),
            ("RUN pip install 'unterminated", "unterminated quote"), ("RUN pip install", "nothing to install"),
        ]
        for (line, reason) in cases {
            let dockerfile = read(line)
            #expect(dockerfile.pipInstalls.isEmpty, "\(line)")
            #expect(dockerfile.ignored.first?.reason.contains(reason) == true, "\(line): \(dockerfile.ignored)")
        }
    }

    @Test("other instructions are reported with why, and whether the user must act")
    func otherInstructions() {
        let dockerfile = read(
            """
            FROM public.ecr.aws/panorama/panorama-application:1.2.0-py3.8
            ENV MODEL_DIR=/panorama/models
            ARG VERSION=1
            EXPOSE 8080
            COPY ./src/ /panorama/
            ADD models /opt/models
            COPY --from=builder /out /panorama/out
            CMD ["python3", "/panorama/app.py"]
            RUN <<EOF
            pip install requests
            EOF
            USER nobody
            """)
        #expect(dockerfile.pipInstalls.isEmpty)
        let byLine = Dictionary(uniqueKeysWithValues: dockerfile.ignored.map { ($0.line, $0) })
        #expect(byLine.keys.sorted() == [2, 3, 4, 6, 7, 8, 9, 12])
        #expect(byLine[2]?.reason.contains("Panorama ignored ENV too") == true)
        #expect(byLine[2]?.hint.contains("\"environment\"") == true)
        #expect(byLine[4]?.hint.contains("inboundPorts") == true)
        #expect(byLine[6]?.reason == "copies files into the image")
        #expect(byLine[7]?.reason.contains("another image or build stage") == true)
        #expect(byLine[8]?.reason.contains("the code descriptor's entry says what runs") == true)
        #expect(byLine[9]?.reason == "a heredoc script")
        #expect(dockerfile.ignored.filter(\.needsAction).map(\.line) == [6, 7, 9])
    }
}

@Suite("A code package's Python dependencies")
struct PythonDependenciesTests {
    final class Package {
        let root: URL
        var directory: URL { root.appendingPathComponent("packages/123456789012-code-1.0") }
        var src: URL { directory.appendingPathComponent("src") }

        init() throws {
            root = FileManager.default.temporaryDirectory.appendingPathComponent("vantage-deps-\(UUID().uuidString)")
            try FileManager.default.createDirectory(
                at: root.appendingPathComponent("packages/123456789012-code-1.0/src"),
                withIntermediateDirectories: true)
        }

        deinit { try? FileManager.default.removeItem(at: root) }

        func write(_ path: String, _ text: String) throws {
            try Data(text.utf8).write(to: directory.appendingPathComponent(path))
        }

        func read() throws(ManifestError) -> PythonDependencies {
            try PythonDependencies.read(packageDirectory: directory, sourceDirectory: src)
        }
    }

    static let dockerfile = """
        FROM public.ecr.aws/panorama/panorama-application
        COPY src /panorama
        RUN pip3 install --no-cache-dir boto3==1.26.0 \\
            opencv-python-headless
        RUN apt-get update && apt-get install -y libgl1
        """

    @Test("requirements.txt in src/ and the Dockerfile's pip installs, reported line by line")
    func report() throws {
        let package = try Package()
        try package.write("src/requirements.txt", "numpy==1.24.4\n")
        try package.write("requirements.txt", "ignored-because-src-has-one\n")
        try package.write("Dockerfile", Self.dockerfile)
        let dependencies = try package.read()
        #expect(dependencies.requirementsFile?.path == package.src.appendingPathComponent("requirements.txt").path)
        #expect(dependencies.dockerfile?.lastPathComponent == "Dockerfile")
        #expect(!dependencies.isEmpty)
        #expect(
            dependencies.report == [
                "src/requirements.txt: pip install -r src/requirements.txt",
                "Dockerfile:3: pip install boto3==1.26.0 opencv-python-headless",
                "Dockerfile:5: ignored (not a pip install): RUN apt-get update && apt-get install -y libgl1 — install "
                    + "system packages on the host yourself",
            ])
    }

    @Test("a package with nothing to install says so")
    func empty() throws {
        let package = try Package()
        try package.write("Dockerfile", "FROM public.ecr.aws/panorama/panorama-application\nCOPY src /panorama\n")
        let dependencies = try package.read()
        #expect(dependencies.isEmpty)
        #expect(
            dependencies.report == [
                "no Python packages to install (no requirements.txt, no pip install in the Dockerfile)"
            ])
        #expect(try Package().read().report == ["no Python packages to install (no requirements.txt, no Dockerfile)"])
    }

    @Test("the requirements file named by the Dockerfile is installed once, in the Dockerfile's order")
    func requirementsNamedByDockerfile() throws {
        let package = try Package()
        try package.write("src/requirements.txt", "requests\n")
        try package.write("Dockerfile", "RUN pip install -r /panorama/requirements.txt\n")
        let dependencies = try package.read()
        #expect(dependencies.requirementsFile == nil)
        #expect(dependencies.pipInstalls.first?.arguments == ["-r", package.src.path + "/requirements.txt"])
    }

    @Test("the digest is stable, follows the project when it moves, and changes with what gets installed")
    func digest() throws {
        let package = try Package()
        try package.write("src/requirements.txt", "numpy==1.24.4\n")
        try package.write("src/extra.txt", "-r more.txt\nflask\n")
        try package.write("src/more.txt", "six==1.16.0\n")
        try package.write("Dockerfile", "RUN pip install boto3==1.26.0 && pip install -r /panorama/extra.txt\n")
        let first = try package.read().digest
        #expect(first.count == 64 && first.allSatisfy(\.isHexDigit))
        #expect(try package.read().digest == first)

        // The same package elsewhere: same digest (the src/ path is not part of it).
        let moved = try Package()
        try FileManager.default.removeItem(at: moved.directory)
        try FileManager.default.copyItem(at: package.directory, to: moved.directory)
        #expect(try moved.read().digest == first)

        // Code changes do not count; what pip installs does.
        try package.write("src/app.py", "print('hello')\n")
        #expect(try package.read().digest == first)
        try package.write("src/requirements.txt", "numpy==1.26.0\n")
        let afterRequirements = try package.read().digest
        #expect(afterRequirements != first)
        try package.write("src/more.txt", "six==1.17.0\n")
        let afterIncluded = try package.read().digest
        #expect(afterIncluded != afterRequirements)
        try package.write("Dockerfile", "RUN pip install boto3==1.28.0 && pip install -r /panorama/extra.txt\n")
        #expect(try package.read().digest != afterIncluded)
    }

    @Test("a -r file that does not exist is a warning that says pip will fail")
    func missingRequirementFile() throws {
        let package = try Package()
        try package.write("Dockerfile", "RUN pip install -r /panorama/reqs.txt\n")
        let dependencies = try package.read()
        #expect(dependencies.warnings.count == 1)
        #expect(dependencies.report.contains { $0.contains("src/reqs.txt, which does not exist — pip will fail") })
    }
}

@Suite("SHA-256")
struct SHA256Tests {
    @Test(
        "FIPS 180-4 test vectors",
        arguments: [
            ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
            ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
            (
                "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
                "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
            ),
            (
                "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopq"
                    + "rstnopqrstu",
                "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"
            ),
        ])
    func vectors(input: String, expected: String) {
        #expect(SHA256.hex(input) == expected)
        #expect(SHA256.hex(Data(input.utf8)) == expected)
    }

    @Test("a million 'a's, in one piece and in uneven pieces")
    func million() {
        let data = Data(repeating: UInt8(ascii: "a"), count: 1_000_000)
        let expected = "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
        #expect(SHA256.hex(data) == expected)
        var hash = SHA256()
        var offset = 0
        var size = 1
        while offset < data.count {
            let end = min(offset + size, data.count)
            hash.update(data[offset..<end])
            offset = end
            size = size * 7 % 997 + 1
        }
        #expect(hash.finalizeHex() == expected)
    }

    @Test("every length around the padding boundary matches hashing in one piece")
    func paddingBoundaries() {
        let bytes = (0..<200).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        for length in [55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129] {
            var split = SHA256()
            split.update(Array(bytes[0..<(length / 3)]))
            split.update(Array(bytes[(length / 3)..<length]))
            #expect(split.finalizeHex() == SHA256.hex(Data(bytes[0..<length])), "length \(length)")
        }
    }

    @Test("a file hashes to the digest of its content")
    func file() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("vantage-sha-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: url) }
        let data = Data((0..<3_000_000).map { UInt8(truncatingIfNeeded: $0 / 7) })
        try data.write(to: url)
        #expect(try SHA256.hex(fileAt: url) == SHA256.hex(data))
    }
}
