import Foundation
import Prometheus
import SeedEngine

/// The server's Prometheus metrics: request counts, token counts, latency histograms, and engine gauges read at
/// scrape time.
final class ServerMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    let promptTokens: Counter
    let generatedTokens: Counter
    let timeToFirstToken: ValueHistogram
    let interTokenLatency: ValueHistogram
    let requestDuration: ValueHistogram
    private let running: Gauge
    private let waiting: Gauge
    private let kvUsed: Gauge
    private let kvFree: Gauge
    private let prefixHitRate: Gauge
    private let prefixQueried: Gauge
    private let prefixHits: Gauge
    private let preemptions: Gauge

    init() {
        promptTokens = registry.makeCounter(
            name: "seed_prompt_tokens_total", help: "Prompt tokens received in completion requests.")
        generatedTokens = registry.makeCounter(
            name: "seed_generation_tokens_total", help: "Tokens generated.")
        let latencyBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]
        timeToFirstToken = registry.makeValueHistogram(
            name: "seed_time_to_first_token_seconds", buckets: latencyBuckets,
            help: "Seconds from request arrival to the first generated token.")
        interTokenLatency = registry.makeValueHistogram(
            name: "seed_inter_token_latency_seconds",
            buckets: [0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28],
            help: "Seconds between consecutive generated tokens of one request.")
        requestDuration = registry.makeValueHistogram(
            name: "seed_request_duration_seconds", buckets: latencyBuckets, help: "Seconds to answer a request.")
        running = registry.makeGauge(name: "seed_running_sequences", help: "Sequences in the running batch.")
        waiting = registry.makeGauge(name: "seed_waiting_sequences", help: "Requests waiting for a slot.")
        kvUsed = registry.makeGauge(name: "seed_kv_blocks_used", help: "KV-cache blocks held by sequences.")
        kvFree = registry.makeGauge(
            name: "seed_kv_blocks_free", help: "KV-cache blocks available (free, or idle in the prefix cache).")
        prefixHitRate = registry.makeGauge(
            name: "seed_prefix_cache_hit_rate", help: "Fraction of prompt tokens found in the prefix cache.")
        prefixQueried = registry.makeGauge(
            name: "seed_prefix_cache_queried_tokens", help: "Prompt tokens looked up in the prefix cache.")
        prefixHits = registry.makeGauge(
            name: "seed_prefix_cache_hit_tokens", help: "Prompt tokens found in the prefix cache.")
        preemptions = registry.makeGauge(
            name: "seed_preemptions", help: "Sequences preempted because the KV cache was full.")
    }

    /// Counts one answered request.
    func countRequest(route: String, status: Int) {
        registry.makeCounter(
            name: "seed_requests_total", labels: [("route", route), ("status", String(status))],
            help: "HTTP requests answered, by route and status."
        ).increment()
    }

    /// The exposition text, with engine gauges refreshed from `statistics`.
    func render(statistics s: EngineStatistics) -> String {
        running.set(Double(s.runningSequences))
        waiting.set(Double(s.waitingSequences))
        kvUsed.set(Double(s.kvBlocksUsed))
        kvFree.set(Double(s.kvBlocksFree))
        prefixQueried.set(Double(s.prefixCacheQueriedTokens))
        prefixHits.set(Double(s.prefixCacheHitTokens))
        prefixHitRate.set(
            s.prefixCacheQueriedTokens > 0 ? Double(s.prefixCacheHitTokens) / Double(s.prefixCacheQueriedTokens) : 0)
        preemptions.set(Double(s.preemptions))
        return registry.emitToString()
    }
}
