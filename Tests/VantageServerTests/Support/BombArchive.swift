import Foundation
import ZIPFoundation

/// A ZIP whose one entry unpacks to far more than the archive holds — a file followed by a gigabyte of spaces —
/// written directly (one fixed-Huffman deflate block of back-references, which repeats every 13 bytes), so making
/// it costs a few megabytes and a second instead of compressing the gigabyte.
enum BombArchive {
    /// A ZIP holding `files` as they are (stored), and `bombPath`: `prefix` followed by spaces up to `size` bytes.
    static func make(files: [(String, [UInt8])], bombPath: String, prefix: [UInt8], size: Int) -> Data {
        var zip = Data()
        var central = Data()
        var count = 0
        func add(_ path: String, method: UInt16, crc: UInt32, compressed: Data, size: Int) {
            let offset = zip.count
            let name = Array(path.utf8)
            var header = Data()
            header.append(le32: 0x0403_4b50)
            header.append(le16: 20)  // version needed
            header.append(le16: 0)  // flags
            header.append(le16: method)
            header.append(le16: 0)  // time
            header.append(le16: 0x21)  // date: 1980-01-01
            header.append(le32: crc)
            header.append(le32: UInt32(compressed.count))
            header.append(le32: UInt32(size))
            header.append(le16: UInt16(name.count))
            header.append(le16: 0)  // extra
            zip.append(header)
            zip.append(contentsOf: name)
            zip.append(compressed)

            central.append(le32: 0x0201_4b50)
            central.append(le16: 0x0314)  // made by Unix, 2.0
            central.append(le16: 20)
            central.append(le16: 0)
            central.append(le16: method)
            central.append(le16: 0)
            central.append(le16: 0x21)
            central.append(le32: crc)
            central.append(le32: UInt32(compressed.count))
            central.append(le32: UInt32(size))
            central.append(le16: UInt16(name.count))
            central.append(le16: 0)  // extra
            central.append(le16: 0)  // comment
            central.append(le16: 0)  // disk
            central.append(le16: 0)  // internal attributes
            central.append(le32: UInt32(0o100644) << 16)  // a regular file, rw-r--r--
            central.append(le32: UInt32(offset))
            central.append(contentsOf: name)
            count += 1
        }
        for (path, bytes) in files {
            let data = Data(bytes)
            add(path, method: 0, crc: data.crc32(checksum: 0), compressed: data, size: bytes.count)
        }
        let (deflated, crc) = deflatedSpaces(after: prefix, size: size)
        add(bombPath, method: 8, crc: crc, compressed: deflated, size: size)

        let centralOffset = zip.count
        zip.append(central)
        zip.append(le32: 0x0605_4b50)
        zip.append(le16: 0)
        zip.append(le16: 0)
        zip.append(le16: UInt16(count))
        zip.append(le16: UInt16(count))
        zip.append(le32: UInt32(central.count))
        zip.append(le32: UInt32(centralOffset))
        zip.append(le16: 0)
        return zip
    }

    /// A raw deflate stream of `prefix` followed by spaces up to `size` bytes, and the CRC-32 of that content.
    static func deflatedSpaces(after prefix: [UInt8], size: Int) -> (Data, UInt32) {
        var bits = BitWriter()
        bits.write(1, count: 1)  // BFINAL
        bits.write(1, count: 2)  // BTYPE 01: fixed Huffman codes
        for byte in prefix + [UInt8(ascii: " ")] { bits.literal(byte) }
        var produced = prefix.count + 1
        // Back-references of 258 bytes at distance 1 (13 bits each) until the stream is byte-aligned, then eight at
        // a time: 104 bits, 13 bytes, the same every time.
        while bits.pending != 0 {
            bits.match258()
            produced += 258
        }
        var unit = BitWriter()
        for _ in 0..<8 { unit.match258() }
        let units = (size - produced) / 2064
        var stream = Data(bits.bytes)
        stream.reserveCapacity(stream.count + units * 13 + 4096)
        let block = Data(Array(repeating: unit.bytes, count: 1024).joined())
        for _ in 0..<(units / 1024) { stream.append(block) }
        for _ in 0..<(units % 1024) { stream.append(contentsOf: unit.bytes) }
        produced += units * 2064
        var tail = BitWriter()
        for _ in produced..<size { tail.literal(UInt8(ascii: " ")) }
        tail.writeCode(0, length: 7)  // end of block
        tail.flush()
        stream.append(contentsOf: tail.bytes)

        let crc = CRC32.appendingRun(
            of: UInt8(ascii: " "), count: size - prefix.count, to: Data(prefix).crc32(checksum: 0))
        return (stream, crc)
    }

