// Bulk conversion between NIfTI voxel bytes and Swift arrays. Every loop works on raw buffers
// with unaligned loads/stores so a 256×256×176 volume converts in milliseconds.

extension NIfTI {
    /// Decodes `count` stored scalars (complex types: 2 per voxel) to `Output`, applying `scaling`.
    static func decode<Output: BinaryFloatingPoint>(
        _ data: UnsafeRawBufferPointer, count: Int, header: NIfTIHeader,
        scaling: (slope: Double, intercept: Double)?
    ) -> [Output] {
        let swapped = !header.isLittleEndian
        return [Output](unsafeUninitializedCapacity: count) { out, initialized in
            let out = UnsafeMutableBufferPointer(rebasing: out[0..<count])
            switch header.datatype {
            case .uint8: decodeIntegers(data, UInt8.self, swapped: swapped, scaling: scaling, into: out)
            case .int8: decodeIntegers(data, Int8.self, swapped: swapped, scaling: scaling, into: out)
            case .int16: decodeIntegers(data, Int16.self, swapped: swapped, scaling: scaling, into: out)
            case .uint16: decodeIntegers(data, UInt16.self, swapped: swapped, scaling: scaling, into: out)
            case .int32: decodeIntegers(data, Int32.self, swapped: swapped, scaling: scaling, into: out)
            case .uint32: decodeIntegers(data, UInt32.self, swapped: swapped, scaling: scaling, into: out)
            case .int64: decodeIntegers(data, Int64.self, swapped: swapped, scaling: scaling, into: out)
            case .uint64: decodeIntegers(data, UInt64.self, swapped: swapped, scaling: scaling, into: out)
            case .float32, .complex64: decodeFloat32(data, swapped: swapped, scaling: scaling, into: out)
            case .float64, .complex128: decodeFloat64(data, swapped: swapped, scaling: scaling, into: out)
            }
            initialized = count
        }
    }

    private static func decodeIntegers<Stored: FixedWidthInteger, Output: BinaryFloatingPoint>(
        _ data: UnsafeRawBufferPointer, _: Stored.Type, swapped: Bool,
        scaling: (slope: Double, intercept: Double)?, into out: UnsafeMutableBufferPointer<Output>
    ) {
        let size = MemoryLayout<Stored>.size
        @inline(__always) func load(_ i: Int) -> Stored {
            let value = data.loadUnaligned(fromByteOffset: i * size, as: Stored.self)
            return swapped ? value.byteSwapped : value
        }
        if let (slope, intercept) = scaling {
            for i in 0..<out.count { out[i] = Output(Double(load(i)) * slope + intercept) }
        } else {
            for i in 0..<out.count { out[i] = Output(load(i)) }
        }
    }

