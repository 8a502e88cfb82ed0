#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Why an atomic write failed (callers wrap it in their own error type).
struct AtomicWriteFailure: Error {
    let reason: String
}

/// The open temporary file an atomic write fills.
struct AtomicFileSink {
    fileprivate let descriptor: Int32

    /// Appends `bytes`, retrying short and interrupted writes.
    func write(_ bytes: [UInt8]) throws(AtomicWriteFailure) {
        var failure: AtomicWriteFailure?
        bytes.withUnsafeBytes { buffer in
            var done = 0
            while done < buffer.count {
                let result = systemWrite(descriptor, buffer.baseAddress! + done, buffer.count - done)
                if result < 0 {
                    if errno == EINTR { continue }
                    failure = AtomicWriteFailure(reason: lastErrorDescription())
                    return
                }
                done += result
            }
        }
        if let failure { throw failure }
    }
}

/// Writes `path` atomically: `body` fills a temporary file beside it, which is flushed to disk (`fsync`) and renamed
/// over `path`; the directory is then synced so the rename survives a crash. On failure `path` is untouched and the
/// temporary file removed. Model files and training checkpoints all go through here.
func writeFileAtomically(
    _ path: String, _ body: (AtomicFileSink) throws(AtomicWriteFailure) -> Void
) throws(AtomicWriteFailure) {
    var template = Array((path + ".tmp-XXXXXX").utf8CString)
    let descriptor = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
    guard descriptor >= 0 else {
        throw AtomicWriteFailure(reason: "cannot create a temporary file: \(lastErrorDescription())")
    }
    let temporaryPath = String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
    do throws(AtomicWriteFailure) {
        try body(AtomicFileSink(descriptor: descriptor))
        guard fchmod(descriptor, 0o644) == 0, fsync(descriptor) == 0 else {
            throw AtomicWriteFailure(reason: lastErrorDescription())
        }
        guard close(descriptor) == 0 else { throw AtomicWriteFailure(reason: lastErrorDescription()) }
    } catch {
        close(descriptor)
        unlink(temporaryPath)
        throw error
    }
    guard rename(temporaryPath, path) == 0 else {
        let reason = lastErrorDescription()
        unlink(temporaryPath)
        throw AtomicWriteFailure(reason: "cannot rename the temporary file into place: \(reason)")
    }
    // Make the rename itself durable; a failure here does not undo a completed write, so it is not reported.
    let slash = path.utf8.lastIndex(of: UInt8(ascii: "/"))
    let directory = slash.map { String(path[..<$0]) }.map { $0.isEmpty ? "/" : $0 } ?? "."
    let directoryDescriptor = open(directory, O_RDONLY | O_CLOEXEC)
    if directoryDescriptor >= 0 {
        fsync(directoryDescriptor)
        close(directoryDescriptor)
    }
}

/// `write(2)`, named so as not to clash with the writers' `write(to:)` methods.
private func systemWrite(_ descriptor: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int {
    #if canImport(Glibc)
        Glibc.write(descriptor, buffer, count)
    #else
        Darwin.write(descriptor, buffer, count)
    #endif
}
