/// Holds back generated text that might be the start of a stop string, so a stop string never leaks into the
/// output, and cuts the text where a stop string begins.
///
/// Works on UTF-8 bytes; text pushed in must be whole characters (the streaming decoder guarantees it), and text
/// coming out is cut only at positions where a stop string starts, which are character boundaries too.
public struct StopStringFilter: Sendable {
    private let stops: [[UInt8]]
    private var pending: [UInt8] = []
    /// True once a stop string has been seen; later pushes emit nothing.
    public private(set) var stopped = false
    /// The stop string that ended the text, if any.
    public private(set) var matchedStop: String?

    /// A filter for `stops` (empty strings are ignored).
    public init(stops: [String]) {
        self.stops = stops.filter { !$0.isEmpty }.map { Array($0.utf8) }
    }

    /// Adds generated text; returns the text that is now safe to show.
    public mutating func push(_ text: String) -> String {
        if stopped { return "" }
        pending.append(contentsOf: text.utf8)
        if stops.isEmpty { return take(pending.count) }
        // The earliest complete stop string ends the text.
        var earliest: (start: Int, stop: Int)?
        for (s, stop) in stops.enumerated() {
            if let at = firstIndex(of: stop, in: pending), earliest == nil || at < earliest!.start {
                earliest = (at, s)
            }
        }
        if let (start, s) = earliest {
            stopped = true
            matchedStop = String(decoding: stops[s], as: UTF8.self)
            let out = take(start)
            pending.removeAll()
            return out
        }
        // Keep the longest tail that is a proper prefix of some stop string.
        var keep = 0
        for stop in stops {
            let longest = min(stop.count - 1, pending.count)
            var length = longest
            while length > keep {
                if pending[(pending.count - length)...].elementsEqual(stop[..<length]) {
                    keep = length
                    break
                }
                length -= 1
            }
        }
        return take(pending.count - keep)
    }

    /// Releases any held-back text (call when generation ends for another reason).
    public mutating func flush() -> String {
        if stopped { return "" }
        return take(pending.count)
    }

    private mutating func take(_ count: Int) -> String {
        let out = String(decoding: pending[..<count], as: UTF8.self)
        pending.removeFirst(count)
        return out
    }

    private func firstIndex(of needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard needle.count <= haystack.count else { return nil }
        for i in 0...(haystack.count - needle.count) where haystack[i] == needle[0] {
            if haystack[i..<(i + needle.count)].elementsEqual(needle) { return i }
        }
        return nil
    }
}
