using System.Net;
using System.Reactive;
using System.Reactive.Disposables;
using System.Reactive.Linq;
using System.Reactive.Subjects;
using System.Reactive.Threading.Tasks;
using Microsoft.Extensions.Logging;
using Newtonsoft.Json;
using Rx.Uhura.Internal;
using Rx.Uhura.Session;
using Rx.Uhura.Transport;

namespace Rx.Uhura;

/// <summary>
/// The client end (uhura's <c>createClient</c>): opens a link to a server, sends events, receives the server's events
/// and shares a session with it. The client outlives its links: <see cref="Events"/>, <see cref="Event"/> and
/// <see cref="Session"/> subscriptions made once keep working across links, and sends made while no link is up are
/// queued (bounded) and sent in order when one is.
/// </summary>
/// <example>
/// <code>
/// await using var client = UhuraClient.Connect("tcp://127.0.0.1:5555");
/// client.Event("pong").Subscribe(_ => Console.WriteLine("pong received"));
/// await client.Send("ping");
/// </code>
/// </example>
public sealed class UhuraClient : IAsyncDisposable, IDisposable
{
    private readonly UhuraClientOptions _options;
    private readonly Func<CancellationToken, ValueTask<Stream>> _openStream;
    private readonly ILogger _logger;
    private readonly JsonSerializer _serializer;
    private readonly Subject<UhuraEvent> _events = new();
    private readonly BehaviorSubject<ConnectionState> _state = new(new ConnectionState(ConnectionStatus.Connecting));
    private readonly Lock _gate = new();
    private readonly Lock _stateGate = new();
    private readonly Queue<OutboundMessage> _queue = new();
    private long _queuedBytes; // payload bytes in _queue (bounded by ConnectionOptions.MaxQueuedBytes)
    private readonly SerialDisposable _linkSubscription = new();
    private CancellationTokenSource _reconnectNow = new(); // canceled by Reconnect() (then replaced): ends the current link or attempt, or cuts a backoff wait short
    private int _requeuedAhead; // of _queue, how many at its front were handed back by a link that ended (accepted: never dropped)
    private readonly TaskCompletionSource _finished = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Subject<SendException> _dropped = new();
    private readonly IObservable<SendException> _guardedDropped;
    private readonly IObservable<UhuraEvent> _guardedEvents;
    private readonly ErrorStream _errors;
    private readonly EventDispatcher _dispatcher;
    private readonly IObserver<SendException> _droppedSink;
    private readonly string _idPrefix = MessageIds.NewPrefix();
    private readonly NativeStream _nativeStream = new();
    private long _nextSeq;
    private int _connectedBefore;
    private long _generation;
    private int _lastAttempt;
    private ReconnectOptions? _reconnect;
    private Polly.ResiliencePipeline? _pipeline;
    private Connection? _link;
    private bool _closing;
    private bool _closed;
    private bool _stateCompleted;
    private Task? _disconnectTask;
    private readonly string? _endpoint;
    private int _attemptsSinceConnected;

    private UhuraClient(Func<CancellationToken, ValueTask<Stream>> openStream, UhuraClientOptions? options, string? endpoint = null)
    {
        _endpoint = endpoint;
        _options = options ?? UhuraClientOptions.Default;
        _options.Validate();
        _openStream = openStream;
        _serializer = _options.Connection.CreateSerializer();
        _droppedSink = System.Reactive.Observer.Synchronize(_dropped);
        _logger = _options.Connection.LoggerFactory.CreateLogger<UhuraClient>();
        _errors = new ErrorStream(_logger, "UhuraClient.Errors");
        _dispatcher = new EventDispatcher(_options.Connection.MaxQueuedDeliveries, _logger);
        _guardedEvents = new GuardedObservable<UhuraEvent>(_events, "UhuraClient.Events", static e => e.Name, ReportSubscriberError);
        _guardedDropped = new GuardedObservable<SendException>(_dropped, "UhuraClient.Dropped", static e => e.EventName, ReportSubscriberError);
        Session = new UhuraSession(_serializer) { ErrorSink = ReportSubscriberError };
        if (_options.ReconnectPipeline is { } ownPipeline)
        {
            _pipeline = ownPipeline; // the application's own backoff, instead of the one built from Reconnect
        }
        else if (_options.Reconnect is { } reconnect)
        {
            SetReconnect(reconnect);
        }

        if (_options.InitialSession is { Count: > 0 } initial)
        {
            Session.Replace(initial.ToDictionary(kv => kv.Key, kv => kv.Value.DeepClone()), SessionChangeOrigin.Local);
        }

        Diagnostics.UhuraMetrics.ClientStarted(this);
    }

