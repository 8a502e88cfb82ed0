import Foundation

/// One line of a training log (`metrics.jsonl`): the step and whichever losses were measured at it.
public struct TrainingLogRecord: Codable, Sendable, Equatable {
    public var step: Int
    /// Training loss (mean cross-entropy, nats per token) of this step's batch.
    public var trainLoss: Double?
    /// Validation loss, on steps where evaluation ran.
    public var validationLoss: Double?

    public init(step: Int, trainLoss: Double? = nil, validationLoss: Double? = nil) {
        self.step = step
        self.trainLoss = trainLoss
        self.validationLoss = validationLoss
    }

    enum CodingKeys: String, CodingKey {
        case step
        case trainLoss = "train_loss"
        case validationLoss = "validation_loss"
    }

    /// Reads a JSONL log: one JSON object per line with `step` and `train_loss` and/or `validation_loss` (other keys
    /// are ignored, so the trainer's full records can be read directly). Blank lines are skipped.
    ///
    /// - Throws: ``LossPlotError`` naming the file and line of a bad record.
    public static func readJSONL(path: String) throws(LossPlotError) -> [TrainingLogRecord] {
        let bytes: [UInt8]
        do {
            bytes = try DataFileSystem.readFile(path)
        } catch {
            throw .unreadable(path: path, reason: error.reason)
        }
        var records: [TrainingLogRecord] = []
        for (number, range) in DocumentFile.lines(bytes).enumerated() where !DocumentFile.isBlank(bytes[range]) {
            do {
                records.append(try JSONDecoder().decode(TrainingLogRecord.self, from: Data(bytes[range])))
            } catch {
                throw .badRecord(path: path, line: number + 1, reason: describeDecodingError(error))
            }
        }
        return records
    }
}

/// Why a loss plot could not be made.
public enum LossPlotError: Error, Sendable, Equatable, CustomStringConvertible {
    case unreadable(path: String, reason: String)
    case badRecord(path: String, line: Int, reason: String)
    /// No finite loss value to plot.
    case noData
    case writeFailed(path: String, reason: String)

    public var description: String {
        switch self {
        case .unreadable(let path, let reason): "cannot read log \(path): \(reason)"
        case .badRecord(let path, let line, let reason): "\(path):\(line): \(reason)"
        case .noData: "nothing to plot: the log has no finite train or validation loss"
        case .writeFailed(let path, let reason): "cannot write plot \(path): \(reason)"
        }
    }
}

/// A loss curve as a standalone SVG: training loss per step as a line, validation loss as marked points, axes with
/// "nice" ticks (1, 2, 5 × 10ⁿ), labels, a legend and a title. Non-finite losses are left out.
public struct LossPlot: Sendable {
    public var title: String
    public var records: [TrainingLogRecord]
    /// Canvas size in pixels.
    public var width: Int = 800
    public var height: Int = 480

    public init(title: String, records: [TrainingLogRecord]) {
        self.title = title
        self.records = records
    }

