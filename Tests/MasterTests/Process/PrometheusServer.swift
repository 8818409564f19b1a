import Foundation
import TestSupport

/// A real Prometheus server (Debian's `prometheus`) on a free loopback port with a temporary
/// storage directory, scraping `target` every second; stopped by its PID when the value goes.
final class PrometheusServer: @unchecked Sendable {
    static let executable = "/usr/bin/prometheus"
    let directory: TemporaryDirectory
    let process: ChildProcess
    let port: Int

    struct Failure: Error, CustomStringConvertible { var description: String }

    init(scraping target: Int) throws {
        directory = try TemporaryDirectory()
        port = try TestPorts.closedPort()
        let config = try directory.write(
            "prometheus.yml",
            """
            global:
              scrape_interval: 1s
              evaluation_interval: 1s
            scrape_configs:
              - job_name: fluxgate
                static_configs:
                  - targets: ["127.0.0.1:\(target)"]
            """)
        process = try ChildProcess(
            Self.executable,
            [
                "--config.file=\(config)", "--storage.tsdb.path=\(directory.path)/data",
                "--web.listen-address=127.0.0.1:\(port)", "--log.level=warn",
            ])
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            if let ready = try? RawConnection(port: port, timeout: 2).request("GET", "/-/ready"), ready.status == 200 { return }
            usleep(100_000)
        }
        throw Failure(description: "prometheus did not become ready\n\(process.stderr)")
    }

    /// An instant query's single value (nil when the result is empty).
    func query(_ expression: String) throws -> Double? {
        let encoded = expression.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? expression
        let response = try RawConnection(port: port, timeout: 10).request("GET", "/api/v1/query?query=\(encoded)")
        let json = try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any]
        guard let data = json?["data"] as? [String: Any], let result = data["result"] as? [[String: Any]],
            let value = result.first?["value"] as? [Any], let text = value.last as? String
        else { return nil }
        return Double(text)
    }

    /// Queries until the value is `expected` (Prometheus scrapes every second); the last value.
    func wait(for expression: String, toBe expected: Double, timeout: Double = 30) throws -> Double? {
        let deadline = Date().addingTimeInterval(timeout)
        var last: Double?
        while Date() < deadline {
            last = try query(expression)
            if last == expected { return last }
            usleep(200_000)
        }
        return last
    }

    deinit {
        process.signal(SIGTERM)
        if process.waitForExit(timeout: 10) == nil { process.signal(SIGKILL) }
    }
}