    /// <summary>
    /// Creates a client that connects to an endpoint URI (<c>tcp://HOST:PORT</c>, <c>tls://HOST:PORT</c> with
    /// <see cref="UhuraClientOptions.Tls"/>, or <c>unix:///PATH</c>) in the background.
    /// </summary>
    /// <exception cref="ArgumentException">A <c>tls://</c> endpoint without <see cref="UhuraClientOptions.Tls"/>.</exception>
    public static UhuraClient Connect(string uri, UhuraClientOptions? options = null) => Connect(UhuraEndpoint.Parse(uri), options);

    /// <summary>Creates a client that connects to <paramref name="endPoint"/> in the background.</summary>
    /// <exception cref="ArgumentException">A <see cref="TlsEndPoint"/> without <see cref="UhuraClientOptions.Tls"/>.</exception>
    public static UhuraClient Connect(EndPoint endPoint, UhuraClientOptions? options = null)
    {
        var client = Create(endPoint, options);
        client.Start();
        return client;
    }

    /// <summary>
    /// Creates a client for an endpoint URI (as <see cref="Connect(string, UhuraClientOptions?)"/> takes) that does not
    /// connect until <see cref="StartAsync"/>: subscribe to <see cref="Events"/>, <see cref="Event"/> or
    /// <see cref="State"/> first, and no event the server sends as the client connects (from its
    /// <see cref="UhuraServer.Connections"/> handler) can be missed. Sends made before are queued as while disconnected.
    /// </summary>
    /// <exception cref="ArgumentException">A <c>tls://</c> endpoint without <see cref="UhuraClientOptions.Tls"/>.</exception>
    public static UhuraClient Create(string uri, UhuraClientOptions? options = null) => Create(UhuraEndpoint.Parse(uri), options);

    /// <summary>
    /// Creates a client for <paramref name="endPoint"/> that does not connect until <see cref="StartAsync"/> (a hosted
    /// client connects when its host starts); sends made before are queued as while disconnected.
    /// </summary>
    /// <exception cref="ArgumentException">A <see cref="TlsEndPoint"/> without <see cref="UhuraClientOptions.Tls"/>.</exception>
    public static UhuraClient Create(EndPoint endPoint, UhuraClientOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(endPoint);
        var settings = options ?? UhuraClientOptions.Default;
        var transport = TlsTransport.For(endPoint, settings.Transport, settings.Tls, nameof(UhuraClientOptions), settings.Connection.TimeProvider);
        return new UhuraClient(ct => transport.ConnectAsync(endPoint, ct), options, UhuraEndpoint.Format(endPoint));
    }

    /// <summary>
    /// Starts a client made by <see cref="Create(string, UhuraClientOptions?)"/> and waits until the handshake completed
    /// (its first link is up). Connecting goes on in the background when the wait is canceled; calling it again, or on a
    /// client that already started, only waits.
    /// </summary>
    /// <exception cref="UhuraException">The client closed before it connected (see <see cref="WhenConnectedAsync"/>).</exception>
    public Task StartAsync(CancellationToken cancellationToken = default)
    {
        BeginConnecting();
        return WhenConnectedAsync(cancellationToken);
    }

    /// <summary>Starts connecting a client made by <see cref="Create(EndPoint, UhuraClientOptions?)"/> (once; ignored after the first call or once closing).</summary>
    internal void BeginConnecting()
    {
        lock (_gate)
        {
            if (_closing || Volatile.Read(ref _generation) != 0)
            {
                return;
            }
        }

        Start();
    }

    /// <summary>Sends waiting for a link (for the <c>uhura.outbound.queued</c> gauge).</summary>
    internal int QueuedCount
    {
        get
        {
            lock (_gate)
            {
                return _queue.Count;
            }
        }
    }

    /// <summary>
    /// Creates a client over a stream that is already connected (as Node's <c>createClient</c> takes an existing
    /// socket). Such a client cannot open a second link by itself.
    /// </summary>
    public static UhuraClient Connect(Stream connectedStream, UhuraClientOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(connectedStream);
        var used = 0;
        var client = new UhuraClient(
            _ => Interlocked.Exchange(ref used, 1) == 0
                ? ValueTask.FromResult(connectedStream)
                : ValueTask.FromException<Stream>(new InvalidOperationException("A client over an existing stream cannot open another link.")),
            options);
        client.Start();
        return client;
    }

