import Crypto
import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// POSIX file helpers shared by the dataset writer/reader and the checkpoint store: whole-file reads, durable
/// writes (`fsync` of files and directories), temporary directories, memory maps and sha256.
enum DataFileSystem {
    /// Why a file operation failed (callers wrap it in their module error with the path).
    struct Failure: Error {
        let reason: String
    }

    /// `strerror(errno)`.
    static func lastError() -> String {
        let code = errno
        guard let message = strerror(code) else { return "error \(code)" }
        return String(cString: message)
    }

    enum Kind { case missing, file, directory, other }

    /// What is at `path` (following symlinks).
    static func kind(of path: String) -> Kind {
        var info = stat()
        guard stat(path, &info) == 0 else { return .missing }
        switch info.st_mode & S_IFMT {
        case S_IFREG: return .file
        case S_IFDIR: return .directory
        default: return .other
        }
    }

    /// Whether `path` itself is a symbolic link.
    static func isSymbolicLink(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFLNK
    }

    /// The canonical absolute path (symlinks resolved), or `path` itself if it cannot be resolved.
    static func canonicalPath(_ path: String) -> String {
        guard let resolved = realpath(path, nil) else { return path }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// Reads a whole regular file.
    static func readFile(_ path: String) throws(Failure) -> [UInt8] {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw Failure(reason: lastError()) }
        defer { close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { throw Failure(reason: lastError()) }
        guard info.st_mode & S_IFMT == S_IFREG else { throw Failure(reason: "not a regular file") }
        var bytes = [UInt8](repeating: 0, count: Int(info.st_size))
        var done = 0
        var failure: Failure?
        bytes.withUnsafeMutableBytes { buffer in
            while done < buffer.count {
                let result = read(descriptor, buffer.baseAddress! + done, buffer.count - done)
                if result < 0 {
                    if errno == EINTR { continue }
                    failure = Failure(reason: lastError())
                    return
                }
                if result == 0 { break }
                done += result
            }
        }
        if let failure { throw failure }
        // The file shrank while being read: keep what was there.
        if done < bytes.count { bytes.removeLast(bytes.count - done) }
        return bytes
    }

    /// Flushes a directory's entries (renames, creations) to disk.
    static func syncDirectory(_ path: String) throws(Failure) {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC | O_DIRECTORY)
        guard descriptor >= 0 else { throw Failure(reason: "cannot open directory \(path): \(lastError())") }
        defer { close(descriptor) }
        guard fsync(descriptor) == 0 else { throw Failure(reason: "fsync of directory \(path): \(lastError())") }
    }

    /// The parent directory of `path` (`.` for a bare name).
    static func parent(of path: String) -> String {
        let trimmed = path.count > 1 && path.hasSuffix("/") ? String(path.dropLast()) : path
        guard let slash = trimmed.lastIndex(of: "/") else { return "." }
        return slash == trimmed.startIndex ? "/" : String(trimmed[..<slash])
    }

    /// The last path component of `path`.
    static func baseName(of path: String) -> String {
        let trimmed = path.count > 1 && path.hasSuffix("/") ? String(path.dropLast()) : path
        guard let slash = trimmed.lastIndex(of: "/") else { return trimmed }
        return String(trimmed[trimmed.index(after: slash)...])
    }

    /// Creates a fresh, uniquely named directory `parent/prefixXXXXXX` with mode 0755 (`mkdtemp` makes it 0700;
    /// these directories are renamed into place as datasets and checkpoints, which others may read).
    static func makeTemporaryDirectory(in parent: String, prefix: String) throws(Failure) -> String {
        var template = Array((parent + "/" + prefix + "XXXXXX").utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        guard made != nil else {
            throw Failure(reason: "cannot create a temporary directory in \(parent): \(lastError())")
        }
        let path = String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
        chmod(path, 0o755)
        return path
    }

    /// Creates `path` and its missing parents.
    static func createDirectories(_ path: String) throws(Failure) {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw Failure(reason: "cannot create directory \(path): \(error.localizedDescription)")
        }
    }

    /// Removes a file or directory tree; a missing path is not an error.
    static func removeTree(_ path: String) {
        try? FileManager.default.removeItem(atPath: path)
    }

