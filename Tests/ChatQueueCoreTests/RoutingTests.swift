import ChatQueueCore
import Testing

@Suite("Routing: model patterns, the routing table and the model rename")
struct RoutingTests {
    private func table(_ names: [String], _ routes: [String]) throws -> RoutingTable {
        try RoutingTable(upstreamNames: names, routeEntries: routes)
    }

    private func problem(_ names: [String], _ routes: [String]) -> RoutingTable.Problem? {
        do {
            _ = try table(names, routes)
            return nil
        } catch let problem as RoutingTable.Problem {
            return problem
        } catch {
            return nil
        }
    }

    @Test("exact patterns match only the same bytes; * matches any run, none included")
    func patterns() throws {
        let exact = try ModelPattern("deepseek-chat")
        #expect(exact.matches("deepseek-chat"))
        #expect(!exact.matches("deepseek-chat2"))
        #expect(!exact.matches("Deepseek-chat"), "case-sensitive")
        #expect(!exact.matches(""))
        let prefix = try ModelPattern("deepseek-*")
        #expect(prefix.matches("deepseek-"))
        #expect(prefix.matches("deepseek-reasoner"))
        #expect(!prefix.matches("deepseek"))
        let suffix = try ModelPattern("*-mini")
        #expect(suffix.matches("gpt-4o-mini"))
        #expect(!suffix.matches("gpt-4o-mini2"))
        let middle = try ModelPattern("a*b*c")
        #expect(middle.matches("abc"))
        #expect(middle.matches("aXbYbZc"))
        #expect(!middle.matches("ac"))
        #expect(!middle.matches("acb"))
        #expect(try ModelPattern("a*a").matches("aa"))
        #expect(!(try ModelPattern("a*a").matches("a")), "the prefix and suffix may not overlap")
        let all = try ModelPattern("*")
        #expect(all.matchesEverything && all.matches("") && all.matches("anything at all"))
        #expect(try ModelPattern("**").matchesEverything)
        #expect(!(try ModelPattern("*a").matchesEverything))
        #expect(try ModelPattern("llama3:8b").matches("llama3:8b"), "colons and slashes are plain characters")
        #expect(try ModelPattern("org/*").matches("org/model"))
        #expect(try ModelPattern("模型-*").matches("模型-大"), "UTF-8 is matched by bytes")
    }

    @Test("hostile patterns are refused: empty, too long, blanks, commas, control characters")
    func hostilePatterns() {
        #expect(throws: ModelPattern.Problem.empty) { try ModelPattern("") }
        #expect(throws: ModelPattern.Problem.tooLong(257)) { try ModelPattern(String(repeating: "a", count: 257)) }
        for bad in ["a b", "a,b", "a\tb", "a\nb", "a\u{0}b", "a\u{7F}"] {
            #expect(throws: ModelPattern.Problem.badCharacter) { try ModelPattern(bad) }
        }
    }

    @Test("a long hostile model against a many-star pattern is answered, and correctly")
    func hostileModel() throws {
        let pattern = try ModelPattern(String(repeating: "a*", count: 100) + "b")
        let model = String(repeating: "a", count: 1_000_000)
        #expect(!pattern.matches(model))
        #expect(pattern.matches(model + "b"))
        #expect(try table(["x"], [pattern.text + " -> x"]).route(for: model) == nil)
    }

