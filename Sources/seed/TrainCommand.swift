import ArgumentParser
import Foundation
import SeedTrain

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a Llama-style model from scratch on prepared token shards.",
        discussion: """
            CONFIG is a TOML, YAML or JSON file (see examples/tiny.toml). Flags override the file. The run \
            directory gets log.jsonl (one JSON object per step), loss.svg, checkpoints/step-NNNNNNNN/ and, at the \
            end, final/model.safetensors + final/config.json. --resume continues bit for bit from the newest valid \
            checkpoint (damaged ones are skipped with a warning). Export the result for `seed generate` with \
            `seed export`.
            """)

    @Argument(help: ArgumentHelp("Training configuration (.toml, .yaml, .yml or .json).", valueName: "config"))
    var config: String

    @Option(help: ArgumentHelp("Run directory (overrides output.dir).", valueName: "dir"))
    var output: String?

    @Option(help: "Optimizer steps (overrides training.steps).")
    var steps: Int?

    @Flag(help: "Continue from the newest valid checkpoint in the run directory.")
    var resume = false

    @Option(
        name: .customLong("set"),
        help: ArgumentHelp(
            "Override a configuration key, e.g. --set optimizer.lr=1e-3 (repeatable).", valueName: "key=value"))
    var overrides: [String] = []

    @Flag(help: "No progress line (messages still go to standard error).")
    var quiet = false

    func run() throws {
        var parsed: [TrainingConfiguration.Override] = []
        do {
            for text in overrides { parsed.append(try TrainingConfiguration.Override(parsing: text)) }
            if let output { parsed.append(try TrainingConfiguration.Override(key: "output.dir", text: output)) }
            if let steps {
                parsed.append(try TrainingConfiguration.Override(key: "training.steps", text: String(steps)))
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
        let trainer = try Trainer(configuration: configuration)
        let live = isatty(STDERR_FILENO) != 0 && !quiet
        let logInterval = configuration.output.logInterval
        var lastLine = ""
        trainer.onProgress = { line in
            if live {
                FileHandle.standardError.write(Data(("\r\u{1B}[K" + line).utf8))
                lastLine = line
            } else if !quiet, trainer.step % logInterval == 0 || trainer.step == configuration.training.steps {
                printError(line)
            }
        }
        trainer.onMessage = { message in
            if live && !lastLine.isEmpty {
                FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
                printError(message)
                FileHandle.standardError.write(Data(lastLine.utf8))
            } else {
                printError(message)
            }
        }
        do {
            try trainer.run(resume: resume)
        } catch {
            if live { printError("") }
            throw error
        }
        if live { printError("") }
        writeOut("\(trainer.finalDirectory)\n")
    }
}