    /// <summary>
    /// Connects to an endpoint URI and waits until the handshake completed. Events the server sends as the client
    /// connects arrive before this returns: to see them, subscribe in
    /// <see cref="ConnectAsync(string, UhuraClientOptions?, Action{UhuraClient}, CancellationToken)"/>'s
    /// <c>configure</c>, or use <see cref="Create(string, UhuraClientOptions?)"/> and <see cref="StartAsync"/>.
    /// </summary>
    /// <exception cref="UhuraException">The client could not connect.</exception>
    public static Task<UhuraClient> ConnectAsync(string uri, UhuraClientOptions? options = null, CancellationToken cancellationToken = default)
        => ConnectAsync(uri, options, static _ => { }, cancellationToken);

    /// <summary>
    /// Connects to an endpoint URI and waits until the handshake completed, having run <paramref name="configure"/> on
    /// the client before it connects: subscriptions made there see every event the server sends, even those it sends
    /// from its <see cref="UhuraServer.Connections"/> handler as the client connects.
    /// </summary>
    /// <exception cref="UhuraException">The client could not connect.</exception>
    public static async Task<UhuraClient> ConnectAsync(string uri, UhuraClientOptions? options, Action<UhuraClient> configure, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(configure);
        var client = Create(uri, options);
        try
        {
            configure(client);
        }
        catch
        {
            client.Dispose();
            throw;
        }

        client.BeginConnecting();
        try
        {
            await client.WhenConnectedAsync(cancellationToken).ConfigureAwait(false);
            return client;
        }
        catch
        {
            client.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The server's application events, across every link, in arrival order. Completes when the client is closed (after
    /// the events already received). Subscribers are called one at a time by the client's dispatcher, never on a socket
    /// read loop nor under a library lock, and an event is acknowledged to the server only after they all returned. A
    /// subscriber that throws is reported on <see cref="Errors"/>; the others, and the link, go on. Hot: an event that
    /// arrives while nobody subscribes is not kept, so subscribe before the client connects
    /// (<see cref="Create(string, UhuraClientOptions?)"/> then <see cref="StartAsync"/>, or the <c>configure</c> of
    /// <see cref="ConnectAsync(string, UhuraClientOptions?, Action{UhuraClient}, CancellationToken)"/>) to see what a
    /// server sends as the client connects.
    /// </summary>
    public IObservable<UhuraEvent> Events => _guardedEvents;

    /// <summary>
    /// Subscribers of this client's streams (<see cref="Events"/>, <see cref="State"/>, <see cref="Dropped"/>, the
    /// session, a link's <see cref="Uhura.Connection.Events"/>) that threw, as <see cref="SubscriberException"/>s; the
    /// client caught them and went on (they are also logged when a logger is configured). A subscriber of this stream
    /// that throws is logged and ignored. Completes when the client is closed.
    /// </summary>
    public IObservable<UhuraException> Errors => _errors;

    /// <summary>The shared session; it outlives links and is resumed by id.</summary>
    public UhuraSession Session { get; }

    /// <summary>
    /// The client's state: replays the current state to each subscriber, then every change. Completes after
    /// <see cref="ConnectionStatus.Closed"/>. A subscriber that throws is reported on <see cref="Errors"/>; the link and
    /// the other subscribers go on.
    /// </summary>
    public IObservable<ConnectionState> State => Observable.Create<ConnectionState>(user =>
    {
        var observer = new GuardedObserver<ConnectionState>(user, "UhuraClient.State", static s => s.Status.ToString(), ReportSubscriberError);
        // A completed BehaviorSubject no longer replays: a late subscriber still gets the final state, then completion.
        lock (_stateGate)
        {
            if (_stateCompleted)
            {
                observer.OnNext(_state.Value);
                observer.OnCompleted();
                return Disposable.Empty;
            }

            return _state.Subscribe(observer);
        }
    });

    /// <summary>The state now.</summary>
    public ConnectionState CurrentState => _state.Value;

    /// <summary>
    /// The client's links, the connect sequence made visible: the current link first (when one is up), then each new link
    /// once its handshake completed. The client opens links by subscribing to its connect sequence and reconnects by
    /// subscribing again (with the backoff of <see cref="UhuraClientOptions.Reconnect"/> or
    /// <see cref="UhuraClientOptions.ReconnectPipeline"/>); every link it gets shows here, once. Subscribing opens nothing:
    /// it only watches. Completes when the client closes.
    /// </summary>
    public IObservable<Connection> Connections => State
        .Where(state => state.Status == ConnectionStatus.Connected)
        .Select(_ => Connection) // read as the client reports Connected: the link that just connected, before it can be detached
        .Where(link => link is not null)
        .Select(link => link!)
        .DistinctUntilChanged<Connection>(ReferenceEqualityComparer.Instance);

    /// <summary>The current link, while one is open.</summary>
    public Connection? Connection
    {
        get
        {
            lock (_gate)
            {
                return _link;
            }
        }
    }

    /// <summary>The server's events named <paramref name="eventName"/>, across links.</summary>
    public IObservable<UhuraEvent> Event(string eventName)
    {
        ArgumentNullException.ThrowIfNull(eventName);
        return Events.Where(e => string.Equals(e.Name, eventName, StringComparison.Ordinal));
    }

    /// <summary>
    /// Native protocol: waits until the client is connected, then asks the server for its statistics
    /// (<see cref="Connection.GetServerStatisticsAsync"/>). Fails with <see cref="StatisticsUnavailableException"/> when
    /// the server does not set <see cref="UhuraServerOptions.ExposeStatistics"/>, with
    /// <see cref="ConnectionLostException"/> when the link drops before the answer (ask again).
    /// </summary>
    /// <exception cref="NotSupportedException">The client does not speak the native protocol.</exception>
    public async Task<ServerStatistics> GetServerStatisticsAsync(CancellationToken cancellationToken = default)
    {
        if (_options.Protocol != WireProtocol.Native)
        {
            throw new NotSupportedException($"Server statistics are part of the native protocol; this client speaks {_options.Protocol}.");
        }

        await WhenConnectedAsync(cancellationToken).ConfigureAwait(false);
        var link = Connection ?? throw new ConnectionLostException(Rx.Uhura.Connection.StatisticsEvent);
        return await link.GetServerStatisticsAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Completes when the client is connected (handshake done); fails if it closes first.</summary>
    public Task WhenConnectedAsync(CancellationToken cancellationToken = default)
        => State
            .Where(s => s.Status is ConnectionStatus.Connected or ConnectionStatus.Closed)
            .Take(1)
            .Select(s => s.Status == ConnectionStatus.Connected
                ? Unit.Default
                : throw (s.Error as UhuraException ?? new UhuraException("The client closed before it connected.", s.Error)))
            .ToTask(cancellationToken)
            .ContinueWith(static t => t.GetAwaiter().GetResult(), CancellationToken.None, TaskContinuationOptions.RunContinuationsAsynchronously, TaskScheduler.Default); // the caller's code never runs inside a state change

    /// <summary>
    /// Sends an event to the server. Sends made before the link is ready are queued (at most
    /// <see cref="ConnectionOptions.MaxQueuedMessages"/>) and go out in order. The task completes when the server
    /// acknowledged the event and fails with a <see cref="SendException"/> when it cannot be delivered (an
    /// <see cref="EncodeException"/> or <see cref="FrameTooLargeException"/> at once, nothing queued, for an event the
    /// server would refuse).
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="eventName"/> is empty or reserved by the protocol.</exception>
    public Task Send(string eventName, params ReadOnlySpan<object?> args)
    {
        if (Connection?.RefusedForBytes(eventName, args, _options.Protocol) is { } full)
        {
            return Task.FromException(full);
        }

        var message = Rx.Uhura.Connection.CreateMessage(eventName, args, _serializer, _options.Protocol, _options.Connection, out var error);
        if (message is null)
        {
            return Task.FromException(error!);
        }

        Submit(message);
        return message.Completion!.Task;
    }

    /// <summary>
    /// Sends an event without a task of its own: cheaper than <see cref="Send"/> when the caller does not need to know
    /// when each event arrived. It is queued, resent after a reconnection and acknowledged exactly like a send, and
    /// events reach the server in the order they were sent, so awaiting a later <see cref="Send"/> confirms every event
    /// posted before it. Returns false when it was not accepted (the client is closing, or the queue is full under
    /// <see cref="QueueFullPolicy.Reject"/>); a posted event that is accepted and then cannot be delivered is reported
    /// on <see cref="Dropped"/>.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="eventName"/> is empty or reserved by the protocol.</exception>
    /// <exception cref="EncodeException">An argument cannot be serialized, or not as JSON the peer accepts.</exception>
    /// <exception cref="FrameTooLargeException">The event's frame would exceed <see cref="ConnectionOptions.MaxMessageSize"/>.</exception>
    public bool Post(string eventName, params ReadOnlySpan<object?> args)
    {
        if (Connection?.RefusedForBytes(eventName, args, _options.Protocol) is { } full)
        {
            _droppedSink.OnNext(full); // as the link reports a posted event it refuses
            return false;
        }

        var message = Rx.Uhura.Connection.CreateMessage(eventName, args, _serializer, awaited: false, _droppedSink, _options.Protocol, _options.Connection, out var error) ?? throw error!;
        Submit(message);
        return !message.IsFailed;
    }

    /// <summary>Hands a send to the link, or queues it; failures are reported outside the lock.</summary>
    private void Submit(OutboundMessage message)
    {
        Exception? refused = null;
        List<OutboundMessage>? dropped = null;
        lock (_gate)
        {
            if (_closing)
            {
                refused = new SendAfterCloseException(message.Name);
            }
            else
            {
                // Node wire: numbered under the lock that fixes the send order, so sequence numbers rise along the wire.
                // (The native protocol numbers events as it writes them, from the stream that outlives links.)
                if (_options.Protocol == WireProtocol.NodeUhura)
                {
                    message.Seq = ++_nextSeq;
                }

                if (_link is { } link && link.TryEnqueue(message))
                {
                    return;
                }

                if (!_options.QueuesWhileDisconnected)
                {
                    refused = new NoServerException(message.Name);
                }
                else if (!QueueLocked(message, out dropped))
                {
                    refused = new OutboundBufferFullException(message.Name, $"{_queue.Count} sends ({_queuedBytes} bytes) already wait for a connection.");
                }
            }
        }

        if (refused is not null)
        {
            message.Refuse(refused);
        }

        foreach (var oldest in dropped ?? [])
        {
            var error = new OutboundBufferFullException(oldest.Name, $"it was dropped: the sends waiting for a connection reached their bound ({_options.Connection.MaxQueuedMessages} sends, {_options.Connection.MaxQueuedBytes} bytes) and a newer one arrived.");
            oldest.Fail(error);
            if (oldest.FailureSink is null)
            {
                _droppedSink.OnNext(error); // a posted event reported itself there already
            }
        }
    }

    /// <summary>
    /// Sends that failed where no task reports them: those dropped from the full queue under
    /// <see cref="QueueFullPolicy.DropOldest"/> (an <see cref="OutboundBufferFullException"/>, also the error their task
    /// failed with), and events sent with <see cref="Post"/> that were accepted but could not be delivered. Completes
    /// when the client closes.
    /// </summary>
    public IObservable<SendException> Dropped => _guardedDropped;

    /// <summary>
    /// Turns automatic reconnection on (uhura's <c>autoReconnect()</c>), or changes its settings: from the next failure on,
    /// a lost link or a failed attempt is retried with the backoff of <paramref name="options"/> (default
    /// <see cref="ReconnectOptions.Default"/>: 100 ms doubling to 60 s, with jitter).
    /// </summary>
    public void AutoReconnect(ReconnectOptions? options = null) => SetReconnect(options ?? ReconnectOptions.Default);

    /// <summary>uhura's <c>autoReconnect(min, max)</c>: reconnect with a backoff from <paramref name="firstDelay"/> up to <paramref name="maxDelay"/>.</summary>
    public void AutoReconnect(TimeSpan firstDelay, TimeSpan maxDelay)
        => AutoReconnect(ReconnectOptions.Default with { FirstDelay = firstDelay, MaxDelay = maxDelay });

    /// <summary>
    /// Drops the current socket, or cuts short a backoff wait, and connects again at once (uhura's <c>reconnect()</c>).
    /// Unacknowledged sends are resent on the new link; the session is resumed. Ignored once the client is closing.
    /// </summary>
    public void Reconnect()
    {
        CancellationTokenSource? now = null;
        lock (_gate)
        {
            if (_closing)
            {
                return;
            }

            if (Volatile.Read(ref _generation) != 0)
            {
                now = _reconnectNow;
                _reconnectNow = new CancellationTokenSource();
            }
        }

        if (now is null)
        {
            Start(); // never started: start now
            return;
        }

        // The same path as any drop: the current link (or attempt) ends, hands its unacknowledged sends back to the queue,
        // and only then does the retry loop subscribe again, at once, for the next link. Never two links at a time.
        now.Cancel();
    }

    /// <summary>The token the current link, attempt or backoff wait ends on when <see cref="Reconnect"/> is called.</summary>
    private CancellationToken ReconnectNowToken
    {
        get
        {
            lock (_gate)
            {
                return _reconnectNow.Token;
            }
        }
    }

    private bool IsClosing
    {
        get
        {
            lock (_gate)
            {
                return _closing;
            }
        }
    }

    private void SetReconnect(ReconnectOptions options)
    {
        options.Validate();
        var pipeline = ReconnectPipeline.Build(options, _options.Connection.TimeProvider, (attempt, delay, error) =>
        {
            Volatile.Write(ref _lastAttempt, attempt);
            Diagnostics.UhuraMetrics.ReconnectAttempts.Add(1);
            SetState(new ConnectionState(ConnectionStatus.Reconnecting) { Attempt = attempt, Delay = delay, Error = error });
        });
        lock (_gate)
        {
            _reconnect = options;
            _pipeline = pipeline;
        }
    }

    /// <summary>
    /// Queues for the next link, applying the overflow policy to both bounds (sends and bytes): false when the queue is
    /// full and the policy rejects; <paramref name="dropped"/> are the oldest sends, taken out to make room, for the caller
    /// to fail outside the lock.
    /// </summary>
    private bool QueueLocked(OutboundMessage message, out List<OutboundMessage>? dropped)
    {
        dropped = null;
        var limits = _options.Connection;
        bool Full() => _queue.Count >= limits.MaxQueuedMessages
            || (_queue.Count > 0 && _queuedBytes + message.Payload.Length > limits.MaxQueuedBytes);
        if (Full() && (_options.QueueFullPolicy == QueueFullPolicy.Reject || _requeuedAhead > 0))
        {
            return false; // handed-back sends count against the bound but are never dropped for it: the new one is refused
        }

        while (Full())
        {
            var oldest = _queue.Dequeue();
            _queuedBytes -= oldest.Payload.Length;
            (dropped ??= []).Add(oldest);
        }

        _queue.Enqueue(message);
        _queuedBytes += message.Payload.Length;
        return true;
    }

    /// <summary>
    /// A link ended with sends it could not deliver: unless the client is closing they go back to the front of the
    /// queue, in order, for the next link (accepted sends are never dropped for that, even past the queue's bound).
    /// </summary>
    private void Requeue(IReadOnlyList<OutboundMessage> undelivered, Exception? error)
    {
        if (undelivered.Count == 0)
        {
            return;
        }

        lock (_gate)
        {
            if (!_closing && _options.QueuesWhileDisconnected)
            {
                var waiting = _queue.ToArray();
                _queue.Clear();
                foreach (var message in undelivered)
                {
                    _queue.Enqueue(message);
                    _queuedBytes += message.Payload.Length; // counted, never refused: they were accepted
                }

                foreach (var message in waiting)
                {
                    _queue.Enqueue(message);
                }

                _requeuedAhead += undelivered.Count;
                return;
            }
        }

        foreach (var message in undelivered)
        {
            message.Fail(new ConnectionLostException(message.Name, error));
        }
    }

    /// <summary>
    /// Closes for good (uhura's <c>disconnect()</c>): waits for the link if it is still being opened, sends everything
    /// queued, waits for acknowledgements (up to <see cref="ConnectionOptions.CloseTimeout"/>), then closes the socket.
    /// Idempotent.
    /// </summary>
    public Task Disconnect()
    {
        lock (_gate)
        {
            return _disconnectTask ??= DisconnectCoreAsync();
        }
    }

    /// <inheritdoc cref="Disconnect"/>
    public ValueTask DisposeAsync() => new(Disconnect());

    /// <summary>Closes at once: the link is aborted and unsent events fail.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            _closing = true;
            _disconnectTask ??= Task.CompletedTask;
        }

        _linkSubscription.Dispose();
        Connection?.Dispose();
        Finish(new ConnectionState(ConnectionStatus.Closed), null);
    }

    /// <summary>
    /// The connect sequence: each subscription opens a socket, runs the handshake, emits the link, and then ends with
    /// an error when the link drops (or completes when this side closed it). Reconnecting is re-subscribing. A
    /// subscription ends only once its link has fully shut down and handed its undelivered sends back to the queue, so
    /// the next link never overlaps it; <see cref="Reconnect"/> ends it with <see cref="ResubscribeNowException"/>.
    /// </summary>
    internal IObservable<Connection> Links => Observable.Create<Connection>(async (observer, cancellationToken) =>
    {
        var reconnectNow = ReconnectNowToken;
        using var attempt = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, reconnectNow);
        bool Forced() => reconnectNow.IsCancellationRequested && !cancellationToken.IsCancellationRequested;
        SetState(new ConnectionState(ConnectionStatus.Connecting));
        Connection link;
        try
        {
            link = await OpenLinkAsync(attempt.Token).ConfigureAwait(false);
        }
        catch (Exception) when (Forced())
        {
            observer.OnError(new ResubscribeNowException()); // Reconnect() during the attempt: a new one, at once
            return;
        }

        using var abort = attempt.Token.Register(link.Dispose);
        observer.OnNext(link);
        var isReconnect = Interlocked.Exchange(ref _connectedBefore, 1) != 0;
        link.OnClientConnected();
        if (isReconnect)
        {
            Diagnostics.UhuraMetrics.Reconnects.Add(1);
        }

        SetState(new ConnectionState(ConnectionStatus.Connected) { Resumed = link.Resumed, IsReconnect = isReconnect });

        // Never inline in whoever ended the link (a Reconnect() caller is still inside its cancellation callbacks).
        var info = await link.Disconnected.ToTask(CancellationToken.None).ConfigureAwait(ConfigureAwaitOptions.ForceYielding);
        Detach(link);
        if (info.Reason == DisconnectReason.LocalClose && IsClosing)
        {
            observer.OnCompleted();
        }
        else if (Forced())
        {
            SetState(new ConnectionState(ConnectionStatus.Disconnected) { Disconnect = info });
            observer.OnError(new ResubscribeNowException());
        }
        else
        {
            SetState(new ConnectionState(ConnectionStatus.Disconnected) { Disconnect = info });
            observer.OnError(new UhuraException($"The connection was lost ({info.Reason}).", info.Error) { ConnectionId = link.Id });
        }
    });

