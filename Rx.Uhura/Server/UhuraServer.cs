using System.Collections.Concurrent;
using System.Net;
using System.Reactive.Linq;
using System.Reactive.Subjects;
using Microsoft.Extensions.Logging;
using Rx.Uhura.Session;
using Rx.Uhura.Transport;

namespace Rx.Uhura;

/// <summary>
/// Accepts links on a TCP or Unix socket endpoint and hands each one out as a <see cref="Connection"/> once its
/// handshake completed (uhura's <c>createServer(cb)</c>). Sessions are saved to the <see cref="ISessionStore"/> on
/// every change and resumed by id. Subscribe to <see cref="Connections"/> before calling <see cref="ListenAsync(string, CancellationToken)"/>.
/// </summary>
/// <example>
/// <code>
/// await using var server = new UhuraServer();
/// server.Connections.Subscribe(c => c.Event("ping").Subscribe(_ => c.Send("pong")));
/// await server.ListenAsync("tcp://127.0.0.1:5555");
/// </code>
/// </example>
public sealed partial class UhuraServer : IAsyncDisposable, IDisposable, IServerContext
{
    private readonly UhuraServerOptions _options;
    private readonly ILogger _logger;
    private readonly Subject<Connection> _connections = new();
    private readonly Internal.ErrorStream _errors;
    private readonly Server.MergedEvents _merged;
    private readonly IObservable<Connection> _guardedConnections;
    private readonly Lock _publishGate = new();
    private readonly ConcurrentDictionary<Connection, byte> _active = new();
    private readonly ConcurrentDictionary<string, Connection> _ready = new(StringComparer.Ordinal); // by client id, handshake done
    private readonly CancellationTokenSource _stopping = new();
    private readonly Newtonsoft.Json.JsonSerializer _serializer;
    private ITransportListener? _listener;
    private Task _acceptLoop = Task.CompletedTask;
    private Task? _closeTask;
    private int _listening;

    /// <summary>Creates a server; it accepts nothing until <see cref="ListenAsync(string, CancellationToken)"/>.</summary>
    public UhuraServer(UhuraServerOptions? options = null)
    {
        _options = options ?? UhuraServerOptions.Default;
        _options.Validate();
        SessionStore = _options.SessionStore ?? new InMemorySessionStore();
        _serializer = _options.Connection.CreateSerializer();
        _logger = _options.Connection.LoggerFactory.CreateLogger<UhuraServer>();
        _errors = new Internal.ErrorStream(_logger, "UhuraServer.Errors");
        _merged = new Server.MergedEvents(_options.EventsQueueCapacity, _options.EventsOverflowPolicy, ReportError, _logger);
        _guardedConnections = new Internal.GuardedObservable<Connection>(_connections, "UhuraServer.Connections", null, ReportSubscriberError);
        Sessions = new Server.ServerSessions(SessionStore, _options.SessionTimeToLive, _options.Connection.TimeProvider, _logger);
        InitBackplane();
        _startedAt = _options.Connection.TimeProvider.GetUtcNow();
    }

    internal Server.ServerSessions Sessions { get; }

    /// <summary>
    /// Each connection whose handshake completed, before the server sends it <c>connect</c>. Completes when the server
    /// closes. A subscriber that throws is reported on <see cref="Errors"/> (<see cref="SubscriberException"/>); the
    /// connection and the other subscribers go on.
    /// </summary>
    public IObservable<Connection> Connections => _guardedConnections;

    /// <summary>
    /// Errors of single connections (bad input from a peer, transport failures; the connection concerned is closed, the
    /// server goes on), subscribers of the server's or its connections' streams that threw (<see cref="SubscriberException"/>:
    /// nothing else was affected), and subscribers of <see cref="Events"/> that fell behind (<see cref="SubscriberOverflowException"/>).
    /// A subscriber of this stream that throws is logged and ignored. Completes when the server closes.
    /// </summary>
    public IObservable<UhuraException> Errors => _errors;

