namespace Rx.Uhura;

/// <summary>A client's state, as replayed by <c>UhuraClient.State</c>.</summary>
/// <param name="Status">The status.</param>
public sealed record ConnectionState(ConnectionStatus Status)
{
    /// <summary>For <see cref="ConnectionStatus.Connected"/>: whether the server resumed the existing session.</summary>
    public bool Resumed { get; init; }

    /// <summary>For <see cref="ConnectionStatus.Connected"/>: true when this is not the client's first connection (socket-ipc's <c>reconnect</c>).</summary>
    public bool IsReconnect { get; init; }

    /// <summary>For <see cref="ConnectionStatus.Disconnected"/> and <see cref="ConnectionStatus.Closed"/>: how the link ended, when one existed.</summary>
    public DisconnectInfo? Disconnect { get; init; }

    /// <summary>For <see cref="ConnectionStatus.Reconnecting"/>: the attempt about to be made (1 = first retry).</summary>
    public int Attempt { get; init; }

    /// <summary>For <see cref="ConnectionStatus.Reconnecting"/>: the delay chosen before that attempt.</summary>
    public TimeSpan Delay { get; init; }

    /// <summary>For <see cref="ConnectionStatus.Closed"/> after a failure: the error that ended the client.</summary>
    public Exception? Error { get; init; }

    /// <inheritdoc/>
    public override string ToString() => Status switch
    {
        ConnectionStatus.Connected => Resumed ? "connected (resumed)" : "connected",
        ConnectionStatus.Disconnected => $"disconnected ({Disconnect?.Reason})",
        ConnectionStatus.Reconnecting => $"reconnecting (attempt {Attempt} in {Delay.TotalMilliseconds} ms)",
        ConnectionStatus.Closed when Error is not null => $"closed ({Error.Message})",
        _ => Status.ToString().ToLowerInvariant(),
    };
}