    private static func decodeFloat32<Output: BinaryFloatingPoint>(
        _ data: UnsafeRawBufferPointer, swapped: Bool,
        scaling: (slope: Double, intercept: Double)?, into out: UnsafeMutableBufferPointer<Output>
    ) {
        #if _endian(little)
        if Output.self == Float.self, !swapped, scaling == nil {
            UnsafeMutableRawBufferPointer(out).copyMemory(from: UnsafeRawBufferPointer(rebasing: data[0..<out.count * 4]))
            return
        }
        #endif
        @inline(__always) func load(_ i: Int) -> Float {
            let bits = data.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self)
            return Float(bitPattern: swapped ? bits.byteSwapped : bits)
        }
        if let (slope, intercept) = scaling {
            for i in 0..<out.count { out[i] = Output(Double(load(i)) * slope + intercept) }
        } else {
            for i in 0..<out.count { out[i] = Output(load(i)) }
        }
    }

    private static func decodeFloat64<Output: BinaryFloatingPoint>(
        _ data: UnsafeRawBufferPointer, swapped: Bool,
        scaling: (slope: Double, intercept: Double)?, into out: UnsafeMutableBufferPointer<Output>
    ) {
        @inline(__always) func load(_ i: Int) -> Double {
            let bits = data.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self)
            return Double(bitPattern: swapped ? bits.byteSwapped : bits)
        }
        if let (slope, intercept) = scaling {
            for i in 0..<out.count { out[i] = Output(load(i) * slope + intercept) }
        } else {
            for i in 0..<out.count { out[i] = Output(load(i)) }
        }
    }

    /// Encodes values (and imaginary parts for complex types) little endian as stored =
    /// (value − intercept) / slope (imaginary: value / slope). Returns the index of the first
    /// voxel an integer type cannot hold (NaN, ±∞, out of range), or nil when all were stored.
    static func encode<T: NIfTIStorable>(
        _ values: [T], imaginary: [Double]?, datatype: NIfTIDataType, slope: Double, intercept: Double,
        into out: UnsafeMutableRawBufferPointer
    ) -> Int? {
        let identity = slope == 1 && intercept == 0
        return values.withUnsafeBufferPointer { source -> Int? in
            switch datatype {
            case .float32:
                #if _endian(little)
                if identity, let floats = source as? UnsafeBufferPointer<Float> {
                    out.copyMemory(from: UnsafeRawBufferPointer(floats))
                    return nil
                }
                #endif
                for i in 0..<source.count {
                    let stored = Float((source[i].niftiValue - intercept) / slope)
                    out.storeBytes(of: stored.bitPattern.littleEndian, toByteOffset: i * 4, as: UInt32.self)
                }
            case .float64:
                for i in 0..<source.count {
                    let stored = (source[i].niftiValue - intercept) / slope
                    out.storeBytes(of: stored.bitPattern.littleEndian, toByteOffset: i * 8, as: UInt64.self)
                }
            case .complex64, .complex128:
                let eight = datatype == .complex128
                for i in 0..<source.count {
                    let real = (source[i].niftiValue - intercept) / slope
                    let imaginaryPart = (imaginary?[i] ?? 0) / slope
                    if eight {
                        out.storeBytes(of: real.bitPattern.littleEndian, toByteOffset: i * 16, as: UInt64.self)
                        out.storeBytes(of: imaginaryPart.bitPattern.littleEndian, toByteOffset: i * 16 + 8, as: UInt64.self)
                    } else {
                        out.storeBytes(of: Float(real).bitPattern.littleEndian, toByteOffset: i * 8, as: UInt32.self)
                        out.storeBytes(of: Float(imaginaryPart).bitPattern.littleEndian, toByteOffset: i * 8 + 4, as: UInt32.self)
                    }
                }
            case .uint8: return encodeIntegers(source, UInt8.self, datatype, slope, intercept, out)
            case .int8: return encodeIntegers(source, Int8.self, datatype, slope, intercept, out)
            case .int16: return encodeIntegers(source, Int16.self, datatype, slope, intercept, out)
            case .uint16: return encodeIntegers(source, UInt16.self, datatype, slope, intercept, out)
            case .int32: return encodeIntegers(source, Int32.self, datatype, slope, intercept, out)
            case .uint32: return encodeIntegers(source, UInt32.self, datatype, slope, intercept, out)
            case .int64: return encodeIntegers(source, Int64.self, datatype, slope, intercept, out)
            case .uint64: return encodeIntegers(source, UInt64.self, datatype, slope, intercept, out)
            }
            return nil
        }
    }

    private static func encodeIntegers<T: NIfTIStorable, Stored: FixedWidthInteger>(
        _ source: UnsafeBufferPointer<T>, _: Stored.Type, _ datatype: NIfTIDataType,
        _ slope: Double, _ intercept: Double, _ out: UnsafeMutableRawBufferPointer
    ) -> Int? {
        let range = datatype.integerRange!
        let size = MemoryLayout<Stored>.size
        for i in 0..<source.count {
            let stored = ((source[i].niftiValue - intercept) / slope).rounded()
            guard range.contains(stored) else { return i }  // also rejects NaN
            out.storeBytes(of: Stored(stored).littleEndian, toByteOffset: i * size, as: Stored.self)
        }
        return nil
    }
}
