/// Keeps passwords out of what pgsqlchk logs.
///
/// libpq quotes a conninfo string or URI it cannot parse in its error
/// message, password and all, and that message goes to syslog. Every logged
/// line passes through here first.
enum Redaction {
    /// What replaces a password.
    static let mask = "***"

    /// `text` with the password of every URI (`scheme://user:SECRET@host`) and
    /// every `password=` value (conninfo `password=SECRET` or
    /// `password='SE CRET'`, URI `?password=SECRET&...`) masked. It errs on
    /// the side of masking more: from a URI's first `:` after `//` to its
    /// last `@`, whatever lies between.
    static func redactingPasswords(_ text: String) -> String {
        redactingPasswordParameters(redactingURIUserInfo(text))
    }

    private static func redactingURIUserInfo(_ text: String) -> String {
        var result = ""
        var rest = Substring(text)
        while let afterScheme = rest.indexAfter("://") {
            result += rest[..<afterScheme]
            rest = rest[afterScheme...]
            // The URI runs to the next white space or quote.
            let uri = rest.prefix { !$0.isWhitespace && $0 != "\"" && $0 != "'" }
            if let colon = uri.firstIndex(of: ":"), let at = uri.lastIndex(of: "@"), colon < at {
                result += uri[...colon] + mask
                rest = rest[at...]
            }
        }
        return result + rest
    }

    private static func redactingPasswordParameters(_ text: String) -> String {
        var result = ""
        var rest = Substring(text)
        while let keyEnd = rest.indexAfter("password") {
            result += rest[..<keyEnd]
            rest = rest[keyEnd...]
            let spaces = rest.prefix { $0 == " " }
            guard rest.dropFirst(spaces.count).first == "=" else { continue }
            let valueStart = rest.dropFirst(spaces.count + 1).drop { $0 == " " }
            result += rest[..<valueStart.startIndex] + mask
            if valueStart.first == "'" {
                // A quoted conninfo value ends at the first quote not escaped by a backslash.
                var index = valueStart.index(after: valueStart.startIndex)
                while index < valueStart.endIndex, valueStart[index] != "'" {
                    if valueStart[index] == "\\" { index = valueStart.index(after: index) }
                    if index < valueStart.endIndex { index = valueStart.index(after: index) }
                }
                rest = index < valueStart.endIndex ? valueStart[valueStart.index(after: index)...] : ""
            } else {
                rest = valueStart.drop { !$0.isWhitespace && $0 != "&" && $0 != "\"" }
            }
        }
        return result + rest
    }
}