    @Test("routes are tried in the order written; the first match wins; no match is nil")
    func firstMatchWins() throws {
        let routing = try table(
            ["deepseek", "acedata", "local"],
            ["deepseek-chat -> acedata deepseek=deepseek-v3", "deepseek-* -> deepseek", "qwen* -> local"])
        #expect(routing.route(for: "deepseek-chat") == 0)
        #expect(routing.routes[0].targets == [.init(upstream: 1), .init(upstream: 0, model: "deepseek-v3")])
        #expect(routing.route(for: "deepseek-reasoner") == 1)
        #expect(routing.route(for: "qwen2.5") == 2)
        #expect(routing.route(for: "gpt-4o") == nil)
        #expect(
            routing.summaryLines == [
                "deepseek-chat -> acedata, deepseek (model \"deepseek-v3\")", "deepseek-* -> deepseek", "qwen* -> local",
            ])
        #expect(routing.entry(routing.routes[0]) == "deepseek-chat -> acedata deepseek=deepseek-v3")
        // An earlier catch-all hides the routes after it.
        let shadowed = try table(["a", "b"], ["* -> a", "x -> b"])
        #expect(shadowed.route(for: "x") == 0)
    }

    @Test("the one-upstream table sends every model to it unchanged")
    func single() {
        let routing = RoutingTable.single(upstream: "default")
        #expect(routing.upstreamNames == ["default"])
        #expect(routing.route(for: "anything") == 0)
        #expect(routing.route(for: "") == 0)
        #expect(routing.routes[0].targets == [.init(upstream: 0)])
        #expect(routing.summaryLines == ["* -> default"])
    }

    @Test("mistakes name the entry: bad or duplicate names, unknown upstreams, bad syntax, no route")
    func problems() {
        #expect(problem(["a"], [])?.reason == "no route at all")
        let duplicate = problem(["a", "a"], ["* -> a"])
        #expect(duplicate?.entry == "a" && duplicate?.reason == "a duplicate upstream name" && duplicate?.isRoute == false)
        for badName in ["", "A", "1a", "a-b", "a.b", "names", "routes", String(repeating: "a", count: 65), "ä"] {
            #expect(problem([badName], ["* -> a"])?.isRoute == false, "\(badName)")
        }
        #expect(problem(["a"], ["* -> b"])?.reason == "an unknown upstream \"b\"")
        #expect(problem(["a"], ["* -> a a"])?.reason.contains("listed twice") == true)
        #expect(problem(["a"], ["* a"])?.entry == "* a")
        #expect(problem(["a"], ["*->a"]) != nil)
        #expect(problem(["a"], ["* ->"]) != nil)
        #expect(problem(["a"], ["-> a"]) != nil)
        #expect(problem(["a"], ["* -> a="]) != nil, "an empty rename")
        #expect(problem(["a"], ["* -> a=x*"]) != nil, "a rename is a name, not a pattern")
        #expect(problem(["a"], ["* -> =x"]) != nil)
        #expect(problem(["a"], ["a\u{0} -> a"]) != nil)
        let many = (0..<33).map { "u\($0)" }
        #expect(problem(many, ["* -> " + many.joined(separator: " ")])?.reason.contains("more than 32") == true)
        #expect(problem(["a"], Array(repeating: "* -> a", count: 1001))?.reason.contains("more than 1000") == true)
        #expect(problem(["a"], ["* -> a=x=y"]) == nil, "a rename may hold =")
    }

    @Test("the rename replaces only the model member's value, bytes around it untouched")
    func rename() throws {
        let body = Array(#"{ "messages":[{"role":"user","content":"model"}] , "model" : "deepseek-chat","stream":true}"#.utf8)
        let renamed = try #require(ModelRename.body(body, withModel: "deepseek-ai/DeepSeek-V3"))
        #expect(
            String(decoding: renamed, as: UTF8.self)
                == #"{ "messages":[{"role":"user","content":"model"}] , "model" : "deepseek-ai/DeepSeek-V3","stream":true}"#)
        // Quotes and control characters in the new name are escaped.
        let escaped = try #require(ModelRename.body(Array(#"{"model":"a"}"#.utf8), withModel: "q\"\\\n"))
        #expect(String(decoding: escaped, as: UTF8.self) == #"{"model":"q\"\\\n"}"#)
        #expect(try JSONValue(parsing: escaped).objectValue?["model"] == .string("q\"\\\n"))
        // Every duplicate is renamed; a nested model member is not.
        let duplicates = try #require(
            ModelRename.body(Array(#"{"model":"a","x":{"model":"n"},"model":1}"#.utf8), withModel: "b"))
        #expect(String(decoding: duplicates, as: UTF8.self) == #"{"model":"b","x":{"model":"n"},"model":"b"}"#)
        // An escaped key is the same member.
        let escapedKey = try #require(ModelRename.body(Array(#"{"mod\u0065l":"a"}"#.utf8), withModel: "b"))
        #expect(String(decoding: escapedKey, as: UTF8.self) == #"{"mod\u0065l":"b"}"#)
    }

    @Test("the rename refuses what is not one JSON object")
    func renameHostile() {
        for bad in ["", "[]", "\"model\"", #"{"model":"a"} x"#, #"{"model":"a""#, #"{"model":}"#] {
            #expect(ModelRename.body(Array(bad.utf8), withModel: "b") == nil, "\(bad)")
        }
        #expect(ModelRename.body([0xFF, 0xFE], withModel: "b") == nil)
        let deep = String(repeating: "[", count: 10_000)
        #expect(ModelRename.body(Array(("{\"a\":" + deep).utf8), withModel: "b") == nil)
    }

    @Test("extra headers: a token name and a value without CR, LF or controls; reserved names refused")
    func headers() {
        #expect(StaticHeader.line(parsing: "X-Team:  billing ") == .success("X-Team: billing"))
        #expect(StaticHeader.line(parsing: "api-key:a:b") == .success("api-key: a:b"))
        #expect(StaticHeader.line(parsing: "X-Empty:") == .success("X-Empty: "))
        #expect(StaticHeader.line(parsing: "no colon") == .failure(.noColon))
        #expect(StaticHeader.line(parsing: ": v") == .failure(.badName))
        #expect(StaticHeader.line(parsing: "X Y: v") == .failure(.badName))
        #expect(StaticHeader.line(parsing: "X\r\nY: v") == .failure(.badName))
        #expect(StaticHeader.line(parsing: "X: a\r\nInjected: b") == .failure(.badValue))
        #expect(StaticHeader.line(parsing: "X: a\nb") == .failure(.badValue))
        #expect(StaticHeader.line(parsing: "X: a\u{0}") == .failure(.badValue))
        #expect(StaticHeader.line(parsing: "Authorization: Bearer x") == .failure(.reserved("Authorization")))
        #expect(StaticHeader.line(parsing: "content-LENGTH: 1") == .failure(.reserved("content-LENGTH")))
        #expect(StaticHeader.line(parsing: "X: " + String(repeating: "v", count: 5000)) == .failure(.tooLong(5003)))
    }
}
