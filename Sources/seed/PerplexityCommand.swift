import ArgumentParser
import Foundation
import SeedEngine

struct PerplexityCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "perplexity",
        abstract: "Measure perplexity on a text file, the way llama.cpp's llama-perplexity does.",
        discussion: """
            The text is tokenized without BOS and cut into consecutive chunks of --ctx tokens; each chunk runs from \
            an empty cache and only the second half of its positions is scored, so numbers compare across engines.
            """)

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "Tokens per chunk.")
    var ctx: Int = 512

    @Option(help: "Score at most this many chunks (default: all).")
    var chunks: Int?

    @Argument(help: "UTF-8 text file.")
    var file: String

    func validate() throws {
        if ctx < 4 { throw ValidationError("--ctx must be at least 4, got \(ctx)") }
        if let chunks, chunks < 1 { throw ValidationError("--chunks must be >= 1, got \(chunks)") }
    }

    func run() throws {
        let text = try readPrompt(prompt: nil, file: file)
        let (model, tokenizer) = try modelOptions.load()
        guard ctx <= model.configuration.contextLength else {
            throw ValidationError("--ctx \(ctx) exceeds the model's context \(model.configuration.contextLength)")
        }
        let tokens = tokenizer.encode(text, addSpecial: false, parseSpecial: false)
        let available = tokens.count / ctx
        guard available >= 1 else {
            throw ValidationError("the file has \(tokens.count) tokens; need at least --ctx \(ctx) for one chunk")
        }
        let count = min(available, chunks ?? available)
        let session = model.makeSession(contextLength: ctx, batchCapacity: ctx)
        let vocabulary = model.configuration.vocabularySize
        var negativeLogLikelihood = 0.0
        var squared = 0.0
        var scored = 0
        printError("perplexity: \(tokens.count) tokens, \(count) chunks of \(ctx)")
        let start = ContinuousClock.now
        for chunk in 0..<count {
            session.reset()
            let ids = Array(tokens[(chunk * ctx)..<((chunk + 1) * ctx)])
            let logits = try session.forward(ids, logits: .all)
            for j in (ctx / 2)..<(ctx - 1) {
                let row = UnsafeBufferPointer(rebasing: logits[(j * vocabulary)..<((j + 1) * vocabulary)])
                let nll = logSumExp(row) - Double(row[ids[j + 1]])
                negativeLogLikelihood += nll
                squared += nll * nll
                scored += 1
            }
            writeOut(String(format: "[%d]%.4f,", chunk + 1, exp(negativeLogLikelihood / Double(scored))))
        }
        let mean = negativeLogLikelihood / Double(scored)
        let variance = max(0, squared / Double(scored) - mean * mean)
        let ppl = exp(mean)
        let error = ppl * (variance / Double(max(1, scored - 1))).squareRoot()
        writeOut(String(format: "\nFinal estimate: PPL = %.4f +/- %.5f\n", ppl, error))
        printError(String(format: "%.1f s, %d tokens scored", (ContinuousClock.now - start).seconds, scored))
    }
}

func logSumExp(_ x: UnsafeBufferPointer<Float>) -> Double {
    var m = -Float.infinity
    for v in x { m = max(m, v) }
    var s = 0.0
    for v in x { s += Foundation.exp(Double(v - m)) }
    return Double(m) + Foundation.log(s)
}
