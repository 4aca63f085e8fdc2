using Rx.Uhura.Transport;

namespace Rx.Uhura;

/// <summary>Settings of a <see cref="UhuraClient"/>. Start from <see cref="Default"/> and use <c>with</c>.</summary>
public sealed record UhuraClientOptions
{
    /// <summary>The defaults.</summary>
    public static UhuraClientOptions Default { get; } = new();

    /// <summary>Settings of each link the client opens.</summary>
    public ConnectionOptions Connection { get; init; } = new(); // its own instance: a configuration binder binds into it, never into ConnectionOptions.Default

    /// <summary>
    /// The wire to speak: <see cref="WireProtocol.Native"/> (the default: Rx.Uhura servers accept it),
    /// <see cref="WireProtocol.NodeUhura"/> to talk to a Node <c>uhura</c> server, or <see cref="WireProtocol.SocketIpc"/>
    /// to talk to a socket-ipc server.
    /// </summary>
    public WireProtocol Protocol { get; init; } = WireProtocol.Native;

    /// <summary>How sockets are opened. Default: <see cref="SocketTransport"/>.</summary>
    public ITransport Transport { get; init; } = SocketTransport.Instance;

    /// <summary>
    /// TLS settings for <c>tls://</c> endpoints (a <see cref="TlsEndPoint"/>), which are opened with a
    /// <see cref="TlsTransport"/> over <see cref="Transport"/>. Null (the default) = a <c>tls://</c> endpoint is refused.
    /// </summary>
    public TlsOptions? Tls { get; init; }

    /// <summary>How long one connection attempt (socket and handshake) may take: positive, at most about 49.7 days, or <see cref="Timeout.InfiniteTimeSpan"/>. Default 10 s.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Automatic reconnection; null (the default) = a lost link closes the client. See also <see cref="UhuraClient.AutoReconnect(ReconnectOptions?)"/>.</summary>
    public ReconnectOptions? Reconnect { get; init; }

    /// <summary>
    /// Your own Polly pipeline for reconnection (its retry strategy's delays, attempts and handled errors, on its
    /// <see cref="TimeProvider"/>), used instead of the backoff of <see cref="Reconnect"/>. Null (the default) = the
    /// backoff of <see cref="Reconnect"/>. The client runs its connect sequence through it with
    /// <see cref="ObservableResilienceExtensions.RetryWith{T}(IObservable{T}, Polly.ResiliencePipeline, Func{T, bool}?)"/>;
    /// a link that ends before it delivered anything (no event received, no send acknowledged) continues the backoff.
    /// With this pipeline the client's <see cref="UhuraClient.State"/> shows each attempt as
    /// <see cref="ConnectionStatus.Connecting"/>, without the attempt number and delay that <see cref="Reconnect"/> reports.
    /// </summary>
    public Polly.ResiliencePipeline? ReconnectPipeline { get; init; }

    /// <summary>
    /// What a send does when <see cref="ConnectionOptions.MaxQueuedMessages"/> sends, or <see cref="ConnectionOptions.MaxQueuedBytes"/>
    /// bytes, already wait for a link. Default <see cref="QueueFullPolicy.Reject"/>.
    /// </summary>
    public QueueFullPolicy QueueFullPolicy { get; init; } = QueueFullPolicy.Reject;

    /// <summary>
    /// Whether sends made while no link is up are queued for the next one (and unacknowledged ones resent), or refused
    /// with <see cref="NoServerException"/> as socket-ipc does. Null (the default) = the protocol's own way: queued for
    /// <see cref="WireProtocol.Native"/> and <see cref="WireProtocol.NodeUhura"/>, refused for
    /// <see cref="WireProtocol.SocketIpc"/> (which has no acks: an event written just before a link drops may be lost
    /// either way; only the queue spares events sent while disconnected).
    /// </summary>
    public bool? QueueWhileDisconnected { get; init; }

    /// <summary>
    /// A token presented to the server at every handshake, for its <see cref="UhuraServerOptions.Authenticate"/> callback
    /// (native: in <c>Hello</c>; Node uhura wire: in <c>start</c>'s options, which a Node server ignores). Null = none.
    /// </summary>
    public string? AuthToken { get; init; }

    /// <summary>Whether sends wait for a link, after <see cref="QueueWhileDisconnected"/> and the protocol's default.</summary>
    internal bool QueuesWhileDisconnected => QueueWhileDisconnected ?? Protocol != WireProtocol.SocketIpc;

    /// <summary>
    /// The session to start with, for example one saved by an earlier process (<c>client.Session.Get()</c>). When it
    /// holds a <c>sessionID</c> the server knows, the server resumes that session. Default: empty. Its values are
    /// checked as <see cref="Session.UhuraSession.Set(string, object?)"/> checks changes: one that
    /// cannot be encoded or would exceed the limits fails the client's creation (<see cref="EncodeException"/>,
    /// <see cref="FrameTooLargeException"/>, <see cref="SessionLimitException"/>) rather than every handshake.
    /// </summary>
    public IReadOnlyDictionary<string, Newtonsoft.Json.Linq.JToken>? InitialSession { get; init; }

    internal void Validate()
    {
        ArgumentNullException.ThrowIfNull(Connection);
        ArgumentNullException.ThrowIfNull(Transport);
        Tls?.Validate();
        Connection.Validate();
        Reconnect?.Validate();
        Internal.TimeoutChecks.Check(ConnectTimeout, nameof(ConnectTimeout), allowInfinite: true);
    }
}