    /// The CRC-32 of a long run of one byte without visiting each byte: one byte's step is an affine map of the
    /// 32-bit state over GF(2), and a run of n bytes is that map composed n times, by squaring.
    enum CRC32 {
        static let table: [UInt32] = (0..<256).map { index in
            var value = UInt32(index)
            for _ in 0..<8 { value = value & 1 == 1 ? 0xEDB8_8320 ^ (value >> 1) : value >> 1 }
            return value
        }

        /// `state ↦ linear(state) ^ constant`; `linear` as the images of the 32 bits.
        struct Affine {
            var columns: [UInt32]
            var constant: UInt32

            func linear(_ state: UInt32) -> UInt32 {
                var result: UInt32 = 0
                for bit in 0..<32 where state >> UInt32(bit) & 1 == 1 { result ^= columns[bit] }
                return result
            }

            func apply(_ state: UInt32) -> UInt32 { linear(state) ^ constant }

            /// `other` after `self`.
            func then(_ other: Affine) -> Affine {
                Affine(columns: columns.map { other.linear($0) }, constant: other.apply(constant))
            }
        }

        /// The finished CRC (zlib's convention) of what `crc` covered followed by `count` copies of `byte`.
        static func appendingRun(of byte: UInt8, count: Int, to crc: UInt32) -> UInt32 {
            let step = Affine(
                columns: (0..<32).map { bit in
                    let state = UInt32(1) << UInt32(bit)
                    return table[Int(state & 0xff)] ^ (state >> 8)
                }, constant: table[Int(byte)])
            var power = step
            var run = Affine(columns: (0..<32).map { UInt32(1) << UInt32($0) }, constant: 0)
            var remaining = count
            while remaining > 0 {
                if remaining & 1 == 1 { run = run.then(power) }
                power = power.then(power)
                remaining >>= 1
            }
            return ~run.apply(~crc)
        }
    }

    /// Deflate's bit order: header and extra bits least significant first, Huffman codes most significant first.
    struct BitWriter {
        var bytes: [UInt8] = []
        private var current: UInt8 = 0
        /// Bits written into `current` so far.
        private(set) var pending = 0

        mutating func write(_ value: UInt32, count: Int) {
            for i in 0..<count { bit(UInt8((value >> UInt32(i)) & 1)) }
        }

        mutating func writeCode(_ code: UInt32, length: Int) {
            for i in (0..<length).reversed() { bit(UInt8((code >> UInt32(i)) & 1)) }
        }

        /// A literal byte in the fixed code.
        mutating func literal(_ byte: UInt8) {
            if byte < 144 {
                writeCode(0x30 + UInt32(byte), length: 8)
            } else {
                writeCode(0x190 + UInt32(byte) - 144, length: 9)
            }
        }

        /// Length 258 (code 285, no extra bits), distance 1 (code 0, no extra bits).
        mutating func match258() {
            writeCode(0xC0 + 5, length: 8)
            writeCode(0, length: 5)
        }

        mutating func flush() {
            if pending > 0 {
                bytes.append(current)
                current = 0
                pending = 0
            }
        }

        private mutating func bit(_ value: UInt8) {
            current |= value << UInt8(pending)
            pending += 1
            if pending == 8 {
                bytes.append(current)
                current = 0
                pending = 0
            }
        }
    }
}

extension Data {
    fileprivate mutating func append(le16 value: UInt16) {
        append(contentsOf: [UInt8(value & 0xff), UInt8(value >> 8)])
    }

    fileprivate mutating func append(le32 value: UInt32) {
        append(contentsOf: (0..<4).map { UInt8((value >> ($0 * 8)) & 0xff) })
    }
}
