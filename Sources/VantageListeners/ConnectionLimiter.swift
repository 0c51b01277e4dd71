// VantageListeners: what every HTTP listener of Vantage shares (the control plane's operator and device endpoints,
// the agent's metrics endpoint, the live view of `vantage run`), so that no client can starve one: a connection
// that sends no complete request head within the idle timeout is closed, the number of open connections is capped
// below the open-file limit, and at the cap the connection that has waited longest without a request makes room
// for the new one. Also the process's open-file limit (raised to the hard limit at start).
public import HummingbirdCore
public import Logging
import NIOCore
import NIOHTTPTypes
import Synchronization

/// How a listener bounds its connections.
public struct ListenerLimits: Sendable {
    /// How long a connection may go without a complete request head (after it opens, or after its last answer) or
    /// between two parts of a request body before it is closed. A response being sent (a live MJPEG stream, a long
    /// poll) is never cut by it. Default 30 s.
    public var idleTimeout: Duration
    /// The most connections open at once; nil: as many as the open-file limit allows, less a reserve for the
    /// process's own files (see ``OpenFileLimit/connectionBudget``). A smaller number given here is kept as it is.
    public var maxConnections: Int?

    public init(idleTimeout: Duration = .seconds(30), maxConnections: Int? = nil) {
        self.idleTimeout = idleTimeout
        self.maxConnections = maxConnections
    }
}

/// Counts one or more listeners' open connections and keeps them under a cap.
///
/// A connection is *waiting* while it has no request in progress (just opened, mid-way through a request head,
/// or idle between keep-alive requests) and *busy* from a complete request head until its answer ends. At the
/// cap, a new connection closes the one that has been waiting longest; when every connection is busy, the new
/// one is closed at once. Slow or stalled request heads (slowloris) therefore cannot keep a client with a
/// complete request out, and the idle timeout closes them anyway. Share one limiter between the listeners of a
/// process so that together they stay within its open-file limit.
public final class ConnectionLimiter: Sendable {
    /// The most connections open at once.
    public let maxConnections: Int
    public let idleTimeout: Duration
    let name: String
    let logger: Logger

    private struct Entry {
        let channel: any Channel
        /// Set while waiting: the position in `waitingOrder` that is current for this connection.
        var waitingStamp: UInt64?
    }

    private struct State {
        var nextID: UInt64 = 0
        var nextStamp: UInt64 = 0
        var entries: [UInt64: Entry] = [:]
        /// Connections in the order they started waiting (oldest first, from `head` on); an element whose stamp
        /// is no longer its entry's is stale and skipped.
        var waitingOrder: [(id: UInt64, stamp: UInt64)] = []
        var head = 0
        var closedWaiting = 0
        var refused = 0
        var lastWarning: ContinuousClock.Instant?
    }

    private let state = Mutex(State())

    /// - Parameters:
    ///   - limits: The cap and the idle timeout.
    ///   - name: Names the listener(s) in log messages, e.g. `server`.
    public init(_ limits: ListenerLimits = ListenerLimits(), name: String, logger: Logger) {
        let budget = OpenFileLimit.connectionBudget()
        maxConnections = max(1, min(limits.maxConnections ?? budget, budget))
        idleTimeout = limits.idleTimeout
        self.name = name
        self.logger = logger
    }

    /// How many connections are open now.
    public var openConnections: Int { state.withLock { $0.entries.count } }

    /// How many waiting connections were closed to make room, and how many new ones were refused because every
    /// connection was busy, since the start.
    public var shedConnections: (closedWaiting: Int, refused: Int) {
        state.withLock { ($0.closedWaiting, $0.refused) }
    }

    /// HTTP/1.1 whose connections this limiter counts, closing them after the idle timeout. For TLS wrap it:
    /// `.tls(limiter.http1(), tlsConfiguration: …)` (the handshake then counts as waiting too).
    public func http1() -> HTTPServerBuilder {
        .http1(
            configuration: .init(
                additionalChannelHandlers: [ConnectionGuardHandler(limiter: self)],
                idleTimeout: TimeAmount(idleTimeout)))
    }

    // MARK: Bookkeeping (from the connections' event loops)

