import ChatQueueCore
import Testing

@Suite("Secret redaction")
struct SecretRedactionTests {
    @Test(
        "redactingSecrets hides URL passwords and bearer tokens",
        arguments: [
            ("amqp://guest:guest@127.0.0.1:5672/%2f", "amqp://guest:***@127.0.0.1:5672/%2f"),
            ("cannot connect to amqps://app:p%40ss@rabbit:5671/prod: refused",
             "cannot connect to amqps://app:***@rabbit:5671/prod: refused"),
            ("AMQPS://u:x/y@z@host/v", "AMQPS://u:***@host/v"),
            ("a amqp://a:1@h1/ and amqp://b:2@h2/", "a amqp://a:***@h1/ and amqp://b:***@h2/"),
            ("\"https://user:token@api.example.com/v1\"", "\"https://user:***@api.example.com/v1\""),
            ("Authorization: Bearer sk-0123456789abcdef", "Authorization: Bearer ***"),
            ("{\"h\":\"bearer  abc.def-ghi\"}, next", "{\"h\":\"bearer  ***\"}, next"),
            ("BEARER x, then Bearer y", "BEARER ***, then Bearer ***"),
            // Passwords written raw with the characters that end other URL parts.
            ("amqp://u:p?w#x@host/v lost", "amqp://u:***@host/v lost"),
            ("amqp://u:a/b?c#d@e@rabbit:5672/%2f", "amqp://u:***@rabbit:5672/%2f"),
            ("amqps://u:%2F%3F%23%40@rabbit/", "amqps://u:***@rabbit/"),
            ("amqp://u:a://b@h/", "amqp://u:***@h/"),
        ])
    func redacts(input: String, output: String) {
        #expect(input.redactingSecrets() == output)
        #expect(output.redactingSecrets() == output)
    }

    @Test("text without credentials is unchanged")
    func redactionLeavesOrdinaryText() {
        for text in [
            "", "amqp://127.0.0.1:5672/%2f", "amqp://guest@host/", "unbearable Bearer", "Bearerish token",
            "connection refused (errno 111)", "://a:b@c", "already amqp://u:***@h/",
        ] {
            #expect(text.redactingSecrets() == text, "\(text)")
        }
        #expect("naïve amqp://u:pässwörd@höst/ ünïcode".redactingSecrets() == "naïve amqp://u:***@höst/ ünïcode")
        // In doubt it hides too much rather than too little: an @ in a path ends the user info.
        #expect("http://host:80/a@b".redactingSecrets() == "http://host:***@b")
    }
}
