/// Where requests go: named upstreams, and routes from a request's `model`
/// to an ordered list of them. Built once from the configuration; the
/// worker looks a request's route up once, on arrival.
///
/// A route entry is written `<pattern> -> <upstream>[=<model>] ...`: the
/// pattern (an exact model name or a `*` glob, see ``ModelPattern``), then
/// the route's upstreams in order, separated by spaces, each with an
/// optional model name sent to it instead of the request's. Routes are
/// tried in the order written; the first whose pattern matches wins.
public struct RoutingTable: Sendable, Equatable {
    /// One upstream of a route.
    public struct Target: Sendable, Equatable {
        /// Index into ``RoutingTable/upstreamNames``.
        public var upstream: Int
        /// The model name this upstream is sent instead of the request's; nil sends the body unchanged.
        public var model: String?

        public init(upstream: Int, model: String? = nil) {
            self.upstream = upstream
            self.model = model
        }
    }

    /// A pattern and its upstreams, in the order they are tried.
    public struct Route: Sendable, Equatable {
        public var pattern: ModelPattern
        public var targets: [Target]
    }

    /// A mistake in the upstream names or the routes, with the entry at fault.
    public struct Problem: Error, Sendable, Equatable, CustomStringConvertible {
        /// The entry (a route or an upstream name) as written.
        public var entry: String
        public var reason: String
        /// Whether the entry is a route (else an upstream name).
        public var isRoute = true
        public var description: String { "\(reason) in \(String(reflecting: entry))" }
    }

    /// The upstreams, in the order configured.
    public let upstreamNames: [String]
    public let routes: [Route]
    /// The first route matches every model (the one-upstream case): no matching at all.
    private let firstRouteMatchesEverything: Bool

    /// Upstream names: lowercase ASCII letters, digits and `_`, starting with a
    /// letter (so they are the same in YAML keys and environment variable names).
    public static let maximumNameLength = 64
    /// Names that would clash with other keys under `upstreams.`.
    public static let reservedNames: Set<String> = ["names", "routes"]
    /// More routes or targets than this is certainly a mistake.
    public static let maximumRoutes = 1000
    public static let maximumTargets = 32

    /// Whether `name` can name an upstream.
    public static func isValidName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard let first = bytes.first, (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(first),
            bytes.count <= maximumNameLength, !reservedNames.contains(name)
        else { return false }
        return bytes.allSatisfy {
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0) || ASCII.isDigit($0) || $0 == UInt8(ascii: "_")
        }
    }

    /// The one-upstream table: every model goes to `name`, unchanged.
    public static func single(upstream name: String) -> RoutingTable {
        // "*" is a valid pattern.
        let everything = try! ModelPattern("*")
        return RoutingTable(
            checkedNames: [name], routes: [Route(pattern: everything, targets: [Target(upstream: 0)])])
    }

    /// A table from upstream names and route entries as written in the configuration.
    public init(upstreamNames: [String], routeEntries: [String]) throws(Problem) {
        var seen: Set<String> = []
        for name in upstreamNames {
            guard Self.isValidName(name) else {
                throw Problem(
                    entry: name,
                    reason: "an upstream name must be 1...\(Self.maximumNameLength) lowercase letters, digits or _, starting with a letter, and not \"names\" or \"routes\"",
                    isRoute: false)
            }
            guard seen.insert(name).inserted else {
                throw Problem(entry: name, reason: "a duplicate upstream name", isRoute: false)
            }
        }
        guard !routeEntries.isEmpty else { throw Problem(entry: "", reason: "no route at all") }
        guard routeEntries.count <= Self.maximumRoutes else {
            throw Problem(entry: "", reason: "more than \(Self.maximumRoutes) routes")
        }
        var routes: [Route] = []
        for entry in routeEntries {
            routes.append(try Self.route(parsing: entry, upstreamNames: upstreamNames))
        }
        self.init(checkedNames: upstreamNames, routes: routes)
    }

    private init(checkedNames: [String], routes: [Route]) {
        self.upstreamNames = checkedNames
        self.routes = routes
        self.firstRouteMatchesEverything = routes.first?.pattern.matchesEverything ?? false
    }

    /// The index of the first route whose pattern matches `model`; nil when none does.
    public func route(for model: String) -> Int? {
        if firstRouteMatchesEverything { return 0 }
        var model = model
        return model.withUTF8 { utf8 in
            let bytes = UnsafeRawBufferPointer(utf8)
            return routes.firstIndex { $0.pattern.matches(bytes) }
        }
    }

    /// The table as lines for `check-config`: `<pattern> -> name, name (model x)`.
    public var summaryLines: [String] {
        routes.map { route in
            route.pattern.text + " -> "
                + route.targets.map { target in
                    upstreamNames[target.upstream] + (target.model.map { " (model \(String(reflecting: $0)))" } ?? "")
                }.joined(separator: ", ")
        }
    }

    /// A route entry in the written form, normalized (for showing the effective configuration).
    public func entry(_ route: Route) -> String {
        route.pattern.text + " -> "
            + route.targets.map { upstreamNames[$0.upstream] + ($0.model.map { "=" + $0 } ?? "") }.joined(separator: " ")
    }

    private static func route(parsing entry: String, upstreamNames: [String]) throws(Problem) -> Route {
        let tokens = entry.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard tokens.count >= 3, tokens[1] == "->" else {
            throw Problem(entry: entry, reason: "a route must read \"<model pattern> -> <upstream>[=<model>] ...\"")
        }
        let pattern: ModelPattern
        do {
            pattern = try ModelPattern(tokens[0])
        } catch {
            throw Problem(entry: entry, reason: "\(error)")
        }
        let written = tokens[2...]
        guard written.count <= maximumTargets else {
            throw Problem(entry: entry, reason: "more than \(maximumTargets) upstreams in one route")
        }
        var targets: [Target] = []
        for token in written {
            let parts = token.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = String(parts[0])
            guard let index = upstreamNames.firstIndex(of: name) else {
                throw Problem(entry: entry, reason: "an unknown upstream \(String(reflecting: name))")
            }
            guard !targets.contains(where: { $0.upstream == index }) else {
                throw Problem(entry: entry, reason: "the upstream \(String(reflecting: name)) listed twice")
            }
            var model: String?
            if parts.count == 2 {
                let rename = String(parts[1])
                guard (try? ModelPattern(rename)) != nil, !rename.contains("*") else {
                    throw Problem(entry: entry, reason: "a bad model name after \(name)= (empty, a * or too long)")
                }
                model = rename
            }
            targets.append(Target(upstream: index, model: model))
        }
        return Route(pattern: pattern, targets: targets)
    }
}
