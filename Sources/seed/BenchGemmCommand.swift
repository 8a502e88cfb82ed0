import ArgumentParser
import Foundation
import SeedKernels
import SeedTensor

struct BenchGemmCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-gemm",
        abstract: "Compare the bf16 GEMM with float32 OpenBLAS sgemm on training's product shapes.",
        discussion: """
            For each shape (MxNxK, with :XY giving whether A and B are stored transposed, default :nt as in a \
            linear layer's forward X Wᵀ), times the mixed-precision product (operands rounded to bf16, float32 \
            sums) and sgemm split over the same threads the way float32 training runs it, each repeat timing both \
            in turn (alternating which goes first), and reports the median GFLOP/s of each and their ratio. The \
            default shapes are GPT-2-small's (1024 tokens, width 768, SwiGLU 2048, a 170-row chunk of the \
            49152-token head) in all three training products.
            """)

    static let defaultShapes = [
        "1024x768x768:nt", "1024x2048x768:nt", "1024x768x2048:nt", "1024x768x2048:nn", "2048x768x1024:tn",
        "768x768x1024:tn", "170x49152x768:nt", "170x768x49152:nn", "49152x768x170:tn",
    ]

    @Option(
        name: .customLong("shape"), parsing: .upToNextOption,
        help: ArgumentHelp("Product shapes, MxNxK[:nn|nt|tn|tt] (default: GPT-2-small's).", valueName: "shape"))
    var shapes: [String] = []

    @Option(name: [.short, .long], help: "Compute threads (default: all CPUs).")
    var threads: Int?

    @Option(help: "Timed repeats per engine and shape.")
    var repeats: Int = 5

    @Option(help: "Seconds each timed repeat lasts at least (back-to-back products).")
    var seconds: Double = 0.2

    @Flag(help: "Print one JSON object per shape.")
    var json = false

    func validate() throws {
        if let threads, threads < 1 || threads > 1024 {
            throw ValidationError("--threads must be between 1 and 1024, got \(threads)")
        }
        if repeats < 1 || repeats > 1000 {
            throw ValidationError("--repeats must be between 1 and 1000, got \(repeats)")
        }
        if !(seconds > 0 && seconds <= 60) {
            throw ValidationError("--seconds must be in (0, 60], got \(seconds)")
        }
        for text in shapes {
            do {
                let shape = try ProductShape(parsing: text)
                if shape.m * shape.k > 1 << 28 || shape.k * shape.n > 1 << 28 || shape.m * shape.n > 1 << 28 {
                    throw ValidationError("--shape \(text): an operand over 2^28 elements")
                }
            } catch let error as KernelError {
                throw ValidationError("--shape \(error.description)")
            }
        }
    }

    func run() throws {
        let parsed = try (shapes.isEmpty ? Self.defaultShapes : shapes).map { try ProductShape(parsing: $0) }
        let pool = WorkerPool(threads: threads ?? WorkerPool.onlineCPUCount)
        if !json {
            writeOut("kernels: \(KernelInstructionSet.current), \(pool.threadCount) thread(s), median of \(repeats)\n")
        }
        for shape in parsed {
            let r = BFloat16ProductBenchmark.run(shape: shape, pool: pool, repeats: repeats, minimumSeconds: seconds)
            if json {
                func list(_ v: [Double]) -> String {
                    "[" + v.map { String(format: "%.3f", $0) }.joined(separator: ",") + "]"
                }
                writeOut(
                    "{\"shape\": \"\(shape)\", \"threads\": \(r.threads), \"kernels\": \"\(KernelInstructionSet.current)\", "
                        + "\"bf16_gflop_s\": \(String(format: "%.3f", r.medianBF16)), "
                        + "\"sgemm_gflop_s\": \(String(format: "%.3f", r.medianSgemm)), "
                        + "\"ratio\": \(String(format: "%.3f", r.ratio)), \"bf16_runs\": \(list(r.bf16)), "
                        + "\"sgemm_runs\": \(list(r.sgemm))}\n")
            } else {
                writeOut(
                    shape.description.padding(toLength: 18, withPad: " ", startingAt: 0)
                        + String(
                            format: " bf16 %7.1f GFLOP/s  sgemm %7.1f GFLOP/s  ratio %.2fx\n", r.medianBF16,
                            r.medianSgemm, r.ratio))
            }
        }
    }
}
