import ChatQueueCore
import Testing

/// The one deadline type: monotonic nanoseconds or never, saturating arithmetic.
@Suite("Deadline")
struct DeadlineTests {
    @Test("sums saturate at never instead of wrapping around or trapping")
    func saturation() {
        let late = Deadline(nanoseconds: .max - 2)
        #expect(late + 1 == Deadline(nanoseconds: .max - 1))
        #expect(late + 2 == .never)
        #expect(late + 5 == .never)
        #expect(late.adding(nanoseconds: .max) == .never)
        #expect(Deadline(nanoseconds: 1) + 2 == Deadline(nanoseconds: 3))
        var moving = Deadline(nanoseconds: .max - 1)
        moving += 10
        #expect(moving == .never)
        #expect(Deadline(nanoseconds: 5).adding(seconds: .infinity) < .never, "a huge duration stays a finite deadline")
        #expect(Deadline(nanoseconds: 5).adding(seconds: -3) == Deadline(nanoseconds: 5))
        #expect(Deadline(nanoseconds: 5).adding(seconds: 1.5) == Deadline(nanoseconds: 1_500_000_005))
    }

    @Test("never is later than every other deadline and stays never")
    func never() {
        #expect(Deadline.never.isNever)
        #expect(!Deadline(nanoseconds: .max - 1).isNever)
        #expect(Deadline(nanoseconds: .max - 1) < .never)
        #expect(Deadline.never + 0 == .never)
        #expect(Deadline.never + 1 == .never)
        #expect(Deadline.never.nanoseconds(after: Deadline(nanoseconds: 0)) == .max)
        #expect("\(Deadline.never)" == "never")
    }

    @Test("deadlines order by time; min picks the nearest; time left never goes negative")
    func ordering() {
        let early = Deadline(nanoseconds: 10)
        let late = Deadline(nanoseconds: 20)
        #expect(early < late)
        #expect(!(late < early))
        #expect(min(late, .never, early) == early)
        #expect(max(early, late) == late)
        #expect(late.nanoseconds(after: early) == 10)
        #expect(early.nanoseconds(after: late) == 0, "a passed deadline has no time left")
        #expect(early.nanoseconds(after: early) == 0)
    }

    @Test("seconds to nanoseconds saturates: negative and NaN are 0, huge and infinite are the maximum")
    func nanoseconds() {
        let maximum = UInt64(Deadline.maximumSeconds * 1e9)
        #expect(Deadline.nanoseconds(seconds: 1.5) == 1_500_000_000)
        #expect(Deadline.nanoseconds(seconds: 0) == 0)
        #expect(Deadline.nanoseconds(seconds: -1) == 0)
        #expect(Deadline.nanoseconds(seconds: -.infinity) == 0)
        #expect(Deadline.nanoseconds(seconds: .nan) == 0)
        #expect(Deadline.nanoseconds(seconds: .infinity) == maximum)
        #expect(Deadline.nanoseconds(seconds: 1e300) == maximum)
        #expect(Deadline.nanoseconds(seconds: .greatestFiniteMagnitude) == maximum)
    }
}
