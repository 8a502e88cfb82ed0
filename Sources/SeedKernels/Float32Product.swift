import SeedTensor

/// `y = x · wᵀ` for float32 weights read in place (row-major `[rows, columns]`, e.g. a memory-mapped file), for
/// batches too small for sgemm to pay back its packing of the whole weight matrix on every call.
///
/// The activations are transposed once into `xt: [columns, paddedTokens]` (zero-padded to a multiple of 16 tokens);
/// the micro-kernel then keeps an 8-row × 32-token tile of outputs in sixteen AVX-512 registers and, for each input
/// column `c`, broadcasts `w[r, c]` of its 8 rows and multiplies two 16-token vectors of `xt[c]`. Each weight is
/// read from memory once per call; the transposed activations stay in L2.
struct Float32Product {
    /// Rows per micro-kernel tile.
    static let tileRows = 8

    /// Transposes `x: [tokens, columns]` (rows `xStride` apart) into `xt: [columns, paddedTokens]`, zero-padding
    /// tokens `tokens ..< paddedTokens`.
    static func transpose(
        _ x: UnsafePointer<Float>, xStride: Int, tokens: Int, columns: Int, paddedTokens: Int,
        into xt: UnsafeMutablePointer<Float>
    ) {
        // Blocks of 16 × 16 keep both sides in L1.
        var c0 = 0
        while c0 < columns {
            let c1 = min(columns, c0 + 16)
            for t in 0..<tokens {
                let row = x + t * xStride
                for c in c0..<c1 { xt[c * paddedTokens + t] = row[c] }
            }
            if paddedTokens > tokens {
                for c in c0..<c1 { (xt + c * paddedTokens + tokens).update(repeating: 0, count: paddedTokens - tokens) }
            }
            c0 = c1
        }
    }

    /// Rows `rows` of the product for every token: `y[t, r] = Σ_c w[r, c] · xt[c, t]`.
    ///
    /// - Parameters:
    ///   - w: weights, row `r` at `w + r * columns`.
    ///   - xt: transposed activations `[columns, paddedTokens]`.
    ///   - y: output, token rows `yStride` floats apart.
    static func rows(
        _ rows: Range<Int>, w: UnsafePointer<Float>, columns: Int, xt: UnsafePointer<Float>, tokens: Int,
        paddedTokens: Int, y: UnsafeMutablePointer<Float>, yStride: Int
    ) {
        var r = rows.lowerBound
        while r < rows.upperBound {
            let count = min(tileRows, rows.upperBound - r)
            var t = 0
            while t < tokens {
                let width = min(32, paddedTokens - t)
                if count == tileRows && width == 32 {
                    tile8x32(
                        w: w + r * columns, columns: columns, xt: xt + t, paddedTokens: paddedTokens,
                        y: y + t * yStride + r, yStride: yStride, validTokens: min(32, tokens - t))
                } else if count == tileRows {
                    tile8x16(
                        w: w + r * columns, columns: columns, xt: xt + t, paddedTokens: paddedTokens,
                        y: y + t * yStride + r, yStride: yStride, validTokens: min(16, tokens - t))
                } else {
                    for i in 0..<count {
                        tile1x16(
                            w: w + (r + i) * columns, columns: columns, xt: xt + t, paddedTokens: paddedTokens,
                            width: width, y: y + t * yStride + r + i, yStride: yStride,
                            validTokens: min(width, tokens - t))
                    }
                }
                t += width
            }
            r += count
        }
    }

    /// Eight weight rows × 32 tokens: sixteen accumulators, two activation vectors and one broadcast per column.
    @inline(__always)
    private static func tile8x32(
        w: UnsafePointer<Float>, columns: Int, xt: UnsafePointer<Float>, paddedTokens: Int,
        y: UnsafeMutablePointer<Float>, yStride: Int, validTokens: Int
    ) {
        var a0 = SIMD16<Float>()
        var b0 = SIMD16<Float>()
        var a1 = SIMD16<Float>()
        var b1 = SIMD16<Float>()
        var a2 = SIMD16<Float>()
        var b2 = SIMD16<Float>()
        var a3 = SIMD16<Float>()
        var b3 = SIMD16<Float>()
        var a4 = SIMD16<Float>()
        var b4 = SIMD16<Float>()
        var a5 = SIMD16<Float>()
        var b5 = SIMD16<Float>()
        var a6 = SIMD16<Float>()
        var b6 = SIMD16<Float>()
        var a7 = SIMD16<Float>()
        var b7 = SIMD16<Float>()
        let x = UnsafeRawPointer(xt)
        let rowStep = columns
        for c in 0..<columns {
            let offset = c * paddedTokens * 4
            let lo = x.loadUnaligned(fromByteOffset: offset, as: SIMD16<Float>.self)
            let hi = x.loadUnaligned(fromByteOffset: offset + 64, as: SIMD16<Float>.self)
            let wc = w + c
            var s = SIMD16<Float>(repeating: wc[0])
            a0 = a0.addingProduct(lo, s)
            b0 = b0.addingProduct(hi, s)
            s = SIMD16<Float>(repeating: wc[rowStep])
            a1 = a1.addingProduct(lo, s)
            b1 = b1.addingProduct(hi, s)
            s = SIMD16<Float>(repeating: wc[2 * rowStep])
            a2 = a2.addingProduct(lo, s)
            b2 = b2.addingProduct(hi, s)
            s = SIMD16<Float>(repeating: wc[3 * rowStep])
            a3 = a3.addingProduct(lo, s)
            b3 = b3.addingProduct(hi, s)
            s = SIMD16<Float>(repeating: wc[4 * rowStep])
            a4 = a4.addingProduct(lo, s)
            b4 = b4.addingProduct(hi, s)
            s = SIMD16<Float>(repeating: wc[5 * rowStep])
            a5 = a5.addingProduct(lo, s)
            b5 = b5.addingProduct(hi, s)
            s = SIMD16<Float>(repeating: wc[6 * rowStep])
            a6 = a6.addingProduct(lo, s)
            b6 = b6.addingProduct(hi, s)
            s = SIMD16<Float>(repeating: wc[7 * rowStep])
            a7 = a7.addingProduct(lo, s)
            b7 = b7.addingProduct(hi, s)
        }
        // Scatter the tile: y[t, i] for the 8 rows i, token t's 8 outputs adjacent.
        let lows = (a0, a1, a2, a3, a4, a5, a6, a7)
        let highs = (b0, b1, b2, b3, b4, b5, b6, b7)
        for t in 0..<min(16, validTokens) {
            let out = y + t * yStride
            out[0] = lows.0[t]
            out[1] = lows.1[t]
            out[2] = lows.2[t]
            out[3] = lows.3[t]
            out[4] = lows.4[t]
            out[5] = lows.5[t]
            out[6] = lows.6[t]
            out[7] = lows.7[t]
        }
        if validTokens > 16 {
            for t in 0..<(validTokens - 16) {
                let out = y + (t + 16) * yStride
                out[0] = highs.0[t]
                out[1] = highs.1[t]
                out[2] = highs.2[t]
                out[3] = highs.3[t]
                out[4] = highs.4[t]
                out[5] = highs.5[t]
                out[6] = highs.6[t]
                out[7] = highs.7[t]
            }
        }
    }

