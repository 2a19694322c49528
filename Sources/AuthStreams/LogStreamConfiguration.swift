import AuthJournal
import Foundation

/// Where and how a log stream delivers the journal's events (`authledger serve --log-stream URL`).
public struct LogStreamConfiguration: Sendable {
    /// The shape of each event, and of the request body.
    public enum Format: String, Sendable, CaseIterable {
        /// One JSON object per line (`application/x-ndjson`): the event's sequence, time, type, schema
        /// version, key id, payload and the journal's origin, as `authledger-replay tail` prints them.
        case jsonl
        /// One OCSF 1.x record per line (`application/x-ndjson`), the event under `unmapped.authledger`.
        case ocsf
        /// A JSON array of Auth0 log events (`application/json`), as Auth0's custom webhook streams send.
        case auth0
    }

    /// The receiver: every batch is POSTed here.
    public var url: String
    public var format: Format
    /// Extra request headers (an `Authorization` for Splunk HEC, `DD-API-KEY` for Datadog).
    public var headers: [(name: String, value: String)]
    /// How personal fields leave: pseudonyms by default, so that the receiver can correlate but an
    /// erasure in the journal is not undone by a copy in clear elsewhere.
    public var personalData: PersonalDataHandling
    /// The stream's name in the journal's store (its position is kept under it): rename to start over.
    public var name: String
    /// The most events in one request.
    public var batchSize: Int
    /// How long a request may take before it counts as failed.
    public var requestTimeout: Duration
    /// How long one node holds the stream after its last delivery or renewal; another node of a shared
    /// journal takes it over once this has passed.
    public var lease: Duration
    /// How often a node that is up to date looks for new events.
    public var pollInterval: Duration
    /// The first and the longest wait after a failed delivery (doubled after each failure in a row).
    public var retryDelays: (first: Duration, longest: Duration)

    public init(
        url: String, format: Format = .jsonl, headers: [(name: String, value: String)] = [], personalData: PersonalDataHandling = .hash,
        name: String = "default"
    ) {
        self.url = url
        self.format = format
        self.headers = headers
        self.personalData = personalData
        self.name = name
        batchSize = 200
        requestTimeout = .seconds(10)
        lease = .seconds(15)
        pollInterval = .milliseconds(200)
        retryDelays = (.milliseconds(500), .seconds(60))
    }

    /// The key of the stream's position among the journal's consumers.
    var consumerName: String { "log_stream.\(name)" }

    /// Parses a header line `Name: value`.
    public static func header(_ line: String) throws(LogStreamError) -> (name: String, value: String) {
        guard let colon = line.firstIndex(of: ":") else { throw .badHeader("\(line.prefix(40)) has no ':'") }
        let name = line[..<colon].trimmingCharacters(in: .whitespaces)
        let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        let token = CharacterSet(charactersIn: "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
        guard !name.isEmpty, name.unicodeScalars.allSatisfy(token.contains) else { throw .badHeader("\(name.prefix(40)) is not a header name") }
        guard !value.unicodeScalars.contains(where: { $0.value < 0x20 && $0 != "\t" || $0.value == 0x7F }) else {
            throw .badHeader("the value of \(name) holds a control character")
        }
        return (name, value)
    }

    /// Header lines from a file (one `Name: value` per line; blank lines and `#` comments skipped), so
    /// that a token stays out of the process list.
    public static func headers(fromFile path: String) throws(LogStreamError) -> [(name: String, value: String)] {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw .badHeader("\(path) cannot be read: \(error.localizedDescription)")
        }
        var headers: [(name: String, value: String)] = []
        for line in text.split(whereSeparator: \.isNewline) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            headers.append(try header(trimmed))
        }
        return headers
    }
}

/// What went wrong configuring or delivering a log stream.
public enum LogStreamError: Error, CustomStringConvertible, Equatable {
    /// A header line that is not `Name: value`.
    case badHeader(String)
    /// The stream's URL is not an http(s) URL.
    case badURL(String)
    /// The receiver answered with a status other than 2xx.
    case refused(status: Int)
    /// The request failed or timed out.
    case unreachable(String)

    public var description: String {
        switch self {
        case .badHeader(let reason): "log stream header: \(reason)"
        case .badURL(let url): "log stream URL \(url) is not an http:// or https:// URL"
        case .refused(let status): "the receiver answered \(status)"
        case .unreachable(let reason): "the receiver could not be reached: \(reason)"
        }
    }
}
