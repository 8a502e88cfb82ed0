import Foundation
import SeedTestSupport
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// A `seed serve` subprocess started with `--port 0`: its address is read from the line it prints, and it is
/// stopped by its PID.
final class ServeProcess: @unchecked Sendable {
    // @unchecked Sendable: set up in init, then only read (Process is thread-safe for these calls).
    let process = Process()
    let port: Int
    private let errorLog: String

    init(_ arguments: [String], timeout: Duration = .seconds(120)) throws {
        process.executableURL = URL(fileURLWithPath: SeedProcess.executable)
        process.arguments = ["serve"] + arguments
        let output = Pipe()
        process.standardOutput = output
        errorLog =
            FileManager.default.temporaryDirectory
            .appendingPathComponent("seed-serve-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).log").path
        _ = FileManager.default.createFile(atPath: errorLog, contents: nil)
        process.standardError = FileHandle(forWritingAtPath: errorLog)
        process.standardInput = FileHandle.nullDevice
        try process.run()
        // Reads the first line of standard output: "seed serve: listening on http://127.0.0.1:PORT (...)".
        let reader = output.fileHandleForReading
        var line = ""
        let deadline = ContinuousClock.now + timeout
        while !line.contains("\n") && ContinuousClock.now < deadline {
            let data = reader.availableData
            if data.isEmpty { break }
            line += String(decoding: data, as: UTF8.self)
        }
        guard let match = line.firstMatch(of: /listening on http:\/\/127\.0\.0\.1:(\d+)/), let port = Int(match.1),
            port > 0
        else {
            process.terminate()
            process.waitUntilExit()
            throw TestFailure("seed serve printed no address: '\(line)'; stderr: \(Self.read(errorLog))")
        }
        self.port = port
    }

    static func read(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }

    var stderr: String { Self.read(errorLog) }

    /// Sends SIGTERM and waits (at most 30 s) for the exit status.
    func terminate() -> Int32 {
        kill(process.processIdentifier, SIGTERM)
        let deadline = ContinuousClock.now + .seconds(30)
        while process.isRunning && ContinuousClock.now < deadline { usleep(20_000) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            return -1
        }
        return process.terminationStatus
    }

    /// One request; returns the status and body.
    func request(_ path: String, json: String? = nil) async throws -> (status: Int, body: String) {
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)\(path)")!)
        request.timeoutInterval = 120
        if let json {
            request.httpMethod = "POST"
            request.httpBody = Data(json.utf8)
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        let (data, response) = try await URLSession.shared.data(for: request)
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, String(decoding: data, as: UTF8.self))
    }
}

/// Runs blocking work (process pipes, waits) on its own thread, so that the cooperative pool, which the rest of the
/// test run shares (two threads on a two-core machine), is never held by it.
func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try body() }) }.start()
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

@Suite(.serialized) struct ServeCLITests {
    /// `seed serve --port 0` prints the port it bound, answers a completion and a bad request, and exits 0 on SIGTERM.
    @Test(.timeLimit(.minutes(3)))
    func servePrintsItsPortAnswersAndStopsCleanlyOnSIGTERM() async throws {
        let model = try TestPaths.smolLM2()
        let server = try await offPool {
            try ServeProcess([
                "--model", model, "--port", "0", "--threads", "1", "--parallel", "2", "--kv-cache-tokens", "1024",
            ])
        }
        let health = try await server.request("/health")
        #expect(health.status == 200)
        let models = try await server.request("/v1/models")
        #expect(models.status == 200)
        #expect(models.body.contains(#""id":"SmolLM2-135M-Instruct.Q4_1""#), "\(models.body)")
        let chat = try await server.request(
            "/v1/chat/completions",
            json: #"{"messages":[{"role":"user","content":"What is the capital of France?"}],"#
                + #""temperature":0,"max_tokens":8}"#)
        #expect(chat.status == 200, "\(chat.body)")
        #expect(chat.body.contains(#""object":"chat.completion""#))
        #expect(chat.body.contains("Paris"), "\(chat.body)")
        let bad = try await server.request("/v1/chat/completions", json: #"{"messages":[],"max_tokens":-1}"#)
        #expect(bad.status == 400)
        #expect(bad.body.contains(#""error":{"#), "\(bad.body)")

        let status = try await offPool { server.terminate() }
        #expect(status == 0, "\(server.stderr)")
        let log = server.stderr
        #expect(log.contains("POST /v1/chat/completions 200"), "\(log)")
        #expect(log.contains("POST /v1/chat/completions 400"), "\(log)")
        #expect(!log.contains("Fatal error"))
    }

    @Test func serveRejectsBadFlagsClearly() async throws {
        for (arguments, mention) in [
            (["--port", "70000"], "--port"), (["--parallel", "0"], "--parallel"),
            (["--max-body-bytes", "5"], "--max-body-bytes"), (["--max-waiting", "-1"], "--max-waiting"),
            (["--kv-cache-tokens", "4"], "--kv-cache-tokens"), (["--api-key", ""], "--api-key"),
            (["--port", "many"], "--port"),
            (["--model", "/nonexistent/model.gguf", "--port", "0"], "/nonexistent/model.gguf"),
        ] {
            let r = try await offPool { try SeedProcess.run(["serve"] + arguments) }
            #expect(r.status != 0, "\(arguments)")
            #expect(r.stderr.contains(mention), "\(arguments): \(r.stderr)")
            #expect(!r.stderr.contains("Fatal error"))
        }
    }
}
