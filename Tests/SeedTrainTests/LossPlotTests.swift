import Foundation
import Testing

@testable import SeedTrain

#if canImport(FoundationXML)
    import FoundationXML
#endif

@Suite struct LossPlotTests {
    @Test func svgHasTheCurveValidationPointsAxesAndTitle() throws {
        var records = (0...100).map { step in
            TrainingLogRecord(step: step, trainLoss: 10.8 * exp(-Double(step) / 30) + 2.5)
        }
        for step in stride(from: 0, through: 100, by: 25) {
            records.append(TrainingLogRecord(step: step, validationLoss: 10.8 * exp(-Double(step) / 30) + 2.8))
        }
        records.append(TrainingLogRecord(step: 101, trainLoss: .nan))
        let svg = try LossPlot(title: "fortunes <tiny> & co", records: records).svg()
        #expect(svg.hasPrefix("<svg xmlns=\"http://www.w3.org/2000/svg\""))
        #expect(svg.hasSuffix("</svg>\n"))
        #expect(svg.contains(">fortunes &lt;tiny&gt; &amp; co</text>"))
        #expect(svg.contains(">step</text>") && svg.contains(">loss (nats/token)</text>"))
        #expect(svg.contains(">train loss</text>") && svg.contains(">validation loss</text>"))
        // One polyline point per finite training record (NaN left out).
        let polyline = try #require(
            svg.split(separator: "\n").first { $0.contains("stroke=\"#1f77b4\" stroke-width=\"1.5\"") })
        let points = try #require(polyline.split(separator: "\"").dropLast().last)
        #expect(points.split(separator: " ").count == 101)
        // Five validation markers plus the legend's.
        #expect(svg.components(separatedBy: "fill=\"#d62728\"").count - 1 == 6)
        // Ticks: steps 0…100 by 20, losses 2…14 by 2.
        for label in ["0", "20", "40", "60", "80", "100"] { #expect(svg.contains(">\(label)</text>")) }
        for label in ["2", "4", "14"] { #expect(svg.contains("text-anchor=\"end\">\(label)</text>")) }
        // It parses as XML.
        let parser = XMLParser(data: Data(svg.utf8))
        #expect(parser.parse(), "\(parser.parserError.map { "\($0)" } ?? "")")
    }

    @Test func niceTicks() {
        #expect(LossPlot.niceTicks(min: 0, max: 100) == [0, 20, 40, 60, 80, 100])
        let fractional = LossPlot.niceTicks(min: 2.31, max: 2.97)
        #expect(fractional.count == 5)
        #expect(abs(fractional[0] - 2.2) < 1e-9 && abs(fractional[4] - 3.0) < 1e-9)
        let ticks = LossPlot.niceTicks(min: 3, max: 3)
        #expect(ticks.first! <= 3 && ticks.last! >= 3 && ticks.count >= 2)
        #expect(LossPlot.label(0.30000000000000004, ticks: [0.2, 0.3]) == "0.3")
        #expect(LossPlot.label(2000, ticks: [0, 1000]) == "2000")
    }

    @Test func readsJSONLLogsAndWritesAFile() throws {
        let directory = try makeDataTestDirectory()
        let log = try writeDataTestFile(
            directory, "metrics.jsonl",
            """
            {"step": 1, "train_loss": 9.5, "lr": 0.001}
            {"step": 2, "train_loss": 8.25}

            {"step": 2, "validation_loss": 8.5}
            """)
        let records = try TrainingLogRecord.readJSONL(path: log)
        #expect(
            records == [
                .init(step: 1, trainLoss: 9.5), .init(step: 2, trainLoss: 8.25), .init(step: 2, validationLoss: 8.5),
            ])
        let output = directory + "/loss.svg"
        try LossPlot(title: "run", records: records).write(to: output)
        #expect(try String(contentsOfFile: output, encoding: .utf8).contains("<polyline"))
    }

    @Test func badLogsAndEmptyPlots() throws {
        let directory = try makeDataTestDirectory()
        let log = try writeDataTestFile(
            directory, "bad.jsonl", "{\"step\": 1, \"train_loss\": 2}\n{\"train_loss\": 1}\n")
        #expect(throws: LossPlotError.badRecord(path: log, line: 2, reason: "missing key 'step'")) {
            try TrainingLogRecord.readJSONL(path: log)
        }
        #expect(throws: LossPlotError.self) { try TrainingLogRecord.readJSONL(path: directory + "/none.jsonl") }
        #expect(throws: LossPlotError.noData) { try LossPlot(title: "x", records: []).svg() }
        #expect(throws: LossPlotError.noData) {
            try LossPlot(title: "x", records: [.init(step: 1, trainLoss: .infinity)]).svg()
        }
        // A single point still plots.
        #expect(try LossPlot(title: "x", records: [.init(step: 1, trainLoss: 3)]).svg().contains("<circle"))
    }
}
