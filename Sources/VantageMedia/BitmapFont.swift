/// A fixed 5×8 bitmap font for printable ASCII (32–126), drawn with integer scaling.
///
/// Each glyph is one `UInt64`: eight rows, top row in the most significant byte, and in each row
/// the five low bits are the pixels from left (bit 4) to right (bit 0). Capitals and digits use
/// rows 0–6; row 7 holds descenders (`g j p q y , _`). A glyph cell is 6×9 pixels at scale 1
/// (one pixel of spacing to the right and below). Characters outside the table draw as a box.
public enum BitmapFont {
    /// Width of a glyph's drawn pixels at scale 1.
    public static let glyphWidth = 5
    /// Height of a glyph's drawn pixels at scale 1, descender row included.
    public static let glyphHeight = 8
    /// Horizontal distance from one glyph to the next at scale 1.
    public static let advance = 6

    /// Drawn for any character that the table does not have: an outlined box.
    static let unknownGlyph: UInt64 = 0x1F11_1111_1111_1F00

    /// Glyphs for ASCII 32 (space) to 126 (`~`).
    static let glyphs: [UInt64] = [
        0x0000_0000_0000_0000, 0x0404_0404_0400_0400, 0x0A0A_0A00_0000_0000, 0x0A0A_1F0A_1F0A_0A00,  //   ! " #
        0x040F_140E_051E_0400, 0x1819_0204_0813_0300, 0x0C12_1408_1512_0D00, 0x0404_0800_0000_0000,  // $ % & '
        0x0204_0808_0804_0200, 0x0804_0202_0204_0800, 0x0004_150E_1504_0000, 0x0004_041F_0404_0000,  // ( ) * +
        0x0000_0000_000C_0408, 0x0000_001F_0000_0000, 0x0000_0000_000C_0C00, 0x0001_0204_0810_0000,  // , - . /
        0x0E11_1315_1911_0E00, 0x040C_0404_0404_0E00, 0x0E11_0102_0408_1F00, 0x1F02_0402_0111_0E00,  // 0 1 2 3
        0x0206_0A12_1F02_0200, 0x1F10_1E01_0111_0E00, 0x0608_101E_1111_0E00, 0x1F01_0204_0808_0800,  // 4 5 6 7
        0x0E11_110E_1111_0E00, 0x0E11_110F_0102_0C00, 0x000C_0C00_0C0C_0000, 0x000C_0C00_0C04_0800,  // 8 9 : ;
        0x0204_0810_0804_0200, 0x0000_1F00_1F00_0000, 0x0804_0201_0204_0800, 0x0E11_0102_0400_0400,  // < = > ?
        0x0E11_010D_1515_0E00, 0x0E11_111F_1111_1100, 0x1E11_111E_1111_1E00, 0x0E11_1010_1011_0E00,  // @ A B C
        0x1C12_1111_1112_1C00, 0x1F10_101E_1010_1F00, 0x1F10_101E_1010_1000, 0x0E11_1017_1111_0F00,  // D E F G
        0x1111_111F_1111_1100, 0x0E04_0404_0404_0E00, 0x0702_0202_0212_0C00, 0x1112_1418_1412_1100,  // H I J K
        0x1010_1010_1010_1F00, 0x111B_1515_1111_1100, 0x1111_1915_1311_1100, 0x0E11_1111_1111_0E00,  // L M N O
        0x1E11_111E_1010_1000, 0x0E11_1111_1512_0D00, 0x1E11_111E_1412_1100, 0x0F10_100E_0101_1E00,  // P Q R S
        0x1F04_0404_0404_0400, 0x1111_1111_1111_0E00, 0x1111_1111_110A_0400, 0x1111_1115_1515_0A00,  // T U V W
        0x1111_0A04_0A11_1100, 0x1111_0A04_0404_0400, 0x1F01_0204_0810_1F00, 0x0E08_0808_0808_0E00,  // X Y Z [
        0x0010_0804_0201_0000, 0x0E02_0202_0202_0E00, 0x040A_1100_0000_0000, 0x0000_0000_0000_001F,  // \ ] ^ _
        0x0804_0200_0000_0000, 0x0000_0E01_0F11_0F00, 0x1010_1619_1111_1E00, 0x0000_0E10_1011_0E00,  // ` a b c
        0x0101_0D13_1111_0F00, 0x0000_0E11_1F10_0E00, 0x0609_081C_0808_0800, 0x0000_0F11_110F_010E,  // d e f g
        0x1010_1619_1111_1100, 0x0400_0C04_0404_0E00, 0x0200_0602_0202_120C, 0x1010_1214_1814_1200,  // h i j k
        0x0C04_0404_0404_0E00, 0x0000_1A15_1511_1100, 0x0000_1619_1111_1100, 0x0000_0E11_1111_0E00,  // l m n o
        0x0000_1E11_111E_1010, 0x0000_0F11_110F_0101, 0x0000_1619_1010_1000, 0x0000_0F10_0E01_1E00,  // p q r s
        0x0808_1C08_0809_0600, 0x0000_1111_1113_0D00, 0x0000_1111_110A_0400, 0x0000_1111_1515_0A00,  // t u v w
        0x0000_110A_040A_1100, 0x0000_1111_110F_010E, 0x0000_1F02_0408_1F00, 0x0304_0408_0404_0300,  // x y z {
        0x0404_0404_0404_0400, 0x1804_0402_0404_1800, 0x0000_0815_0200_0000,  // | } ~
    ]

