using Rx.Uhura.Session;

namespace Rx.Uhura;

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
