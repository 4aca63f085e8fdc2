using System.IO.Pipelines;
using System.Reactive.Linq;
using System.Reactive.Subjects;
using Microsoft.Extensions.Logging;
using Newtonsoft.Json;
using Rx.Uhura.Internal;
using Rx.Uhura.Protocol;
using Rx.Uhura.Session;

namespace Rx.Uhura;

/// <summary>
/// One live link to a peer, speaking the Node uhura wire: the peer's events as an observable, sends that complete when
/// the peer acknowledges them, and the shared session. A server hands out one per accepted socket
/// (<c>UhuraServer.Connections</c>); a client has one per socket it opens. <see cref="Events"/> completes and
/// <see cref="Disconnected"/> reports why when the link ends.
/// </summary>
public sealed partial class Connection : IAsyncDisposable, IDisposable
{
    private static long s_nextId;

    private readonly Stream _stream;
    private readonly PipeReader _input;
    private readonly ConnectionOptions _options;
    private readonly JsonSerializer _serializer;
    private readonly ILogger _logger;
    private readonly Subject<UhuraEvent> _events = new();
    private readonly AsyncSubject<DisconnectInfo> _disconnected = new();
    private readonly TaskCompletionSource<bool> _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _readCancel = new();
    private readonly TaskCompletionSource _shutdownCompleted = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly IServerContext? _server;
    private readonly EventDispatcher _dispatcher;
    private readonly bool _ownsDispatcher;
    private readonly IObservable<UhuraEvent> _guardedEvents;
    private readonly IObservable<DisconnectInfo> _guardedDisconnected;
    private long _deliveredUpTo;
    private AckCountdown? _ackChainTail; // the dispatcher's: the last event whose ack waits for merged subscribers
    private List<string>? _nodeAcksOwed; // the dispatcher's: Node-wire acks of delivered events, written at the end of its run
    private long _ackWrittenUpTo;
    private Task _readLoop = Task.CompletedTask;
    private Task? _closeTask;
    private int _started;

    private readonly string _idPrefix;
    private readonly byte[] _idPrefixUtf8;

    /// <summary>The wire this link speaks, once known (a server learns it from the first byte).</summary>
    private WireHandler? _handler;
    private WireHandler? _unknownWire;

    /// <summary>
    /// The link's wire handler; before a server learnt its wire (nothing read yet), the Node wire's, whose empty array
    /// is what such a link writes when it ends.
    /// </summary>
    private WireHandler Handler => _handler ?? (_unknownWire ??= WireHandler.For(this, WireProtocol.NodeUhura));
    private string? _authToken;

    /// <summary>The <c>uhura.side</c> tag of this link's metrics (fixed: nothing is allocated per event).</summary>
    private readonly KeyValuePair<string, object?> _sideTag;

    /// <summary>Server: the <c>uhura.handshake</c> activity, from the socket's accept until the handshake ends (null when nobody listens).</summary>
    private System.Diagnostics.Activity? _handshakeActivity;

    private Connection(Stream stream, bool isServer, UhuraSession session, ConnectionOptions options, IServerContext? server, string idPrefix, EventDispatcher? dispatcher = null)
    {
        _idPrefix = idPrefix;
        _idPrefixUtf8 = System.Text.Encoding.UTF8.GetBytes(idPrefix);
        _stream = stream;
        _outbox = new Outbox(_gate, stream, this);
        _options = options;
        _serializer = options.CreateSerializer();
        _logger = options.LoggerFactory.CreateLogger<Connection>();
        _ownsDispatcher = dispatcher is null;
        _dispatcher = dispatcher ?? new EventDispatcher(options.MaxQueuedDeliveries, _logger);
        _guardedEvents = new GuardedObservable<UhuraEvent>(_events, "Connection.Events", static e => e.Name, ReportSubscriberError);
        _guardedDisconnected = new GuardedObservable<DisconnectInfo>(_disconnected, "Connection.Disconnected", null, ReportSubscriberError);
        _input = PipeReader.Create(stream, new StreamPipeReaderOptions(bufferSize: 16 * 1024, minimumReadSize: 4 * 1024, leaveOpen: true, useZeroByteReads: true));
        IsServer = isServer;
        _sideTag = Diagnostics.UhuraMetrics.Side(isServer);
        Session = session;
        _server = server;
        PeerCredentials = isServer ? Transport.UnixPeerCredentials.TryGet(stream) : null;
        // A server's connections are known by a client id (a UUID, as socket-ipc makes them); a client's links by a short counter.
        Id = isServer ? Guid.NewGuid().ToString("D") : "c" + Interlocked.Increment(ref s_nextId).ToString(System.Globalization.CultureInfo.InvariantCulture);
        InitializeStatistics(stream);
    }

