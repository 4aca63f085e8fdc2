using Rx.Uhura.Scaleout;
using Rx.Uhura.Session;
using Rx.Uhura.Transport;

namespace Rx.Uhura;

/// <summary>Settings of a <see cref="UhuraServer"/>. Start from <see cref="Default"/> and use <c>with</c>.</summary>
public sealed record UhuraServerOptions
{
    /// <summary>The defaults: in-memory sessions, TCP/Unix sockets, <see cref="ConnectionOptions.Default"/>.</summary>
    public static UhuraServerOptions Default { get; } = new();

    /// <summary>Settings of each accepted connection.</summary>
    public ConnectionOptions Connection { get; init; } = new(); // its own instance: a configuration binder binds into it, never into ConnectionOptions.Default

    /// <summary>Where sessions are kept between connections. Default: a new <see cref="InMemorySessionStore"/> per server.</summary>
    public ISessionStore? SessionStore { get; init; }

    /// <summary>
    /// How long a session whose client disconnected is kept for it to resume; then the server forgets it and destroys it
    /// in the store, unless the store expires sessions by itself (<see cref="IExpiringSessionStore"/> with a time to
    /// live, as the durable stores do), which then decides. Null = kept until invalidated. Default 1 hour.
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
    /// Connects this server to others so that <see cref="UhuraServer.Broadcast"/> and <see cref="UhuraServer.SendTo"/>
    /// reach their clients too (<see cref="InMemoryBackplane"/>, <c>Rx.Uhura.PostgreSql.PostgresBackplane</c>). Null (the
    /// default) = a single server, with no overhead. The server does not dispose it.
    /// </summary>
    public IUhuraBackplane? Backplane { get; init; }

    /// <summary>
    /// This server's id on the <see cref="Backplane"/>, unique among the servers sharing it. Null (the default) = a new
    /// random id per server instance.
    /// </summary>
    public string? ServerId { get; init; }

    /// <summary>
    /// How long <see cref="UhuraServer.SendTo"/> waits for the server that has a non-local client to answer over the
    /// <see cref="Backplane"/>; without an answer the send fails with <see cref="BadClientException"/>. Once that server
    /// answered, the send waits for the client's acknowledgement as a local one does. Measured on
    /// <see cref="ConnectionOptions.TimeProvider"/>. Default 5 seconds.
    /// </summary>
    public TimeSpan BackplaneTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How many messages may wait for the <see cref="Backplane"/> to take them (broadcasts, sends and replies, published
    /// one at a time in order), and how many <see cref="UhuraServer.SendTo"/>s to other servers may await their outcome.
    /// Beyond it a broadcast is not forwarded and a send fails with <see cref="OutboundBufferFullException"/>, reported on
    /// <see cref="UhuraServer.Errors"/>. Default 100,000.
    /// </summary>
    public int BackplaneQueueLimit { get; init; } = 100_000;

    /// <summary>
    /// Whether clients may ask for the server's statistics (<see cref="UhuraClient.GetServerStatisticsAsync"/>, native
    /// protocol; <c>uhura stats</c>): every open connection's id, remote address, session, counters and queues. Off by
    /// default, since it tells any client about the others; a refused request fails with
    /// <see cref="StatisticsUnavailableException"/> and the connection goes on.
    /// </summary>
    public bool ExposeStatistics { get; init; }

    /// <summary>
    /// The events each subscriber of <see cref="UhuraServer.Events"/> may have waiting in its own queue; when it is full,
    /// <see cref="EventsOverflowPolicy"/> applies. Default 10,000.
    /// </summary>
    public int EventsQueueCapacity { get; init; } = 10_000;

    /// <summary>What happens to an event for a subscriber of <see cref="UhuraServer.Events"/> whose queue is full. Default <see cref="SubscriberOverflowPolicy.Wait"/>.</summary>
    public SubscriberOverflowPolicy EventsOverflowPolicy { get; init; } = SubscriberOverflowPolicy.Wait;

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
        if (BackplaneTimeout <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(BackplaneTimeout), BackplaneTimeout, "Must be positive.");
        }
        if (EventsQueueCapacity < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(EventsQueueCapacity), EventsQueueCapacity, "Must be positive.");
        }
        if (!Enum.IsDefined(EventsOverflowPolicy))
        {
            throw new ArgumentOutOfRangeException(nameof(EventsOverflowPolicy), EventsOverflowPolicy, "Unknown policy.");
        }
        if (BackplaneQueueLimit < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(BackplaneQueueLimit), BackplaneQueueLimit, "Must be positive.");
        }
        if (ServerId is { Length: 0 })
        {
            throw new ArgumentException("A server id cannot be empty.", nameof(ServerId));
        }
        if (SessionTimeToLive is { } ttl && ttl <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(SessionTimeToLive), ttl, "Must be positive.");
        }
    }
}
