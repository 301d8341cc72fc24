import Testing
import PressProtocol

/// The one escaping rule of pressd and pressctl (issue 25, finding 5), format by format.
@Suite("SafeText: user text as data")
struct SafeTextTests {
    @Test("control characters, DEL, C1, line separators and bidi overrides become \\u{…}; other text is unchanged")
    func escaped() {
        #expect(SafeText.escaped("plain Li|Li6PS5Cl|NMC811 µ °C") == "plain Li|Li6PS5Cl|NMC811 µ °C")
        #expect(SafeText.escaped("a\u{1B}]52;c;eA==\u{07}b") == #"a\u{1B}]52;c;eA==\u{7}b"#)
        #expect(SafeText.escaped("x\r\ny\u{85}z\u{2028}") == #"x\u{D}\u{A}y\u{85}z\u{2028}"#)
        #expect(SafeText.escaped("\u{202E}cba\u{2066}\u{7F}") == #"\u{202E}cba\u{2066}\u{7F}"#)
        #expect(!SafeText.escaped("\u{1B}\n\u{9B}\u{202D}").unicodeScalars.contains(where: SafeText.isUnsafe))
    }

    @Test("Markdown: structure characters backslash-escaped, one line")
    func markdown() {
        #expect(SafeText.markdown("**b** _i_ [l](u) <x> `c` a|b #h !i ~s &amp; \\") == ##"\*\*b\*\* \_i\_ \[l\](u) \<x\> \`c\` a\|b \#h \!i \~s \&amp; \\"##)
        #expect(!SafeText.markdown("a\r\n- forged").contains("\n"))
    }

    @Test("XML: entities and no control characters (XML 1.0 cannot carry most of them)")
    func xml() {
        #expect(SafeText.xml("<a href=\"x\">'&'</a>\u{1B}") == #"&lt;a href=&quot;x&quot;&gt;&apos;&amp;&apos;&lt;/a&gt;\u{1B}"#)
    }

    @Test("CSV: one field per value, quoted when needed, formulas disarmed")
    func csv() {
        #expect(SafeText.csvField("A") == "A")
        #expect(SafeText.csvField("a,b") == "\"a,b\"")
        #expect(SafeText.csvField("say \"hi\", ok") == "\"say \"\"hi\"\", ok\"")
        #expect(SafeText.csvField("=1+1") == "'=1+1")
        #expect(SafeText.csvField("@SUM(A1)") == "'@SUM(A1)")
        #expect(SafeText.csvField("a\nb") == #"a\u{A}b"#)
    }
}