    /// <summary>
    /// An id for this link. On a server it is the client id (a random UUID, as socket-ipc's), which
    /// <see cref="UhuraServer.SendTo"/> takes; on a client, an id unique in the process. Used in logs and by the
    /// <c>uhura</c> command.
    /// </summary>
    public string Id { get; }

    /// <summary>
    /// On a server, for a client connected over a Unix domain socket (Linux): the client process's id, user and group,
    /// from the kernel. Null for TCP and on other systems.
    /// </summary>
    public Transport.UnixPeerCredentials? PeerCredentials { get; }

    /// <summary>True for a connection accepted by a server, false for a client's link.</summary>
    public bool IsServer { get; }

    /// <summary>
    /// The peer's application events, in arrival order (internal events such as <c>_set</c> and acks are not
    /// included). Hot: subscribe before events can arrive (a server's <c>Connections</c> handler runs before the
    /// connection reads on). Completes when the link ends, for any reason; see <see cref="Disconnected"/> for why.
    /// Subscribers are called one at a time by the link's dispatcher, never on the socket's read loop nor under a
    /// library lock; an event is acknowledged to the peer only after every subscriber present returned. A subscriber
    /// that throws harms nobody else: the exception is reported on <see cref="UhuraServer.Errors"/> or
    /// <see cref="UhuraClient.Errors"/> as a <see cref="SubscriberException"/> (and logged). A slow subscriber
    /// slows only this link: when <see cref="ConnectionOptions.MaxQueuedDeliveries"/> events wait, the link stops
    /// reading (back-pressure on the peer) and its heartbeat timeout is suspended until the queue has room again.
    /// </summary>
    public IObservable<UhuraEvent> Events => _guardedEvents;

    /// <summary>The shared session of this link (on a client: the client's session, which outlives the link).</summary>
    public UhuraSession Session { get; }

    /// <summary>
    /// Whether the handshake resumed an existing session: on a server, the client presented a session id the store
    /// knew; on a client, the server kept the id the client presented.
    /// </summary>
    public bool Resumed { get; private set; }

    /// <summary>True once the handshake has completed and until the link ends.</summary>
    public bool IsConnected => _ready.Task.IsCompletedSuccessfully && _ready.Task.Result && !HasEnded;

    /// <summary>
    /// Emits once, when the link ends, why it ended, then completes. Replays to late subscribers. A bad message from
    /// the peer arrives here as <see cref="DisconnectReason.ProtocolError"/> with a <see cref="DecodeException"/> or
    /// <see cref="ProtocolException"/>; it never throws on a socket thread. It fires as the link ends, which may be before
    /// <see cref="Events"/> completes: events received earlier may still be with their subscribers.
    /// </summary>
    public IObservable<DisconnectInfo> Disconnected => _guardedDisconnected;

    /// <summary>
    /// The peer's events named <paramref name="eventName"/> (uhura's <c>on(name, ...)</c>). A subscriber that throws is
    /// reported like one of <see cref="Events"/> and keeps its subscription (the filter never sees the throw).
    /// </summary>
    public IObservable<UhuraEvent> Event(string eventName)
    {
        ArgumentNullException.ThrowIfNull(eventName);
        return new GuardedObservable<UhuraEvent>(_events.Where(e => string.Equals(e.Name, eventName, StringComparison.Ordinal)), "Connection.Events", static e => e.Name, ReportSubscriberError);
    }

    /// <summary>A task that completes when the handshake completes (true) or the link ends before it (false).</summary>
    public Task<bool> WhenReady => _ready.Task;

    /// <inheritdoc/>
    public override string ToString() => $"Connection {Id} ({(IsServer ? "server" : "client")}{(Session.Id is { } sid ? ", session " + sid : string.Empty)})";

    internal static Connection CreateServerSide(Stream stream, ConnectionOptions options, IServerContext server)
    {
        var session = new UhuraSession(options.CreateSerializer()) { Limits = options };
        var connection = new Connection(stream, isServer: true, session, options, server, MessageIds.NewPrefix());
        session.ErrorSink = connection.ReportSubscriberError;
        if (server.OnlyWire == WireProtocol.SocketIpc)
        {
            connection._handler = WireHandler.For(connection, WireProtocol.SocketIpc); // no first byte to wait for; no session to sync
        }
        else
        {
            session.AttachSink(connection);
        }

        return connection;
    }

    /// <summary>A client's link; <paramref name="idPrefix"/> is the client's, so ids stay the same when it resends on a new link.</summary>
    internal static Connection CreateClientSide(Stream stream, UhuraSession session, ConnectionOptions options, string idPrefix, WireProtocol protocol, NativeStream nativeStream, string? authToken = null, EventDispatcher? dispatcher = null)
    {
        var connection = new Connection(stream, isServer: false, session, options, server: null, idPrefix, dispatcher) { _authToken = authToken };
        connection._handler = WireHandler.For(connection, protocol);
        connection._native = protocol == WireProtocol.Native ? nativeStream : null;
        return connection;
    }

