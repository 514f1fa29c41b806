/// A text of `name value` lines in a fixed order, walked in one of two
/// directions: writing a value's lines, or reading them back into a value.
/// Each type states its lines once, in one function that takes a walk and
/// `inout` fields, so the order and the names cannot differ between writing
/// and reading (``CacheEntry``). Plain functions and `inout`, not a table of
/// key paths: those cost a check two million instructions of run-time
/// metadata before its first read.
struct EntryLines {
    /// The lines written so far.
    fileprivate(set) var written: [String] = []
    private var reader: EntryReader?

    /// A walk that writes.
    init() {}

    /// A walk that reads `text`.
    init(reading text: String) {
        reader = EntryReader(text)
    }

    /// Whether a reading walk has read every line.
    var isAtEnd: Bool { reader?.isAtEnd ?? true }

    /// `name value`: `value` as `write` gives it, or set to what `read`
    /// makes of the line (nil: the entry is corrupt).
    mutating func line<Value>(_ name: String, _ value: inout Value, write: (Value) -> String,
                              read: (String) -> Value?) throws(CacheEntry.Problem) {
        guard reader != nil else { return written.append(name + " " + write(value)) }
        guard let read = read(try reader!.take(name)) else { throw .corrupt(name) }
        value = read
    }

    /// `name`, then `value` if it has one: the same line in every entry.
    mutating func constant(_ name: String, _ value: String = "") throws(CacheEntry.Problem) {
        guard reader != nil else { return written.append(value.isEmpty ? name : name + " " + value) }
        guard try reader!.take(name) == value else { throw .corrupt(name) }
    }

    /// Text as one line of printable characters: a newline or control
    /// character in a server's answer cannot forge a field.
    mutating func text(_ name: String, _ value: inout String, valid: (String) -> Bool = { _ in true }) throws(CacheEntry.Problem) {
        try line(name, &value, write: Self.clean, read: { valid($0) ? $0 : nil })
    }

    /// Text, or `-` for none.
    mutating func text(_ name: String, _ value: inout String?) throws(CacheEntry.Problem) {
        try line(name, &value, write: { $0.map(Self.clean) ?? "-" }, read: { Self.optional($0) { $0 } })
    }

    /// Text that may be anything, even `-`: written `=text`, or `-` for none.
    mutating func markedText(_ name: String, _ value: inout String?) throws(CacheEntry.Problem) {
        try line(name, &value, write: { $0.map { "=" + Self.clean($0) } ?? "-" },
                 read: { Self.optional($0) { $0.hasPrefix("=") ? String($0.dropFirst()) : nil } })
    }

    /// `t` or `f`.
    mutating func flag(_ name: String, _ value: inout Bool) throws(CacheEntry.Problem) {
        try line(name, &value, write: Self.flag, read: Self.flag)
    }

    /// `t`, `f`, or `-` for none.
    mutating func flag(_ name: String, _ value: inout Bool?) throws(CacheEntry.Problem) {
        try line(name, &value, write: { $0.map(Self.flag) ?? "-" }, read: { Self.optional($0, Self.flag) })
    }

    /// A decimal integer: digits, an optional minus sign, no leading zeros.
    mutating func number<Value: FixedWidthInteger>(_ name: String, _ value: inout Value,
                                                   valid: (Value) -> Bool = { _ in true }) throws(CacheEntry.Problem) {
        try line(name, &value, write: { String($0) }, read: { Self.number($0).flatMap { valid($0) ? $0 : nil } })
    }

    /// A decimal integer, or `-` for none.
    mutating func number<Value: FixedWidthInteger>(_ name: String, _ value: inout Value?) throws(CacheEntry.Problem) {
        try line(name, &value, write: { $0.map { String($0) } ?? "-" }, read: { Self.optional($0, Self.number) })
    }

    /// A whole number of milliseconds.
    mutating func milliseconds(_ name: String, _ value: inout Milliseconds,
                               valid: (Milliseconds) -> Bool = { _ in true }) throws(CacheEntry.Problem) {
        try line(name, &value, write: { String($0.value) },
                 read: { Self.number($0).map(Milliseconds.init).flatMap { valid($0) ? $0 : nil } })
    }

    /// A whole number of milliseconds, or `-` for none.
    mutating func milliseconds(_ name: String, _ value: inout Milliseconds?) throws(CacheEntry.Problem) {
        try line(name, &value, write: { $0.map { String($0.value) } ?? "-" },
                 read: { Self.optional($0) { Self.number($0).map(Milliseconds.init) } })
    }

    /// One of the cases, by the word `word` gives it.
    mutating func word<Value: CaseIterable>(_ name: String, _ value: inout Value, _ word: (Value) -> String) throws(CacheEntry.Problem) {
        try line(name, &value, write: word, read: { text in Value.allCases.first { word($0) == text } })
    }

    /// `name count`, then each element's `lines`.
    mutating func list<Element>(_ name: String, _ elements: inout [Element], blank: Element,
                                _ lines: (inout Element, inout EntryLines) throws(CacheEntry.Problem) -> Void) throws(CacheEntry.Problem) {
        var count = elements.count
        try number(name, &count, valid: { $0 >= 0 })
        try each(count, &elements, blank: blank, lines)
    }

    /// `name none`, or `name count` (at most `maximum`) then each element's `lines`.
    mutating func list<Element>(_ name: String, _ elements: inout [Element]?, maximum: Int, blank: Element,
                                _ lines: (inout Element, inout EntryLines) throws(CacheEntry.Problem) -> Void) throws(CacheEntry.Problem) {
        var count = elements?.count
        try line(name, &count, write: { $0.map { String($0) } ?? "none" },
                 read: { text -> Int?? in
                     if text == "none" { return .some(nil) }
                     guard let count: Int = Self.number(text), (0...maximum).contains(count) else { return nil }
                     return .some(count)
                 })
        guard let count else { return elements = nil }
        var present = elements ?? []
        try each(count, &present, blank: blank, lines)
        elements = present
    }