    /// <summary>
    /// Sends an event to every client whose handshake has completed, on whichever wire each speaks. The arguments are
    /// serialized once and the same bytes are written to every connection; each connection numbers, acknowledges and
    /// (native protocol) resends its copy like a <see cref="Connection.Post"/>. Returns how many connections of this server
    /// accepted it. With a <see cref="UhuraServerOptions.Backplane"/> the same bytes are also published once, and every
    /// other server writes them to its own clients (not counted here: they are reached later, at most once).
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="eventName"/> is empty or reserved by the protocol.</exception>
    /// <exception cref="EncodeException">An argument cannot be serialized, or not as JSON the clients accept.</exception>
    /// <exception cref="FrameTooLargeException">The event's frame would exceed <see cref="ConnectionOptions.MaxMessageSize"/>.</exception>
    /// <exception cref="SendAfterCloseException">The server is closing or closed.</exception>
    public int Broadcast(string eventName, params ReadOnlySpan<object?> args)
    {
        var message = Connection.CreateMessage(eventName, args, _serializer, awaited: false, null, _options.Protocol, _options.Connection, out var error) ?? throw error!;
        if (Volatile.Read(ref _closeTask) is not null)
        {
            throw new SendAfterCloseException(eventName) { ArgumentsJson = message.ArgumentsJson };
        }

        var reached = DeliverToAll(message);
        _backplane?.PublishBroadcast(message);
        return reached;
    }

    /// <summary>Writes a copy of <paramref name="message"/> (the same payload bytes) to every connected client here; returns how many accepted it.</summary>
    private int DeliverToAll(Internal.OutboundMessage message)
    {
        var reached = 0;
        Connection.t_broadcasting = true;
        try
        {
            foreach (var (connection, _) in _active)
            {
                if (connection.IsConnected && connection.Enqueue(message.ForRecipient()))
                {
                    reached++;
                }
            }
        }
        finally
        {
            Connection.t_broadcasting = false;
        }

        return reached;
    }

    /// <summary>
    /// Sends an event to one client, by the id its connection carries (<see cref="Connection.Id"/>; socket-ipc's
    /// <c>send(topic, message, clientId)</c>). The task completes as <see cref="Connection.Send"/>'s does, and fails with
    /// <see cref="BadClientException"/> when no connected client has that id (with a <see cref="UhuraServerOptions.Backplane"/>:
    /// when no server answered for it within <see cref="UhuraServerOptions.BackplaneTimeout"/>), <see cref="SendAfterCloseException"/> once
    /// the server is closing, or any error of <see cref="Connection.Send"/>.
    /// </summary>
    public Task SendTo(string clientId, string eventName, params ReadOnlySpan<object?> args)
    {
        ArgumentNullException.ThrowIfNull(clientId);
        var message = Connection.CreateMessage(eventName, args, _serializer, _options.Protocol, _options.Connection, out var error);
        if (message is null)
        {
            return Task.FromException(error!);
        }

        if (Volatile.Read(ref _closeTask) is not null)
        {
            message.Fail(new SendAfterCloseException(eventName));
        }
        else if (!_ready.TryGetValue(clientId, out var connection) || !connection.IsConnected)
        {
            SendElsewhere(clientId, message);
        }
        else if (!connection.Enqueue(message) && !message.IsFailed)
        {
            message.Fail(new SendAfterCloseException(eventName) { ConnectionId = clientId });
        }

        return message.Completion!.Task;
    }

    /// <summary>The connected client with id <paramref name="clientId"/> (handshake done, not yet closed), if any.</summary>
    public bool TryGetConnection(string clientId, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out Connection? connection)
        => _ready.TryGetValue(clientId, out connection);

    /// <summary>
    /// Every application event of every connection, as one stream (socket-ipc's <c>message</c> event): each
    /// <see cref="UhuraEvent.Connection"/> says which client sent it (its <c>Id</c> is the client id). Connected clients
    /// and those that connect later are all included. Completes when the server closes. Events of one connection keep
    /// their order; a subscriber is never called concurrently. Each subscriber has its own queue
    /// (<see cref="UhuraServerOptions.EventsQueueCapacity"/>) drained by its own pump, so a slow subscriber delays no
    /// connection and no other subscriber until its queue is full; then <see cref="UhuraServerOptions.EventsOverflowPolicy"/>
    /// applies. An event is acknowledged to its sender only when every subscriber present took it. A subscriber that
    /// throws is reported on <see cref="Errors"/>.
    /// </summary>
    public IObservable<UhuraEvent> Events => _merged;