    /// <summary>Starts reading (and, on a client, sends the handshake).</summary>
    internal void Start()
    {
        if (Interlocked.Exchange(ref _started, 1) != 0)
        {
            throw new InvalidOperationException("The connection was already started.");
        }

        Diagnostics.UhuraMetrics.ConnectionStarted(this);
        if (IsServer)
        {
            _handshakeActivity = Diagnostics.UhuraActivities.StartDetached(Diagnostics.UhuraActivities.Handshake, System.Diagnostics.ActivityKind.Server);
            _handshakeActivity?.SetTag("uhura.connection.id", Id);
        }

        if (_handler is { HasHandshake: false })
        {
            // No handshake: the link is ready at once (a server publishes it before reading anything).
            lock (_gate)
            {
                _handshake = HandshakeProgress.Done;
                while (TakePreReadyLocked(out var queued))
                {
                    WriteMessageLocked(queued); // handed over by a client before the link started
                }
            }

            _ready.TrySetResult(true);
            _server?.OnReady(this);
        }
        else if (!IsServer)
        {
            _handler!.SendHello();
        }
        else if (_options.HandshakeTimeout != Timeout.InfiniteTimeSpan)
        {
            // A client that connects and never completes the handshake does not hold a connection forever.
            _handshakeTimer = _options.TimeProvider.CreateTimer(static state => ((Connection)state!).OnHandshakeDeadline(), this, _options.HandshakeTimeout, Timeout.InfiniteTimeSpan);
            _ = _ready.Task.ContinueWith(static (_, state) => ((Connection)state!)._handshakeTimer?.Dispose(), this, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }

        _readLoop = Task.Run(ReadLoopAsync);
    }

    /// <summary>
    /// Server: the handshake completed (called as the server publishes the connection): counted opened, and the
    /// <c>uhura.handshake</c> activity ends accepted.
    /// </summary>
    internal void OnHandshakeCompleted()
    {
        Diagnostics.UhuraMetrics.ConnectionsOpened.Add(1, _sideTag, Diagnostics.UhuraMetrics.ProtocolTag(Wire));
        if (Interlocked.Exchange(ref _handshakeActivity, null) is { } handshake)
        {
            handshake.SetTag("uhura.protocol", Diagnostics.UhuraMetrics.ProtocolName(Wire));
            handshake.SetTag("uhura.session.id", Session.Id);
            handshake.SetTag("uhura.session.resumed", Resumed);
            Diagnostics.UhuraActivities.Stop(handshake, "accepted");
        }
    }

    /// <summary>Client: the handshake completed; counted opened.</summary>
    internal void OnClientConnected() => Diagnostics.UhuraMetrics.ConnectionsOpened.Add(1, _sideTag, Diagnostics.UhuraMetrics.ProtocolTag(Wire));

    /// <summary>Events written and waiting for the peer's acknowledgement (for the <c>uhura.acks.pending</c> gauge).</summary>
    internal long PendingAcks
    {
        get
        {
            lock (_gate)
            {
                return PendingAcksLocked;
            }
        }
    }

    /// <summary>Slots held for sends awaiting acknowledgement, native list and Node-wire table (tests: a burst's are let go).</summary>
    internal int UnackedSlots
    {
        get
        {
            lock (_gate)
            {
                return _unacked.Capacity + _inflight.Capacity;
            }
        }
    }

    /// <summary>Sends waiting for the handshake (for the <c>uhura.outbound.queued</c> gauge).</summary>
    internal long QueuedBeforeHandshake
    {
        get
        {
            lock (_gate)
            {
                return _preReady.Count;
            }
        }
    }

    /// <summary>Encoded bytes waiting to be written (for the <c>uhura.outbound.buffered</c> gauge).</summary>
    internal long BufferedOutboundBytes
    {
        get
        {
            lock (_gate)
            {
                return _outbox.BufferedBytes;
            }
        }
    }

    /// <summary>
    /// Whether this link delivered anything: an application event received, or a send acknowledged by the peer. A link
    /// that ends without either does not reset the client's reconnect backoff.
    /// </summary>
    internal bool MadeProgress => Volatile.Read(ref _madeProgress);

    private bool _madeProgress;

    private void MarkProgress()
    {
        if (!Volatile.Read(ref _madeProgress))
        {
            Volatile.Write(ref _madeProgress, true); // once per link, not per event: the cache line is not dirtied on every event
        }
    }
}
