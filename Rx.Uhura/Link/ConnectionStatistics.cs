namespace Rx.Uhura;

/// <summary>
/// A snapshot of one connection's counters (<see cref="Connection.GetStatistics"/>): what it read and wrote since it
/// was made, and what waits on it now. The counters are plain per-connection fields, read without stopping the link,
/// so the values of one snapshot may be a few events apart from each other.
/// </summary>
public sealed record ConnectionStatistics
{
    /// <summary>The connection's id (<see cref="Connection.Id"/>).</summary>
    public required string Id { get; init; }

    /// <summary>
    /// The peer's address: <c>HOST:PORT</c> for TCP and TLS, <c>unix</c> (with <c> pid N</c> when the kernel told it)
    /// for a Unix socket; null when unknown (an in-memory stream).
    /// </summary>
    public string? RemoteEndPoint { get; init; }

    /// <summary>The wire the link speaks; null on a server until the client's first byte told it.</summary>
    public WireProtocol? Protocol { get; init; }

    /// <summary>The session id, once the handshake set one (socket-ipc has none).</summary>
    public string? SessionId { get; init; }

    /// <summary>When the connection was made (the socket accepted or opened), on the connection's <see cref="ConnectionOptions.TimeProvider"/>.</summary>
    public DateTimeOffset ConnectedSince { get; init; }

    /// <summary>Application events read from the peer and delivered to <see cref="Connection.Events"/> (resends dropped as duplicates are not counted).</summary>
    public long EventsIn { get; init; }

    /// <summary>Events written to the peer's outbound buffer: application events and the protocol's statistics replies (a resend on a new link counts again).</summary>
    public long EventsOut { get; init; }

    /// <summary>Bytes read from the stream and consumed by the protocol (handshake, events, acks, heartbeats).</summary>
    public long BytesIn { get; init; }

    /// <summary>Bytes written to the stream (after TLS: before encryption).</summary>
    public long BytesOut { get; init; }

    /// <summary>Sends written and waiting for the peer's acknowledgement (bounded by <see cref="ConnectionOptions.MaxPendingAcks"/>).</summary>
    public int PendingAcks { get; init; }

    /// <summary>Sends accepted but not yet written: waiting for the handshake, or for a write to complete (links without acks).</summary>
    public int QueueDepth { get; init; }

    /// <summary>Bytes in the outbound buffer, not yet handed to the stream (bounded by <see cref="ConnectionOptions.MaxOutboundBufferBytes"/>).</summary>
    public long BufferedBytes { get; init; }
}