    /// The glyph bits for `scalar`, or the box glyph for a character outside ASCII 32–126.
    static func glyph(for scalar: Unicode.Scalar) -> UInt64 {
        let value = Int(scalar.value)
        guard value >= 32, value <= 126 else { return unknownGlyph }
        return glyphs[value - 32]
    }

    /// The size in pixels that ``draw(_:x:y:scale:color:on:)`` covers for `text`: one cell per
    /// Unicode scalar, without the spacing after the last one.
    public static func size(of text: String, scale: Int) -> (width: Int, height: Int) {
        let scale = max(1, scale)
        let count = text.unicodeScalars.count
        guard count > 0 else { return (0, glyphHeight * scale) }
        return ((count * advance - (advance - glyphWidth)) * scale, glyphHeight * scale)
    }

    /// Draws `text` with its top-left corner at pixel (`x`, `y`), each font pixel as a
    /// `scale`×`scale` block. Pixels that fall outside `image` are skipped.
    public static func draw(
        _ text: String,
        x: Int,
        y: Int,
        scale: Int,
        color: OverlayColor,
        on image: ImageBuffer
    ) {
        let scale = max(1, scale)
        var originX = x
        for scalar in text.unicodeScalars {
            if originX >= image.width { break }
            if originX + glyphWidth * scale > 0 {
                drawGlyph(glyph(for: scalar), x: originX, y: y, scale: scale, color: color, on: image)
            }
            originX += advance * scale
        }
    }

    static func drawGlyph(_ bits: UInt64, x: Int, y: Int, scale: Int, color: OverlayColor, on image: ImageBuffer) {
        for row in 0..<glyphHeight {
            let rowBits = UInt8(truncatingIfNeeded: bits >> UInt64(8 * (glyphHeight - 1 - row))) & 0x1F
            if rowBits == 0 { continue }
            let top = y + row * scale
            var column = 0
            while column < glyphWidth {
                // Fill runs of set pixels at once: fewer, wider rectangles.
                guard rowBits & (0x10 >> UInt8(column)) != 0 else {
                    column += 1
                    continue
                }
                var end = column + 1
                while end < glyphWidth, rowBits & (0x10 >> UInt8(end)) != 0 { end += 1 }
                image.fill(
                    x0: x + column * scale,
                    y0: top,
                    x1: x + end * scale,
                    y1: top + scale,
                    color: color
                )
                column = end
            }
        }
    }
}