    /// The SVG document.
    ///
    /// - Throws: ``LossPlotError/noData`` when no record has a finite loss.
    public func svg() throws(LossPlotError) -> String {
        let train = records.compactMap { r in r.trainLoss.flatMap { $0.isFinite ? (Double(r.step), $0) : nil } }
            .sorted { $0.0 < $1.0 }
        let validation = records.compactMap { r in
            r.validationLoss.flatMap { $0.isFinite ? (Double(r.step), $0) : nil }
        }.sorted { $0.0 < $1.0 }
        let all = train + validation
        guard !all.isEmpty else { throw .noData }

        let left = 70.0
        let right = Double(width) - 20
        let top = 50.0
        let bottom = Double(height) - 60
        let xTicks = Self.niceTicks(min: all.map(\.0).min()!, max: all.map(\.0).max()!)
        let yTicks = Self.niceTicks(min: all.map(\.1).min()!, max: all.map(\.1).max()!)
        let (x0, x1) = (xTicks.first!, xTicks.last!)
        let (y0, y1) = (yTicks.first!, yTicks.last!)
        func px(_ x: Double) -> Double { left + (x - x0) / (x1 - x0) * (right - left) }
        func py(_ y: Double) -> Double { bottom - (y - y0) / (y1 - y0) * (bottom - top) }
        func f(_ value: Double) -> String { String(format: "%.1f", value) }

        var svg = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(width)" height="\(height)" \
            viewBox="0 0 \(width) \(height)" font-family="sans-serif" font-size="12">
            <rect width="100%" height="100%" fill="white"/>
            <text x="\(f(Double(width) / 2))" y="28" text-anchor="middle" font-size="16" font-weight="bold">\
            \(Self.escape(title))</text>

            """
        // Grid lines and tick labels.
        for tick in xTicks {
            let x = px(tick)
            svg += "<line x1=\"\(f(x))\" y1=\"\(f(top))\" x2=\"\(f(x))\" y2=\"\(f(bottom))\" stroke=\"#e5e5e5\"/>\n"
            svg +=
                "<line x1=\"\(f(x))\" y1=\"\(f(bottom))\" x2=\"\(f(x))\" y2=\"\(f(bottom + 5))\" stroke=\"black\"/>\n"
            svg +=
                "<text x=\"\(f(x))\" y=\"\(f(bottom + 19))\" text-anchor=\"middle\">\(Self.label(tick, ticks: xTicks))</text>\n"
        }
        for tick in yTicks {
            let y = py(tick)
            svg += "<line x1=\"\(f(left))\" y1=\"\(f(y))\" x2=\"\(f(right))\" y2=\"\(f(y))\" stroke=\"#e5e5e5\"/>\n"
            svg += "<line x1=\"\(f(left - 5))\" y1=\"\(f(y))\" x2=\"\(f(left))\" y2=\"\(f(y))\" stroke=\"black\"/>\n"
            svg +=
                "<text x=\"\(f(left - 8))\" y=\"\(f(y + 4))\" text-anchor=\"end\">\(Self.label(tick, ticks: yTicks))</text>\n"
        }
        // Axes and their labels.
        svg += "<line x1=\"\(f(left))\" y1=\"\(f(bottom))\" x2=\"\(f(right))\" y2=\"\(f(bottom))\" stroke=\"black\"/>\n"
        svg += "<line x1=\"\(f(left))\" y1=\"\(f(top))\" x2=\"\(f(left))\" y2=\"\(f(bottom))\" stroke=\"black\"/>\n"
        svg +=
            "<text x=\"\(f((left + right) / 2))\" y=\"\(f(Double(height) - 18))\" text-anchor=\"middle\">step</text>\n"
        svg +=
            "<text x=\"18\" y=\"\(f((top + bottom) / 2))\" text-anchor=\"middle\" "
            + "transform=\"rotate(-90 18 \(f((top + bottom) / 2)))\">loss (nats/token)</text>\n"
        // Data.
        if train.count == 1 {
            svg += "<circle cx=\"\(f(px(train[0].0)))\" cy=\"\(f(py(train[0].1)))\" r=\"3\" fill=\"#1f77b4\"/>\n"
        } else if !train.isEmpty {
            let points = train.map { "\(f(px($0.0))),\(f(py($0.1)))" }.joined(separator: " ")
            svg += "<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"1.5\" points=\"\(points)\"/>\n"
        }
        if validation.count > 1 {
            let points = validation.map { "\(f(px($0.0))),\(f(py($0.1)))" }.joined(separator: " ")
            svg +=
                "<polyline fill=\"none\" stroke=\"#d62728\" stroke-width=\"1\" stroke-dasharray=\"4 3\" "
                + "points=\"\(points)\"/>\n"
        }
        for (step, loss) in validation {
            svg += "<circle cx=\"\(f(px(step)))\" cy=\"\(f(py(loss)))\" r=\"4\" fill=\"#d62728\"/>\n"
        }
        // Legend, on a white box so a curve passing under it stays readable.
        let entries = (train.isEmpty ? 0 : 1) + (validation.isEmpty ? 0 : 1)
        svg +=
            "<rect x=\"\(f(right - 158))\" y=\"\(f(top - 4))\" width=\"150\" height=\"\(f(Double(entries) * 18 + 6))\" "
            + "fill=\"white\" fill-opacity=\"0.85\" stroke=\"#cccccc\"/>\n"
        var legendY = top + 8
        if !train.isEmpty {
            svg +=
                "<line x1=\"\(f(right - 150))\" y1=\"\(f(legendY))\" x2=\"\(f(right - 125))\" y2=\"\(f(legendY))\" "
                + "stroke=\"#1f77b4\" stroke-width=\"2\"/>\n"
            svg += "<text x=\"\(f(right - 118))\" y=\"\(f(legendY + 4))\">train loss</text>\n"
            legendY += 18
        }
        if !validation.isEmpty {
            svg += "<circle cx=\"\(f(right - 137.5))\" cy=\"\(f(legendY))\" r=\"4\" fill=\"#d62728\"/>\n"
            svg += "<text x=\"\(f(right - 118))\" y=\"\(f(legendY + 4))\">validation loss</text>\n"
        }
        svg += "</svg>\n"
        return svg
    }

    /// Writes the SVG atomically.
    ///
    /// - Throws: ``LossPlotError/noData`` or ``LossPlotError/writeFailed(path:reason:)``.
    public func write(to path: String) throws(LossPlotError) {
        let text = try svg()
        do {
            try DataFileSystem.writeAtomically(path, Array(text.utf8))
        } catch {
            throw .writeFailed(path: path, reason: error.reason)
        }
    }

    /// About 5–10 evenly spaced round values covering `[min, max]` (step 1, 2 or 5 × 10ⁿ), first ≤ min, last ≥ max.
    static func niceTicks(min low: Double, max high: Double) -> [Double] {
        var low = low
        var high = high
        if high - low < 1e-12 * Swift.max(1, abs(high)) {
            // A single value: widen around it.
            let pad = abs(low) > 0 ? abs(low) * 0.1 : 1
            low -= pad
            high += pad
        }
        let rough = (high - low) / 6
        let magnitude = pow(10, floor(log10(rough)))
        let step = [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= rough } ?? 10 * magnitude
        let first = floor(low / step) * step
        let last = ceil(high / step) * step
        let count = Int(((last - first) / step).rounded())
        return (0...count).map { first + Double($0) * step }
    }

    /// A tick label with just enough decimals for the tick spacing.
    static func label(_ value: Double, ticks: [Double]) -> String {
        let step = ticks.count > 1 ? ticks[1] - ticks[0] : 1
        let decimals = Swift.max(0, Int(-floor(log10(step) + 1e-9)))
        if decimals == 0 && abs(value) >= 10000 {
            return String(Int(value.rounded()))
        }
        return String(format: "%.\(decimals)f", abs(value) < step / 2 ? 0 : value)
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
