import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A blocking HTTP/1.1 client over a POSIX socket, for tests that need what the HummingbirdTesting client cannot
/// do: hang up mid-stream, read without its 20-second timeout, or send bytes that are not valid text.
///
/// Blocking calls: use it from dedicated threads (``RawHTTPClient/runOnThreads(_:_:)``), never from tasks on the
/// cooperative pool, which the in-process server needs for its own handlers.
final class RawHTTPConnection {
    let fd: Int32
    private(set) var received: [UInt8] = []
    private var closed = false

    /// Connects to `127.0.0.1:port`; every read gives up after `timeout`.
    init(port: Int, timeout: Duration) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket() failed: errno \(errno)") }
        let seconds = timeout.components.seconds
        var limit = timeval(tv_sec: Int(seconds), tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else {
            Glibc.close(fd)
            throw TestFailure("connect() to port \(port) failed: errno \(errno)")
        }
        self.fd = fd
    }

    deinit { close() }

    /// Sends a request with `Connection: close`, so the response ends when the server closes the socket.
    func send(method: String, path: String, body: [UInt8] = [], contentType: String = "application/json") throws {
        var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        if method != "GET" { head += "Content-Type: \(contentType)\r\nContent-Length: \(body.count)\r\n" }
        head += "\r\n"
        let bytes = Array(head.utf8) + body
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw TestFailure("send() failed: errno \(errno)") }
            sent += n
        }
    }

    /// Reads what has arrived (waiting for at least one byte); false at the end of the stream.
    func readMore() throws -> Bool {
        var buffer = [UInt8](repeating: 0, count: 16 << 10)
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n == 0 { return false }
        guard n > 0 else { throw TestFailure("recv() failed or timed out: errno \(errno)") }
        received.append(contentsOf: buffer[0..<n])
        return true
    }

    /// Reads until the server closes the connection and returns the response.
    func readToEnd() throws -> RawHTTPResponse {
        while try readMore() {}
        return try RawHTTPResponse(parsing: received)
    }

    /// Reads until `enough` says so about the response so far (or the stream ends); returns that response.
    func read(until enough: (RawHTTPResponse) -> Bool) throws -> RawHTTPResponse {
        while true {
            if let response = try? RawHTTPResponse(parsing: received), enough(response) { return response }
            guard try readMore() else { return try RawHTTPResponse(parsing: received) }
        }
    }

    /// Hangs up.
    func close() {
        guard !closed else { return }
        closed = true
        Glibc.close(fd)
    }
}

/// A response as parsed so far: status, headers, and the body with chunked transfer coding removed.
struct RawHTTPResponse {
    var status: Int
    var headers: [String: String]
    var body: [UInt8]
    /// Whether the body is complete (the last chunk, or all of `Content-Length`, arrived).
    var isComplete: Bool

    var text: String { String(decoding: body, as: UTF8.self) }

    /// The `data:` payloads of complete server-sent events, in order.
    var dataEvents: [String] {
        let blocks = text.components(separatedBy: "\n\n")
        return blocks.dropLast().compactMap { $0.hasPrefix("data: ") ? String($0.dropFirst(6)) : nil }
    }

    /// SSE comment lines (`: ...`) received so far.
    var comments: [String] {
        text.components(separatedBy: "\n\n").dropLast().filter { $0.hasPrefix(":") }
    }

    init(parsing bytes: [UInt8]) throws {
        let separator: [UInt8] = Array("\r\n\r\n".utf8)
        guard let end = bytes.firstRange(of: separator) else { throw TestFailure("incomplete response head") }
        let head = String(decoding: bytes[..<end.lowerBound], as: UTF8.self).components(separatedBy: "\r\n")
        let statusLine = head[0].split(separator: " ")
        guard statusLine.count >= 2, statusLine[0].hasPrefix("HTTP/1."), let status = Int(statusLine[1]) else {
            throw TestFailure("bad status line: \(head[0])")
        }
        self.status = status
        var headers: [String: String] = [:]
        for line in head.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(
                in: .whitespaces)
        }
        self.headers = headers
        let rest = bytes[end.upperBound...]
        if headers["transfer-encoding"]?.lowercased() == "chunked" {
            (body, isComplete) = Self.dechunk(rest)
        } else if let length = headers["content-length"].flatMap(Int.init) {
            body = Array(rest.prefix(length))
            isComplete = rest.count >= length
        } else {
            body = Array(rest)
            isComplete = false
        }
    }

    /// Removes chunked transfer coding from what has arrived; stops at an incomplete chunk.
    static func dechunk(_ bytes: ArraySlice<UInt8>) -> ([UInt8], Bool) {
        var body: [UInt8] = []
        var index = bytes.startIndex
        let crlf: [UInt8] = [13, 10]
        while let lineEnd = bytes[index...].firstRange(of: crlf) {
            let sizeText = String(decoding: bytes[index..<lineEnd.lowerBound], as: UTF8.self)
            guard let size = Int(sizeText.split(separator: ";").first ?? "", radix: 16) else { break }
            if size == 0 { return (body, true) }
            let start = lineEnd.upperBound
            guard bytes.endIndex - start >= size + 2 else { break }
            body.append(contentsOf: bytes[start..<(start + size)])
            index = start + size + 2
        }
        return (body, false)
    }
}

enum RawHTTPClient {
    /// Runs `count` blocking jobs, each on its own thread, and returns their results in order once all are done.
    static func runOnThreads<T: Sendable>(_ count: Int, _ job: @escaping @Sendable (Int) -> T) async -> [T] {
        await withCheckedContinuation { continuation in
            let results = ResultSlots<T>(count: count) { continuation.resume(returning: $0) }
            for index in 0..<count {
                let thread = Thread { results.set(index, job(index)) }
                thread.stackSize = 1 << 20
                thread.start()
            }
        }
    }
}

/// Results filled in by several threads; calls `done` once the last one arrives.
private final class ResultSlots<T: Sendable>: @unchecked Sendable {
    // @unchecked Sendable: `slots` and `remaining` are only touched with `lock` held.
    private let lock = NSLock()
    private var slots: [T?]
    private var remaining: Int
    private let done: @Sendable ([T]) -> Void

    init(count: Int, done: @escaping @Sendable ([T]) -> Void) {
        slots = Array(repeating: nil, count: count)
        remaining = count
        self.done = done
        if count == 0 { done([]) }
    }

    func set(_ index: Int, _ value: T) {
        let finished: [T]? = lock.withLock {
            slots[index] = value
            remaining -= 1
            return remaining == 0 ? slots.map { $0! } : nil
        }
        if let finished { done(finished) }
    }
}
