using Rx.Uhura.Session;
using Rx.Uhura.Transport;

namespace Rx.Uhura;

/// <summary>Settings of a <see cref="UhuraServer"/>. Start from <see cref="Default"/> and use <c>with</c>.</summary>
public sealed record UhuraServerOptions
{
    /// <summary>The defaults: in-memory sessions, TCP/Unix sockets, <see cref="ConnectionOptions.Default"/>.</summary>
    public static UhuraServerOptions Default { get; } = new();

    /// <summary>Settings of each accepted connection.</summary>
    public ConnectionOptions Connection { get; init; } = ConnectionOptions.Default;

    /// <summary>Where sessions are kept between connections. Default: a new <see cref="InMemorySessionStore"/> per server.</summary>
    public ISessionStore? SessionStore { get; init; }

    /// <summary>
    /// How long a session whose client disconnected is kept for it to resume; then it is destroyed in the store. Null =
    /// kept until invalidated. Default 1 hour.
    /// </summary>
    public TimeSpan? SessionTimeToLive { get; init; } = TimeSpan.FromHours(1);

    /// <summary>
    /// Decides at the handshake whether a client may connect, from the token it presents
    /// (<see cref="UhuraClientOptions.AuthToken"/>) and, over a Unix socket, its process credentials. It runs before any
    /// session is looked up: a refused client gets an <see cref="AuthenticationFailedException"/> with the reason, no
    /// session is created or resumed, and the connection is closed. A callback that throws refuses. Null (the default)
    /// lets everyone in. Native and Node uhura wires (socket-ipc has no handshake).
    /// </summary>
    public Func<AuthenticationRequest, CancellationToken, ValueTask<AuthenticationResult>>? Authenticate { get; init; }

    /// <summary>Whether to accept clients speaking the native protocol. Default true.</summary>
    public bool AcceptNative { get; init; } = true;

    /// <summary>Whether to accept clients speaking the Node uhura wire. Default true.</summary>
    public bool AcceptNodeUhura { get; init; } = true;

    /// <summary>
    /// The one wire this server speaks, or null (the default) to tell native and Node uhura clients apart by their first
    /// byte (within <see cref="AcceptNative"/> and <see cref="AcceptNodeUhura"/>). <see cref="WireProtocol.SocketIpc"/>
    /// must be set here: it has no handshake, so a client that never writes could not be recognized.
    /// </summary>
    public WireProtocol? Protocol { get; init; }

    /// <summary>How sockets are opened. Default: <see cref="SocketTransport"/>.</summary>
    public ITransport Transport { get; init; } = SocketTransport.Instance;

    /// <summary>
    /// TLS settings for <c>tls://</c> endpoints (a <see cref="TlsEndPoint"/>), which are opened with a
    /// <see cref="TlsTransport"/> over <see cref="Transport"/>. Null (the default) = a <c>tls://</c> endpoint is refused.
    /// </summary>
    public TlsOptions? Tls { get; init; }

    /// <summary>
    /// Whether clients may ask for the server's statistics (<see cref="UhuraClient.GetServerStatisticsAsync"/>, native
    /// protocol; <c>uhura stats</c>): every open connection's id, remote address, session, counters and queues. Off by
    /// default, since it tells any client about the others; a refused request fails with
    /// <see cref="StatisticsUnavailableException"/> and the connection goes on.
    /// </summary>
    public bool ExposeStatistics { get; init; }

    internal void Validate()
    {
        ArgumentNullException.ThrowIfNull(Connection);
        ArgumentNullException.ThrowIfNull(Transport);
        Tls?.Validate();
        Connection.Validate();
        if (!AcceptNative && !AcceptNodeUhura)
        {
            throw new ArgumentException("A server must accept at least one wire protocol.", nameof(AcceptNative));
        }
        if (SessionTimeToLive is { } ttl && ttl <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(SessionTimeToLive), ttl, "Must be positive.");
        }
    }
}
