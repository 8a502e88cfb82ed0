import ArgumentParser
import Foundation
import SeedEngine
import SeedModels
import SeedTokenizers

struct BenchEmbedCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-embed",
        abstract: "Time sentence embedding (tokenize, encode, pool, normalise) over a file of texts.",
        discussion: """
            One timed run embeds every text of --file (one per line) in batches of --batch-size, in file order, \
            exactly as `seed embed` does but without printing the vectors: tokenization, the BERT forward pass, \
            pooling and normalisation are all inside the clock. Reports the median over --repeats runs after one \
            warm-up run. `scripts/bench-embeddings.sh` runs it side by side with sentence-transformers.
            """)

    @Option(name: [.short, .long], help: "Model directory (config.json, model.safetensors, tokenizer.json).")
    var model: String?

    @Option(help: "Model cache directory (default: $SEED_MODEL_DIR or ~/.cache/seed/models).")
    var modelDir: String?

    @Option(name: [.customShort("f"), .long], help: "Texts to embed, one per line ('-' for stdin).")
    var file: String

    @Option(name: [.short, .long], help: "Compute threads (default: all CPUs).")
    var threads: Int?

    @Option(help: "Texts per batch.")
    var batchSize: Int = 32

    @Option(help: "Timed runs.")
    var repeats: Int = 3

    @Flag(help: "Print one JSON object.")
    var json = false

    func validate() throws {
        if let threads, threads < 1 || threads > 1024 {
            throw ValidationError("--threads must be between 1 and 1024, got \(threads)")
        }
        if batchSize < 1 || batchSize > 4096 {
            throw ValidationError("--batch-size must be between 1 and 4096, got \(batchSize)")
        }
        if repeats < 1 || repeats > 10_000 {
            throw ValidationError("--repeats must be between 1 and 10000, got \(repeats)")
        }
    }

    func run() throws {
        let content = try readPrompt(prompt: nil, file: file)
        var texts = content.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if texts.last == "" { texts.removeLast() }
        guard !texts.isEmpty else { throw ValidationError("no text to embed in \(file)") }
        let directory = try ModelStore(directory: modelDir).resolve(model, default: .miniLM) { printError($0) }

        let clock = ContinuousClock()
        let loadStart = clock.now
        let tokenizer = try HFTokenizer(file: directory + "/tokenizer.json")
        let embedder = try SentenceEmbedder(directory: directory, threads: threads)
        let loadSeconds = (clock.now - loadStart).seconds
        let limit = embedder.maxSequenceLength

        var tokenCount = 0
        /// Embeds every text once; returns the seconds taken.
        func embedAll() throws -> Double {
            let start = clock.now
            var tokens = 0
            var index = 0
            while index < texts.count {
                let batch = texts[index..<min(texts.count, index + batchSize)]
                let ids = batch.map { tokenizer.encode($0, maxLength: limit).ids }
                tokens += ids.reduce(0) { $0 + $1.count }
                let vectors = try embedder.embed(ids: ids)
                guard vectors.count == batch.count else {
                    throw ValidationError("the model returned \(vectors.count) vectors for \(batch.count) texts")
                }
                index += batch.count
            }
            tokenCount = tokens
            return (clock.now - start).seconds
        }
        _ = try embedAll()
        var rates: [Double] = []
        for _ in 0..<repeats { rates.append(Double(texts.count) / (try embedAll())) }
        let rss = peakResidentMegabytes()
        let rate = median(rates)
        let tokensPerSecond = rate * Double(tokenCount) / Double(texts.count)
        let threadCount = embedder.model.pool.threadCount
        if json {
            let fields = [
                "\"load_s\": \(String(format: "%.4f", loadSeconds))", "\"rss_mb\": \(String(format: "%.1f", rss))",
                "\"threads\": \(threadCount)", "\"batch_size\": \(batchSize)", "\"sentences\": \(texts.count)",
                "\"tokens\": \(tokenCount)", "\"sentences_per_s\": \(String(format: "%.2f", rate))",
                "\"tokens_per_s\": \(String(format: "%.1f", tokensPerSecond))",
            ]
            writeOut("{" + fields.joined(separator: ", ") + "}\n")
        } else {
            writeOut(
                String(
                    format: """
                        threads %d, batch size %d, load %.3f s, peak RSS %.1f MB
                        %d texts (%d tokens): %.1f sentences/s, %.0f tokens/s (median of %d; min %.1f, max %.1f)

                        """, threadCount, batchSize, loadSeconds, rss, texts.count, tokenCount, rate,
                    tokensPerSecond, rates.count, rates.min()!, rates.max()!))
        }
    }
}
