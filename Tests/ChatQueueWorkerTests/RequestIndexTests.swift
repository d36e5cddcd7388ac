import Testing

@testable import ChatQueueWorker

@Suite("Request index: in-flight deliveries by request id")
struct RequestIndexTests {
    @Test("one delivery per id: found while in flight, gone after")
    func single() {
        var index = RequestIndex()
        index.insert("r1", deliveryTag: 1)
        index.insert("r2", deliveryTag: 2)
        #expect(index.deliveryTags(of: "r1") == [1])
        index.remove("r1", deliveryTag: 1)
        #expect(index.deliveryTags(of: "r1").isEmpty)
        #expect(index.deliveryTags(of: "r2") == [2])
        #expect(index.count == 1)
        index.remove("r1", deliveryTag: 1)
        index.remove("nobody", deliveryTag: 9)
        #expect(index.count == 1, "removing what is not there changes nothing")
    }

    @Test("several deliveries with one id are all found, and leave in any order")
    func duplicates() {
        var index = RequestIndex()
        for tag in UInt64(1)...4 { index.insert("dup", deliveryTag: tag) }
        #expect(index.deliveryTags(of: "dup") == [1, 2, 3, 4])
        index.remove("dup", deliveryTag: 1)
        #expect(index.deliveryTags(of: "dup") == [2, 3, 4])
        index.remove("dup", deliveryTag: 3)
        #expect(index.deliveryTags(of: "dup") == [2, 4])
        index.remove("dup", deliveryTag: 4)
        index.remove("dup", deliveryTag: 2)
        #expect(index.deliveryTags(of: "dup").isEmpty)
        #expect(index.count == 0)
    }
}
