import ChatQueueCore
import Testing

@Suite("JSON")
struct JSONTests {
    // MARK: Round trips

    @Test("round trip keeps key order and is compact")

    func roundTripKeepsKeyOrderAndIsCompact() throws {
        let input = """
             {
              "model" : "deepseek-chat",
              "messages": [ {"role":"user","content":"hi"} ],
              "temperature": 0.7, "stream": true, "stop": null,
              "nested": {"z": [], "a": {}, "m": [1, -2.5e-3, false]}
            }\r\n
            """
        let value = try json(input)
        let expected = #"{"model":"deepseek-chat","messages":[{"role":"user","content":"hi"}],"temperature":0.7,"stream":true,"stop":null,"nested":{"z":[],"a":{},"m":[1,-2.5e-3,false]}}"#
        #expect(value.serializedString() == expected)
        #expect(value.objectValue?.keys == ["model", "messages", "temperature", "stream", "stop", "nested"])
        // Serializing and parsing again is stable.
        #expect(try JSONValue(parsing: value.serialized()) == value)
        #expect(try JSONValue(parsing: value.serialized()).serializedString() == expected)
    }

    @Test("scalars parse at the top level")

    func scalarsAtTopLevel() throws {
        #expect(try json("null") == .null)
        #expect(try json(" true ") == .bool(true))
        #expect(try json("false") == .bool(false))
        #expect(try json("\"x\"") == .string("x"))
        #expect(try json("-0") == .number("-0"))
        #expect(try json("[]") == .array([]))
        #expect(try json("{}") == .object(JSONObject()))
    }

    @Test("parses from slice and raw buffer and string")

