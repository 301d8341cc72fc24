/// Text that came from other people (file names, cell ids, notes, program names) made safe to
/// print on a terminal or write as one line of a log: control characters (ESC, BEL, CR, LF, …,
/// C1) and the bidirectional overrides and isolates that reorder a line are shown as
/// `\u{1B}`-style escapes, so that such text cannot clear a screen, set the clipboard or fake a line.
public enum TextSafety {
    /// `text` with every control character and bidi override or isolate escaped as `\u{…}`.
    public static func escaped(_ text: String) -> String {
        var out = ""
        out.unicodeScalars.reserveCapacity(text.unicodeScalars.count)
        for u in text.unicodeScalars {
            if needsEscape(u.value) {
                out += "\\u{" + String(u.value, radix: 16, uppercase: true) + "}"
            } else {
                out.unicodeScalars.append(u)
            }
        }
        return out
    }

    /// C0 controls, DEL, C1 controls, LRE…RLO (U+202A–202E), LRI…PDI (U+2066–2069).
    static func needsEscape(_ v: UInt32) -> Bool {
        v < 0x20 || (0x7F...0x9F).contains(v) || (0x202A...0x202E).contains(v) || (0x2066...0x2069).contains(v)
    }
}
