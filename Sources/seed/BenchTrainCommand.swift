import ArgumentParser
import Foundation
import SeedTrain

struct BenchTrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-train",
        abstract: "Time full training steps of a training configuration's model on synthetic tokens.",
        discussion: """
            Builds the model and AdamW optimizer of CONFIG (the data section is not read), runs --warmup untimed \
            steps and then --steps timed ones: zero gradients, forward and backward over the micro-batches, clip, \
            AdamW, exactly as `seed train` does per step but with no log, evaluation or checkpoint. Tokens are the \
            SplitMix64 stream of training.seed (scripts/bench/train_bench.py trains PyTorch on the same ones). \
            Reports the median step time, tokens/s at that median and MFU against a float32 GEMM peak (the one \
            given with --peak-gflops, else measured here).
            """)

    @Argument(help: ArgumentHelp("Training configuration (.toml, .yaml, .yml or .json).", valueName: "config"))
    var config: String

    @Option(help: "Timed steps.")
    var steps: Int = 5

    @Option(help: "Untimed steps first.")
    var warmup: Int = 1

    @Option(help: "Compute threads (overrides training.threads).")
    var threads: Int?

    @Option(help: "Matrix-product precision, fp32 or bf16 (overrides training.precision).")
    var precision: String?

    @Option(
        name: .customLong("set"),
        help: ArgumentHelp(
            "Override a configuration key, e.g. --set training.batch_size=4 (repeatable).", valueName: "key=value"))
    var overrides: [String] = []

    @Option(help: "MFU denominator in GFLOP/s (default: measure the pool's sgemm throughput).")
    var peakGflops: Double?

    @Flag(help: "Print one JSON object.")
    var json = false

    func validate() throws {
        if steps < 1 { throw ValidationError("--steps must be >= 1, got \(steps)") }
        if warmup < 0 { throw ValidationError("--warmup must be >= 0, got \(warmup)") }
        if let threads, threads < 1 { throw ValidationError("--threads must be >= 1, got \(threads)") }
        if let peakGflops, !(peakGflops > 0 && peakGflops.isFinite) {
            throw ValidationError("--peak-gflops must be a positive number, got \(peakGflops)")
        }
    }

    func run() throws {
        var parsed: [TrainingConfiguration.Override] = []
        do {
            for text in overrides { parsed.append(try TrainingConfiguration.Override(parsing: text)) }
            if let threads {
                parsed.append(try TrainingConfiguration.Override(key: "training.threads", text: String(threads)))
            }
            if let precision {
                parsed.append(try TrainingConfiguration.Override(key: "training.precision", text: precision))
            }
        } catch {
            throw ValidationError(error.description)
        }
        let configuration: TrainingConfiguration
        do {
            configuration = try TrainingConfiguration.load(path: config, overrides: parsed)
        } catch {
            throw ValidationError(error.description)
        }
        let benchmark = try TrainingBenchmark(configuration: configuration)
        let result = try benchmark.run(warmup: warmup, steps: steps)
        let peak = peakGflops.map { $0 * 1e9 } ?? measureSgemmPeak(pool: benchmark.pool)
        let mfu = result.tokensPerSecond * result.flopsPerToken / peak
        let t = configuration.training
        if json {
            let fields: [(String, String)] = [
                ("engine", "\"seed\""), ("precision", "\"\(t.precision.rawValue)\""), ("threads", "\(result.threads)"),
                ("parameters", "\(result.parameterCount)"),
                ("batch_size", "\(t.batchSize)"), ("micro_batch_size", "\(t.microBatchSize)"),
                ("seq_len", "\(t.seqLen)"), ("tokens_per_step", "\(result.tokensPerStep)"),
                ("steps", "\(steps)"), ("warmup", "\(warmup)"),
                (
                    "step_seconds",
                    "[" + result.stepSeconds.map { String(format: "%.4f", $0) }.joined(separator: ",") + "]"
                ),
                ("median_step_s", String(format: "%.4f", result.medianStepSeconds)),
                ("tokens_per_s", String(format: "%.1f", result.tokensPerSecond)),
                ("flops_per_token", String(format: "%.0f", result.flopsPerToken)),
                ("peak_gflop_s", String(format: "%.1f", peak / 1e9)), ("mfu", String(format: "%.4f", mfu)),
                ("first_loss", String(format: "%.4f", result.losses.first ?? .nan)),
                ("last_loss", String(format: "%.4f", result.losses.last ?? .nan)),
            ]
            writeOut("{" + fields.map { "\"\($0.0)\": \($0.1)" }.joined(separator: ", ") + "}\n")
        } else {
            writeOut(
                "\(result.parameterCount) parameters, \(t.precision.rawValue), \(result.threads) thread(s), "
                    + "\(result.tokensPerStep) tokens/step: "
                    + String(
                        format: "median step %.3f s, %.1f tokens/s, MFU %.1f%% of %.1f GFLOP/s; loss %.4f -> %.4f\n",
                        result.medianStepSeconds, result.tokensPerSecond, 100 * mfu, peak / 1e9,
                        result.losses.first ?? .nan, result.losses.last ?? .nan))
        }
    }
}
