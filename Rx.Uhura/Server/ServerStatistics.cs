namespace Rx.Uhura;

/// <summary>
/// A snapshot of a server (<see cref="UhuraServer.GetStatistics"/>; over the wire,
/// <see cref="UhuraClient.GetServerStatisticsAsync"/> when the server sets <see cref="UhuraServerOptions.ExposeStatistics"/>):
/// how long it has run and the counters of every open connection.
/// </summary>
public sealed record ServerStatistics
{
    /// <summary>When the snapshot was taken, on the server's <see cref="ConnectionOptions.TimeProvider"/>.</summary>
    public DateTimeOffset Timestamp { get; init; }

    /// <summary>When the server was created.</summary>
    public DateTimeOffset StartedAt { get; init; }

    /// <summary>How long the server has run: <see cref="Timestamp"/> minus <see cref="StartedAt"/>.</summary>
    public TimeSpan Uptime => Timestamp - StartedAt;

    /// <summary>How many connections are open (handshake done or not): the length of <see cref="Connections"/>.</summary>
    public int ConnectionCount => Connections.Count;

    /// <summary>Every open connection, oldest first.</summary>
    public IReadOnlyList<ConnectionStatistics> Connections { get; init; } = [];
}
