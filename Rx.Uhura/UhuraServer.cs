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
public sealed class UhuraServer : IAsyncDisposable, IDisposable, IServerContext
{
    private readonly UhuraServerOptions _options;
    private readonly ILogger _logger;
    private readonly Subject<Connection> _connections = new();
    private readonly Subject<UhuraException> _errors = new();
    private readonly Lock _publishGate = new();
    private readonly ConcurrentDictionary<Connection, byte> _active = new();
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
        Sessions = new Server.ServerSessions(SessionStore, _options.SessionTimeToLive, _options.Connection.TimeProvider, _logger);
    }

    internal Server.ServerSessions Sessions { get; }

    /// <summary>Each connection whose handshake completed, before the server sends it <c>connect</c>. Completes when the server closes.</summary>
    public IObservable<Connection> Connections => _connections.AsObservable();

    /// <summary>Errors of single connections (bad input from a peer, transport failures); the connection concerned is closed, the server goes on. Completes when the server closes.</summary>
    public IObservable<UhuraException> Errors => _errors.AsObservable();

    /// <summary>
    /// Sends an event to every client whose handshake has completed, on whichever wire each speaks. The arguments are
    /// serialized once and the same bytes are written to every connection; each connection numbers, acknowledges and
    /// (native protocol) resends its copy like a <see cref="Connection.Post"/>. Returns how many connections accepted it.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="eventName"/> is empty or reserved by the protocol.</exception>
    /// <exception cref="EncodeException">An argument cannot be serialized.</exception>
    public int Broadcast(string eventName, params ReadOnlySpan<object?> args)
    {
        var message = Connection.CreateMessage(eventName, args, _serializer, awaited: false, null, out var error) ?? throw error!;
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

    /// <summary>The session store in use.</summary>
    public ISessionStore SessionStore { get; }

    /// <summary>The bound endpoint (with the real port), once listening.</summary>
    public EndPoint? EndPoint => _listener?.EndPoint;

    /// <summary>The bound endpoint as a URI (<c>tcp://127.0.0.1:PORT</c>, <c>unix:///path</c>), once listening.</summary>
    public string? Uri => EndPoint is { } ep ? UhuraEndpoint.Format(ep) : null;

    /// <summary>The connections open now.</summary>
    public IReadOnlyCollection<Connection> ActiveConnections => _active.Keys.ToArray();

    /// <summary>Starts listening on an endpoint URI (<c>tcp://HOST:PORT</c>, port 0 for any; <c>unix:///PATH</c>).</summary>
    /// <returns>The endpoint actually bound.</returns>
    /// <exception cref="InvalidOperationException">The server is already listening or was closed.</exception>
    public Task<EndPoint> ListenAsync(string uri, CancellationToken cancellationToken = default)
        => ListenAsync(UhuraEndpoint.Parse(uri), cancellationToken);

    /// <inheritdoc cref="ListenAsync(string, CancellationToken)"/>
    public async Task<EndPoint> ListenAsync(EndPoint endPoint, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(endPoint);
        ObjectDisposedException.ThrowIf(_closeTask is not null, this);
        if (Interlocked.Exchange(ref _listening, 1) != 0)
        {
            throw new InvalidOperationException("The server is already listening.");
        }

        try
        {
            _listener = await _options.Transport.BindAsync(endPoint, cancellationToken).ConfigureAwait(false);
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

        Complete();
    }

    ISessionStore IServerContext.SessionStore => SessionStore;

    bool IServerContext.Accepts(WireProtocol wire) => wire == WireProtocol.Native ? _options.AcceptNative : _options.AcceptNodeUhura;

    Server.ServerSessions IServerContext.Sessions => Sessions;

    void IServerContext.OnReady(Connection connection)
    {
        lock (_publishGate)
        {
            try
            {
                _connections.OnNext(connection);
            }
            catch (Exception ex)
            {
                _logger.LogError(ex, "A subscriber of Connections threw for connection {Id}", connection.Id);
            }
        }
    }

    void IServerContext.OnClosed(Connection connection, DisconnectInfo info)
    {
        _active.TryRemove(connection, out _);
        if (connection.Session.Id is { } sessionId)
        {
            Sessions.Detach(sessionId, connection);
        }

        if (info.Error is UhuraException error)
        {
            lock (_publishGate)
            {
                try
                {
                    _errors.OnNext(error);
                }
                catch (Exception ex)
                {
                    _logger.LogError(ex, "A subscriber of Errors threw");
                }
            }
        }
        else if (info.Error is not null)
        {
            lock (_publishGate)
            {
                _errors.OnNext(new UhuraException($"Connection {connection.Id} failed: {info.Error.Message}", info.Error) { ConnectionId = connection.Id });
            }
        }
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
        await Task.WhenAll(_active.Keys.Select(c => c.CloseAsync())).ConfigureAwait(false);
        Complete();
    }

    private void Complete()
    {
        lock (_publishGate)
        {
            _connections.OnCompleted();
            _errors.OnCompleted();
        }
    }
}
