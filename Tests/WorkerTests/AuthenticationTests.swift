import Common
import Testing
@testable import FluxgateWorker

@Suite struct AuthenticationTests {
    let upstreams = [Fixtures.upstream("openai", "/openai"), Fixtures.upstream("anthropic", "/anthropic")]

    func authenticator(_ keys: [Configuration.StaticKey], jwt: [Configuration.JWTKey] = []) -> Authenticator {
        Authenticator(configuration: Fixtures.configuration(upstreams: upstreams, staticKeys: keys, jwt: jwt))
    }

    func caller(_ outcome: AuthOutcome) -> AuthenticatedCaller? {
        if case .allowed(let caller) = outcome { return caller }
        return nil
    }

    @Test func openProxyNeedsNoCredentialAndReachesEverything() {
        let auth = authenticator([])
        let c = caller(auth.authenticate(authorizationHeader: nil, xAPIKeyHeader: nil, now: 0))
        #expect(c?.permitted.contains(0) == true && c?.permitted.contains(1) == true)
        #expect(c?.keyID == nil)
        #expect(caller(auth.authenticate(authorizationHeader: "Basic x", xAPIKeyHeader: nil, now: 0)) != nil)
    }

    @Test func staticKeyMatchesExactBearerToken() {
        let auth = authenticator([.init(id: "alice", key: Secret("sk-alice"))])
        let c = caller(auth.authenticate(authorizationHeader: "Bearer sk-alice", xAPIKeyHeader: nil, now: 0))
        #expect(c?.keyID == "alice")
        #expect(c?.permitted.contains(1) == true)
    }

    @Test func staticKeyWithoutIDHasNoLogID() {
        let auth = authenticator([.init(id: nil, key: Secret("sk-anon"))])
        let c = caller(auth.authenticate(authorizationHeader: "Bearer sk-anon", xAPIKeyHeader: nil, now: 0))
        #expect(c != nil && c?.keyID == nil)
    }

    @Test(arguments: [
        "bearer sk-alice", "Bearer  sk-alice", "Bearer sk-alice ", "Bearer sk-alic", "Bearer ",
        "Bearer", "Basic sk-alice", "sk-alice", "Bearer sk-alice\u{301}", "",
    ])
    func everythingButTheExactBearerFormIsRejected(_ header: String) {
        let auth = authenticator([.init(id: "alice", key: Secret("sk-alice"))])
        #expect(auth.authenticate(authorizationHeader: header, xAPIKeyHeader: nil, now: 0) == .rejected)
    }

    @Test func missingCredentialIsRejected() {
        let auth = authenticator([.init(id: "alice", key: Secret("sk-alice"))])
        #expect(auth.authenticate(authorizationHeader: nil, xAPIKeyHeader: nil, now: 0) == .rejected)
    }

    @Test func xAPIKeyIsAcceptedWhenThereIsNoAuthorization() {
        let auth = authenticator([.init(id: "alice", key: Secret("sk-alice"))])
        #expect(caller(auth.authenticate(authorizationHeader: nil, xAPIKeyHeader: "sk-alice", now: 0))?.keyID == "alice")
        #expect(auth.authenticate(authorizationHeader: nil, xAPIKeyHeader: "", now: 0) == .rejected)
    }

    @Test func authorizationWinsOverXAPIKeyEvenWhenInvalid() {
        let auth = authenticator([.init(id: "alice", key: Secret("sk-alice"))])
        #expect(auth.authenticate(authorizationHeader: "Basic zzz", xAPIKeyHeader: "sk-alice", now: 0) == .rejected)
    }

    @Test func staticKeyUpstreamListRestrictsReach() {
        let auth = authenticator([.init(id: "a", key: Secret("k"), upstreams: ["anthropic"])])
        let c = caller(auth.authenticate(authorizationHeader: "Bearer k", xAPIKeyHeader: nil, now: 0))
        #expect(c?.permitted.contains(0) == false)
        #expect(c?.permitted.contains(1) == true)
    }

    @Test func callerWithNothingToReachIsRejected() {
        let config = Fixtures.configuration(staticKeys: [.init(id: "a", key: Secret("k"))])
        let auth = Authenticator(configuration: config)
        #expect(auth.authenticate(authorizationHeader: "Bearer k", xAPIKeyHeader: nil, now: 0) == .rejected)
    }

    @Test func staticKeysAreTriedBeforeJWT() {
        let token = Fixtures.jwt()
        let auth = authenticator(
            [.init(id: "static", key: Secret(token))],
            jwt: [.init(id: "team", key: Secret(Fixtures.jwtSecret))])
        #expect(caller(auth.authenticate(authorizationHeader: "Bearer " + token, xAPIKeyHeader: nil, now: 0))?.keyID == "static")
    }

    @Test func validJWTReachesAllUpstreamsAndLogsItsKid() {
        let auth = authenticator(
            [.init(id: "static", key: Secret("other"))],
            jwt: [.init(id: "team", key: Secret(Fixtures.jwtSecret))])
        let c = caller(auth.authenticate(authorizationHeader: "Bearer " + Fixtures.jwt(), xAPIKeyHeader: nil, now: 0))
        #expect(c?.keyID == "team")
        #expect(c?.permitted.contains(0) == true && c?.permitted.contains(1) == true)
    }

    @Test func constantTimeEqualsComparesWholeContents() {
        #expect(Crypto.constantTimeEquals([1, 2, 3], [1, 2, 3]))
        #expect(!Crypto.constantTimeEquals([1, 2, 3], [1, 2, 4]))
        #expect(!Crypto.constantTimeEquals([1, 2], [1, 2, 3]))
    }

    @Test func hmacMatchesRFC4231TestCase2() {
        let mac = Crypto.hmacSHA256(key: Array("Jefe".utf8), message: Array("what do ya want for nothing?".utf8))
        let hex = mac.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
        #expect(hex == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    }
}
