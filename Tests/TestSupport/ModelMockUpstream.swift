import Foundation

/// Tests/Fixtures/model_mock_upstream.py: a provider speaking OpenAI's Chat Completions and
/// Anthropic's Messages, that checks the provider key and reports every request it got.
public final class ModelMockUpstream: @unchecked Sendable {
    public let process: ChildProcess
    public let port: Int

    public enum Failure: Error { case didNotStart(String) }

    /// What the mock saw of one request (the `REQ` lines it prints).
    public struct Seen: Sendable {
        public var path: String
        public var model: String?
        public var keyOK: Bool
        public var length: Int
        public var sha256: String
        public var contentLength: String?
    }

    public init(name: String, providerKey: String) throws {
        let script = Binaries.packageRoot + "/Tests/Fixtures/model_mock_upstream.py"
        process = try ChildProcess(Tools.find("python3") ?? "/usr/bin/python3", [script, name, providerKey])
        // The whole line: a pipe may deliver "PORT " and the digits apart.
        var port: Int?
        _ = process.waitForStdout(timeout: 20) { output in
            port = output.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
                .first { $0.hasPrefix("PORT ") }.flatMap { Int($0.dropFirst(5)) }
            return port != nil
        }
        guard let port else { throw Failure.didNotStart(process.stderr) }
        self.port = port
    }

    public var baseURL: String { "http://127.0.0.1:\(port)" }

    public var requests: [Seen] {
        process.stdout.split(separator: "\n").compactMap { line -> Seen? in
            guard line.hasPrefix("REQ "),
                let object = try? JSONSerialization.jsonObject(with: Data(line.dropFirst(4).utf8)) as? [String: Any]
            else { return nil }
            return Seen(
                path: object["path"] as? String ?? "", model: object["model"] as? String, keyOK: object["key_ok"] as? Bool ?? false,
                length: object["length"] as? Int ?? -1, sha256: object["sha256"] as? String ?? "",
                contentLength: object["content_length"] as? String)
        }
    }

    /// Waits until the mock has reported `count` requests.
    public func waitForRequests(_ count: Int, timeout: Double = 10) -> [Seen] {
        _ = process.waitForStdout(timeout: timeout) { text in text.components(separatedBy: "REQ ").count - 1 >= count }
        return requests
    }
}