    /// Counts a new connection; at the cap closes the longest-waiting one, or this one when all are busy.
    /// Returns nil when this one was refused.
    func opened(_ channel: any Channel) -> UInt64? {
        let (id, victim, warn): (UInt64?, (any Channel)?, String?) = state.withLock { state in
            var victim: (any Channel)?
            if state.entries.count >= maxConnections {
                victim = Self.takeLongestWaiting(&state)
                if victim == nil {
                    state.refused += 1
                    return (nil, channel, Self.warning(&state, name: name, max: maxConnections))
                }
                state.closedWaiting += 1
            }
            state.nextID += 1
            let id = state.nextID
            state.entries[id] = Entry(channel: channel, waitingStamp: nil)
            Self.startWaiting(id, &state)
            return (id, victim, victim == nil ? nil : Self.warning(&state, name: name, max: maxConnections))
        }
        if let warn { logger.warning("\(warn)") }
        victim?.close(promise: nil)
        return id
    }

    /// A complete request head arrived: the connection is busy until its answer ends.
    func busy(_ id: UInt64) {
        state.withLock { state in state.entries[id]?.waitingStamp = nil }
    }

    /// The last answer ended: the connection waits for its next request.
    func waiting(_ id: UInt64) {
        state.withLock { state in
            guard state.entries[id] != nil else { return }
            Self.startWaiting(id, &state)
        }
    }

    /// The connection closed.
    func closed(_ id: UInt64) {
        state.withLock { state in
            state.entries[id] = nil
            Self.compact(&state)
        }
    }

    private static func startWaiting(_ id: UInt64, _ state: inout State) {
        state.nextStamp += 1
        state.entries[id]?.waitingStamp = state.nextStamp
        state.waitingOrder.append((id, state.nextStamp))
        compact(&state)
    }

    /// Removes and answers the connection that has waited longest, if any waits.
    private static func takeLongestWaiting(_ state: inout State) -> (any Channel)? {
        while state.head < state.waitingOrder.count {
            let (id, stamp) = state.waitingOrder[state.head]
            state.head += 1
            if let entry = state.entries[id], entry.waitingStamp == stamp {
                state.entries[id] = nil
                return entry.channel
            }
        }
        return nil
    }

    /// Drops stale and taken elements of `waitingOrder` once they outnumber the live ones.
    private static func compact(_ state: inout State) {
        guard state.waitingOrder.count > 2 * state.entries.count + 64 else { return }
        let entries = state.entries
        state.waitingOrder = state.waitingOrder[state.head...].filter { entries[$0.id]?.waitingStamp == $0.stamp }
        state.head = 0
    }

    /// A warning at most once a minute while connections are being shed.
    private static func warning(_ state: inout State, name: String, max: Int) -> String? {
        let now = ContinuousClock.now
        if let last = state.lastWarning, now - last < .seconds(60) { return nil }
        state.lastWarning = now
        return
            "\(name): \(max) connections are open (the cap): closed \(state.closedWaiting) that sent no request, "
            + "refused \(state.refused) new ones while all were busy; if these are real clients, raise the open-file "
            + "limit (ulimit -n, LimitNOFILE=), else a client is holding connections open"
    }
}

/// Tells its connection's ``ConnectionLimiter`` when the connection opens, starts and ends requests, and closes.
/// Sits after the HTTP decoder, so it sees whole request heads.
final class ConnectionGuardHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    let limiter: ConnectionLimiter
    private var id: UInt64?
    private var requestsInProgress = 0

    init(limiter: ConnectionLimiter) {
        self.limiter = limiter
    }

    func handlerAdded(context: ChannelHandlerContext) {
        id = limiter.opened(context.channel)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        release()
    }

    func channelInactive(context: ChannelHandlerContext) {
        release()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head = unwrapInboundIn(data), let id {
            requestsInProgress += 1
            if requestsInProgress == 1 { limiter.busy(id) }
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data), let id, requestsInProgress > 0 {
            requestsInProgress -= 1
            if requestsInProgress == 0 { limiter.waiting(id) }
        }
        context.write(data, promise: promise)
    }

    private func release() {
        if let id { limiter.closed(id) }
        id = nil
    }
}

@available(*, unavailable)
extension ConnectionGuardHandler: Sendable {}
