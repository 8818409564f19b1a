import Common

// docs/observability.md `fluxgate_upstream_attempts_total`: every try counted when it ends, on
// the upstream and target it used (both named by the configuration: bounded).
extension ProxyExchange {
    /// The current try ended with `result`.
    func countAttempt(_ result: MetricsSchema.AttemptResult) {
        guard let attemptMetrics else { return }
        attemptMetrics.countAttempt(upstream: target.metricUpstream, target: target.metricTarget, result)
    }

    /// A try failed and another follows.
    func countFailedAttempt(_ failure: ExchangeState.TryFailure) {
        switch failure {
        case .connect: countAttempt(MetricsSchema.AttemptResult.connect)
        case .timeout: countAttempt(MetricsSchema.AttemptResult.timeout)
        case .reset: countAttempt(MetricsSchema.AttemptResult.reset)
        case .status: countAttempt(MetricsSchema.AttemptResult.status)
        }
    }

    /// The last try failed before a response head, for `cause`: an invalid head counts as `reset`
    /// (the try got no usable answer), a TLS or DNS failure as `connect`.
    func countLastAttempt(failedBy cause: UpstreamErrorCause?) {
        switch cause?.layer {
        case .timeout: countAttempt(MetricsSchema.AttemptResult.timeout)
        case .reset, .protocol, .truncated: countAttempt(MetricsSchema.AttemptResult.reset)
        case .dns, .connect, .tls, nil: countAttempt(MetricsSchema.AttemptResult.connect)
        }
    }
}
