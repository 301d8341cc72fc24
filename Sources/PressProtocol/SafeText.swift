/// Text that came from other people — cell ids, chemistries, notes, program and file
/// names, audited request lines, channel names read from a run log — treated as data
/// wherever it lands: a terminal, a Markdown or SVG report, a CSV file, a journal line,
/// an MQTT payload. One helper for pressd and pressctl alike, so every place escapes the
/// same characters the same way.
///
/// The base rule (``escaped(_:)``): C0 and C1 control characters (ESC, BEL, CR, LF, …),
/// DEL, the line and paragraph separators and the bidirectional overrides and isolates
/// that reorder a line are written as `\u{1B}`-style escapes. The text then cannot move
/// a cursor, set a terminal's clipboard (`ESC ]52;…BEL`), start a new line that looks
/// like one pressd wrote, or display in an order other than the one stored. The
/// format-specific forms add the structure characters of their format.
public enum SafeText {
    /// True for a scalar that ``escaped(_:)`` rewrites.
    public static func isUnsafe(_ u: Unicode.Scalar) -> Bool {
        let v = u.value
        return v < 0x20 || (0x7F...0x9F).contains(v) || v == 0x2028 || v == 0x2029
            || (0x202A...0x202E).contains(v) || (0x2066...0x2069).contains(v)
    }

    /// `text` with every unsafe scalar (see the type's description) written as `\u{HEX}`.
    /// Safe for a terminal and a journal line; one line, whatever it held.
    public static func escaped(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: isUnsafe) else { return text }
        var out = String.UnicodeScalarView()
        for u in text.unicodeScalars {
            if isUnsafe(u) {
                out.append(contentsOf: "\\u{\(String(u.value, radix: 16, uppercase: true))}".unicodeScalars)
            } else {
                out.append(u)
            }
        }
        return String(out)
    }

    /// Markdown inline text (a table cell, a list item): ``escaped(_:)``, then every
    /// character Markdown would read as structure inside a line — `\ ` * _ [ ] < > | # ! ~ &`
    /// — escaped with a backslash (CommonMark renders `\X` as `X` for ASCII punctuation),
    /// so `Li|Li6PS5Cl|NMC811` stays one table cell and `**x**` stays two asterisks.
    public static func markdown(_ text: String) -> String {
        var out = ""
        for ch in escaped(text) {
            switch ch {
            case "\\", "`", "*", "_", "[", "]", "<", ">", "|", "#", "!", "~", "&": out += "\\" + String(ch)
            default: out.append(ch)
            }
        }
        return out
    }

    /// XML character data or an attribute value (SVG): ``escaped(_:)`` (XML 1.0 has no
    /// way to write most control characters at all), then `& < > " '` as entities.
    public static func xml(_ text: String) -> String {
        var out = ""
        for ch in escaped(text) {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            default: out.append(ch)
            }
        }
        return out
    }

    /// One CSV text field (RFC 4180): ``escaped(_:)`` (so a field is never more than one
    /// line); a field that starts with a character a spreadsheet reads as a formula
    /// (`= + - @`) gets a leading `'`; quoted when it holds a comma or a quote, quotes
    /// inside doubled. For text only: numbers are written as they are.
    public static func csvField(_ text: String) -> String {
        var s = escaped(text)
        if let f = s.first, "=+-@".contains(f) { s = "'" + s }
        guard s.contains(where: { $0 == "," || $0 == "\"" }) else { return s }
        return "\"" + s.replacingAll("\"", with: "\"\"") + "\""
    }
}

extension String {
    /// Every `target` replaced (no Foundation needed).
    fileprivate func replacingAll(_ target: Character, with replacement: String) -> String {
        var out = ""
        for ch in self { if ch == target { out += replacement } else { out.append(ch) } }
        return out
    }
}