    /// <summary>The events named <paramref name="eventName"/> (a topic) from every client (socket-ipc's <c>message.TOPIC</c>): an <see cref="Events"/> subscriber that queues only those; one that throws keeps its subscription.</summary>
    public IObservable<UhuraEvent> Event(string eventName)
    {
        ArgumentNullException.ThrowIfNull(eventName);
        return _merged.Named(eventName);
    }

    /// <summary>The session store in use.</summary>
    public ISessionStore SessionStore { get; }

    /// <summary>The bound endpoint (with the real port), once listening.</summary>
    public EndPoint? EndPoint => _listener?.EndPoint;

    /// <summary>The bound endpoint as a URI (<c>tcp://127.0.0.1:PORT</c>, <c>tls://127.0.0.1:PORT</c>, <c>unix:///path</c>), once listening.</summary>
    public string? Uri => EndPoint is { } ep ? UhuraEndpoint.Format(ep) : null;

    /// <summary>The connections open now.</summary>
    public IReadOnlyCollection<Connection> ActiveConnections => _active.Keys.ToArray();

    /// <summary>
    /// Starts listening on an endpoint URI (<c>tcp://HOST:PORT</c>, port 0 for any; <c>tls://HOST:PORT</c> with
    /// <see cref="UhuraServerOptions.Tls"/>; <c>unix:///PATH</c>; <c>memory://NAME</c>, in-process, see <see cref="MemoryTransport"/>).
    /// </summary>
    /// <returns>The endpoint actually bound.</returns>
    /// <exception cref="InvalidOperationException">The server is already listening or was closed.</exception>
    /// <exception cref="ArgumentException">A <c>tls://</c> endpoint without <see cref="UhuraServerOptions.Tls"/> or a server certificate.</exception>
    public Task<EndPoint> ListenAsync(string uri, CancellationToken cancellationToken = default)
        => ListenAsync(UhuraEndpoint.Parse(uri), cancellationToken);