    private mutating func each<Element>(_ count: Int, _ elements: inout [Element], blank: Element,
                                        _ lines: (inout Element, inout EntryLines) throws(CacheEntry.Problem) -> Void) throws(CacheEntry.Problem) {
        guard reader != nil else {
            for var element in elements { try lines(&element, &self) }
            return
        }
        elements = []
        for _ in 0..<count {
            var element = blank
            try lines(&element, &self)
            elements.append(element)
        }
    }

    /// `name none`, or `name present` then the value's `lines`.
    mutating func optional<Value>(_ name: String, _ value: inout Value?, blank: Value,
                                  _ lines: (inout Value, inout EntryLines) throws(CacheEntry.Problem) -> Void) throws(CacheEntry.Problem) {
        try variant(name, &value) { variant throws(CacheEntry.Problem) in
            try variant.payload("none", blank: (), extract: { $0 == nil ? () : nil }, embed: { nil }) { _, _ in }
            try variant.payload("present", blank: blank, extract: { $0 }, embed: { $0 }, lines)
        }
    }

    /// `name tag`: which case `value` is, then that case's own lines. Each
    /// case is one call to ``EntryVariant/payload(_:blank:extract:embed:_:)``.
    mutating func variant<Value>(_ name: String, _ value: inout Value,
                                 _ cases: (inout EntryVariant<Value>) throws(CacheEntry.Problem) -> Void) throws(CacheEntry.Problem) {
        var variant = EntryVariant(name: name, value: value, tag: reader != nil ? try reader!.take(name) : nil)
        swap(&variant.lines, &self)
        defer { swap(&variant.lines, &self) }
        try cases(&variant)
        guard variant.matched else {
            guard variant.tag == nil else { throw .corrupt(name) }
            preconditionFailure("the entry's lines have no \(name) for \(value)")
        }
        value = variant.value
    }

    /// `text` with every control character a space, so that it stays one line.
    static func clean(_ text: String) -> String {
        String(String.UnicodeScalarView(text.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7f ? " " : $0 }))
    }

    /// `-` as none, anything else as `read` makes of it (nil: corrupt).
    private static func optional<Value>(_ text: String, _ read: (String) -> Value?) -> Value?? {
        text == "-" ? .some(nil) : read(text).map { .some($0) }
    }

    private static func flag(_ value: Bool) -> String { value ? "t" : "f" }

    private static func flag(_ text: String) -> Bool? {
        text == "t" ? true : text == "f" ? false : nil
    }

    /// The integer `text` writes as `String(value)` does; nil for anything else.
    static func number<Value: FixedWidthInteger>(_ text: String) -> Value? {
        let digits = text.hasPrefix("-") ? text.dropFirst() : Substring(text)
        guard !digits.isEmpty, digits.allSatisfy(\.isASCIIDigit), digits == "0" || !digits.hasPrefix("0") else { return nil }
        return Value(text)
    }
}

/// The cases of one ``EntryLines/variant(_:_:_:)``, tried in turn: writing,
/// the first whose payload `extract` finds writes its tag and lines; reading,
/// the one whose tag was read reads its lines.
struct EntryVariant<Value> {
    let name: String
    var value: Value
    /// The tag read, or nil when writing.
    let tag: String?
    fileprivate var lines = EntryLines()
    fileprivate var matched = false

    fileprivate init(name: String, value: Value, tag: String?) {
        self.name = name
        self.value = value
        self.tag = tag
    }

    /// The case `tag`, whose payload `extract` finds and `embed` wraps
    /// again, in the payload's `lines`.
    mutating func payload<Payload>(_ tag: String, blank: @autoclosure () -> Payload, extract: (Value) -> Payload?,
                                   embed: (Payload) -> Value,
                                   _ payloadLines: (inout Payload, inout EntryLines) throws(CacheEntry.Problem) -> Void) throws(CacheEntry.Problem) {
        guard !matched else { return }
        if let read = self.tag {
            guard read == tag else { return }
            var payload = blank()
            try payloadLines(&payload, &lines)
            value = embed(payload)
        } else {
            guard var payload = extract(value) else { return }
            lines.written.append(name + " " + tag)
            try payloadLines(&payload, &lines)
        }
        matched = true
    }

    /// The case `tag`, which is `caseValue` and has no lines of its own.
    mutating func plain(_ tag: String, _ caseValue: Value) throws(CacheEntry.Problem) where Value: Equatable {
        try payload(tag, blank: (), extract: { $0 == caseValue ? () : nil }, embed: { caseValue }) { _, _ in }
    }
}

/// Reads an entry's lines in order, each `name value`.
struct EntryReader {
    private var lines: ArraySlice<Substring>

    init(_ text: String) {
        // The text must end with a newline: the split's last piece is then
        // empty, and a file cut short anywhere else lacks its last line.
        var pieces = text.split(separator: "\n", omittingEmptySubsequences: false)
        if pieces.last == "" { pieces.removeLast() } else { pieces.append("\u{0}truncated") }
        lines = pieces[...]
    }

    var isAtEnd: Bool { lines.isEmpty }

    /// The value of the next line, which must be `name` then a space and the
    /// value, or `name` alone (an empty value).
    mutating func take(_ name: String) throws(CacheEntry.Problem) -> String {
        guard let line = lines.popFirst() else { throw .corrupt("missing \(name)") }
        if line == name { return "" }
        guard line.hasPrefix(name + " ") else { throw .corrupt("expected \(name)") }
        return String(line.dropFirst(name.count + 1))
    }
}