    /// Names in a directory (no `.`/`..`), sorted by UTF-8 bytes so every machine lists them alike.
    static func listDirectory(_ path: String) throws(Failure) -> [String] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: path)
        } catch {
            throw Failure(reason: "cannot list \(path): \(error.localizedDescription)")
        }
        return names.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
    }

    /// `rename(2)`.
    static func rename(_ from: String, _ to: String) throws(Failure) {
        #if canImport(Glibc)
            let result = Glibc.rename(from, to)
        #else
            let result = Darwin.rename(from, to)
        #endif
        guard result == 0 else { throw Failure(reason: "cannot rename \(from) to \(to): \(lastError())") }
    }

    /// Writes `bytes` to a new file at `path` (replacing any), then `fsync`s it. Not atomic by itself: callers write
    /// inside a temporary directory or file that they rename into place.
    static func writeDurably(_ path: String, _ bytes: [UInt8]) throws(Failure) -> FileDigest {
        let writer = try DurableFileWriter(path: path)
        do throws(Failure) {
            try writer.write(bytes)
            return try writer.finish()
        } catch {
            writer.abandon()
            throw error
        }
    }

    /// Writes `bytes` atomically at `path`: a temporary file beside it is filled, `fsync`ed and renamed over `path`,
    /// then the directory is synced.
    static func writeAtomically(_ path: String, _ bytes: [UInt8]) throws(Failure) {
        let directory = parent(of: path)
        let temporary = directory + "/." + baseName(of: path) + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        do throws(Failure) {
            _ = try writeDurably(temporary, bytes)
            try rename(temporary, path)
        } catch {
            unlink(temporary)
            throw error
        }
        try syncDirectory(directory)
    }

    /// The sha256 and size of a file, read through a memory map.
    static func digest(ofFileAt path: String) throws(Failure) -> FileDigest {
        let file = try MappedDataFile(path: path)
        var hasher = SHA256()
        // Hash in 8 MiB slices so a huge map is never touched all at once by one call.
        var offset = 0
        let slice = 8 << 20
        while offset < file.size {
            let count = min(slice, file.size - offset)
            hasher.update(bufferPointer: UnsafeRawBufferPointer(start: file.base + offset, count: count))
            offset += count
        }
        return FileDigest(sha256: hexString(hasher.finalize()), bytes: file.size)
    }

    /// Lowercase hex of a digest.
    static func hexString<D: Sequence>(_ digest: D) -> String where D.Element == UInt8 {
        let hex: [UInt8] = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for byte in digest {
            out.append(hex[Int(byte >> 4)])
            out.append(hex[Int(byte & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// sha256 of `bytes` as lowercase hex.
    static func sha256Hex(_ bytes: [UInt8]) -> String {
        hexString(SHA256.hash(data: bytes))
    }
}

/// The sha256 (lowercase hex) and byte count of a file's contents.
struct FileDigest: Equatable {
    var sha256: String
    var bytes: Int
}

/// A new file being written: appends, hashes as it goes, `fsync`s and closes on `finish()`.
final class DurableFileWriter {
    let path: String
    private var descriptor: Int32
    private var hasher = SHA256()
    private(set) var bytesWritten = 0

    init(path: String) throws(DataFileSystem.Failure) {
        self.path = path
        descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw DataFileSystem.Failure(reason: "cannot create \(path): \(DataFileSystem.lastError())")
        }
    }

    /// Appends raw bytes, retrying short and interrupted writes.
    func write(_ buffer: UnsafeRawBufferPointer) throws(DataFileSystem.Failure) {
        hasher.update(bufferPointer: buffer)
        var done = 0
        while done < buffer.count {
            #if canImport(Glibc)
                let result = Glibc.write(descriptor, buffer.baseAddress! + done, buffer.count - done)
            #else
                let result = Darwin.write(descriptor, buffer.baseAddress! + done, buffer.count - done)
            #endif
            if result < 0 {
                if errno == EINTR { continue }
                throw DataFileSystem.Failure(reason: "write to \(path): \(DataFileSystem.lastError())")
            }
            done += result
        }
        bytesWritten += buffer.count
    }

    func write(_ bytes: [UInt8]) throws(DataFileSystem.Failure) {
        var failure: DataFileSystem.Failure?
        bytes.withUnsafeBytes { buffer in
            do throws(DataFileSystem.Failure) { try write(buffer) } catch { failure = error }
        }
        if let failure { throw failure }
    }

    /// `fsync`s and closes the file; returns its digest.
    func finish() throws(DataFileSystem.Failure) -> FileDigest {
        guard fsync(descriptor) == 0 else {
            throw DataFileSystem.Failure(reason: "fsync of \(path): \(DataFileSystem.lastError())")
        }
        let result = close(descriptor)
        descriptor = -1
        guard result == 0 else {
            throw DataFileSystem.Failure(reason: "close of \(path): \(DataFileSystem.lastError())")
        }
        return FileDigest(sha256: DataFileSystem.hexString(hasher.finalize()), bytes: bytesWritten)
    }

    /// Closes and deletes the partial file.
    func abandon() {
        if descriptor >= 0 { close(descriptor) }
        descriptor = -1
        unlink(path)
    }

    deinit {
        if descriptor >= 0 { close(descriptor) }
    }
}

/// A whole regular file mapped read-only, unmapped when the last reference goes away.
///
/// `@unchecked Sendable`: the mapping is `PROT_READ`/`MAP_PRIVATE`, nothing writes through `base`, and it is unmapped
/// only in `deinit`, so concurrent reads are safe.
final class MappedDataFile: @unchecked Sendable {
    /// Start of the bytes (a private placeholder when the file is empty).
    let base: UnsafeRawPointer
    /// File size in bytes.
    let size: Int
    private let isMapped: Bool

    init(path: String) throws(DataFileSystem.Failure) {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw DataFileSystem.Failure(reason: DataFileSystem.lastError()) }
        defer { close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { throw DataFileSystem.Failure(reason: DataFileSystem.lastError()) }
        guard info.st_mode & S_IFMT == S_IFREG else { throw DataFileSystem.Failure(reason: "not a regular file") }
        size = Int(info.st_size)
        if size == 0 {
            base = UnsafeRawPointer(UnsafeMutableRawPointer.allocate(byteCount: 1, alignment: 8))
            isMapped = false
            return
        }
        let address = mmap(nil, size, PROT_READ, MAP_PRIVATE, descriptor, 0)
        guard let address, address != UnsafeMutableRawPointer(bitPattern: -1) else {
            throw DataFileSystem.Failure(reason: "mmap failed: \(DataFileSystem.lastError())")
        }
        base = UnsafeRawPointer(address)
        isMapped = true
    }

    deinit {
        if isMapped {
            munmap(UnsafeMutableRawPointer(mutating: base), size)
        } else {
            UnsafeMutableRawPointer(mutating: base).deallocate()
        }
    }
}