    /// <inheritdoc cref="ListenAsync(string, CancellationToken)"/>
    public async Task<EndPoint> ListenAsync(EndPoint endPoint, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(endPoint);
        ObjectDisposedException.ThrowIf(_closeTask is not null, this);
        var transport = TlsTransport.For(endPoint, _options.Transport, _options.Tls, nameof(UhuraServerOptions), _options.Connection.TimeProvider);
        if (Interlocked.Exchange(ref _listening, 1) != 0)
        {
            throw new InvalidOperationException("The server is already listening.");
        }

        try
        {
            _listener = await transport.BindAsync(endPoint, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            Volatile.Write(ref _listening, 0);
            throw;
        }

        _logger.LogInformation("Listening on {Endpoint}", Uri);
        _acceptLoop = Task.Run(AcceptLoopAsync);
        return _listener.EndPoint;
    }

    /// <summary>
    /// Serves one already-connected stream (a socket accepted elsewhere, an in-memory pipe, a TLS stream), exactly as
    /// an accepted connection.
    /// </summary>
    public void Accept(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ObjectDisposedException.ThrowIf(_closeTask is not null, this);
        var connection = Connection.CreateServerSide(stream, _options.Connection, this);
        _active.TryAdd(connection, 0);
        connection.Start();
    }

    /// <summary>
    /// Stops accepting, closes every connection gracefully (each waits up to its close timeout for queued sends), and
    /// completes <see cref="Connections"/> and <see cref="Errors"/>. Idempotent.
    /// </summary>
    public Task CloseAsync()
    {
        lock (_publishGate)
        {
            return _closeTask ??= CloseCoreAsync();
        }
    }

    /// <inheritdoc cref="CloseAsync"/>
    public ValueTask DisposeAsync() => new(CloseAsync());

    /// <summary>Stops accepting and aborts every connection at once.</summary>
    public void Dispose()
    {
        lock (_publishGate)
        {
            _closeTask ??= Task.CompletedTask;
        }

        _stopping.Cancel();
        _listener?.DisposeAsync().AsTask().GetAwaiter().GetResult();
        foreach (var connection in _active.Keys)
        {
            connection.Dispose();
        }

        DisposeBackplane();
        Complete();
    }

    ISessionStore IServerContext.SessionStore => SessionStore;

    bool IServerContext.Accepts(WireProtocol wire) => _options.Protocol is { } only
        ? wire == only
        : wire == WireProtocol.Native ? _options.AcceptNative : wire == WireProtocol.NodeUhura && _options.AcceptNodeUhura;

    WireProtocol? IServerContext.OnlyWire => _options.Protocol;

    Server.ServerSessions IServerContext.Sessions => Sessions;

    Func<AuthenticationRequest, CancellationToken, ValueTask<AuthenticationResult>>? IServerContext.Authenticate => _options.Authenticate;

    void IServerContext.OnReady(Connection connection)
    {
        connection.OnHandshakeCompleted();
        lock (_publishGate)
        {
            _ready[connection.Id] = connection;
            _connections.OnNext(connection); // its subscribers are guarded
        }
    }

    void IServerContext.OnClosed(Connection connection, DisconnectInfo info)
    {
        _active.TryRemove(connection, out _);
        lock (_publishGate)
        {
            _ready.TryRemove(new KeyValuePair<string, Connection>(connection.Id, connection));
        }

        if (connection.Session.Id is { } sessionId)
        {
            Sessions.Detach(sessionId, connection);
        }

        if (info.Error is UhuraException error)
        {
            _errors.OnNext(error); // its subscribers are guarded: a throw there never reaches this (timer or socket) thread
        }
        else if (info.Error is not null)
        {
            _errors.OnNext(new UhuraException($"Connection {connection.Id} failed: {info.Error.Message}", info.Error) { ConnectionId = connection.Id });
        }
    }

    void IServerContext.ReportError(UhuraException error) => ReportError(error);

    Server.MergedEvents? IServerContext.MergedEvents => _merged;

    private void ReportSubscriberError(SubscriberException error)
    {
        _logger.LogError(error.InnerException, "A subscriber of {Stream} threw", error.StreamName);
        _errors.OnNext(error);
    }

    private async Task AcceptLoopAsync()
    {
        var listener = _listener!;
        while (!_stopping.IsCancellationRequested)
        {
            Stream? stream;
            try
            {
                stream = await listener.AcceptAsync(_stopping.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break;
            }
            catch (Exception ex)
            {
                _logger.LogError(ex, "Accepting a connection failed");
                continue;
            }

            if (stream is null)
            {
                break;
            }

            try
            {
                Accept(stream);
            }
            catch (ObjectDisposedException)
            {
                await stream.DisposeAsync().ConfigureAwait(false);
                break;
            }
        }
    }

    private async Task CloseCoreAsync()
    {
        _stopping.Cancel();
        if (_listener is not null)
        {
            await _listener.DisposeAsync().ConfigureAwait(false);
        }

        await _acceptLoop.ConfigureAwait(false);
        var closing = _active.Keys.ToArray();
        await Task.WhenAll(closing.Select(c => c.CloseAsync())).ConfigureAwait(false);
        try
        {
            // Their queued events delivered (to Events too) before Events completes; bounded, as a subscriber may block.
            await Task.WhenAll(closing.Select(c => c.ShutdownCompleted)).WaitAsync(_options.Connection.CloseTimeout, _options.Connection.TimeProvider).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            _logger.LogWarning("Closing: subscribers still had events to take after {Timeout}", _options.Connection.CloseTimeout);
        }

        await Sessions.FlushAsync().ConfigureAwait(false); // the sessions and resume states saved as their links ended
        Sessions.FailHeld(); // saved with the resume states; this server's tasks for them end here
        await CloseBackplaneAsync().ConfigureAwait(false);
        Complete();
    }

    private void Complete()
    {
        lock (_publishGate)
        {
            _connections.OnCompleted();
        }

        _merged.Complete();
        _errors.OnCompleted();
    }
}
