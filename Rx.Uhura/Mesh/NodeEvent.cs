namespace Rx.Uhura.Mesh;

/// <summary>What happened to a node or one of its peers (<see cref="NodeEvent.Kind"/>).</summary>
public enum NodeEventKind
{
    /// <summary>The node listens; <see cref="NodeEvent.Info"/> is its address.</summary>
    Listening,

    /// <summary>A transport connection to or from a peer opened (before the handshake; <see cref="NodeEvent.PeerId"/> is null until identified).</summary>
    Connect,

    /// <summary>The remote identified itself in the handshake (verbose's <c>peerid</c>).</summary>
    PeerId,

    /// <summary>The handshake finished and the link carries packets and events; buffered events were resent (verbose's <c>initialized</c>, masterless's <c>connect</c>).</summary>
    Initialized,

    /// <summary>The peer acknowledged bus events up to <see cref="NodeEvent.Sequence"/>.</summary>
    Acknowledge,

    /// <summary>The link to a peer ended; <see cref="NodeEvent.Error"/> says why when it was not asked for. A kept peer is reconnected.</summary>
    Disconnect,

    /// <summary>A lost link to a peer was replaced by a new one.</summary>
    Reconnect,

    /// <summary>A reconnect attempt failed; the next waits <see cref="NodeEvent.Delay"/> (attempt <see cref="NodeEvent.Attempt"/>).</summary>
    Backoff,

    /// <summary>A peer's buffer of unacknowledged bus events was full: the oldest, <see cref="NodeEvent.Sequence"/>, was dropped and will never be resent.</summary>
    BufferOverflow,

    /// <summary>Unacknowledged bus events older than the buffer timeout were dropped for a peer (<see cref="NodeEvent.Count"/> of them, up to <see cref="NodeEvent.Sequence"/>).</summary>
    BufferExpired,

    /// <summary>A connection was refused during the handshake (<see cref="NodeEvent.Error"/> is a <see cref="PeerRefusedException"/>).</summary>
    Refused,

    /// <summary>The peer left the node's peer table: it is no longer connected, kept or reconnected (masterless's <c>disconnect</c>).</summary>
    PeerGone,
}

/// <summary>One entry of <see cref="UhuraNode.NodeEvents"/>. Only the properties meaningful for its <see cref="Kind"/> are set.</summary>
public sealed record NodeEvent(NodeEventKind Kind)
{
    /// <summary>The peer concerned, when known.</summary>
    public string? PeerId { get; init; }

    /// <summary>Listening, Initialized: an address (the node's, or the peer's).</summary>
    public string? Info { get; init; }

    /// <summary>Acknowledge, BufferOverflow, BufferExpired: a bus sequence number on the link to the peer.</summary>
    public ulong Sequence { get; init; }

    /// <summary>BufferExpired, PeerGone: how many unacknowledged bus events were dropped.</summary>
    public int Count { get; init; }

    /// <summary>Backoff: the delay before the next attempt.</summary>
    public TimeSpan Delay { get; init; }

    /// <summary>Backoff: the number of the attempt that will follow the delay (1 for the first retry).</summary>
    public int Attempt { get; init; }

    /// <summary>Initialized: whether the link replaced an earlier link to the same peer.</summary>
    public bool IsReconnect { get; init; }

    /// <summary>Disconnect, Backoff, Refused, PeerGone: why, when it is an error.</summary>
    public Exception? Error { get; init; }
}