    func parsesFromSliceAndRawBufferAndString() throws {
        let whole = bytes("xx[1,2]yy")
        let slice = whole[2..<7]
        #expect(try JSONValue(parsing: slice) == [1, 2])
        let fromRaw = try whole[2..<7].withUnsafeBytes { try JSONValue(parsing: $0) }
        #expect(fromRaw == [1, 2])
        #expect(try JSONValue(parsing: "{\"a\":1}" as String) == ["a": 1])
        // Offsets are relative to the slice start.
        #expect(throws: JSONParseError(offset: 3, message: "unexpected character")) {
            try JSONValue(parsing: bytes("xx[1,]")[2...])
        }
    }

    // MARK: Strings and escapes

    @Test("decodes every escape")

    func decodesAllEscapes() throws {
        let value = try json(#""q\" b\\ s\/ \b\f\n\r\t \u0041\u00e9\u20AC \ud83d\ude00 \u0000""#)
        #expect(value == .string("q\" b\\ s/ \u{08}\u{0C}\n\r\t Aé€ 😀 \u{0}"))
    }

    @Test("serializes escapes per RFC 8259")

    func serializesEscapesPerRFC8259() {
        let value = JSONValue.string("q\" b\\ s/ \u{08}\u{0C}\n\r\t \u{01}\u{1F} é😀 \u{7F}")
        #expect(value.serializedString() == #""q\" b\\ s/ \b\f\n\r\t \u0001\u001f é😀 "# + "\u{7F}\"")
        // Non-ASCII stays raw UTF-8.
        #expect(JSONValue.string("é").serialized() == [0x22, 0xC3, 0xA9, 0x22])
    }

    @Test("escaped strings round trip")

    func escapedStringsRoundTrip() throws {
        let original = JSONValue.object([
            "weird \"key\"\n": .string("line1\nline2\t\u{0}\u{1B}[0m ✓ 𝄞 \\ /"),
            "plain": .string(""),
        ])
        #expect(try JSONValue(parsing: original.serialized()) == original)
    }

    @Test("rejects unescaped control characters and bad escapes")

    func rejectsUnescapedControlCharactersAndBadEscapes() {
        #expect(parseError("\"a\nb\"")?.message == "unescaped control character in string")
        #expect(parseError("\"tab\there\"")?.offset == 4)
        #expect(parseError(#""\x""#)?.message == "invalid escape sequence")
        #expect(parseError(#""\u12G4""#)?.message == "invalid hex digit in \\u escape")
        #expect(parseError(#""\u12""#) != nil)
        #expect(parseError(#""abc"#)?.message == "unterminated string")
        #expect(parseError(#""abc\"#)?.message == "unterminated string")
    }

    @Test("rejects lone surrogates", arguments: [
        #""\ud800""#,  // lone high surrogate at the end
        #""\ud800x""#,  // high surrogate followed by text
        #""\ud800\u0041""#,  // high surrogate followed by a non-surrogate escape
        #""\ud800\ud800""#,  // two high surrogates
        #""\udc00""#,  // lone low surrogate
        #""\uDFFF\uD800""#,  // reversed pair
    ])
    func rejectsLoneSurrogates(_ input: String) {
        let error = parseError(input)
        #expect(error?.message.contains("surrogate") == true)
        #expect(error?.offset == 1)
    }

    @Test("rejects invalid UTF-8 in strings", arguments: [
        [0x22, 0x80, 0x22],  // lone continuation byte
        [0x22, 0xC0, 0x80, 0x22],  // overlong NUL
        [0x22, 0xC1, 0xBF, 0x22],  // overlong ASCII
        [0x22, 0xE0, 0x80, 0x80, 0x22],  // overlong 3-byte
        [0x22, 0xED, 0xA0, 0x80, 0x22],  // encoded surrogate U+D800
        [0x22, 0xF0, 0x80, 0x80, 0x80, 0x22],  // overlong 4-byte
        [0x22, 0xF4, 0x90, 0x80, 0x80, 0x22],  // above U+10FFFF
        [0x22, 0xF5, 0x80, 0x80, 0x80, 0x22],  // invalid lead byte
        [0x22, 0xFF, 0x22],  // invalid byte
        [0x22, 0xE2, 0x82, 0x22],  // truncated 3-byte sequence
        [0x22, 0xE2, 0x82],  // truncated at end of input
        [0x22, 0xC3, 0x41, 0x22],  // lead byte followed by ASCII
    ] as [[UInt8]])
    func rejectsInvalidUTF8InStrings(_ input: [UInt8]) {
        let error = parseError(input)
        #expect(error?.message == "invalid UTF-8 in string")
        #expect(error?.offset == 1)
    }

    @Test("rejects invalid UTF-8 in keys and after escapes")

    func rejectsInvalidUTF8InKeysAndAfterEscapes() {
        #expect(parseError([0x7B, 0x22, 0xC0, 0xAF, 0x22, 0x3A, 0x31, 0x7D])?.message == "invalid UTF-8 in string")
        #expect(parseError([0x22, 0x5C, 0x6E, 0xFE, 0x22])?.offset == 3)
    }

    @Test("accepts valid multi-byte UTF-8")

    func acceptsValidMultiByteUTF8() throws {
        // 2-, 3- and 4-byte sequences at their range boundaries.
        let samples = ["\u{80}", "\u{7FF}", "\u{800}", "\u{D7FF}", "\u{E000}", "\u{FFFF}", "\u{10000}", "\u{10FFFF}"]
        for sample in samples {
            #expect(try json("\"\(sample)\"") == .string(sample))
        }
    }

    @Test("special bytes are found at every position in long strings")

    func specialBytesAreFoundAtEveryPositionInLongStrings() throws {
        // The string scanner skips 8 bytes at a time; a special byte in any lane must stop it.
        for position in 0..<24 {
            let prefix = String(repeating: "a", count: position)
            let suffix = String(repeating: "b", count: 23 - position)
            #expect(try json("\"\(prefix)\\n\(suffix)\"") == .string(prefix + "\n" + suffix))
            #expect(try json("\"\(prefix)é\(suffix)\"") == .string(prefix + "é" + suffix))
            #expect(try json("\"\(prefix)\"") == .string(prefix))
            #expect(parseError("\"\(prefix)\u{1F}\(suffix)\"")?.offset == position + 1)
            #expect(parseError(bytes("\"" + prefix) + [0xFF] + bytes(suffix + "\""))?.offset == position + 1)
            #expect(parseError("\"\(prefix)\u{7F}\(suffix)\"") == nil)  // DEL is not a control character in JSON
        }
    }

    // MARK: Numbers

    @Test("numbers keep their literal text", arguments: ["0", "-0", "1", "-1", "0.7", "-2e3", "1E+10", "2.50", "1e-7", "123456789012345678901234567890", "6.02214076e23"])
    func numbersKeepTheirLiteral(_ literal: String) throws {
        let value = try json(" \(literal) ")
        #expect(value == .number(literal))
        #expect(value.serializedString() == literal)
        #expect(try json("[\(literal)]").serializedString() == "[\(literal)]")
    }

    @Test("rejects invalid numbers", arguments: ["01", "-01", "1.", ".5", "-", "+1", "1e", "1e+", "1.e3", "0x10", "NaN", "Infinity", "-Infinity", "1_000"])
    func rejectsInvalidNumbers(_ literal: String) {
        #expect(parseError(literal) != nil)
    }

    @Test("integerValue only for plain integer literals")

    func integerValueOnlyForPlainIntegerLiterals() throws {
        #expect(try json("2").integerValue == 2)
        #expect(try json("-42").integerValue == -42)
        #expect(try json("2.0").integerValue == nil)
        #expect(try json("2e0").integerValue == nil)
        #expect(try json("99999999999999999999").integerValue == nil)
        #expect(JSONValue.number("+2").integerValue == nil)
        #expect(JSONValue.string("2").integerValue == nil)
    }

    @Test("integer(_:) builds a number literal that reads back as the same integer")
    func integerBuildsANumber() {
        #expect(JSONValue.integer(42) == .number("42"))
        #expect(JSONValue.integer(-7).serializedString() == "-7")
        #expect(JSONValue.integer(Int64.max).integerValue == Int(Int64.max))
        #expect(JSONValue.integer(UInt8(255)).serializedString() == "255")
    }

    @Test("doubleValue converts any number")

    func doubleValueConvertsAnyNumber() throws {
        #expect(try json("0.5").doubleValue == 0.5)
        #expect(try json("-2e3").doubleValue == -2000)
        #expect(try json("7").doubleValue == 7)
        #expect(JSONValue.string("7").doubleValue == nil)
    }

    // MARK: Structure errors

    @Test("nesting depth limit is 512")

    func nestingDepthLimitIs512() throws {
        let deepest = String(repeating: "[", count: 512) + String(repeating: "]", count: 512)
        #expect(try json(deepest).arrayValue != nil)
        let tooDeep = String(repeating: "[", count: 513) + String(repeating: "]", count: 513)
        #expect(parseError(tooDeep) == JSONParseError(offset: 512, message: "nesting depth exceeds 512"))
        let deepObjects = String(repeating: "{\"a\":", count: 513) + "1" + String(repeating: "}", count: 513)
        #expect(parseError(deepObjects)?.message == "nesting depth exceeds 512")
        // Depth is nesting, not the number of containers.
        let wide = "[" + Array(repeating: "[[]]", count: 1000).joined(separator: ",") + "]"
        #expect(try json(wide).arrayValue?.count == 1000)
    }

    @Test("rejects trailing garbage", arguments: ["{} x", "[1]]", "1 2", "{}{}", "\"a\"\"b\"", "null,", "true false", "[1] // comment"])
    func rejectsTrailingGarbage(_ input: String) {
        #expect(parseError(input)?.message == "unexpected data after the JSON value")
    }

    @Test("rejects malformed documents")

    func rejectsMalformedDocuments() {
        #expect(parseError("") == JSONParseError(offset: 0, message: "unexpected end of input"))
        #expect(parseError("   ") == JSONParseError(offset: 3, message: "unexpected end of input"))
        #expect(parseError("[1,]")?.message == "unexpected character")
        #expect(parseError("[1 2]")?.message == "expected ',' or ']' in array")
        #expect(parseError("{\"a\" 1}")?.message == "expected ':' after object key")
        #expect(parseError("{\"a\":1,}")?.message == "expected a string key in object")
        #expect(parseError("{a:1}")?.message == "expected a string key in object")
        #expect(parseError("{\"a\":1 \"b\":2}")?.message == "expected ',' or '}' in object")
        #expect(parseError("[1")?.message == "unterminated array")
        #expect(parseError("{\"a\":1")?.message == "unterminated object")
        #expect(parseError("tru")?.message == "invalid literal")
        #expect(parseError("nul1")?.message == "invalid literal")
        #expect(parseError("'a'")?.message == "unexpected character")
        #expect(parseError([0xEF, 0xBB, 0xBF, 0x31]) != nil)  // no BOM in strict JSON
    }

    // MARK: Objects

    @Test("duplicate keys: the last value wins, at the first position")

    func duplicateKeysLastWinsAtFirstPosition() throws {
        let value = try json(#"{"a":1,"b":2,"a":3}"#)
        #expect(value.objectValue?.keys == ["a", "b"])
        #expect(value["a"] == 3)
        #expect(value.serializedString() == #"{"a":3,"b":2}"#)
    }

    @Test("duplicate keys in large (indexed) objects")

    func duplicateKeysInLargeObjects() throws {
        // Past the size where the parser switches to a hash index.
        let members = (0..<40).map { "\"k\($0)\":\($0)" } + ["\"k3\":\"again\"", "\"k39\":null", "\"new\":true"]
        let value = try json("{" + members.joined(separator: ",") + "}")
        let object = try #require(value.objectValue)
        #expect(object.count == 41)
        #expect(object["k3"] == "again")
        #expect(object["k39"] == .null)
        #expect(object.keys.prefix(4) == ["k0", "k1", "k2", "k3"])
        #expect(object.keys.last == "new")
    }

    @Test("JSONObject subscript: get, replace in place, append, remove")

    func jsonObjectSubscriptSemantics() {
        var object: JSONObject = ["a": 1, "b": 2]
        object["a"] = "one"  // existing key keeps its position
        object["c"] = 3  // new key appends
        #expect(object.keys == ["a", "b", "c"])
        #expect(object["a"] == "one")
        object["b"] = nil  // nil removes
        #expect(object.keys == ["a", "c"])
        #expect(object.count == 2)
        object["missing"] = nil
        #expect(object.count == 2)
        #expect(object["missing"] == nil)

        let pairs = JSONObject([("x", 1), ("y", 2), ("x", 3)])
        #expect(pairs.keys == ["x", "y"])
        #expect(pairs["x"] == 3)
        #expect(pairs.map(\.key) == ["x", "y"])
        #expect(pairs.map(\.value) == [3, 2])
        #expect(JSONObject().isEmpty)
    }

    @Test("object equality ignores order but serialization keeps it")

    func objectEqualityIgnoresOrderButSerializationKeepsIt() {
        let ab: JSONValue = ["a": 1, "b": true]
        let ba: JSONValue = ["b": true, "a": 1]
        #expect(ab == ba)
        #expect(ab.serializedString() == #"{"a":1,"b":true}"#)
        #expect(ba.serializedString() == #"{"b":true,"a":1}"#)
        #expect(JSONValue.object(["a": 1]) != ["a": 2])
        #expect(JSONValue.object(["a": 1]) != ["a": 1, "b": 1])
        #expect(JSONValue.object(["a": 1, "b": 2]) != ["a": 1, "c": 2])
    }

    // MARK: Accessors

    @Test("accessors return nil for other kinds")

    func accessorsReturnNilForOtherKinds() throws {
        let value = try json(#"{"s":"x","b":false,"n":1.5,"a":[10,20],"o":{"k":null},"z":null}"#)
        #expect(value["s"]?.stringValue == "x")
        #expect(value["b"]?.boolValue == false)
        #expect(value["n"]?.doubleValue == 1.5)
        #expect(value["a"]?[1] == 20)
        #expect(value["a"]?[2] == nil)
        #expect(value["a"]?[-1] == nil)
        #expect(value["a"]?.arrayValue?.count == 2)
        #expect(value["o"]?["k"]?.isNull == true)
        #expect(value["o"]?.objectValue?.keys == ["k"])
        #expect(value["z"]?.isNull == true)
        #expect(value["missing"] == nil)
        #expect(value[0] == nil)
        #expect(value["a"]?["k"] == nil)
        #expect(value["s"]?.boolValue == nil)
        #expect(value["b"]?.stringValue == nil)
        #expect(value["s"]?.arrayValue == nil)
        #expect(value["s"]?.objectValue == nil)
        #expect(value["s"]?.isNull == false)
    }

    @Test("serialize(into:) appends to an existing buffer")

    func serializeAppendsToAnExistingBuffer() {
        var buffer = bytes("data: ")
        JSONValue.array([.null, true, 1, "x"]).serialize(into: &buffer)
        #expect(text(buffer) == #"data: [null,true,1,"x"]"#)
    }
}
