import Testing
@testable import FluxgateWorker

/// docs/security.md "What is never logged": what `request_url` and `target_url` may show.
@Suite struct URLRedactionTests {
    func redacted(_ url: String) -> String { URLRedaction.redactingCredentials(url) }

    @Test func credentialQueryParametersAreRedactedAndOthersKept() {
        #expect(redacted("/gemini/v1/models?key=AIzaSecret&alt=sse") == "/gemini/v1/models?key=REDACTED&alt=sse")
        #expect(redacted("/x?Access_Token=t0ken&sig=abc&keep=1") == "/x?Access_Token=REDACTED&sig=REDACTED&keep=1")
        #expect(redacted("/x?monkey=1&keys=2") == "/x?monkey=1&keys=2")
        #expect(redacted("/x") == "/x")
    }

    /// Every upstream percent-decodes a parameter's name: `k%65y` is `key` to it, so it is here.
    @Test func namesAreComparedPercentDecodedInAnyCase() {
        #expect(
            redacted("/x?k%65y=s1&%6B%65%79=s2&%4b%45%59=s3&API%5FKEY=s4&x%2Damz%2Dsignature=s5")
                == "/x?k%65y=REDACTED&%6B%65%79=REDACTED&%4b%45%59=REDACTED&API%5FKEY=REDACTED&x%2Damz%2Dsignature=REDACTED")
        #expect(
            redacted("/x?%6Bey%3D=1&k%6=2&%=3&%zzkey=4") == "/x?%6Bey%3D=1&k%6=2&%=3&%zzkey=4",
            "a decoded name that is not exactly a credential name, or an invalid escape, is kept")
        #expect(redacted("/x?%256B%2565y=1") == "/x?%256B%2565y=1", "decoded once, as the upstream does")
    }

    @Test func emptyAndRepeatedPartsOfTheQueryKeepTheirShape() {
        #expect(redacted("/x?") == "/x?")
        #expect(redacted("/x?&&key=a&&") == "/x?&&key=REDACTED&&")
        #expect(redacted("/x?key=a=b&key") == "/x?key=REDACTED&key", "a parameter without `=` has no value to hide")
        #expect(redacted("/x?key=") == "/x?key=REDACTED")
    }

    @Test func userinfoInAnAbsoluteTargetIsRedacted() {
        #expect(redacted("http://user:secret@example.com/openai/r") == "http://REDACTED@example.com/openai/r")
        #expect(redacted("http://a@b@h/x?key=k&y=1") == "http://REDACTED@h/x?key=REDACTED&y=1", "up to the last @")
        #expect(redacted("user:secret@h:443") == "REDACTED@h:443", "authority form too")
        #expect(redacted("http://h/a@b?q=@") == "http://h/a@b?q=@", "an @ after the authority is not userinfo")
        #expect(redacted("/users/@me") == "/users/@me")
    }

    @Test func theUserinfoFinderStopsAtTheAuthority() {
        func userinfo(_ target: String) -> String? {
            var target = target
            return target.withUTF8 { bytes in
                RequestTarget.userinfo(in: UnsafeRawBufferPointer(bytes)).map { String(decoding: bytes[$0], as: UTF8.self) }
            }
        }
        #expect(userinfo("http://u:p@h/x") == "u:p")
        #expect(userinfo("https://@h") == "")
        #expect(userinfo("http://h/u:p@x") == nil)
        #expect(userinfo("http://h?u@x") == nil)
        #expect(userinfo("http://h#u@x") == nil)
        #expect(userinfo("/u:p@h") == nil)
        #expect(userinfo("") == nil)
    }
}
