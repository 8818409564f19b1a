import Common
import Testing
@testable import FluxgateWorker

@Suite struct JWTTests {
    let verifier = JWTVerifier(keys: [
        .init(id: "team", key: Secret(Fixtures.jwtSecret)),
        .init(id: "other", key: Secret("another-secret-of-at-least-32-bytes!!")),
    ])
    let now: Int64 = 1_700_000_000

    func verify(_ token: String) -> Result<String, JWTVerifier.Rejection> {
        verifier.verify(Substring(token), now: now).map(\.kid)
    }

    func header(alg: String = "\"HS256\"", typ: String = "\"JWT\"", kid: String = "\"team\"") -> String {
        #"{"alg":\#(alg),"typ":\#(typ),"kid":\#(kid)}"#
    }

    @Test func validTokenIsAcceptedWithItsKid() {
        #expect(verify(Fixtures.jwt(payload: #"{"sub":"u1","exp":1700000001,"nbf":1700000000}"#)) == .success("team"))
    }

    @Test func theSubjectIsTheStringSubClaimOnly() {
        func subject(_ payload: String) -> String?? {
            try? verifier.verify(Substring(Fixtures.jwt(payload: payload)), now: now).get().subject
        }
        #expect(subject(#"{"sub":"u1"}"#) == .some("u1"))
        #expect(subject("{}") == .some(nil))
        #expect(subject(#"{"sub":42}"#) == .some(nil), "a sub that is not a string counts per kid")
    }

    @Test func theKidSelectsTheKey() {
        let token = Fixtures.jwt(header: header(kid: "\"other\""), key: "another-secret-of-at-least-32-bytes!!")
        #expect(verify(token) == .success("other"))
    }

    @Test func wrongNumberOfPartsIsRejected() {
        let token = Fixtures.jwt()
        #expect(verify(token + ".x") == .failure(.notThreeParts))
        #expect(verify(String(token.prefix(while: { $0 != "." }))) == .failure(.notThreeParts))
    }

    @Test func algNoneIsRejected() {
        #expect(verify(Fixtures.jwt(header: header(alg: "\"none\""))) == .failure(.unsupportedAlgorithm))
    }

    @Test func otherAlgorithmsAreRejected() {
        #expect(verify(Fixtures.jwt(header: header(alg: "\"HS512\""))) == .failure(.unsupportedAlgorithm))
        #expect(verify(Fixtures.jwt(header: header(alg: "\"hs256\""))) == .failure(.unsupportedAlgorithm))
        #expect(verify(Fixtures.jwt(header: #"{"typ":"JWT","kid":"team"}"#)) == .failure(.unsupportedAlgorithm))
    }

    @Test func typMustBeJWT() {
        #expect(verify(Fixtures.jwt(header: header(typ: "\"jwt\""))) == .failure(.wrongType))
        #expect(verify(Fixtures.jwt(header: #"{"alg":"HS256","kid":"team"}"#)) == .failure(.wrongType))
    }

    @Test func kidMustNameAConfiguredKeyExactly() {
        #expect(verify(Fixtures.jwt(header: header(kid: "\"Team\""))) == .failure(.unknownKeyID))
        #expect(verify(Fixtures.jwt(header: #"{"alg":"HS256","typ":"JWT"}"#)) == .failure(.unknownKeyID))
        #expect(verify(Fixtures.jwt(header: header(kid: "7"))) == .failure(.unknownKeyID))
    }

    @Test func signatureWithAnotherKeyIsRejected() {
        #expect(verify(Fixtures.jwt(key: "not-the-right-secret-but-32-bytes-long")) == .failure(.badSignature))
    }

