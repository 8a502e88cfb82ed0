#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A whole regular file mapped read-only into memory, unmapped when the last reference goes away.
///
/// `@unchecked Sendable`: the mapping is `PROT_READ` and `MAP_PRIVATE`, nothing ever writes through `base`, and it
/// is unmapped only in `deinit`, when no other reference can exist; concurrent reads are therefore safe. (Another
/// process truncating the file while it is mapped would still fault on access; that is inherent to mmap.)
final class MappedFile: @unchecked Sendable {
    /// Start of the mapped bytes (a private, never-read placeholder when the file is empty).
    let base: UnsafeRawPointer
    /// File size in bytes.
    let size: Int
    private let isMapped: Bool

    init(path: String) throws(GGUFError) {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw .cannotOpen(path: path, reason: lastErrorDescription()) }
        defer { close(descriptor) }

        var info = stat()
        guard fstat(descriptor, &info) == 0 else { throw .cannotOpen(path: path, reason: lastErrorDescription()) }
        guard info.st_mode & S_IFMT == S_IFREG else {
            let kind = info.st_mode & S_IFMT == S_IFDIR ? "a directory" : "not a regular file"
            throw .cannotOpen(path: path, reason: "it is \(kind)")
        }
        guard let fileSize = Int(exactly: info.st_size), fileSize >= 0 else {
            throw .cannotOpen(path: path, reason: "invalid file size \(info.st_size)")
        }
        size = fileSize
        if fileSize == 0 {
            // mmap rejects empty lengths; parsing reads nothing from an empty file, but keep a valid pointer.
            base = UnsafeRawPointer(UnsafeMutableRawPointer.allocate(byteCount: 1, alignment: 1))
            isMapped = false
            return
        }
        let address = mmap(nil, fileSize, PROT_READ, MAP_PRIVATE, descriptor, 0)
        guard let address, address != UnsafeMutableRawPointer(bitPattern: -1) else {
            throw .cannotOpen(path: path, reason: "mmap failed: \(lastErrorDescription())")
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

/// `strerror(errno)` as a Swift string.
func lastErrorDescription() -> String {
    let code = errno
    guard let message = strerror(code) else { return "error \(code)" }
    return String(cString: message)
}