    /// Eight weight rows × 16 tokens (the token edge): eight independent accumulators.
    @inline(__always)
    private static func tile8x16(
        w: UnsafePointer<Float>, columns: Int, xt: UnsafePointer<Float>, paddedTokens: Int,
        y: UnsafeMutablePointer<Float>, yStride: Int, validTokens: Int
    ) {
        var a0 = SIMD16<Float>()
        var a1 = SIMD16<Float>()
        var a2 = SIMD16<Float>()
        var a3 = SIMD16<Float>()
        var a4 = SIMD16<Float>()
        var a5 = SIMD16<Float>()
        var a6 = SIMD16<Float>()
        var a7 = SIMD16<Float>()
        let x = UnsafeRawPointer(xt)
        let rowStep = columns
        for c in 0..<columns {
            let v = x.loadUnaligned(fromByteOffset: c * paddedTokens * 4, as: SIMD16<Float>.self)
            let wc = w + c
            a0 = a0.addingProduct(v, SIMD16<Float>(repeating: wc[0]))
            a1 = a1.addingProduct(v, SIMD16<Float>(repeating: wc[rowStep]))
            a2 = a2.addingProduct(v, SIMD16<Float>(repeating: wc[2 * rowStep]))
            a3 = a3.addingProduct(v, SIMD16<Float>(repeating: wc[3 * rowStep]))
            a4 = a4.addingProduct(v, SIMD16<Float>(repeating: wc[4 * rowStep]))
            a5 = a5.addingProduct(v, SIMD16<Float>(repeating: wc[5 * rowStep]))
            a6 = a6.addingProduct(v, SIMD16<Float>(repeating: wc[6 * rowStep]))
            a7 = a7.addingProduct(v, SIMD16<Float>(repeating: wc[7 * rowStep]))
        }
        for t in 0..<validTokens {
            let out = y + t * yStride
            out[0] = a0[t]
            out[1] = a1[t]
            out[2] = a2[t]
            out[3] = a3[t]
            out[4] = a4[t]
            out[5] = a5[t]
            out[6] = a6[t]
            out[7] = a7[t]
        }
    }

    /// One weight row × up to 32 tokens (`width` is 16 or 32): the edges the 8 × 32 tile does not cover.
    @inline(__always)
    private static func tile1x16(
        w: UnsafePointer<Float>, columns: Int, xt: UnsafePointer<Float>, paddedTokens: Int, width: Int,
        y: UnsafeMutablePointer<Float>, yStride: Int, validTokens: Int
    ) {
        let x = UnsafeRawPointer(xt)
        var lo = SIMD16<Float>()
        var hi = SIMD16<Float>()
        if width == 32 {
            for c in 0..<columns {
                let s = SIMD16<Float>(repeating: w[c])
                lo = lo.addingProduct(x.loadUnaligned(fromByteOffset: c * paddedTokens * 4, as: SIMD16<Float>.self), s)
                hi = hi.addingProduct(
                    x.loadUnaligned(fromByteOffset: c * paddedTokens * 4 + 64, as: SIMD16<Float>.self), s)
            }
        } else {
            for c in 0..<columns {
                let s = SIMD16<Float>(repeating: w[c])
                lo = lo.addingProduct(x.loadUnaligned(fromByteOffset: c * paddedTokens * 4, as: SIMD16<Float>.self), s)
            }
        }
        for t in 0..<validTokens { y[t * yStride] = t < 16 ? lo[t] : hi[t - 16] }
    }
}
