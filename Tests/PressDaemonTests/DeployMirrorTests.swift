import Foundation
import Testing

/// Issue 23: Tests/deploy/deploy_test.py named a package registry's host (its Debian
/// mirror was written into it). It takes the mirror from the machine's apt sources now:
/// `deploy_test.py --apt-mirror [--apt-root DIR]` runs that look-up alone.
@Suite("The deployment test's Debian mirror comes from the machine's apt sources")
struct DeployMirrorTests {
    static let script = repoRoot + "/Tests/deploy/deploy_test.py"

    /// An apt configuration under a temporary root: `files` maps paths below etc/apt to text.
    static func aptRoot(_ files: [String: String]) throws -> String {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("pressd-apt-\(UUID().uuidString.prefix(6))").path
        try FileManager.default.createDirectory(atPath: root + "/etc/apt/sources.list.d", withIntermediateDirectories: true)
        for (path, text) in files { try text.write(toFile: root + "/etc/apt/" + path, atomically: true, encoding: .utf8) }
        return root
    }

    static func mirror(_ files: [String: String]) throws -> Run {
        let root = try aptRoot(files)
        defer { try? FileManager.default.removeItem(atPath: root) }
        return try runProcess("/usr/bin/python3", [script, "--apt-mirror", "--apt-root", root])
    }

    @Test("one-line sources: the bookworm main entry, not security, updates, deb-src, a commented line or another suite")
    func oneLine() throws {
        let r = try Self.mirror(["sources.list": """
            # deb file:/srv/apt/old/debian bookworm main
            deb-src file:/srv/apt/src/debian bookworm main
            deb file:/srv/apt/security/debian-security bookworm-security main
            deb [arch=amd64 signed-by=/usr/share/keyrings/x.gpg] file:/srv/apt/near/debian/ bookworm main contrib
            deb file:/srv/apt/other/debian trixie main
            """])
        #expect(r.status == 0 && r.stdout == "file:/srv/apt/near/debian\n", "\(r.stdout)\(r.stderr)")
    }

    @Test("deb822 .sources: a stanza with several suites and URIs; a disabled one and files apt ignores are skipped")
    func deb822() throws {
        let r = try Self.mirror([
            "sources.list.d/a-disabled.sources": "Types: deb\nURIs: file:/srv/apt/off/debian\nSuites: bookworm\nComponents: main\nEnabled: no\n",
            "sources.list.d/b.list.disabled-by-farm": "deb file:/srv/apt/ignored/debian bookworm main\n",
            "sources.list.d/c.sources": """
                Types: deb
                URIs: file:/srv/apt/updates-only/debian
                Suites: bookworm-updates
                Components: main

                Types: deb deb-src
                # a comment inside the stanza
                URIs: file:/srv/apt/lab-mirror/debian
                 file:/srv/apt/second/debian
                Suites: bookworm bookworm-updates
                Components: main
                Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
                """,
        ])
        #expect(r.status == 0 && r.stdout == "file:/srv/apt/lab-mirror/debian\n", "\(r.stdout)\(r.stderr)")
    }

    @Test("no bookworm main entry anywhere: a clear error naming the files read and what is missing")
    func none() throws {
        let r = try Self.mirror(["sources.list": "deb file:/srv/apt/other/debian trixie main\n"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("no Debian mirror for bookworm main") && r.stderr.contains("/etc/apt/sources.list") && r.stderr.contains(".sources"), "\(r.stderr)")
    }

    @Test("the script names no host: no URL in it")
    func noHostInScript() throws {
        let text = try String(contentsOfFile: Self.script, encoding: .utf8)
        #expect(!text.contains("://"), "deploy_test.py contains a URL")
    }
}
