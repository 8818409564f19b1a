import Testing
@testable import ConfigLoading
import Common

// The libyaml layer: positions, scalars, aliases, duplicate keys, documents and syntax errors.

private func read(_ yaml: String) -> YAMLReader.Output {
    YAMLReader(file: "t.yaml").read(Array(yaml.utf8))
}

@Test func positionsAreOneBased() throws {
    let root = try #require(read("a:\n  b: c\n").root)
    #expect(root.mark == YAMLMark(line: 1, column: 1))
    guard case .mapping(let pairs) = root.content, case .mapping(let inner) = pairs[0].value.content else {
        Issue.record("expected nested mappings")
        return
    }
    #expect(pairs[0].value.mark == YAMLMark(line: 2, column: 3))
    #expect(inner[0].value.mark == YAMLMark(line: 2, column: 6))
    #expect(inner[0].value.scalar?.value == "c")
}

@Test func yaml11NullsAreRecognised() throws {
    let root = try #require(read("a: ~\nb: null\nc: Null\nd: NULL\ne:\nf: 'null'\ng: \"\"\nh: nil\n").root)
    guard case .mapping(let pairs) = root.content else { return }
    #expect(pairs.map(\.value.isNull) == [true, true, true, true, true, false, false, false])
}

@Test func scalarsKeepStyleAndTag() throws {
    let root = try #require(read("a: \"1\"\nb: !!str 2\nc: 3\n").root)
    guard case .mapping(let pairs) = root.content else { return }
    #expect(pairs.map { $0.value.scalar?.mayBeInteger } == [false, false, true])
    #expect(pairs[1].value.scalar?.tag == YAMLScalar.strTag)
}

@Test func aliasesAreResolved() throws {
    let config = try #require(
        expectClean(
            load(
                """
                version: 1
                upstreams:
                  request_timeout_ms: &timeout 5000
                  stream_idle_timeout_ms: *timeout
                """)))
    #expect(config.upstreams.streamIdleTimeoutMs == 5000)
}

@Test func undefinedAliasIsAnError() {
    expectDiagnostic(load("version: *nothing\n"), "yaml.undefined_alias", path: "", at: 1, 10)
}

@Test func duplicateKeyIsReportedAtTheSecondOccurrence() {
    let result = load("version: 1\nserver:\n  workers: 2\n  workers: 3\n  max_connections: 0\n")
    let d = expectDiagnostic(result, "yaml.duplicate_key", path: "", at: 4, 3)
    #expect(d?.message == "duplicate key \"workers\" (first defined at line 3)")
    // Validation still runs on the rest of the file.
    expectDiagnostic(result, "max_connections.not_positive", path: "server.max_connections", at: 5, 20)
}

@Test func moreThanOneDocumentIsAnError() {
    expectDiagnostic(load("version: 1\n---\nversion: 1\n"), "yaml.multiple_documents", path: "", at: 2, 1)
    expectClean(load("---\nversion: 1\n...\n"))
}

@Test func emptyFilesAreRefused() {
    for text in ["", "   \n\n", "# only\n# comments\n", "---\n", "~\n"] {
        let result = load(text)
        #expect(result.errors.map(\.code) == ["file.empty"], "\(text.debugDescription)")
        #expect(result.errors.first?.message == "configuration file is empty")
    }
}

@Test func tabIndentationGetsAHint() {
    let d = expectDiagnostic(load("version: 1\nserver:\n\tworkers: 2\n"), "yaml.syntax", path: "", at: 3, 1)
    #expect(d?.message.contains("tabs are not allowed for indentation in YAML; use spaces") == true)
}

@Test func syntaxErrorCarriesLibyamlsProblemAndPosition() {
    let result = load("version: 1\nserver: [1, 2\n")
    #expect(result.errors.count == 1)
    #expect(result.errors.first?.code == "yaml.syntax")
    #expect(result.errors.first?.line == 3)
    #expect(result.errors.first?.message.contains("did not find expected") == true)
}

@Test func byteOrderMarkCRLFAndTrailingSpacesAreAccepted() throws {
    let text =
        "\u{FEFF}version: 1   \r\nupstreams:\r\n  openai:  \r\n    target_url: https://api.openai.com\r\n"
        + "    api_key: sk-upstream\r\n    request_path: /openai \r\n"
    let config = try #require(expectClean(load(text)))
    #expect(config.upstreams.entries[0].requestPath == "/openai")
    #expect(config.upstreams.entries[0].apiKey.value == "sk-upstream")
}

@Test func veryLongLinesAreAccepted() throws {
    let key = String(repeating: "k", count: 1_000_000)
    let config = try #require(expectClean(load(minimalYAML.replacingOccurrences("sk-upstream", with: key))))
    #expect(config.upstreams.entries[0].apiKey.value.count == 1_000_000)
}

extension String {
    func replacingOccurrences(_ target: String, with replacement: String) -> String {
        split(separator: target, omittingEmptySubsequences: false).joined(separator: replacement)
    }
}
