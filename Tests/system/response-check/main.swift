// response-check STATUS BODY: reads one HTTP exchange's bytes on stdin and
// says what is wrong with them, if anything, for the expected status line
// ("200 OK") and body, with ParsedResponse's rules and Connection: close.
// Exit status 0 when nothing is, 1 when something is, 64 on a usage error.
#if canImport(Glibc)
import Glibc
#endif
import ParsedResponse

let arguments = CommandLine.arguments
guard arguments.count == 3 else {
    let usage = Array("usage: response-check STATUS BODY < response\n".utf8)
    _ = write(2, usage, usage.count)
    exit(64)
}
var bytes: [UInt8] = []
var buffer = [UInt8](repeating: 0, count: 4096)
while case let count = read(0, &buffer, buffer.count), count > 0 {
    bytes += buffer[..<count]
}

var problems: [String] = []
switch ParsedResponse.parse(bytes) {
case .failure(let problem):
    problems.append(problem.description)
case .success(let response):
    if "\(response.status) \(response.reason)" != arguments[1] {
        problems.append("status \(response.status) \(response.reason), not \(arguments[1])")
    }
    if response.headers["connection"] != "close" {
        problems.append("Connection: \(response.headers["connection"] ?? "missing"), not close")
    }
    if response.body != arguments[2] {
        problems.append("body \(String(reflecting: response.body)), not \(String(reflecting: arguments[2]))")
    }
}
if !problems.isEmpty {
    print(problems.joined(separator: "; "))
    exit(1)
}
