import Testing
@testable import PGSQLChkCore

/// Keeps `man/pgsqlchk.1` in step with `--help`: every option in both, in the
/// same `-x, --long` pairing, and the same default deadline.
@Suite("Man page")
struct ManPageTests {
    /// The options every command has besides ``CommandLineOptions/options``.
    private static let informationOptions: [(short: Character, long: String)] = [("V", "version"), ("?", "help")]

    private static let allOptions: [(short: Character, long: String)] =
        CommandLineOptions.options.map { ($0.short, $0.long) } + informationOptions

    private let manPage: ManPage

    init() throws {
        manPage = try ManPage(source: #require(DeploymentSampleTests.lines(of: "man/pgsqlchk.1")).joined(separator: "\n"))
    }

    @Test("every option appears as a \"-x, --long\" entry in the man page's OPTIONS", arguments: allOptions.map { "-\($0.short), --\($0.long)" })
    func optionInManPage(spelling: String) {
        #expect(manPage.optionTags.contains { $0 == spelling || $0.hasPrefix(spelling + "=") },
                "man/pgsqlchk.1 OPTIONS has no \(spelling) entry; entries: \(manPage.optionTags)")
    }

    @Test("every option appears as a \"-x, --long\" line in --help", arguments: allOptions.map { "-\($0.short), --\($0.long)" })
    func optionInHelp(spelling: String) {
        let lines = CommandLineOptions.helpText.split(separator: "\n").map { $0.drop { $0 == " " } }
        #expect(lines.contains { $0.hasPrefix(spelling + " ") || $0.hasPrefix(spelling + "=") })
    }

    @Test("the man page documents no option that pgsqlchk does not have")
    func noUnknownOptionInManPage() {
        let known = Set(Self.allOptions.map { "-\($0.short), --\($0.long)" })
        for tag in manPage.optionTags {
            let spelling = String(tag.prefix { $0 != "=" })
            #expect(known.contains(spelling), "man/pgsqlchk.1 documents \(tag)")
        }
    }

    @Test("the man page states the default timeout that --help prints")
    func defaultTimeout() throws {
        let paragraph = try #require(manPage.optionParagraphs.first { $0.tag.hasPrefix("-t, --timeout") }?.text)
        let marker = "(default: "
        let start = try #require(paragraph.firstRange(of: marker)?.upperBound, "no \"\(marker)\" in: \(paragraph)")
        let stated = paragraph[start...].prefix { $0 != ")" }
        #expect(stated == Configuration.defaultTimeout.description)
        #expect(CommandLineOptions.helpText.contains("(default: \(Configuration.defaultTimeout))"))
    }

    @Test("README's Options block is --help's, from \"Options:\" on")
    func readmeOptions() throws {
        let readme = try #require(DeploymentSampleTests.lines(of: "README.md"))
        let heading = try #require(readme.firstIndex(of: "## Options"), "README.md has no \"## Options\"")
        let opening = try #require(readme[heading...].firstIndex(of: "```"))
        let closing = try #require(readme[(opening + 1)...].firstIndex(of: "```"))
        let help = CommandLineOptions.helpText.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let options = try #require(help.firstIndex(of: "Options:"))
        var expected = Array(help[options...])
        while expected.last == "" { expected.removeLast() }
        #expect(Array(readme[(opening + 1)..<closing]) == expected)
    }
}

/// The parts of a man(7) source the tests compare, as plain text.
struct ManPage {
    /// One `.TP` entry of the OPTIONS section: its tag line and its text.
    struct Paragraph {
        var tag: String
        var text: String
    }

    /// The `.TP` entries under `.SH OPTIONS`, subsections included.
    let optionParagraphs: [Paragraph]

    var optionTags: [String] { optionParagraphs.map(\.tag) }

    init(source: String) {
        var paragraphs: [Paragraph] = []
        var current: Paragraph?
        var inOptions = false
        var expectingTag = false
        for line in source.split(separator: "\n").map(String.init) {
            if ManPage.isParagraphBreak(line) {
                // .TP starts an entry; .PP, .SS and .SH end it.
                if let finished = current { paragraphs.append(finished) }
                current = nil
                expectingTag = line.hasPrefix(".TP")
                if line.hasPrefix(".SH") { inOptions = ManPage.plainText(line) == "OPTIONS" }
            } else if inOptions && expectingTag {
                current = Paragraph(tag: ManPage.plainText(line), text: "")
                expectingTag = false
            } else if inOptions, var entry = current, case let words = ManPage.plainText(line), !words.isEmpty {
                entry.text += (entry.text.isEmpty ? "" : " ") + words
                current = entry
            }
        }
        if let finished = current { paragraphs.append(finished) }
        optionParagraphs = paragraphs
    }

    private static func isParagraphBreak(_ line: String) -> Bool {
        [".TP", ".PP", ".SS", ".SH"].contains { line == $0 || line.hasPrefix($0 + " ") }
    }

    /// One source line as it reads: font macros' arguments joined the way
    /// man(7) joins them, font changes dropped, `\-` as `-`.
    static func plainText(_ line: String) -> String {
        var text = line
        if line.hasPrefix(".") {
            let name = line.dropFirst().prefix { $0 != " " }
            let arguments = macroArguments(line.dropFirst(1 + name.count))
            switch name {
            case "B", "I", "SH", "SS": text = arguments.joined(separator: " ")
            case "BR", "RB", "BI", "IB", "IR", "RI": text = arguments.joined()
            default: text = ""
            }
        }
        var plain = ""
        var characters = text[...]
        while let character = characters.popFirst() {
            guard character == "\\", let escaped = characters.popFirst() else {
                plain.append(character)
                continue
            }
            switch escaped {
            case "f": _ = characters.popFirst() // \fB, \fI, \fR, \fP
            case "-": plain.append("-")
            case "e": plain.append("\\")
            case "&", "%": break
            default: plain.append(contentsOf: ["\\", escaped])
            }
        }
        return plain
    }

    /// A macro's arguments: separated by spaces, double quotes group.
    private static func macroArguments(_ text: Substring) -> [String] {
        var arguments: [String] = []
        var current: String?
        var quoted = false
        for character in text {
            switch character {
            case "\"":
                quoted.toggle()
                current = current ?? ""
            case " " where !quoted:
                if let argument = current { arguments.append(argument) }
                current = nil
            default:
                current = (current ?? "") + String(character)
            }
        }
        if let argument = current { arguments.append(argument) }
        return arguments
    }
}