    /// <summary>
    /// Opens a socket and runs the handshake under one deadline (<see cref="UhuraClientOptions.ConnectTimeout"/>,
    /// armed before the socket opens). The link is attached (events forwarded, queue handed over) before the handshake
    /// completes, because a server may send events ahead of <c>connect</c>.
    /// </summary>
    private async Task<Connection> OpenLinkAsync(CancellationToken cancellationToken)
    {
        var attempt = Interlocked.Increment(ref _attemptsSinceConnected);
        var activity = Diagnostics.UhuraActivities.StartDetached(Diagnostics.UhuraActivities.Connect, System.Diagnostics.ActivityKind.Client);
        if (activity is null)
        {
            var opened = await OpenLinkCoreAsync(cancellationToken).ConfigureAwait(false);
            Volatile.Write(ref _attemptsSinceConnected, 0);
            return opened;
        }

        activity.SetTag("uhura.endpoint", _endpoint);
        activity.SetTag("uhura.protocol", Diagnostics.UhuraMetrics.ProtocolName(_options.Protocol));
        activity.SetTag("uhura.connect.attempt", attempt);
        activity.SetTag("uhura.session.presented", Session.Id);
        try
        {
            var link = await OpenLinkCoreAsync(cancellationToken).ConfigureAwait(false);
            Volatile.Write(ref _attemptsSinceConnected, 0);
            activity.SetTag("uhura.connection.id", link.Id);
            activity.SetTag("uhura.session.id", Session.Id);
            activity.SetTag("uhura.session.resumed", link.Resumed);
            Diagnostics.UhuraActivities.Stop(activity, "connected");
            return link;
        }
        catch (Exception ex)
        {
            Diagnostics.UhuraActivities.Stop(activity, ex switch
            {
                AuthenticationFailedException => "refused",
                OperationCanceledException => "canceled",
                _ => "failed",
            }, ex is OperationCanceledException ? null : ex);
            throw;
        }
    }

