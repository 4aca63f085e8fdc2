namespace Rx.Uhura;

/// <summary>The server's statistics: <see cref="GetStatistics"/>, and the snapshot its connections answer requests with.</summary>
public sealed partial class UhuraServer
{
    private readonly DateTimeOffset _startedAt;

    /// <summary>
    /// A snapshot of the server: when it started and the counters of every open connection
    /// (<see cref="Connection.GetStatistics"/>), oldest connection first. Available whether or not
    /// <see cref="UhuraServerOptions.ExposeStatistics"/> lets clients ask for it.
    /// </summary>
    public ServerStatistics GetStatistics()
    {
        var connections = _active.Keys.Select(c => c.GetStatistics()).OrderBy(c => c.ConnectedSince).ThenBy(c => c.Id, StringComparer.Ordinal).ToArray();
        return new ServerStatistics
        {
            Timestamp = _options.Connection.TimeProvider.GetUtcNow(),
            StartedAt = _startedAt,
            Connections = connections,
        };
    }

    ServerStatistics? IServerContext.ExposedStatistics() => _options.ExposeStatistics ? GetStatistics() : null;
}
