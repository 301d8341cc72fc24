import Foundation

/// Shared low-level helpers for the text parsers. Internal.
enum ParsingSupport {
    /// Splits text into lines, accepting `\n`, `\r\n` and `\r`. Line `i` of the result is line `i+1` of the file.
    static func lines(_ text: String) -> [Substring] {
        // Swift treats "\r\n" as a single Character, so splitting on isNewline handles all three.
        text.split(omittingEmptySubsequences: false, whereSeparator: { $0.isNewline })
    }

    /// Parses a decimal number, accepting `,` as decimal separator (European locales) and surrounding blanks.
    static func number(_ field: Substring) -> Double? {
        var s = field.trimmingCharacters(in: .whitespaces)
        if s.hasPrefix("\"") && s.hasSuffix("\"") && s.count >= 2 { s = String(s.dropFirst().dropLast()) }
        if s.isEmpty { return nil }
        if s.contains(",") {
            // Tab/semicolon-separated files only: a comma here is a decimal separator.
            if s.contains(".") { return nil }
            s = s.replacingOccurrences(of: ",", with: ".")
        }
        s = s.replacingOccurrences(of: "\u{2212}", with: "-")
        guard let v = Double(s) else { return nil }
        return v
    }

    /// Converts a civil date/time to a `Date`, interpreting it in `timeZone`
    /// (or as an absolute time if `utcOffsetSeconds` is given).
    static func date(year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Double,
                     timeZone: TimeZone, utcOffsetSeconds: Int? = nil) -> Date? {
        guard (1...12).contains(month), (1...31).contains(day), (0...23).contains(hour),
              (0...59).contains(minute), second >= 0, second < 61, year >= 1900, year <= 9999 else { return nil }
        guard day <= daysInMonth(year: year, month: month) else { return nil }
        let days = daysFromCivil(year: year, month: month, day: day)
        let naive = Double(days) * 86_400 + Double(hour * 3600 + minute * 60) + second
        if let off = utcOffsetSeconds {
            return Date(timeIntervalSince1970: naive - Double(off))
        }
        // Two-step local-time resolution (handles DST transitions sensibly).
        let guess = Date(timeIntervalSince1970: naive - Double(timeZone.secondsFromGMT(for: Date(timeIntervalSince1970: naive))))
        let off = timeZone.secondsFromGMT(for: guess)
        return Date(timeIntervalSince1970: naive - Double(off))
    }

    static func daysInMonth(year: Int, month: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    /// Parses a vendor date into (year, month, day).
    ///
    /// `MM/DD/YYYY` and `MM-DD-YYYY` are month-first (the vendors' US default); `DD.MM.YYYY` (dot
    /// separator, German-style Windows locales) is day-first; `YYYY-MM-DD` is ISO. If the month-first
    /// reading is impossible (first number > 12) but the day-first one is valid, day-first is used.
    static func monthDayYear(_ s: Substring) -> (Int, Int, Int)? {
        vendorDate(s, fixed: nil, configured: nil).map { ($0.year, $0.month, $0.day) }
    }

    /// A calendar date read from a vendor's file, with a note when the order had to be assumed.
    struct VendorDate {
        var year: Int, month: Int, day: Int
        /// Set when day and month could be either way round and neither the vendor's format nor
        /// the configuration settled it (the reading was chosen by the separator).
        var assumption: String?
    }

    /// Reads `A<sep>B<sep>Y` (separator `/`, `-` or `.`) or `YYYY-MM-DD`.
    ///
    /// Day and month are decided from the values where only one reading is a valid date (a
    /// number above 12 is a day). Otherwise by `fixed` (a vendor whose format is not locale
    /// dependent: EC-Lab writes month first, also with dots: `08.27.2015`), then by
    /// `configured` (the analyser PC's convention), and last by the separator (`.` day
    /// first as in German locales, `/` and `-` month first as in the US one), noted in
    /// ``VendorDate/assumption``. Returns nil for anything that is not three numbers.
    static func vendorDate(_ raw: Substring, fixed: DateOrder?, configured: DateOrder?) -> VendorDate? {
        let s = raw.trimmingCharacters(in: .whitespaces)
        let parts = s.split(separator: "/", omittingEmptySubsequences: false).count == 3 ? s.split(separator: "/", omittingEmptySubsequences: false)
            : s.split(separator: ".", omittingEmptySubsequences: false).count == 3 ? s.split(separator: ".", omittingEmptySubsequences: false)
            : s.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 3, parts.allSatisfy({ !$0.isEmpty && $0.count <= 4 && $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) }),
              let a = Int(parts[0]), let b = Int(parts[1]), let c = Int(parts[2]) else { return nil }
        if parts[0].count == 4 { return VendorDate(year: a, month: b, day: c) }   // YYYY-MM-DD
        let y = parts[2].count == 2 ? c + 2000 : c
        let dotted = s.contains(".")
        let monthFirstValid = (1...12).contains(a) && (1...31).contains(b)
        let dayFirstValid = (1...12).contains(b) && (1...31).contains(a)
        switch (monthFirstValid, dayFirstValid) {
        case (true, false): return VendorDate(year: y, month: a, day: b)
        case (false, true): return VendorDate(year: y, month: b, day: a)
        case (false, false): return nil
        case (true, true):
            if a == b { return VendorDate(year: y, month: a, day: b) }
            if let order = fixed ?? configured {
                return order == .monthFirst ? VendorDate(year: y, month: a, day: b) : VendorDate(year: y, month: b, day: a)
            }
            let order: DateOrder = dotted ? .dayFirst : .monthFirst
            let note = "date \(s) read \(order == .dayFirst ? "day" : "month") first (by its '\(dotted ? "." : (s.contains("/") ? "/" : "-"))' separator; set date_order if the analyser PC writes it the other way round)"
            return order == .monthFirst ? VendorDate(year: y, month: a, day: b, assumption: note) : VendorDate(year: y, month: b, day: a, assumption: note)
        }
    }

