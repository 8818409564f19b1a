import Testing
@testable import Common

@Test func bindAddressParsesLiterals() {
    #expect(BindAddress(parsing: "127.0.0.1:8080")?.port == 8080)
    #expect(BindAddress(parsing: "[::1]:0")?.family == .ipv6)
    #expect(BindAddress(parsing: "localhost:8080") == nil)
}
