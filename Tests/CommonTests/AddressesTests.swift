import Testing
@testable import Common

@Test func bindAddressParsesLiterals() {
    #expect(BindAddress(parsing: "127.0.0.1:8080")?.port == 8080)
    #expect(BindAddress(parsing: "[::1]:0")?.family == .ipv6)
    #expect(BindAddress(parsing: "localhost:8080") == nil)
}

@Test func targetURLHostHeaderOmitsTheDefaultPort() {
    let url = TargetURL(scheme: .https, host: "api.openai.com", explicitPort: 443, basePath: "", query: nil)
    #expect(url.hostHeader == "api.openai.com")
    #expect(url.origin == "https://api.openai.com")
}
