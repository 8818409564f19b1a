import Common

/// `models:` as the worker looks it up, built once per configuration snapshot
/// (docs/routing-and-forwarding.md "Model routing"): exact names in a dictionary, then the
/// patterns longest first (file order among equals); and each static key's own list.
///
/// Classes, the table and its entries: a request reads the table from its snapshot and takes an
/// entry from it with one retain each, where structs of arrays and strings were copied with a
/// retain of every member (~400 instructions per model-routed request, docs/performance.md).
final class ModelTable: Sendable {
    final class Entry: Sendable {
        /// As configured (for `/v1/models`).
        let name: String
        /// The upstream's position in `Configuration.Upstreams.entries` (`UpstreamSet`'s index).
        let upstream: Int
        let upstreamName: String
        /// The name sent upstream; nil = the client's, unchanged.
        let upstreamModel: String?
        let pattern: ModelPattern
        /// The upstream's route in the snapshot's router (`Router.routeByUpstream`): a routed
        /// request's match is made from it, with no look-up in the router (~75 instructions with
        /// its retains, docs/performance.md "gateway5").
        let route: Router.Route?

        init(
            name: String, upstream: Int, upstreamName: String, upstreamModel: String?, pattern: ModelPattern,
            route: Router.Route?
        ) {
            self.name = name
            self.upstream = upstream
            self.upstreamName = upstreamName
            self.upstreamModel = upstreamModel
            self.pattern = pattern
            self.route = route
        }
    }

    /// Exact entries in file order (what `/v1/models` lists).
    let exact: [Entry]
    private let exactByName: ModelNameIndex
    private let patterns: [Entry]
    /// Per static key (by position in `api_keys.static`): the names and patterns it may send;
    /// nil = every model whose upstream it may reach.
    private let keyFilters: [[ModelPattern]?]
    /// Some static key has its own list: without, `allows` reads no filter (the array of
    /// optional lists was retained and indexed per request).
    private let filtersKeys: Bool
    /// Per exact entry (`exact`'s order), as plain values: its upstream's route when the entry
    /// is routed plainly (no `upstream_model`, and no static key has its own list), else nil.
    /// The stage routes such a name with no `Entry` in hand (retaining and releasing the entry
    /// and its route around each step cost ~150 instructions per request, docs/performance.md
    /// "gateway5").
    private let plainRoutes: [Router.Route?]
    private let plainUpstreams: [Int]
    private let plainNames: [String]

    /// `router` is the snapshot's, built from the same configuration.
    init(configuration: Configuration, router: Router) {
        let upstreams = configuration.upstreams.entries
        let indexByName = Dictionary(upstreams.enumerated().map { ($1.name, $0) }, uniquingKeysWith: { a, _ in a })
        var exact: [Entry] = []
        var patterns: [(Int, Entry)] = []
        for (position, route) in configuration.models.enumerated() {
            // The loader checked every upstream name.
            guard let upstream = indexByName[route.upstream] else { continue }
            let entry = Entry(
                name: route.name, upstream: upstream, upstreamName: route.upstream, upstreamModel: route.upstreamModel,
                pattern: ModelPattern(route.name), route: upstream < router.routeByUpstream.count ? router.routeByUpstream[upstream] : nil)
            if entry.pattern.isPattern { patterns.append((position, entry)) } else { exact.append(entry) }
        }
        self.exact = exact
        self.exactByName = ModelNameIndex(exact.map(\.name))
        self.patterns = patterns.sorted { ($0.1.name.utf8.count, -$0.0) > ($1.1.name.utf8.count, -$1.0) }.map(\.1)
        self.keyFilters = configuration.apiKeys.staticKeys.map { key in
            guard let models = key.models, !models.isEmpty else { return nil }
            return models.map(ModelPattern.init)
        }
        let filtersKeys = keyFilters.contains { $0 != nil }
        self.filtersKeys = filtersKeys
        self.plainRoutes = exact.map { filtersKeys || $0.upstreamModel != nil ? nil : $0.route }
        self.plainUpstreams = exact.map(\.upstream)
        self.plainNames = exact.map(\.name)
    }

    /// With a router of its own (the tests).
    convenience init(configuration: Configuration) {
        self.init(configuration: configuration, router: Router(upstreams: configuration.upstreams.entries))
    }

    /// No `models:` section: model routing is off, and `/v1/models` is not the proxy's.
    var isEmpty: Bool { exact.isEmpty && patterns.isEmpty }

    /// The entry that serves `name`: the exact one, else the longest matching pattern.
    func entry(for name: String) -> Entry? {
        guard name.utf8.count <= Configuration.maxModelNameBytes else { return nil }
        if let index = exactByName.position(of: name) { return exact[index] }
        return patterns.first { $0.pattern.matches(name) }
    }

    /// The position in `exact` of the entry whose name is `bytes` (a name without escapes, as
    /// the client's literal holds it): its name is then the client's, and no text is made of
    /// the bytes.
    @inline(__always)
    func exactPosition(_ bytes: UnsafeRawBufferPointer) -> Int? {
        guard bytes.count <= Configuration.maxModelNameBytes else { return nil }
        return exactByName.position(of: bytes)
    }

    /// The exact entry whose name the body's SDK form (`{"model":"<name>"` at its very start)
    /// holds, and the literal's range (quotes included): what `ModelMember.leadingModel` and
    /// `exactPosition` find, without the name's pass (`ModelNameIndex.leadingPosition(in:)`). nil:
    /// another body, another name, or too many names to compare one by one.
    @inline(__always)
    func leadingExact(_ body: UnsafeRawBufferPointer) -> (position: Int, literal: Range<Int>)? {
        exactByName.leadingPosition(in: body)
    }

    /// The route of the exact entry at `position` when it is routed plainly: the client's name
    /// goes upstream as it is, and `allows` is its upstream's membership in the caller's set
    /// alone (`exactUpstream`). nil: the entry is routed through `allows` and its `Entry` (a
    /// rename, a key's own list, or an upstream without a route).
    func plainRoute(_ position: Int) -> Router.Route? { plainRoutes[position] }

    /// The name of the exact entry at `position`, and its upstream's position.
    func exactName(_ position: Int) -> String { plainNames[position] }
    func exactUpstream(_ position: Int) -> Int { plainUpstreams[position] }

    /// Whether the caller may send `name`, served by `entry`: its key's list allows the name, and
    /// the key may reach the entry's upstream.
    func allows(_ name: String, _ entry: Entry, staticKey: Int?, permitted: UpstreamSet) -> Bool {
        guard permitted.contains(entry.upstream) else { return false }
        guard filtersKeys, let staticKey, staticKey < keyFilters.count, let filter = keyFilters[staticKey] else { return true }
        return filter.contains { $0.matches(name) }
    }

    /// The exact names the caller may send, in file order (patterns are not names a client can
    /// pick from a list).
    func listing(staticKey: Int?, permitted: UpstreamSet) -> [Entry] {
        exact.filter { allows($0.name, $0, staticKey: staticKey, permitted: permitted) }
    }
}