    @Test func tamperedPayloadIsRejected() {
        let token = Fixtures.jwt(payload: #"{"sub":"a"}"#)
        let parts = token.split(separator: ".")
        let forged = parts[0] + "." + Base64URL.encode(Array(#"{"sub":"b"}"#.utf8)) + "." + parts[2]
        #expect(verify(forged) == .failure(.badSignature))
    }

    @Test func truncatedSignatureIsRejected() {
        let token = Fixtures.jwt()
        #expect(verify(String(token.dropLast(2))) == .failure(.badSignature))
    }

    @Test func paddedOrNonURLSafeBase64IsRejected() {
        let token = Fixtures.jwt()
        let parts = token.split(separator: ".")
        #expect(verify(parts[0] + "=." + parts[1] + "." + parts[2]) == .failure(.malformedHeader))
        #expect(verify(parts[0] + "." + parts[1] + "." + parts[2] + "=") == .failure(.badSignature))
        #expect(verify(String(parts[0].map { $0 == "e" ? "+" : $0 }) + "." + parts[1] + "." + parts[2]) != .success("team"))
    }

    @Test func headerThatIsNotAJSONObjectIsRejected() {
        #expect(verify(Fixtures.jwt(header: "[1]")) == .failure(.malformedHeader))
        #expect(verify(Fixtures.jwt(header: "not json")) == .failure(.malformedHeader))
        #expect(
            verify(Fixtures.jwt(header: #"{"alg":"HS256","alg":"HS256","typ":"JWT","kid":"team"}"#))
                == .failure(.malformedHeader))
    }

    @Test func payloadThatIsNotAJSONObjectIsRejected() {
        #expect(verify(Fixtures.jwt(payload: "\"claims\"")) == .failure(.malformedPayload))
        #expect(verify(Fixtures.jwt(payload: "{")) == .failure(.malformedPayload))
        #expect(verify(Fixtures.jwt(payload: #"{"exp":1,"exp":2000000000}"#)) == .failure(.malformedPayload))
    }

    @Test func expiredTokenIsRejectedWithoutLeeway() {
        #expect(verify(Fixtures.jwt(payload: #"{"exp":1700000000}"#)) == .failure(.expired))
        #expect(verify(Fixtures.jwt(payload: #"{"exp":1699999999}"#)) == .failure(.expired))
        #expect(verify(Fixtures.jwt(payload: #"{"exp":1700000001}"#)) == .success("team"))
    }

    @Test func expMustBeAnInteger() {
        #expect(verify(Fixtures.jwt(payload: #"{"exp":"1800000000"}"#)) == .failure(.malformedTimeClaim))
        #expect(verify(Fixtures.jwt(payload: #"{"exp":1800000000.0}"#)) == .failure(.malformedTimeClaim))
        #expect(verify(Fixtures.jwt(payload: #"{"exp":1.8e9}"#)) == .failure(.malformedTimeClaim))
        #expect(verify(Fixtures.jwt(payload: #"{"exp":null}"#)) == .failure(.malformedTimeClaim))
    }

    @Test func notYetValidTokenIsRejectedWithoutLeeway() {
        #expect(verify(Fixtures.jwt(payload: #"{"nbf":1700000001}"#)) == .failure(.notYetValid))
        #expect(verify(Fixtures.jwt(payload: #"{"nbf":1700000000}"#)) == .success("team"))
        #expect(verify(Fixtures.jwt(payload: #"{"nbf":"0"}"#)) == .failure(.malformedTimeClaim))
    }

    @Test func anyAudienceIsRejected() {
        #expect(verify(Fixtures.jwt(payload: #"{"aud":"fluxgate"}"#)) == .failure(.audiencePresent))
        #expect(verify(Fixtures.jwt(payload: #"{"aud":[]}"#)) == .failure(.audiencePresent))
        #expect(verify(Fixtures.jwt(payload: #"{"aud":null}"#)) == .failure(.audiencePresent))
    }

    @Test func everyRejectionIsTheSame401ThroughTheAuthenticator() {
        let config = Fixtures.configuration(
            upstreams: [Fixtures.upstream("u", "/")],
            jwt: [.init(id: "team", key: Secret(Fixtures.jwtSecret))])
        let auth = Authenticator(configuration: config)
        for token in [Fixtures.jwt(header: header(alg: "\"none\"")), Fixtures.jwt(payload: #"{"exp":1}"#), "a.b.c"] {
            #expect(auth.authenticate(authorizationHeader: "Bearer " + token, xAPIKeyHeader: nil, now: now) == .rejected)
        }
    }

    @Test func base64URLRoundTripsAndRejectsBadTrailingBits() {
        for length in 0..<10 {
            let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 * 37 + 250) }
            #expect(Base64URL.decode(Substring(Base64URL.encode(bytes)).utf8) == bytes)
        }
        #expect(Base64URL.decode(Substring("QQ").utf8) == [0x41])
        #expect(Base64URL.decode(Substring("QR").utf8) == nil)
        #expect(Base64URL.decode(Substring("Q").utf8) == nil)
    }
}
