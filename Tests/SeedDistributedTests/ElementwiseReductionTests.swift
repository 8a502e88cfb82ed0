import Testing

@testable import SeedDistributed

/// The reduction loops of the MPI ring, against `CollectiveElement.reduce` element by element.
@Suite struct ElementwiseReductionTests {
    private func check<T: CollectiveElement>(_ a: [T], _ b: [T]) {
        for operation in [ReduceOperation.sum, .max, .min] {
            var target = [T](a)
            a.withUnsafeBytes { aBytes in
                b.withUnsafeBytes { bBytes in
                    target.withUnsafeMutableBytes { targetBytes in
                        ElementwiseReduction.combine(
                            into: targetBytes.baseAddress, aBytes.baseAddress, bBytes.baseAddress!, count: a.count,
                            type: T.collectiveType, operation)
                    }
                }
            }
            #expect(target == zip(a, b).map { T.reduce($0, $1, operation) }, "\(T.self) \(operation)")
        }
    }

    @Test func everyTypeAndOperationMatchesTheScalarDefinition() {
        let indices = Array(0..<1037)  // not a multiple of any vector width
        let floatsA: [Float] = indices.map { Float($0) * 0.37 - 50 }
        let floatsB: [Float] = indices.map { Float(($0 * 13) % 101) - 20.5 }
        check(floatsA, floatsB)
        let doublesA: [Double] = indices.map { Double($0) / 7 }
        let doublesB: [Double] = indices.map { -Double($0 % 17) }
        check(doublesA, doublesB)
        let int32sA: [Int32] = indices.map { Int32($0) &* 1_000_003 }
        let int32sB: [Int32] = indices.map { Int32.max - Int32($0) }  // sums wrap
        check(int32sA, int32sB)
        let int64sA: [Int64] = indices.map { Int64($0) << 40 }
        let int64sB: [Int64] = indices.map { Int64(-$0) }
        check(int64sA, int64sB)
        let bytesA: [UInt8] = indices.map { UInt8($0 % 256) }
        let bytesB: [UInt8] = indices.map { UInt8(($0 * 7) % 256) }
        check(bytesA, bytesB)
        let uint64sA: [UInt64] = indices.map { UInt64($0) }
        let uint64sB: [UInt64] = indices.map { UInt64.max - UInt64($0) }
        check(uint64sA, uint64sB)
    }
}
