import ArgumentParser
import Foundation
import SeedEngine
import SeedModels

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Time prompt processing and generation (llama-bench's pp/tg convention).",
        discussion: """
            pp: one batched forward pass over --prompt-tokens tokens from an empty cache. tg: --gen-tokens \
            single-token forward passes from an empty cache, continuing past end-of-text. Reports the median over \
            --repeats runs after one warm-up.
            """)

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "Prompt tokens per pp run (0 = skip).")
    var promptTokens: Int = 512

    @Option(help: "Generated tokens per tg run (0 = skip).")
    var genTokens: Int = 128

    @Option(help: "Timed runs of each.")
    var repeats: Int = 3

    @Flag(help: "Print one JSON object.")
    var json = false

    func validate() throws {
        if promptTokens < 0 || genTokens < 0 { throw ValidationError("token counts must be >= 0") }
        if repeats < 1 { throw ValidationError("--repeats must be >= 1, got \(repeats)") }
    }

    func run() throws {
        let clock = ContinuousClock()
        let loadStart = clock.now
        let (model, _) = try modelOptions.load()
        let loadSeconds = (clock.now - loadStart).seconds
        let context = max(promptTokens, genTokens) + 1
        guard context <= model.configuration.contextLength else {
            throw ValidationError(
                "the run needs \(context) positions; the model's context is "
                    + "\(model.configuration.contextLength)")
        }
        let session = model.makeSession(contextLength: context, batchCapacity: max(1, promptTokens))
        var rng = SeededGenerator(seed: 1)
        let vocabulary = model.configuration.vocabularySize
        let prompt = (0..<promptTokens).map { _ in Int(rng.next() % UInt64(vocabulary)) }

        func timePrompt() throws -> Double {
            session.reset()
            let t = clock.now
            try session.forward(prompt)
            return (clock.now - t).seconds
        }
        func timeGeneration() throws -> Double {
            session.reset()
            var token = 1
            let t = clock.now
            for _ in 0..<genTokens {
                let logits = try session.forward([token])
                token = Sampler.argmax(logits)
            }
            return (clock.now - t).seconds
        }
        var pp: [Double] = []
        var tg: [Double] = []
        if promptTokens > 0 {
            _ = try timePrompt()
            for _ in 0..<repeats { pp.append(Double(promptTokens) / (try timePrompt())) }
        }
        if genTokens > 0 {
            _ = try timeGeneration()
            for _ in 0..<repeats { tg.append(Double(genTokens) / (try timeGeneration())) }
        }
        let rss = peakResidentMegabytes()
        if json {
            var fields = [
                "\"load_s\": \(String(format: "%.4f", loadSeconds))", "\"rss_mb\": \(String(format: "%.1f", rss))",
                "\"threads\": \(model.pool.threadCount)",
                "\"activations\": \"\(modelOptions.activations.rawValue)\"",
                "\"kernels\": \"\(model.multiplier.instructionSet)\"",
            ]
            if !pp.isEmpty { fields.append("\"pp_tok_s\": \(String(format: "%.2f", median(pp)))") }
            if !tg.isEmpty { fields.append("\"tg_tok_s\": \(String(format: "%.2f", median(tg)))") }
            writeOut("{" + fields.joined(separator: ", ") + "}\n")
        } else {
            var out = String(
                format: "threads %d, load %.3f s, peak RSS %.1f MB, activations %@, kernels %@\n",
                model.pool.threadCount, loadSeconds, rss, modelOptions.activations.rawValue,
                model.multiplier.instructionSet.description)
            if !pp.isEmpty {
                out += String(
                    format: "pp%d: %.1f tok/s (median of %d; min %.1f, max %.1f)\n", promptTokens,
                    median(pp), pp.count, pp.min()!, pp.max()!)
            }
            if !tg.isEmpty {
                out += String(
                    format: "tg%d: %.1f tok/s (median of %d; min %.1f, max %.1f)\n", genTokens,
                    median(tg), tg.count, tg.min()!, tg.max()!)
            }
            writeOut(out)
        }
    }
}

func median(_ values: [Double]) -> Double {
    let s = values.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

/// Peak resident set size of this process (VmHWM), in MB.
func peakResidentMegabytes() -> Double {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
    for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
        let kb = line.split(separator: " ").compactMap { Double($0) }.first ?? 0
        return kb / 1024
    }
    return 0
}
