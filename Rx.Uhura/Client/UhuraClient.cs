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
public sealed partial class UhuraClient : IAsyncDisposable, IDisposable
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
    private readonly NativeStream _nativeStream = new() { Instance = SessionIds.New() };
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
        Session = new UhuraSession(_serializer) { ErrorSink = ReportSubscriberError, Limits = _options.Connection };
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
            Session.Replace(Session.CheckInitial(initial), SessionChangeOrigin.Local);
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
    public IObservable<ConnectionState> State => new PlainObservable<ConnectionState>(user =>
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
    public IObservable<Connection> Connections => new GuardedObservable<Connection>(
        State
            .Where(state => state.Status == ConnectionStatus.Connected)
            .Select(_ => Connection) // read as the client reports Connected: the link that just connected, before it can be detached
            .Where(link => link is not null)
            .Select(link => link!)
            .DistinctUntilChanged<Connection>(ReferenceEqualityComparer.Instance),
        "UhuraClient.Connections",
        null,
        ReportSubscriberError); // guarded outside the operators: a subscriber that throws does not end their subscription

    /// <summary>The current link, while one is open.</summary>
    public Connection? Connection => Volatile.Read(ref _link); // set and cleared under _gate; a snapshot either way

    /// <summary>
    /// The server's events named <paramref name="eventName"/>, across links. A subscriber that throws is reported on
    /// <see cref="Errors"/> and keeps its subscription (the filter sits inside the guard: it never sees the throw).
    /// </summary>
    public IObservable<UhuraEvent> Event(string eventName)
    {
        ArgumentNullException.ThrowIfNull(eventName);
        return new GuardedObservable<UhuraEvent>(_events.Where(e => string.Equals(e.Name, eventName, StringComparison.Ordinal)), "UhuraClient.Events", static e => e.Name, ReportSubscriberError);
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
}