    /// Strips a UTF-8 byte-order mark.
    static func withoutBOM(_ text: String) -> Substring {
        text.hasPrefix("\u{FEFF}") ? text.dropFirst() : Substring(text)
    }

    /// Parses `HH:MM[:SS[.fff]]` (seconds may use `,` as decimal separator).
    static func timeOfDay(_ s: Substring) -> (Int, Int, Double)? {
        let parts = s.split(separator: ":")
        guard parts.count == 2 || parts.count == 3, let h = Int(parts[0]), let m = Int(parts[1]) else { return nil }
        var sec = 0.0
        if parts.count == 3 {
            guard let v = number(parts[2]), v >= 0 else { return nil }
            sec = v
        }
        return (h, m, sec)
    }

    /// Parses an ISO 8601 date-time: `YYYY-MM-DD[T| ]HH:MM[:SS[.fff]][Z|±HH[:]MM]`.
    /// Without an offset the time is read in `timeZone`.
    static func iso8601(_ raw: Substring, timeZone: TimeZone) -> Date? {
        let s = raw.trimmingCharacters(in: .whitespaces)
        guard s.count >= 10 else { return nil }
        let chars = Array(s)
        let datePart = String(chars[0..<10])
        let dp = datePart.split(separator: "-")
        guard dp.count == 3, dp[0].count == 4, let y = Int(dp[0]), let mo = Int(dp[1]), let d = Int(dp[2]) else { return nil }
        if chars.count == 10 {
            return date(year: y, month: mo, day: d, hour: 0, minute: 0, second: 0, timeZone: timeZone)
        }
        guard chars[10] == "T" || chars[10] == "t" || chars[10] == " " else { return nil }
        var rest = String(chars[11...])
        var offset: Int? = nil
        if rest.hasSuffix("Z") || rest.hasSuffix("z") {
            offset = 0
            rest.removeLast()
        } else if let signIndex = rest.lastIndex(where: { $0 == "+" || $0 == "-" }) {
            let sign = rest[signIndex] == "-" ? -1 : 1
            let tz = rest[rest.index(after: signIndex)...].replacingOccurrences(of: ":", with: "")
            guard tz.count == 4 || tz.count == 2, let v = Int(tz) else { return nil }
            let hh = tz.count == 4 ? v / 100 : v
            let mm = tz.count == 4 ? v % 100 : 0
            offset = sign * (hh * 3600 + mm * 60)
            rest = String(rest[..<signIndex])
        }
        guard let (h, mi, sec) = timeOfDay(Substring(rest)) else { return nil }
        return date(year: y, month: mo, day: d, hour: h, minute: mi, second: sec, timeZone: timeZone, utcOffsetSeconds: offset)
    }
}
