using System.IO.Pipelines;
using System.Reactive;
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

    private WireProtocol? _wire;
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
    public bool IsConnected => _ready.Task.IsCompletedSuccessfully && _ready.Task.Result && !_closed;

    /// <summary>
    /// Emits once, when the link ends, why it ended, then completes. Replays to late subscribers. A bad message from
    /// the peer arrives here as <see cref="DisconnectReason.ProtocolError"/> with a <see cref="DecodeException"/> or
    /// <see cref="ProtocolException"/>; it never throws on a socket thread. It fires as the link ends, which may be before
    /// <see cref="Events"/> completes: events received earlier may still be with their subscribers.
    /// </summary>
    public IObservable<DisconnectInfo> Disconnected => _guardedDisconnected;

    /// <summary>The peer's events named <paramref name="eventName"/> (uhura's <c>on(name, ...)</c>).</summary>
    public IObservable<UhuraEvent> Event(string eventName)
    {
        ArgumentNullException.ThrowIfNull(eventName);
        return Events.Where(e => string.Equals(e.Name, eventName, StringComparison.Ordinal));
    }

    /// <summary>A task that completes when the handshake completes (true) or the link ends before it (false).</summary>
    public Task<bool> WhenReady => _ready.Task;

    /// <summary>
    /// Closes gracefully: waits (up to <see cref="ConnectionOptions.CloseTimeout"/>) for queued sends to be written and
    /// acknowledged, ends the JSON array, half-closes and waits for the peer to close. Sends still unacknowledged then
    /// fail with <see cref="ConnectionLostException"/>. Idempotent.
    /// </summary>
    public Task CloseAsync() => CloseAsync(_options.CloseTimeout);

    /// <inheritdoc cref="CloseAsync()"/>
    public Task CloseAsync(TimeSpan timeout)
    {
        lock (_gate)
        {
            return _closeTask ??= CloseCoreAsync(timeout);
        }
    }

    /// <summary>Closes gracefully; see <see cref="CloseAsync()"/>.</summary>
    public ValueTask DisposeAsync() => new(CloseAsync());

    /// <summary>Closes at once, without waiting: unsent and unacknowledged sends fail with <see cref="ConnectionLostException"/>.</summary>
    public void Dispose() => Shutdown(new DisconnectInfo(DisconnectReason.LocalClose));

    /// <inheritdoc/>
    public override string ToString() => $"Connection {Id} ({(IsServer ? "server" : "client")}{(Session.Id is { } sid ? ", session " + sid : string.Empty)})";

    internal static Connection CreateServerSide(Stream stream, ConnectionOptions options, IServerContext server)
    {
        var session = new UhuraSession(options.CreateSerializer());
        var connection = new Connection(stream, isServer: true, session, options, server, MessageIds.NewPrefix());
        session.ErrorSink = connection.ReportSubscriberError;
        if (server.OnlyWire == WireProtocol.SocketIpc)
        {
            connection._wire = WireProtocol.SocketIpc; // no first byte to wait for; no session to sync
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
        connection._wire = protocol;
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

        if (_wire == WireProtocol.SocketIpc)
        {
            // No handshake: the link is ready at once (a server publishes it before reading anything).
            lock (_gate)
            {
                _handshakeDone = true;
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
            if (_wire == WireProtocol.Native)
            {
                SendNativeHello();
            }
            else
            {
                SendClientHandshake();
            }
        }
        else if (_options.HandshakeTimeout != Timeout.InfiniteTimeSpan)
        {
            // A client that connects and never completes the handshake does not hold a connection forever.
            _handshakeTimer = _options.TimeProvider.CreateTimer(static state => ((Connection)state!).OnHandshakeDeadline(), this, _options.HandshakeTimeout, Timeout.InfiniteTimeSpan);
            _ = _ready.Task.ContinueWith(static (_, state) => ((Connection)state!)._handshakeTimer?.Dispose(), this, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }

        _readLoop = Task.Run(ReadLoopAsync);
    }

    /// <summary>Called by the owner of messages a closing link could not deliver (a reconnecting client); without one they fail.</summary>
    internal Action<IReadOnlyList<OutboundMessage>, Exception?>? UndeliveredHandler { get; set; }

    private async Task CloseCoreAsync(TimeSpan timeout)
    {
        lock (_gate)
        {
            _closing = true;
        }

        using var deadline = new CancellationTokenSource(timeout, _options.TimeProvider);
        try
        {
            if (_started != 0 && !_closed)
            {
                await _ready.Task.WaitAsync(deadline.Token).ConfigureAwait(false);
                await WhenIdleAsync().WaitAsync(deadline.Token).ConfigureAwait(false);
                lock (_gate)
                {
                    EndOutputLocked();
                }

                await WhenDrainedAsync().WaitAsync(deadline.Token).ConfigureAwait(false);
                await Transport.HalfClose.SendAsync(_stream).ConfigureAwait(false);
                await _readLoop.WaitAsync(deadline.Token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException)
        {
            _logger.LogDebug("Connection {Id}: graceful close timed out after {Timeout}", Id, timeout);
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException)
        {
            _logger.LogDebug(ex, "Connection {Id}: error while closing", Id);
        }

        Shutdown(new DisconnectInfo(DisconnectReason.LocalClose));
        await _readLoop.ConfigureAwait(false);
        if (_server is not null)
        {
            await Session.FlushAsync().ConfigureAwait(false);
        }
    }

    private ITimer? _handshakeTimer;

    private void OnHandshakeDeadline()
    {
        if (!_ready.Task.IsCompleted)
        {
            _logger.LogDebug("Connection {Id}: no handshake within {Timeout}", Id, _options.HandshakeTimeout);
            Shutdown(new DisconnectInfo(DisconnectReason.ProtocolError, new ProtocolException($"The client did not complete the handshake within {_options.HandshakeTimeout.TotalSeconds:0.###} s.") { ConnectionId = Id }));
        }
    }

    /// <summary>Ends the link once: fails or hands over what was not delivered, completes the observables.</summary>
    private void Shutdown(DisconnectInfo info)
    {
        info = _refusal ?? info; // a refused client's link ends as refused, however the socket closes
        List<OutboundMessage> undelivered;
        lock (_gate)
        {
            if (_closed)
            {
                return;
            }

            _closed = true;
            _closing = true;
            _outputEnded = true;
            undelivered = CollectUndeliveredLocked();
        }

        // The read loop, under the session's gate (the stream's, on a client), checks that the link is open, marks an
        // event received (native: the stream's LastReceived; Node wire: the session's dedup watermark) and queues it.
        // Passing that gate once, now that _closed is set, lets such a step still running finish: every event marked
        // received is queued before the completion below, never after it, where the link's completed dispatcher would
        // drop it, or its completed streams swallow it, while it counts as received, so its resend would be
        // acknowledged as a duplicate. Shutdown may run on another thread than the read loop (a superseding link).
        if ((_serverSession?.Gate ?? _native?.Gate) is { } deliveryGate)
        {
            lock (deliveryGate)
            {
                // nothing: a barrier
            }
        }

        _readCancel.Cancel();
        _heartbeatTimer?.Dispose();
        Diagnostics.UhuraMetrics.ConnectionEnded(this);
        if (Interlocked.Exchange(ref _handshakeActivity, null) is { } handshake)
        {
            handshake.SetTag("uhura.protocol", _wire is { } wire ? Diagnostics.UhuraMetrics.ProtocolName(wire) : null);
            Diagnostics.UhuraActivities.Stop(handshake, _refusal is not null ? "refused" : "failed", info.Error ?? new ProtocolException($"The link ended during the handshake ({info.Reason})."));
        }

        try
        {
            _stream.Dispose();
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException)
        {
        }

        Session.DetachSink(this);
        _ready.TrySetResult(false);

        var handler = UndeliveredHandler;
        if (handler is not null)
        {
            handler(undelivered, info.Error);
        }
        else
        {
            foreach (var message in undelivered)
            {
                message.Fail(new ConnectionLostException(message.Name, info.Error) { ConnectionId = Id });
            }
        }

        if (info.Error is not null)
        {
            _logger.LogInformation(info.Error, "Connection {Id} closed: {Reason}", Id, info.Reason);
        }
        else
        {
            _logger.LogDebug("Connection {Id} closed: {Reason}", Id, info.Reason);
        }

        try
        {
            _server?.OnClosed(this, info);
        }
        catch (Exception ex)
        {
            _logger.LogError(ex, "Connection {Id}: the server's bookkeeping of its end failed", Id);
        }

        // Events completes after every event already queued for delivery was delivered. Disconnected fires now: a
        // subscriber still busy with earlier events must not hold up what follows the end of the link (a reconnect).
        if (!_dispatcher.Enqueue(Delivery.Completion(this)))
        {
            _ = DispatchAsync(Delivery.Completion(this)); // the client's dispatcher already ended: complete here
        }

        if (_ownsDispatcher)
        {
            _dispatcher.Complete();
        }

        _disconnected.OnNext(info); // its observers are guarded
        _disconnected.OnCompleted();
    }

    /// <summary>
    /// Completes when <see cref="Shutdown"/> has finished (its undelivered sends handed over) and every event this link
    /// queued was delivered and its <see cref="Events"/> completed.
    /// </summary>
    internal Task ShutdownCompleted => _shutdownCompleted.Task;

    /// <summary>Client: where this link's events go next, after its own <see cref="Events"/> (the client's stream).</summary>
    internal IObserver<UhuraEvent>? ForwardEventsTo { get; set; }

    /// <summary>Client: where a throwing subscriber is reported (the client's <c>Errors</c>); a server reports to its own.</summary>
    internal Action<UhuraException>? ErrorSink { get; set; }

    /// <summary>A subscriber of one of this link's streams threw: logged, then reported on the owner's error stream.</summary>
    internal void ReportSubscriberError(SubscriberException error)
    {
        error.ConnectionId ??= Id;
        _logger.LogError(error.InnerException, "Connection {Id}: a subscriber of {Stream} threw (event {Event})", Id, error.StreamName, error.EventName);
        try
        {
            if (_server is not null)
            {
                _server.ReportError(error);
            }
            else
            {
                ErrorSink?.Invoke(error);
            }
        }
        catch (Exception ex)
        {
            _logger.LogError(ex, "Connection {Id}: reporting a subscriber's error failed", Id);
        }
    }

    /// <summary>Queues an event (or an acknowledgement alone) for the dispatcher; called by the read loop.</summary>
    private void Dispatch(UhuraEvent? e, string? ackId, long ackSeq)
    {
        if (e is not null)
        {
            MarkProgress();
            Diagnostics.UhuraMetrics.EventsReceived.Add(1, _sideTag);
            _eventsIn++;
        }

        _dispatcher.Enqueue(Delivery.Of(this, e, ackId, ackSeq));
    }

    /// <summary>
    /// The dispatcher's call: delivers one event to this link's subscribers (then the client's, or the server's merged
    /// stream), and acknowledges it once they all returned; or, at the end, completes the link's streams.
    /// </summary>
    internal ValueTask DispatchAsync(Delivery delivery)
    {
        if (delivery.IsCompletion)
        {
            _events.OnCompleted(); // observers are guarded: nothing throws here
            _shutdownCompleted.TrySetResult();
            return ValueTask.CompletedTask;
        }

        if (delivery.Event is { } e)
        {
            _events.OnNext(e);
            if (ForwardEventsTo is { } forward)
            {
                forward.OnNext(e);
            }

            if (_server?.MergedEvents is { HasSubscribers: true } merged)
            {
                return merged.PublishAsync(delivery); // acknowledged when the merged subscribers took it too
            }
        }

        if (_ackChainTail is { IsDone: false })
        {
            NewAckCountdown(delivery, 0).Signal(); // after the events still held by merged subscribers
        }
        else
        {
            Acknowledge(delivery, flush: false);
        }

        return ValueTask.CompletedTask;
    }

    /// <summary>
    /// Dispatcher: a countdown for an event handed to <paramref name="takers"/> merged subscribers, acknowledged after
    /// them and after this link's previous such event (the caller signals once more when it has handed it to all).
    /// </summary>
    internal AckCountdown NewAckCountdown(in Delivery delivery, int takers)
    {
        var countdown = new AckCountdown(delivery, takers, _ackChainTail);
        _ackChainTail = countdown;
        return countdown;
    }

    /// <summary>
    /// The event was delivered: acknowledge it. Without <paramref name="flush"/> (the dispatcher's own call) the ack is
    /// owed and written with the others of the run by <see cref="FlushAcks"/>: Node acks together, native ones as
    /// one cumulative ack.
    /// </summary>
    internal void Acknowledge(in Delivery delivery, bool flush)
    {
        if (delivery.AckId is { } id)
        {
            if (flush)
            {
                SendAck(id);
            }
            else
            {
                (_nodeAcksOwed ??= []).Add(id);
            }
        }
        else if (delivery.AckSeq > 0)
        {
            _native?.NoteDelivered(delivery.AckSeq);
            lock (_gate)
            {
                if (!_acksEnabled)
                {
                    return;
                }

                if (delivery.AckSeq > _deliveredUpTo)
                {
                    _deliveredUpTo = delivery.AckSeq;
                }
            }

            if (flush)
            {
                FlushAcks();
            }
        }
    }

    /// <summary>Writes the acks the dispatcher owes: Node wire, each id; native, one cumulative ack for what was delivered since the last one.</summary>
    internal void FlushAcks()
    {
        if (_nodeAcksOwed is { Count: > 0 } owed)
        {
            SendAcks(owed);
            owed.Clear();
        }

        long upTo;
        TaskCompletionSource? waiter = null;
        lock (_gate)
        {
            if (_deliveredUpTo <= _ackWrittenUpTo)
            {
                upTo = 0;
            }
            else
            {
                upTo = _ackWrittenUpTo = _deliveredUpTo;
            }

            if (_ackWaiter is { } w && _ackWrittenUpTo >= _ackWaiterTarget)
            {
                waiter = w;
                _ackWaiter = null;
            }
        }

        if (upTo > 0)
        {
            WriteNativeAck(upTo);
        }

        waiter?.TrySetResult(); // after the ack is in the outbound buffer
    }

    /// <summary>One waiter for an ack covering <see cref="_ackWaiterTarget"/> to be written (an event refusal). Under <c>_gate</c>.</summary>
    private TaskCompletionSource? _ackWaiter;

    private long _ackWaiterTarget;

    /// <summary>Completes once a native ack covering <paramref name="upTo"/> is in the outbound buffer (at once if one is).</summary>
    private Task WhenAckWrittenAsync(long upTo)
    {
        lock (_gate)
        {
            if (_ackWrittenUpTo >= upTo)
            {
                return Task.CompletedTask;
            }

            _ackWaiterTarget = upTo;
            _ackWaiter = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            return _ackWaiter.Task;
        }
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
                return _pending.WrittenCount + _writing.WrittenCount;
            }
        }
    }

    /// <summary>
    /// Whether this link delivered anything: an application event received, or a send acknowledged by the peer. A link
    /// that ends without either does not reset the client's reconnect backoff.
    /// </summary>
    internal bool MadeProgress => Volatile.Read(ref _madeProgress);

    private bool _madeProgress;

    private void MarkProgress() => Volatile.Write(ref _madeProgress, true);
}

/// <summary>What a server-side connection needs from its server.</summary>
internal interface IServerContext
{
    ISessionStore SessionStore { get; }

    /// <summary>Whether this server accepts the wire a client turned out to speak.</summary>
    bool Accepts(WireProtocol wire);

    /// <summary>The one wire the server speaks, when it is set (socket-ipc must be); null = told by the first byte.</summary>
    WireProtocol? OnlyWire { get; }

    Server.ServerSessions Sessions { get; }

    /// <summary>The server's authentication callback, if any.</summary>
    Func<AuthenticationRequest, CancellationToken, ValueTask<AuthenticationResult>>? Authenticate { get; }

    /// <summary>The handshake completed: publish the connection (runs before <c>connect</c> is sent).</summary>
    void OnReady(Connection connection);

    void OnClosed(Connection connection, DisconnectInfo info);

    /// <summary>A subscriber threw, or fell behind: report it on the server's <c>Errors</c>.</summary>
    void ReportError(UhuraException error);

    /// <summary>The server's merged stream of events, which the link's dispatcher feeds after the link's own subscribers.</summary>
    Server.MergedEvents? MergedEvents => null;

    /// <summary>The server's statistics when it exposes them (<see cref="UhuraServerOptions.ExposeStatistics"/>); null otherwise.</summary>
    ServerStatistics? ExposedStatistics() => null;
}