    private async Task<Connection> OpenLinkCoreAsync(CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var timer = _options.Connection.TimeProvider.CreateTimer(static d => ((CancellationTokenSource)d!).Cancel(), deadline, _options.ConnectTimeout, Timeout.InfiniteTimeSpan);
        Stream stream;
        try
        {
            stream = await _openStream(deadline.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new UhuraException($"Connecting timed out after {_options.ConnectTimeout.TotalSeconds} s.");
        }
        catch (Exception ex) when (ex is System.Net.Sockets.SocketException or IOException or InvalidOperationException)
        {
            throw new UhuraException($"Connecting failed: {ex.Message}", ex);
        }

        var link = Rx.Uhura.Connection.CreateClientSide(stream, Session, _options.Connection, _idPrefix, _options.Protocol, _nativeStream, _options.AuthToken, _dispatcher);
        link.UndeliveredHandler = Requeue;
        link.ForwardEventsTo = _events; // by the client's one dispatcher, after the link's own subscribers: in order across links
        link.ErrorSink = _errors.OnNext;
        Attach(link);
        link.Start();
        try
        {
            if (await link.WhenReady.WaitAsync(deadline.Token).ConfigureAwait(false))
            {
                return link;
            }

            // The link ended during the handshake: a failed attempt, not a connection.
            Detach(link);
            var info = await link.Disconnected.ToTask(CancellationToken.None).ConfigureAwait(false);
            if (info.Error is AuthenticationFailedException refused)
            {
                throw refused; // not retried: the same credentials would be refused again
            }

            throw new UhuraException($"The connection ended during the handshake ({info.Reason}).", info.Error) { ConnectionId = link.Id };
        }
        catch (OperationCanceledException)
        {
            link.Dispose();
            await link.ShutdownCompleted.ConfigureAwait(false); // its queued sends are back in the queue before the next link takes it
            Detach(link);
            if (cancellationToken.IsCancellationRequested)
            {
                throw;
            }

            throw new UhuraException($"The server did not complete the handshake within {_options.ConnectTimeout.TotalSeconds} s.") { ConnectionId = link.Id };
        }
    }

    /// <summary>
    /// Subscribes to the connect sequence (once per client), retried with the reconnect backoff when one is set. A
    /// forced reconnect does not subscribe again: it ends the current link, and the retry loop follows up at once.
    /// </summary>
    private void Start()
    {
        if (Interlocked.CompareExchange(ref _generation, 1, 0) != 0)
        {
            return;
        }

        _linkSubscription.Disposable = Links.RetryWith(() => Volatile.Read(ref _pipeline), cutShort: () => ReconnectNowToken).Subscribe(
            _ => { },
            error =>
            {
                if (error is not AuthenticationFailedException && Volatile.Read(ref _reconnect) is { MaxAttempts: not null })
                {
                    error = new ReconnectFailedException(Volatile.Read(ref _lastAttempt), error);
                }

                _logger.LogWarning(error, "The client's connection ended");
                Finish(new ConnectionState(ConnectionStatus.Closed) { Error = error, Disconnect = _state.Value.Disconnect }, error);
            },
            () => Finish(new ConnectionState(ConnectionStatus.Closed), null));
    }

    /// <summary>A new link takes over the queued sends.</summary>
    private void Attach(Connection link)
    {
        lock (_gate)
        {
            _link = link;
            link.EnqueueRange(_queue);
            _queue.Clear();
            _requeuedAhead = 0;
            _queuedBytes = 0;
        }
    }

    private void Detach(Connection link)
    {
        lock (_gate)
        {
            if (ReferenceEquals(_link, link))
            {
                _link = null;
            }
        }
    }

    private async Task DisconnectCoreAsync()
    {
        Connection? link;
        lock (_gate)
        {
            _closing = true;
            link = _link;
        }

        if (link is null && _state.Value.Status == ConnectionStatus.Connecting)
        {
            // Still opening the socket: wait for it (bounded), so what was queued is flushed.
            try
            {
                await State.Where(s => s.Status != ConnectionStatus.Connecting || Connection is not null)
                    .Take(1).ToTask().WaitAsync(_options.ConnectTimeout, _options.Connection.TimeProvider).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
            }

            link = Connection;
        }

        if (link is not null)
        {
            await link.CloseAsync().ConfigureAwait(false);
        }

        _linkSubscription.Dispose();
        Finish(new ConnectionState(ConnectionStatus.Closed), null);
    }

    private void Finish(ConnectionState closed, Exception? error)
    {
        List<OutboundMessage> queued;
        lock (_gate)
        {
            if (_closed)
            {
                return;
            }

            _closed = true;
            _closing = true;
            queued = [.. _queue];
            _queue.Clear();
            _requeuedAhead = 0;
            _queuedBytes = 0;
        }

        foreach (var message in queued)
        {
            message.Fail(new ConnectionLostException(message.Name, error));
        }

        Diagnostics.UhuraMetrics.ClientEnded(this);
        SetState(closed);
        _dropped.OnCompleted();
        lock (_stateGate)
        {
            _stateCompleted = true;
            _state.OnCompleted();
        }

        // Events completes after the events already queued were delivered (never on a read loop, never under a lock).
        _dispatcher.Complete();
        _ = _dispatcher.Completion.ContinueWith(static (_, state) => ((UhuraClient)state!).CompleteStreams(), this, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        _finished.TrySetResult();
    }

    private void CompleteStreams()
    {
        _events.OnCompleted();
        _errors.OnCompleted();
    }

    private void ReportSubscriberError(SubscriberException error)
    {
        _logger.LogError(error.InnerException, "A subscriber of {Stream} threw (event {Event})", error.StreamName, error.EventName);
        _errors.OnNext(error);
    }

    /// <summary>State notifications come from the link task and from <see cref="Disconnect"/>: one at a time, none after Closed.</summary>
    private void SetState(ConnectionState state)
    {
        lock (_stateGate)
        {
            if (_state.Value.Status == ConnectionStatus.Closed || (Volatile.Read(ref _closed) && state.Status != ConnectionStatus.Closed))
            {
                return;
            }

            _state.OnNext(state);
        }
    }
}
